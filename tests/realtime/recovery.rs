//! What pub/sub loses, what a Redis restart wipes and what a deletion ends, recovered or told.

use super::*;

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
