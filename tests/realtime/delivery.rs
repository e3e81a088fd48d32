//! Live delivery in order, on one instance and across three, and the key prefix end to end.

use super::*;

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

/// `WS_WRITE_COALESCE_MS`: frames queued while a connection waits go out together, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coalesced_writes_carry_many_frames_each() {
    let mut config = support::config(None);
    config.realtime.ws_write_coalesce_ms = 1000;
    let gw = Gateway::start(config).await;
    let mut c = WsClient::connect(&gw.ws_url()).await;
    c.subscribe("batched", None, None).await;
    let writes = gw.metric("afw_ws_writes_total").await;
    for i in 0..10 {
        gw.post_event(json!({"sessionId": "batched", "type": "t", "i": i}))
            .await;
    }
    let start = BTreeMap::from([("batched".to_string(), 1)]);
    receive_in_order(&mut c, 10, &start).await;
    let written = gw.metric("afw_ws_writes_total").await - writes;
    // Posted one after another (each answered before the next), so written at once each
    // would be ten writes; the first waits a second, and the rest join it.
    assert!(
        (1.0..=2.0).contains(&written),
        "10 events in {written} writes"
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_prefix_is_followed_by_keys_and_channel() {
    let redis = RedisServer::start().await;
    let config = || {
        let mut c = support::config(Some(&redis));
        c.store.redis_prefix = "x:".into();
        c
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
    // Renewed to the TTL plus 1% (docs/redis.md).
    assert!(ttl > 86_000 && ttl <= 87_264, "events TTL {ttl}");
    let ttl: i64 = redis::cmd("TTL")
        .arg("x:sessions:{pfx}")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 86_000 && ttl <= 87_264, "session TTL {ttl}");
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

/// An append renews a session's TTLs only when they would end sooner than its TTL from now
/// (then to the TTL plus 1%), and marks for dedup only the eventIds clients gave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_renew_short_ttls_and_mark_given_event_ids() {
    let redis = RedisServer::start().await;
    let mut config = support::config(Some(&redis));
    config.events.session_ttl_secs = 200;
    let gw = Gateway::start(config).await;
    let (s, _) = gw.post("/api/sessions", json!({"id": "r"})).await;
    assert_eq!(s, 201);
    let space = support::key_space();
    let (hash, list) = (
        &*format!("{space}sessions:{{r}}"),
        &*format!("{space}events:{{r}}"),
    );
    gw.post_event(json!({"sessionId": "r", "type": "t", "eventId": "given"}))
        .await;
    let fresh = 195_000..=202_000;
    for key in [hash, list] {
        let ttl = redis.pttl(key).await;
        assert!(fresh.contains(&ttl), "{key} after the first event: {ttl}");
    }
    let mut conn = redis.connection().await.unwrap();
    let pexpire = |key: &str, ms: i64| {
        let mut conn = conn.clone();
        let mut cmd = redis::cmd("PEXPIRE");
        cmd.arg(key).arg(ms);
        async move { cmd.query_async::<i64>(&mut conn).await.unwrap() }
    };
    // Still past the TTL from now: left alone.
    pexpire(hash, 201_500).await;
    pexpire(list, 201_500).await;
    gw.post_event(json!({"sessionId": "r", "type": "t"})).await;
    for key in [hash, list] {
        let ttl = redis.pttl(key).await;
        assert!(
            (195_000..=201_500).contains(&ttl),
            "{key} not renewed: {ttl}"
        );
    }
    // Sooner than the TTL from now: renewed, both keys.
    pexpire(hash, 150_000).await;
    pexpire(list, 150_000).await;
    gw.post_event(json!({"sessionId": "r", "type": "t"})).await;
    for key in [hash, list] {
        let ttl = redis.pttl(key).await;
        assert!(fresh.contains(&ttl), "{key} renewed: {ttl}");
    }
    let markers: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{space}dedup:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        markers,
        vec![format!("{space}dedup:{{r}}:given")],
        "a marker for the given eventId only"
    );
    gw.stop().await;
}
