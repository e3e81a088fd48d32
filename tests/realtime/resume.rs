//! Resuming with `since` and `epoch`: exact on the same and another instance, and saying so when it cannot be.

use super::*;

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
    let mut config = support::config(Some(&redis));
    config.events.max_events_per_session = 5;
    let gw = Gateway::start(config).await;
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
