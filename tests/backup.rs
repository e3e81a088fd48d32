//! `afw-gateway backup` and `restore` on real Redis servers: a round trip of every key type
//! with its TTL; a backup taken while four posters write restores sessions whose `_seq` is
//! their last event's; a restore over existing keys changes nothing without `--replace`;
//! `--prefix` moves the keys; a Cluster is backed up primary by primary and restored through
//! its client into another; the embedded store is refused with a reason.

mod support;

use std::process::Output;

use redis::aio::MultiplexedConnection;
use serde_json::{json, Value};
use support::{copy_of, scan, Gateway, RedisCluster, RedisServer};

fn afw(args: &[&str], redis_url: Option<&str>) -> Output {
    let url = redis_url.map(|u| ("REDIS_URL", u));
    support::afw_command(env!("CARGO_BIN_EXE_afw-gateway"), args, url.as_slice())
}

fn ok(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    err
}

/// Sessions, events (with dedup markers), commands, input, chains, jobs, locks, cache and a
/// set of our own: every type of key the gateway writes, and a set.
async fn fill(gw: &Gateway, c: &mut MultiplexedConnection) {
    for i in 0..20 {
        let sid = format!("bk-{i}");
        gw.post("/api/sessions", json!({"id": sid})).await;
        for n in 0..5 {
            gw.post_event(json!({"sessionId": sid, "type": "step:started", "stepNumber": n + 1, "eventId": format!("e-{i}-{n}")}))
                .await;
        }
    }
    gw.post("/api/sessions/bk-0/commands", json!({"command": "pause"}))
        .await;
    gw.post("/api/sessions/bk-0/input", json!({"input": "yes"}))
        .await;
    gw.post(
        "/api/queues/q1/jobs",
        json!({"type": "build", "data": {"n": 1}}),
    )
    .await;
    gw.post("/api/locks/l1", json!({"owner": "w1", "ttlMs": 60000}))
        .await;
    let put = gw
        .http
        .put(gw.url("/api/cache/k1"))
        .json(&json!({"value": {"a": 1}, "ttlSeconds": 600, "tags": ["t1"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 200);
    let _: () = redis::cmd("SADD")
        .arg("afw:test:set")
        .arg("a")
        .arg("b")
        .query_async(c)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restores_every_key_with_its_ttl_and_leaves_existing_keys_alone() {
    let from = RedisServer::start().await;
    let to = RedisServer::start().await;
    let gw = Gateway::start(support::config(Some(&from))).await;
    let mut a = from.connection().await.unwrap();
    let mut b = to.connection().await.unwrap();
    fill(&gw, &mut a).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("afw.jsonl");
    let file = file.to_str().unwrap();
    let said = ok(&afw(&["backup", "--out", file], Some(&from.url())));
    assert!(said.contains("backed up"), "{said}");
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["afwBackup"], 1);
    assert!(lines.last().unwrap()["endedAt"].is_string());

    let said = ok(&afw(&["restore", "--in", file], Some(&to.url())));
    assert!(said.contains("restored"), "{said}");
    let keys = scan(&mut a, "afw:*").await;
    assert_eq!(keys, scan(&mut b, "afw:*").await);
    let mut types = std::collections::BTreeSet::new();
    for k in &keys {
        let (ta, da, pa) = copy_of(&mut a, k).await;
        let (tb, db, pb) = copy_of(&mut b, k).await;
        assert_eq!((&ta, &da), (&tb, &db), "{k}");
        assert_eq!(pa < 0, pb < 0, "{k}: {pa} {pb}");
        assert!((pa - pb).abs() <= 1000, "{k}: ttl {pa} against {pb}");
        types.insert(ta);
    }
    for t in ["hash", "list", "zset", "string", "set"] {
        assert!(types.contains(t), "no {t} among {types:?}");
    }

    // Over existing keys: nothing changes without --replace, the backup's state with it.
    gw.post_event(json!({"sessionId": "bk-1", "type": "late"}))
        .await;
    let after = copy_of(&mut a, "afw:events:{bk-1}").await;
    let said = ok(&afw(&["restore", "--in", file], Some(&from.url())));
    assert!(
        said.contains("restored 0 keys") && said.contains("--replace"),
        "{said}"
    );
    assert_eq!(copy_of(&mut a, "afw:events:{bk-1}").await.1, after.1);
    ok(&afw(
        &["restore", "--in", file, "--replace"],
        Some(&from.url()),
    ));
    let (_, events, _) = copy_of(&mut a, "afw:events:{bk-1}").await;
    assert_ne!(events, after.1, "--replace put the backup's list back");
    let (s, page) = gw.get("/api/events/bk-1").await;
    assert_eq!(s, 200);
    assert!(!page.to_string().contains("late"), "{page}");

    // Under another prefix.
    ok(&afw(
        &["restore", "--in", file, "--prefix", "copy:"],
        Some(&to.url()),
    ));
    assert_eq!(scan(&mut b, "copy:*").await.len(), keys.len());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_posters_write_restores_consistent_sessions() {
    let from = RedisServer::start().await;
    let to = RedisServer::start().await;
    let gw = Gateway::start(support::config(Some(&from))).await;
    for i in 0..200 {
        gw.post("/api/sessions", json!({"id": format!("w-{i}")}))
            .await;
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut posters = Vec::new();
    for p in 0..4 {
        let (ep, stop) = (gw.endpoint(), stop.clone());
        posters.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let sid = format!("w-{}", (n * 4 + p) % 200);
                ep.post("/api/events", json!({"sessionId": sid, "type": "t"}))
                    .await;
                n += 1;
            }
            n
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("afw.jsonl");
    let file = file.to_str().unwrap().to_string();
    let url = from.url();
    let out = tokio::task::spawn_blocking(move || afw(&["backup", "--out", &file], Some(&url)))
        .await
        .unwrap();
    ok(&out);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut posted = 0;
    for p in posters {
        posted += p.await.unwrap();
    }
    assert!(
        posted > 100,
        "the posters wrote during the backup: {posted}"
    );
    let file = dir.path().join("afw.jsonl");
    ok(&afw(
        &["restore", "--in", file.to_str().unwrap()],
        Some(&to.url()),
    ));
    let mut b = to.connection().await.unwrap();
    let sessions = scan(&mut b, "afw:sessions:*").await;
    assert_eq!(sessions.len(), 200);
    for key in sessions {
        let seq: Option<u64> = redis::cmd("HGET")
            .arg(&key)
            .arg("_seq")
            .query_async(&mut b)
            .await
            .unwrap();
        let list = key.replace(":sessions:", ":events:");
        let last: Option<String> = redis::cmd("LINDEX")
            .arg(&list)
            .arg(-1)
            .query_async(&mut b)
            .await
            .unwrap();
        let last_seq = last.map(|e| {
            serde_json::from_str::<Value>(&e).unwrap()["seq"]
                .as_u64()
                .unwrap()
        });
        assert_eq!(seq.unwrap_or(0), last_seq.unwrap_or(0), "{key}");
    }
    gw.stop().await;
}

fn on_cluster(c: &RedisCluster) -> afw_gateway::Config {
    let mut config = support::config(None);
    config.store.cluster.redis_cluster_nodes = c.node_list();
    config.store.cluster.redis_pubsub_partitions = 6;
    config.store.sentinel.redis_wait_replicas = 0;
    config
}

/// Every key of a Cluster under `afw:` (each master's), sorted.
async fn cluster_keys(c: &RedisCluster) -> Vec<String> {
    let mut all = Vec::new();
    for m in c.masters().await {
        let keys: Vec<String> = c
            .query(m.port, redis::cmd("KEYS").arg("afw:*"))
            .await
            .unwrap();
        all.extend(keys);
    }
    all.sort();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_is_backed_up_primary_by_primary_and_restored_into_another() {
    let from = RedisCluster::start(3, 0).await;
    let to = RedisCluster::start(3, 0).await;
    let gw = Gateway::start(on_cluster(&from)).await;
    for i in 0..12 {
        for n in 0..3 {
            // eventIds of their own, so their dedup markers are backed up too.
            gw.post_event(json!({"sessionId": format!("cl-{i}"), "type": "t", "n": n,
                "eventId": format!("e-{i}-{n}")}))
                .await;
        }
    }
    gw.post("/api/queues/q1/jobs", json!({"type": "build"}))
        .await;
    gw.post("/api/locks/l1", json!({"owner": "w1", "ttlMs": 60000}))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.jsonl");
    let file = file.to_str().unwrap();
    let nodes = |c: &RedisCluster| c.node_list().join(",");
    let cli = |args: &[&str], c: &RedisCluster| {
        let env = [("REDIS_CLUSTER_NODES", nodes(c))];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        support::afw_command(env!("CARGO_BIN_EXE_afw-gateway"), args, &env)
    };
    let said = ok(&cli(&["backup", "--out", file], &from));
    let keys = cluster_keys(&from).await;
    assert!(keys.len() > 36, "{keys:?}");
    assert!(
        said.contains(&format!("backed up {} keys", keys.len())),
        "{said}"
    );
    let said = ok(&cli(&["restore", "--in", file], &to));
    assert!(
        said.contains(&format!("restored {} keys", keys.len())),
        "{said}"
    );
    assert_eq!(
        cluster_keys(&to).await,
        keys,
        "every key, on the primary of its slot"
    );

    // A gateway on the restored Cluster reads what the first had.
    let again = Gateway::start(on_cluster(&to)).await;
    for i in 0..12 {
        let path = format!("/api/events/cl-{i}");
        let (a, b) = (gw.get(&path).await, again.get(&path).await);
        assert_eq!(a, b, "{path}");
        assert_eq!(b.1["events"].as_array().unwrap().len(), 3);
    }
    let (_, listed) = again.get("/api/sessions?limit=100").await;
    assert_eq!(listed["count"], 12, "{listed}");
    let (_, lock) = again.get("/api/locks/l1").await;
    assert_eq!(lock["held"], true, "{lock}");
    let (_, q) = again.get("/api/queues/q1/stats").await;
    assert_eq!(q["waiting"], 1, "{q}");
    again.stop().await;
    gw.stop().await;
}

#[test]
fn the_embedded_store_has_nothing_to_back_up() {
    let out = afw(&["backup", "--out", "/dev/null"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("embedded store") && err.contains("REDIS_URL"),
        "{err}"
    );
    let out = afw(
        &["restore", "--in", "/nonexistent"],
        Some("redis://127.0.0.1:1"),
    );
    assert!(!out.status.success());
}
