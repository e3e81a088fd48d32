//! Live delivery over real WebSockets: fan-out across instances on one Redis, recovery with
//! `since`, the prefix end to end, pub/sub loss, deletion, slow consumers, bad frames.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use afw_gateway::Config;
use futures::future::join_all;
use serde_json::{json, Value};
use support::{Gateway, RedisServer, WsClient};
use tokio_tungstenite::tungstenite::Message;

/// Reads events until `total` have arrived, checking as it goes that each session's seqs go
/// up by exactly one from `start[session]`; returns the eventIds seen per session.
async fn receive_in_order(
    client: &mut WsClient,
    total: usize,
    start: &BTreeMap<String, u64>,
) -> BTreeMap<String, Vec<String>> {
    let mut next: BTreeMap<String, u64> = start.clone();
    let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for _ in 0..total {
        let m = client.next_event().await;
        let sid = m["sessionId"].as_str().unwrap().to_string();
        let seq = m["seq"].as_u64().unwrap();
        let want = next
            .get_mut(&sid)
            .unwrap_or_else(|| panic!("event for unexpected session {sid}"));
        assert_eq!(
            seq, *want,
            "session {sid}: expected seq {want}, got {seq} (gap, duplicate or reorder)"
        );
        assert_eq!(m["payload"]["seq"], seq, "frame and payload agree");
        *want += 1;
        ids.entry(sid)
            .or_default()
            .push(m["payload"]["eventId"].as_str().unwrap().to_string());
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_mode_delivers_http_events_live() {
    let gw = Gateway::start(support::config(None)).await;
    let mut c = WsClient::connect(&gw.ws_url()).await;
    let confirm = c.subscribe("live", None, None).await;
    assert_eq!(confirm["payload"]["headSeq"], 0);
    for i in 0..5 {
        gw.post_event(json!({"sessionId": "live", "type": "t", "i": i}))
            .await;
    }
    gw.post_event(json!({"sessionId": "other", "type": "t"}))
        .await;
    let start = BTreeMap::from([("live".to_string(), 1)]);
    receive_in_order(&mut c, 5, &start).await;
    c.assert_quiet("nothing from an unsubscribed session").await;
    // A close the client starts is answered (RFC 6455 §5.5.1): without the answer browsers
    // report 1006, an abnormal close.
    let answer = c.close_handshake().await;
    assert_eq!(
        answer.map(|(code, _)| code),
        Some(1000),
        "the server answers Close"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_deliver_every_event_once_in_order() {
    let redis = RedisServer::start().await;
    let gws = join_all((0..3).map(|_| Gateway::start(support::config(Some(&redis))))).await;
    let sessions: Vec<String> = (0..4).map(|i| format!("fan-{i}")).collect();
    let mut clients = Vec::new();
    for gw in &gws {
        let mut c = WsClient::connect(&gw.ws_url()).await;
        for s in &sessions {
            c.subscribe(s, None, None).await;
        }
        clients.push(c);
    }
    let instances: HashSet<_> = clients.iter().map(|c| c.instance_id.clone()).collect();
    assert_eq!(instances.len(), 3, "one client on each instance");

    // 6 posters, 200 events each, spread over every instance and session.
    const POSTERS: usize = 6;
    const EACH: usize = 200;
    let mut posters = Vec::new();
    for p in 0..POSTERS {
        let urls: Vec<String> = gws.iter().map(|g| g.url("/api/events")).collect();
        let sessions = sessions.clone();
        let http = reqwest::Client::new();
        posters.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            for i in 0..EACH {
                let sid = &sessions[(p + i) % sessions.len()];
                let id = format!("p{p}-{i}");
                let r = http
                    .post(&urls[(p + i) % urls.len()])
                    .json(&json!({"sessionId": sid, "type": "load", "eventId": id}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
                sent.push((sid.clone(), id));
            }
            sent
        }));
    }
    let readers = clients.into_iter().map(|mut c| {
        let start: BTreeMap<String, u64> = sessions.iter().map(|s| (s.clone(), 1)).collect();
        tokio::spawn(async move {
            let ids = receive_in_order(&mut c, POSTERS * EACH, &start).await;
            c.assert_quiet("no extra event").await;
            ids
        })
    });
    let readers: Vec<_> = readers.collect();
    let mut sent: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    for p in posters {
        for (sid, id) in p.await.unwrap() {
            sent.entry(sid).or_default().insert(id);
        }
    }
    for r in readers {
        let got = r.await.unwrap();
        for (sid, ids) in &got {
            let unique: HashSet<String> = ids.iter().cloned().collect();
            assert_eq!(unique.len(), ids.len(), "no duplicate in {sid}");
            assert_eq!(&unique, &sent[sid], "every event of {sid}");
        }
    }
    for gw in gws {
        gw.stop().await;
    }
}

async fn resume_without_gap_or_duplicate(first: &Gateway, second: &Gateway) {
    let mut c = WsClient::connect(&first.ws_url()).await;
    let confirm = c.subscribe("resume", None, None).await;
    assert_eq!(confirm["payload"]["headSeq"], 0);
    for i in 0..10 {
        first
            .post_event(json!({"sessionId": "resume", "type": "t", "i": i}))
            .await;
    }
    let start = BTreeMap::from([("resume".to_string(), 1)]);
    receive_in_order(&mut c, 10, &start).await;
    let epoch = first.get("/api/events/resume?limit=1").await.1["epoch"]
        .as_str()
        .unwrap()
        .to_string();
    c.close().await;

    // Missed while away.
    for i in 10..30 {
        first
            .post_event(json!({"sessionId": "resume", "type": "t", "i": i}))
            .await;
    }
    // And more arriving during the hand-over.
    let poster = {
        let http = first.http.clone();
        let url = first.url("/api/events");
        tokio::spawn(async move {
            for i in 30..80 {
                let r = http
                    .post(&url)
                    .json(&json!({"sessionId": "resume", "type": "t", "i": i}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
            }
        })
    };
    let mut c = WsClient::connect(&second.ws_url()).await;
    let confirm = c.subscribe("resume", Some(10), Some(&epoch)).await;
    assert_eq!(confirm["payload"]["recovered"], true, "{confirm}");
    assert_eq!(confirm["payload"]["epoch"], epoch.as_str());
    let start = BTreeMap::from([("resume".to_string(), 11)]);
    receive_in_order(&mut c, 70, &start).await;
    poster.await.unwrap();
    c.assert_quiet("nothing after seq 80").await;
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_with_since_on_memory_store() {
    let gw = Gateway::start(support::config(None)).await;
    resume_without_gap_or_duplicate(&gw, &gw).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_with_since_on_another_instance() {
    let redis = RedisServer::start().await;
    let a = Gateway::start(support::config(Some(&redis))).await;
    let b = Gateway::start(support::config(Some(&redis))).await;
    resume_without_gap_or_duplicate(&a, &b).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_that_cannot_be_exact_says_so_and_replays_nothing() {
    let redis = RedisServer::start().await;
    let gw = Gateway::start(Config {
        max_events_per_session: 5,
        ..support::config(Some(&redis))
    })
    .await;
    for i in 0..10 {
        gw.post_event(json!({"sessionId": "lost", "type": "t", "i": i}))
            .await;
    }
    let epoch = gw.get("/api/events/lost").await.1["epoch"]
        .as_str()
        .unwrap()
        .to_string();
    let mut c = WsClient::connect(&gw.ws_url()).await;
    for (since, ep) in [
        (2, epoch.as_str()),
        (5, "another-epoch"),
        (11, epoch.as_str()),
    ] {
        let confirm = c.subscribe("lost", Some(since), Some(ep)).await;
        assert_eq!(
            confirm["payload"]["recovered"], false,
            "since {since} epoch {ep}: {confirm}"
        );
        assert_eq!(confirm["payload"]["headSeq"], 10);
        c.assert_quiet("nothing replayed").await;
    }
    // The exact edge of what is stored still works: seqs 6..10 are kept.
    let confirm = c.subscribe("lost", Some(5), Some(&epoch)).await;
    assert_eq!(confirm["payload"]["recovered"], true);
    let start = BTreeMap::from([("lost".to_string(), 6)]);
    receive_in_order(&mut c, 5, &start).await;
    // Live continues after the head.
    gw.post_event(json!({"sessionId": "lost", "type": "t"}))
        .await;
    assert_eq!(c.next_event().await["seq"], 11);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_prefix_is_followed_by_keys_and_channel() {
    let redis = RedisServer::start().await;
    let config = || Config {
        redis_prefix: "x:".into(),
        ..support::config(Some(&redis))
    };
    let a = Gateway::start(config()).await;
    let b = Gateway::start(config()).await;
    // A raw subscriber on the prefixed channel sees the published event.
    let mut raw = redis::Client::open(redis.url())
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    raw.subscribe("x:events").await.unwrap();
    let mut c = WsClient::connect(&b.ws_url()).await;
    c.subscribe("pfx", None, None).await;
    a.post_event(json!({"sessionId": "pfx", "type": "t", "eventId": "e-1"}))
        .await;
    let m = c.next_event().await;
    assert_eq!(
        m["payload"]["eventId"], "e-1",
        "delivered across instances on x:events"
    );
    let msg = tokio::time::timeout(
        support::WAIT,
        futures::StreamExt::next(&mut raw.on_message()),
    )
    .await
    .unwrap()
    .unwrap();
    let published: Value = serde_json::from_slice(msg.get_payload_bytes()).unwrap();
    assert_eq!(published["sessionId"], "pfx");
    assert_eq!(published["seq"], 1);
    assert_eq!(published["event"]["eventId"], "e-1");
    assert!(
        published["epoch"].is_string()
            && published["origin"].is_string()
            && published["timestamp"].is_string()
    );

    let keys = redis.keys().await;
    assert!(keys.contains(&"x:sessions:{pfx}".to_string()), "{keys:?}");
    assert!(keys.contains(&"x:events:{pfx}".to_string()), "{keys:?}");
    assert!(
        keys.iter().all(|k| k.starts_with("x:")),
        "every key under the prefix: {keys:?}"
    );

    let mut conn = redis.connection().await.unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg("x:events:{pfx}")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 86_000 && ttl <= 86_400, "events TTL {ttl}");
    let ttl: i64 = redis::cmd("TTL")
        .arg("x:sessions:{pfx}")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 86_000 && ttl <= 86_400, "session TTL {ttl}");
    let dedup = keys
        .iter()
        .find(|k| k.starts_with("x:dedup:{pfx}:"))
        .expect("a dedup marker");
    let ttl: i64 = redis::cmd("TTL")
        .arg(dedup)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 500 && ttl <= 600, "dedup TTL {ttl}");
    let fields: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg("x:sessions:{pfx}")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        fields.get("status").map(String::as_str),
        Some("in_progress"),
        "readable with HGETALL: {fields:?}"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_lost_by_pubsub_are_filled_from_the_store() {
    let redis = RedisServer::start().await;
    let a = Gateway::start(support::config(Some(&redis))).await;
    let b = Gateway::start(support::config(Some(&redis))).await;
    let mut c = WsClient::connect(&b.ws_url()).await;
    c.subscribe("drop", None, None).await;
    a.post_event(json!({"sessionId": "drop", "type": "t"}))
        .await;
    assert_eq!(c.next_event().await["seq"], 1);

    let mut conn = redis.connection().await.unwrap();
    let mut total = 1;
    for round in 0..3 {
        // Wait until both instances are subscribed, then cut every subscription and publish
        // while they reconnect.
        let deadline = std::time::Instant::now() + support::WAIT;
        loop {
            let (_, n): (String, i64) = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg("afw:events")
                .query_async(&mut conn)
                .await
                .unwrap();
            if n >= 2 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "instances never resubscribed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let killed = redis.kill_pubsub_clients().await;
        assert!(killed >= 2, "round {round}: killed {killed}");
        for i in 0..30 {
            a.post_event(json!({"sessionId": "drop", "type": "t", "round": round, "i": i}))
                .await;
        }
        total += 30;
    }
    let start = BTreeMap::from([("drop".to_string(), 2)]);
    receive_in_order(&mut c, total - 1, &start).await;
    c.assert_quiet("no further message").await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_redis_restarts_with_no_data_a_new_epoch_flows_to_old_subscribers() {
    let mut redis = RedisServer::start().await;
    let a = Gateway::start(support::config(Some(&redis))).await;
    let b = Gateway::start(support::config(Some(&redis))).await;
    let mut c = WsClient::connect(&b.ws_url()).await;
    c.subscribe("phoenix", None, None).await;
    for _ in 0..3 {
        a.post_event(json!({"sessionId": "phoenix", "type": "t"}))
            .await;
    }
    let old = receive_in_order(&mut c, 3, &BTreeMap::from([("phoenix".to_string(), 1)])).await;
    assert_eq!(old["phoenix"].len(), 3);
    let old_epoch = a.get("/api/events/phoenix").await.1["epoch"].clone();

    redis.restart().await;
    // Both instances come back by themselves (ready = store answers and pub/sub is live).
    for gw in [&a, &b] {
        let deadline = std::time::Instant::now() + support::WAIT;
        while gw.get("/ready").await.0 != 200 {
            assert!(
                std::time::Instant::now() < deadline,
                "instance never became ready again"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for _ in 0..3 {
        assert!(
            a.post_event(json!({"sessionId": "phoenix", "type": "t"}))
                .await
                >= 1
        );
    }
    let page = a.get("/api/events/phoenix").await.1;
    assert_eq!(
        page["headSeq"], 3,
        "the stream started again from nothing: {page}"
    );
    assert_ne!(page["epoch"], old_epoch, "under a new epoch");
    for seq in 1..=3 {
        let m = c.next_event().await;
        assert_eq!(
            (m["seq"].as_u64(), &m["epoch"]),
            (Some(seq), &page["epoch"]),
            "{m}"
        );
    }
    c.assert_quiet("no further message").await;
    // A client that was away and resumes from the old stream cannot be answered exactly.
    let mut back = WsClient::connect(&a.ws_url()).await;
    let confirm = back.subscribe("phoenix", Some(3), old_epoch.as_str()).await;
    assert_eq!(confirm["payload"]["recovered"], false, "{confirm}");
    assert_eq!(confirm["payload"]["epoch"], page["epoch"], "{confirm}");
    back.assert_quiet("nothing replayed from the wrong stream")
        .await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_session_unsubscribes_its_watchers_everywhere() {
    let redis = RedisServer::start().await;
    let a = Gateway::start(support::config(Some(&redis))).await;
    let b = Gateway::start(support::config(Some(&redis))).await;
    a.post_event(json!({"sessionId": "doomed", "type": "t"}))
        .await;
    let mut c = WsClient::connect(&b.ws_url()).await;
    c.subscribe("doomed", None, None).await;
    let (s, _) = a.delete("/api/sessions/doomed").await;
    assert_eq!(s, 204);
    let m = c.recv().await;
    assert_eq!(
        m,
        json!({"type": "unsubscribed", "sessionId": "doomed", "reason": "deleted"})
    );
    a.post_event(json!({"sessionId": "doomed", "type": "t"}))
        .await;
    c.assert_quiet("no longer subscribed").await;
    a.stop().await;
    b.stop().await;
}

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
    let gw = Gateway::start(Config {
        ws_outbound_limit_bytes: 256 * 1024,
        max_event_bytes: 64 * 1024,
        max_batch_bytes: 256 * 1024,
        ..support::config(None)
    })
    .await;
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
    let gw = Gateway::start(Config {
        ws_ping_every: Duration::from_millis(100),
        ws_pong_timeout: Duration::from_millis(300),
        ..support::config(None)
    })
    .await;
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
