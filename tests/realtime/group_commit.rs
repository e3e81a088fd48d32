//! The group commit on one server: requests that queue while Redis is busy are stored by a
//! few script calls, each request's events in its own key space and in order.

use super::*;

const ACME: &str = "acme-group-commit-key-0123456789";
const GLOBEX: &str = "globex-group-commit-key-0123456789";

async fn evalsha_calls(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_queued_behind_a_busy_redis_share_calls_and_keep_their_tenants_apart() {
    let redis = RedisServer::start().await;
    let mut config = support::config(Some(&redis));
    config.auth.api_keys.push(format!("acme:{ACME}:admin"));
    config.auth.api_keys.push(format!("globex:{GLOBEX}:admin"));
    let gw = Gateway::start(config).await;
    let (acme, globex) = (gw.with_key(ACME), gw.with_key(GLOBEX));
    // Each tenant's script is loaded and its sessions exist before Redis pauses.
    for (who, sid) in [(&acme, "a"), (&globex, "g")] {
        let (s, v) = who
            .post(
                "/api/events",
                json!({"sessionId": sid, "type": "t", "i": 0}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let mut conn = redis.connection().await.unwrap();
    let before = evalsha_calls(&mut conn).await;
    // Writes wait for 1.5 s: the first calls block in Redis, and every request sent meanwhile
    // queues behind them.
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1500)
        .arg("WRITE")
        .query_async(&mut conn)
        .await
        .unwrap();
    const EACH: usize = 15;
    let posts = (1..=EACH).flat_map(|i| {
        [(&acme, "a"), (&globex, "g")].map(|(who, sid)| async move {
            let (s, v) = who
                .post(
                    "/api/events",
                    json!({"sessionId": sid, "type": "t", "i": i}),
                )
                .await;
            assert_eq!(s, 201, "{sid} {i}: {v}");
        })
    });
    join_all(posts).await;
    let calls = evalsha_calls(&mut conn).await - before;
    assert!(
        calls < 2 * EACH as u64 / 2,
        "{} requests queued behind a paused Redis took {calls} calls",
        2 * EACH
    );
    for (who, sid) in [(&acme, "a"), (&globex, "g")] {
        let (s, v) = who.get(&format!("/api/events/{sid}?limit=100")).await;
        assert_eq!(s, 200);
        let events = v["events"].as_array().unwrap();
        let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert_eq!(
            seqs,
            (1..=EACH as u64 + 1).collect::<Vec<_>>(),
            "{sid}: {v}"
        );
        let mut seen: Vec<u64> = events.iter().map(|e| e["i"].as_u64().unwrap()).collect();
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..=EACH as u64).collect::<Vec<_>>(),
            "{sid}: each once"
        );
    }
    // Each tenant's session only in its own key space.
    let keys = redis.keys().await;
    for (tenant, sid, other) in [("acme", "a", "g"), ("globex", "g", "a")] {
        assert!(
            keys.contains(&format!("afw:t:{tenant}:events:{{{sid}}}")),
            "{keys:?}"
        );
        assert!(
            !keys.contains(&format!("afw:t:{tenant}:events:{{{other}}}")),
            "{keys:?}"
        );
    }
    gw.stop().await;
}
