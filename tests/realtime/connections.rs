//! One connection at a time: bad frames, a reader that stops reading, shutdown, pings.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_errors_and_the_socket_stays_open() {
    let gw = Gateway::start(support::config(None)).await;
    let mut c = WsClient::connect(&gw.ws_url()).await;
    let cases: Vec<(Message, &str)> = vec![
        (Message::Text("{not json".into()), "invalid_json"),
        (Message::Text("[1,2]".into()), "invalid_message"),
        (
            Message::Text(r#"{"type":"teleport"}"#.into()),
            "unknown_type",
        ),
        (
            Message::Text(r#"{"type":"subscribe"}"#.into()),
            "invalid_message",
        ),
        (
            Message::Text(r#"{"type":"subscribe","sessionId":""}"#.into()),
            "invalid_message",
        ),
        (
            Message::Text(r#"{"type":"subscribe","sessionId":"s","since":"x"}"#.into()),
            "invalid_message",
        ),
        (
            Message::Binary(vec![1, 2, 3].into()),
            "binary_not_supported",
        ),
    ];
    for (frame, code) in cases {
        c.send_raw(frame).await;
        let m = c.recv().await;
        assert_eq!(
            (m["type"].as_str(), m["code"].as_str()),
            (Some("error"), Some(code)),
            "{m}"
        );
    }
    c.send(json!({"type": "ping"})).await;
    let m = c.recv().await;
    assert_eq!(m, json!({"type": "pong", "clientId": c.client_id}));

    // Unsubscribe stops delivery.
    c.subscribe("u", None, None).await;
    gw.post_event(json!({"sessionId": "u", "type": "t"})).await;
    assert_eq!(c.next_event().await["seq"], 1);
    c.send(json!({"type": "unsubscribe", "sessionId": "u"}))
        .await;
    assert_eq!(
        c.recv().await,
        json!({"type": "unsubscribed", "sessionId": "u", "reason": "client"})
    );
    gw.post_event(json!({"sessionId": "u", "type": "t"})).await;
    c.assert_quiet("no further message").await;

    // Too big a message closes with 1009.
    let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(70 * 1024));
    c.send_raw(Message::Text(big.into())).await;
    assert_eq!(c.recv_close().await, Some(1009));
    let (s, _) = gw.get("/health").await;
    assert_eq!(s, 200, "the process is alive");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_with_4008_and_others_are_unaffected() {
    let mut config = support::config(None);
    config.events.max_event_bytes = 64 * 1024;
    config.events.max_batch_bytes = 256 * 1024;
    config.realtime.ws_outbound_limit_bytes = 256 * 1024;
    let gw = Gateway::start(config).await;
    let mut slow = WsClient::connect(&gw.ws_url()).await;
    slow.subscribe("flood", None, None).await;
    let mut fast = WsClient::connect(&gw.ws_url()).await;
    fast.subscribe("flood", None, None).await;
    const BATCHES: u64 = 120;
    const PER_BATCH: u64 = 10;
    let (progress_tx, mut progress) = tokio::sync::watch::channel(0u64);
    let fast_reader = tokio::spawn(async move {
        for seq in 1..=BATCHES * PER_BATCH {
            let m = fast.next_event().await;
            assert_eq!(
                m["seq"], seq,
                "the reader that keeps up sees every event in order"
            );
            let _ = progress_tx.send(seq);
        }
    });
    // ~19 MB in bursts of 160 KB (under the 256 KiB budget), paced by the fast reader; the
    // reader that reads nothing falls behind by far more than socket buffers and its budget.
    let pad = "y".repeat(16 * 1024);
    for batch in 0..BATCHES {
        let events: Vec<Value> = (0..PER_BATCH)
            .map(|i| json!({"sessionId": "flood", "type": "t", "b": batch, "i": i, "pad": pad}))
            .collect();
        let (s, v) = gw
            .post("/api/events/batch", json!({"events": events}))
            .await;
        assert_eq!(s, 201, "{v}");
        let target = (batch + 1) * PER_BATCH;
        tokio::time::timeout(support::WAIT, progress.wait_for(|n| *n >= target))
            .await
            .expect("the fast reader keeps up")
            .expect("the fast reader is alive");
    }
    fast_reader.await.unwrap();
    assert_eq!(
        slow.recv_close().await,
        Some(4008),
        "the slow reader is closed with slow_consumer"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_connections_with_1001() {
    let gw = Gateway::start(support::config(None)).await;
    let mut c = WsClient::connect(&gw.ws_url()).await;
    c.subscribe("bye", None, None).await;
    gw.stop().await;
    assert_eq!(c.recv_close().await, Some(1001));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_pings_and_closes_a_client_that_does_not_answer() {
    let mut config = support::config(None);
    config.realtime.ws_ping_every = Duration::from_millis(100);
    config.realtime.ws_pong_timeout = Duration::from_millis(300);
    let gw = Gateway::start(config).await;
    let mut answering = WsClient::connect(&gw.ws_url()).await;
    let mut silent = WsClient::connect(&gw.ws_url()).await;
    // Reading lets the client library answer each ping with a pong; the silent one reads nothing.
    answering.assert_quiet("only pings arrive").await;
    answering.assert_quiet("only pings arrive").await;
    answering.assert_quiet("only pings arrive").await;
    answering.assert_quiet("only pings arrive").await;
    answering.send(json!({"type": "ping"})).await;
    assert_eq!(
        answering.recv().await["type"],
        "pong",
        "the answering client is still connected"
    );
    assert_eq!(
        silent.recv_close().await,
        Some(1011),
        "no pong within the timeout"
    );
    gw.stop().await;
}
