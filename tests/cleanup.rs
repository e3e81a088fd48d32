//! `afw-gateway cleanup` on a real Redis: a test makes one orphan of each kind (index members
//! of sessions and chains that are gone, in the default tenant and another, a permission
//! index entry without its request, finished jobs past their keep time, cache tag members
//! whose entry is gone or untagged, a lock whose hold lapsed) beside live data of each kind.
//! A dry run counts exactly those and changes no key; the run removes exactly those (the live
//! data reads as before, the chain counters lose the gone chain); a second run finds nothing.

mod support;

use serde_json::{json, Value};
use support::{afw_command, copy_of, scan, Gateway, RedisCluster, RedisServer};

fn cleanup(redis: &RedisServer, dry_run: bool) -> Value {
    let url = redis.url();
    let args: &[&str] = if dry_run {
        &["cleanup", "--dry-run"]
    } else {
        &["cleanup"]
    };
    let out = afw_command(
        env!("CARGO_BIN_EXE_afw-gateway"),
        args,
        &[("REDIS_URL", &url)],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let verb = if dry_run { "would remove" } else { "removed" };
    assert!(err.contains(&format!("default: {verb} ")), "{err}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every key with its content and whether it has a TTL.
async fn everything(c: &mut redis::aio::MultiplexedConnection) -> Vec<(String, String, bool)> {
    let mut all = Vec::new();
    for k in scan(c, "afw:*").await {
        let (kind, content, ttl) = copy_of(c, &k).await;
        all.push((k, format!("{kind} {content:?}"), ttl > 0));
    }
    all
}

async fn redis_do(c: &mut redis::aio::MultiplexedConnection, args: &[&str]) {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    let _: redis::Value = cmd.query_async(c).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_removes_exactly_the_orphans_and_a_dry_run_changes_nothing() {
    let redis = RedisServer::start().await;
    let gw = Gateway::start(support::config(Some(&redis))).await;
    let mut c = redis.connection().await.unwrap();

    // Sessions: one live, two whose HASH went (as an expiry takes it), one in another tenant.
    for sid in ["live", "gone-1", "gone-2"] {
        gw.post_event(json!({"sessionId": sid, "type": "step:started"}))
            .await;
    }
    redis_do(
        &mut c,
        &["DEL", "afw:sessions:{gone-1}", "afw:sessions:{gone-2}"],
    )
    .await;
    redis_do(
        &mut c,
        &[
            "ZADD",
            "afw:t:acme:index:sessions",
            "0",
            "0000000000001:ghost",
        ],
    )
    .await;

    // Chains: one live, one whose HASH went.
    let mut chain_ids = Vec::new();
    for title in ["kept", "expired"] {
        let (s, chain) = gw
            .post("/api/sessions/live/chains", json!({"title": title}))
            .await;
        assert_eq!(s, 201, "{chain}");
        chain_ids.push(chain["id"].as_str().unwrap().to_string());
    }
    redis_do(
        &mut c,
        &["DEL", &format!("afw:chain:{{live}}:{}", chain_ids[1])],
    )
    .await;

    // A permission request's index entries without the request.
    for index in ["afw:index:permissions", "afw:index:permissions:pending"] {
        redis_do(&mut c, &["ZADD", index, "99999999999999", "p-ghost"]).await;
    }

    // Jobs: three completed, two of them finished long before the keep time.
    for n in 0..3 {
        let (s, _) = gw
            .post(
                "/api/queues/q1/jobs",
                json!({"jobId": format!("j{n}"), "type": "t"}),
            )
            .await;
        assert_eq!(s, 201);
        let (_, claimed) = gw
            .post("/api/queues/q1/claim", json!({"workerId": "w"}))
            .await;
        let token = claimed["jobs"][0]["lease"]["token"].as_str().unwrap();
        let (s, done) = gw
            .post(
                &format!("/api/queues/q1/jobs/j{n}/complete"),
                json!({"token": token}),
            )
            .await;
        assert_eq!(s, 200, "{done}");
    }
    for id in ["j0", "j1"] {
        redis_do(&mut c, &["ZADD", "afw:jobs:{q1}:completed", "1000", id]).await;
    }

    // Cache: `k1` keeps tag t1; `k2` (t1) is deleted; `k3` is written again without t2.
    for (key, tags) in [
        ("k1", json!(["t1"])),
        ("k2", json!(["t1"])),
        ("k3", json!(["t2"])),
    ] {
        let (s, v) = gw
            .request(
                reqwest::Method::PUT,
                &format!("/api/cache/{key}"),
                Some(json!({"value": 1, "ttlSeconds": 600, "tags": tags})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    gw.delete("/api/cache/k2").await;
    gw.request(
        reqwest::Method::PUT,
        "/api/cache/k3",
        Some(json!({"value": 2, "ttlSeconds": 600})),
    )
    .await;

    // Locks: one held, one whose hold lapsed.
    for name in ["held", "lapsed"] {
        let (s, _) = gw
            .post(
                &format!("/api/locks/{name}"),
                json!({"owner": "o", "ttlMs": 600000}),
            )
            .await;
        assert_eq!(s, 200);
    }
    redis_do(&mut c, &["HSET", "afw:lock:{lapsed}", "exp", "1"]).await;

    let (_, stats_before) = gw.get("/api/chains/stats").await;
    let before = everything(&mut c).await;
    let dry = cleanup(&redis, true);
    assert_eq!(everything(&mut c).await, before, "a dry run changed a key");
    let expected = json!({
        "sessionIndex": 2, "chainIndex": 1, "permissionIndex": 1,
        "finishedJobs": 2, "tagMembers": 2,
    });
    let default = &dry["tenants"][0];
    assert_eq!(default[0], "default");
    for (kind, n) in expected.as_object().unwrap() {
        assert_eq!(&default[1][kind], n, "{kind}: {dry}");
    }
    assert_eq!(default[1]["lapsedLocks"], 1, "{dry}");
    assert_eq!(dry["tenants"][1][0], "acme", "{dry}");
    assert_eq!(dry["tenants"][1][1]["sessionIndex"], 1, "{dry}");
    assert_eq!(dry["total"]["sessionIndex"], 3, "{dry}");
    assert_eq!(dry["dryRun"], true);

    let done = cleanup(&redis, false);
    assert_eq!(
        done["total"], dry["total"],
        "the run removed what the dry run counted"
    );
    assert_eq!(done["dryRun"], false);
    let again = cleanup(&redis, false);
    for kind in expected.as_object().unwrap().keys() {
        assert_eq!(again["total"][kind], 0, "{kind} left: {again}");
    }
    assert_eq!(again["total"]["lapsedLocks"], 1, "locks are kept");

    // What is live reads as before.
    let (_, listed) = gw.get("/api/sessions").await;
    let ids: Vec<&str> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["live"], "{listed}");
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg("afw:index:sessions")
        .arg(0)
        .arg(-1)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(members.len(), 1, "{members:?}");
    let (_, stats) = gw.get("/api/chains/stats").await;
    assert_eq!(stats["total"], stats_before["total"].as_u64().unwrap() - 1);
    let (s, _) = gw.get(&format!("/api/chains/{}", chain_ids[0])).await;
    assert_eq!(s, 200);
    let (_, q) = gw.get("/api/queues/q1/stats").await;
    assert_eq!(q["completed"], 1, "{q}");
    let (s, _) = gw.get("/api/queues/q1/jobs/j2").await;
    assert_eq!(s, 200);
    let tag: Vec<String> = redis::cmd("ZRANGE")
        .arg("afw:cache:{default}:tag:t1")
        .arg(0)
        .arg(-1)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(tag, ["k1"]);
    let (_, held) = gw.get("/api/locks/held").await;
    assert_eq!(held["held"], true, "{held}");
    for index in ["afw:index:permissions", "afw:index:permissions:pending"] {
        let n: i64 = redis::cmd("ZCARD")
            .arg(index)
            .query_async(&mut c)
            .await
            .unwrap();
        assert_eq!(n, 0, "{index}");
    }
    gw.stop().await;
}

#[test]
fn cleanup_says_why_it_cannot_clean_the_embedded_store() {
    let out = afw_command(env!("CARGO_BIN_EXE_afw-gateway"), &["cleanup"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("embedded store") && err.contains("REDIS_URL"),
        "{err}"
    );
}

/// Runs `cmd` on the primary of `key`'s slot.
async fn on_owner(c: &RedisCluster, key: &str, cmd: &mut redis::Cmd) -> redis::Value {
    let owner = c.owner_of(c.slot_of(key).await).await;
    c.query(owner.port, cmd).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_cleanup_scans_every_primary() {
    let cluster = RedisCluster::start(3, 0).await;
    let mut config = support::config(None);
    config.store.cluster.redis_cluster_nodes = cluster.node_list();
    config.store.cluster.redis_pubsub_partitions = 6;
    config.store.sentinel.redis_wait_replicas = 0;
    let gw = Gateway::start(config).await;
    for sid in ["live", "gone"] {
        gw.post_event(json!({"sessionId": sid, "type": "t"})).await;
    }
    let mut gone = Vec::new();
    for m in cluster.masters().await {
        let keys: Vec<String> = cluster
            .query(m.port, redis::cmd("KEYS").arg("afw:sessions:*{gone}"))
            .await
            .unwrap();
        gone.extend(keys);
    }
    assert_eq!(gone.len(), 1, "{gone:?}");
    on_owner(&cluster, &gone[0], redis::cmd("DEL").arg(&gone[0])).await;
    for (n, name) in ["a", "b", "c"].iter().enumerate() {
        gw.post(
            &format!("/api/queues/q-{name}/jobs"),
            json!({"type": "t", "jobId": format!("j{n}")}),
        )
        .await;
        let (_, claimed) = gw
            .post(
                &format!("/api/queues/q-{name}/claim"),
                json!({"workerId": "w"}),
            )
            .await;
        let token = claimed["jobs"][0]["lease"]["token"]
            .as_str()
            .unwrap()
            .to_string();
        gw.post(
            &format!("/api/queues/q-{name}/jobs/j{n}/complete"),
            json!({"token": token}),
        )
        .await;
        let key = format!("afw:jobs:{{q-{name}}}:completed");
        on_owner(
            &cluster,
            &key,
            redis::cmd("ZADD").arg(&key).arg(1000).arg(format!("j{n}")),
        )
        .await;
    }
    for name in ["l1", "l2", "l3"] {
        gw.post(
            &format!("/api/locks/{name}"),
            json!({"owner": "o", "ttlMs": 600000}),
        )
        .await;
        let key = format!("afw:lock:{{{name}}}");
        on_owner(
            &cluster,
            &key,
            redis::cmd("HSET").arg(&key).arg("exp").arg(1),
        )
        .await;
    }
    let nodes = cluster.node_list().join(",");
    let run = |args: &[&str]| {
        let out = afw_command(
            env!("CARGO_BIN_EXE_afw-gateway"),
            args,
            &[
                ("REDIS_CLUSTER_NODES", &nodes),
                ("REDIS_PUBSUB_PARTITIONS", "6"),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let dry = run(&["cleanup", "--dry-run"]);
    let want = json!({"sessionIndex": 1, "chainIndex": 0, "permissionIndex": 0,
        "finishedJobs": 3, "tagMembers": 0, "lapsedLocks": 3});
    assert_eq!(
        dry["total"], want,
        "queues and locks of every primary: {dry}"
    );
    assert_eq!(run(&["cleanup"])["total"], want);
    let after = run(&["cleanup", "--dry-run"]);
    assert_eq!(after["total"]["sessionIndex"], 0, "{after}");
    assert_eq!(after["total"]["finishedJobs"], 0, "{after}");
    let (_, listed) = gw.get("/api/sessions").await;
    assert_eq!(listed["count"], 1, "{listed}");
    gw.stop().await;
}
