//! Redis Cluster: three gateways on a six-node cluster (three masters, three replicas), 300
//! sessions spread over every master, two resuming clients per session over all gateways.
//! While agents keep posting, a slot holding watched sessions migrates to another master, a
//! replica takes over by `CLUSTER FAILOVER`, and a master is killed with SIGKILL. Every
//! acknowledged event is stored once and delivered exactly once, in order, to every client,
//! and every partition's sharded channel is subscribed again on the node that now holds it.

#[path = "support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use afw_gateway::Config;
use serde_json::json;
use support::{node_query, Crowd, Follow, Gateway, RedisCluster, WsClient};

const SESSIONS: usize = 300;
const CLIENTS_PER_SESSION: usize = 2;
const POSTERS: usize = 6;
const EVENTS_PER_POSTER: usize = 500;
const PARTITIONS: usize = 16;

fn config(cluster: &RedisCluster) -> Config {
    let mut c = Config::default();
    c.store.cluster.redis_cluster_nodes = cluster.node_list();
    c.store.cluster.redis_pubsub_partitions = PARTITIONS;
    c
}

/// Every partition's channel, from the nodes' `PUBSUB SHARDCHANNELS`.
async fn subscribed_channels(cluster: &RedisCluster) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for p in cluster.live_ports() {
        all.extend(cluster.shard_channels(p).await);
    }
    all
}

/// Whether every channel is subscribed in the shard that now holds its slot: on its master,
/// or on a replica of it (a shard's messages reach its replicas too).
async fn each_on_its_owner(cluster: &RedisCluster, channels: &BTreeSet<String>) -> bool {
    for ch in channels {
        let slot = cluster.slot_of(ch).await;
        let owner = cluster.owner_of(slot).await;
        let mut shard = vec![owner.port];
        shard.extend(cluster.replica_of(&owner.id).await);
        let mut found = false;
        for port in shard {
            found |= cluster.shard_channels(port).await.contains(ch);
        }
        if !found {
            return false;
        }
    }
    true
}

/// The partition a session id belongs to: CRC16 of the id modulo the partitions, which is the
/// id's slot modulo them when they divide the 16384 slots.
async fn partition_of(cluster: &RedisCluster, id: &str) -> usize {
    cluster.slot_of(id).await as usize % PARTITIONS
}

/// The channel of partition `p` (its hash tag starts with `{p}-`).
fn channel_of(channels: &BTreeSet<String>, p: usize) -> String {
    channels
        .iter()
        .find(|c| c.contains(&format!("{{{p}-")))
        .expect("every partition has a channel")
        .clone()
}

/// A client subscribed to `session` from after `since`, asking again while the store does
/// not answer.
async fn subscribed(gw: &Gateway, session: &str, since: u64) -> WsClient {
    let started = Instant::now();
    loop {
        let mut c = WsClient::connect(&gw.ws_url()).await;
        c.send(json!({"type": "subscribe", "sessionId": session, "since": since}))
            .await;
        let confirm = c.recv().await;
        if confirm["type"] == "subscription_confirmed" {
            return c;
        }
        assert_eq!(confirm["code"], "store_unavailable", "{confirm}");
        assert!(started.elapsed() < Duration::from_secs(30), "{confirm}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_survive_a_migration_a_failover_and_a_killed_master_exactly_once() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("TEST_LOG").unwrap_or("warn".into()))
        .try_init();
    let mut cluster = RedisCluster::start(3, 1).await;
    let gws = [
        Gateway::start(config(&cluster)).await,
        Gateway::start(config(&cluster)).await,
        Gateway::start(config(&cluster)).await,
    ];
    let live = support::instances(&gws.iter().map(|g| g.addr).collect::<Vec<_>>());

    // Every partition is subscribed on the node holding its slot.
    let channels = subscribed_channels(&cluster).await;
    assert_eq!(channels.len(), PARTITIONS, "{channels:?}");
    assert!(each_on_its_owner(&cluster, &channels).await);

    let sessions: Vec<String> = (0..SESSIONS).map(|i| format!("cl-{i}")).collect();
    for (i, s) in sessions.iter().enumerate() {
        let (status, v) = gws[i % 3].post("/api/sessions", json!({"id": s})).await;
        assert_eq!(status, 201, "{v}");
    }
    // The sessions are spread over every master.
    for m in cluster.masters().await {
        let (_, keys): (u64, Vec<String>) = node_query(
            m.port,
            redis::cmd("SCAN")
                .arg(0)
                .arg("MATCH")
                .arg("afw:sessions:*")
                .arg("COUNT")
                .arg(100_000),
        )
        .await
        .unwrap();
        assert!(
            keys.len() > SESSIONS / 10,
            "master :{} holds {} sessions",
            m.port,
            keys.len()
        );
    }
    // What Redis says of itself is the whole cluster's: every master's keys summed.
    let mut total = 0;
    for m in cluster.masters().await {
        total += node_query::<u64>(m.port, &mut redis::cmd("DBSIZE"))
            .await
            .unwrap();
    }
    let (s, r) = gws[0].get("/api/health/redis").await;
    assert_eq!(
        (s, &r["status"], &r["mode"]),
        (200, &json!("up"), &json!("cluster")),
        "{r}"
    );
    assert_eq!(r["keys"], total, "{r}");
    assert_eq!(r["pubsub"]["channels"], 2 + PARTITIONS, "{r}");
    assert!(r["version"].is_string(), "one node's INFO: {r}");

    let mut crowd = Crowd::default();
    for (i, s) in sessions.iter().enumerate() {
        for j in 0..CLIENTS_PER_SESSION {
            crowd.add(Follow {
                session: s.clone(),
                instances: live.clone(),
                start: i + j,
                stall: None,
            });
        }
    }
    let posting = support::agents(
        &live,
        &sessions,
        POSTERS,
        EVENTS_PER_POSTER,
        "",
        Duration::from_millis(25),
    );

    // 1. A slot holding watched sessions migrates to another master.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let moved = channel_of(&channels, 0);
    let slot = cluster.slot_of(&moved).await;
    let from = cluster.owner_of(slot).await;
    let masters = cluster.masters().await;
    let to = masters.iter().find(|m| m.id != from.id).unwrap().clone();
    cluster.migrate_slot(slot, &to).await;
    println!(
        "cluster: slot {slot} ({moved}) moved :{} -> :{}",
        from.port, to.port
    );

    // 2. A replica takes over from another master by CLUSTER FAILOVER.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let masters = cluster.masters().await;
    let handed = masters.iter().find(|m| m.id != to.id).unwrap().clone();
    let promoted = cluster.manual_failover(&handed).await;
    println!("cluster: :{} handed over to :{promoted}", handed.port);

    // 3. A master is killed; its replica is promoted by the cluster itself.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let masters = cluster.masters().await;
    let victim = masters.iter().find(|m| m.port != promoted).unwrap().clone();
    // A session of one of the victim's partitions, watched on its own, to time the recovery.
    let mut probe = None;
    for k in 0.. {
        let id = format!("probe-{k}");
        let ch = channel_of(&channels, partition_of(&cluster, &id).await);
        if cluster.owner_of(cluster.slot_of(&ch).await).await.id == victim.id {
            probe = Some(id);
            break;
        }
    }
    let probe = probe.unwrap();
    cluster.kill9(victim.port);
    let killed = Instant::now();
    // Its replica is promoted; then the killed process is started again, as a supervisor
    // would, and rejoins as the new master's replica: until then the new master has no
    // replica, and a post there waits for one in vain (REDIS_WAIT_REPLICAS=1) and gets 503.
    cluster
        .wait(Duration::from_secs(30), "a replica promoted", || async {
            cluster.masters().await.len() == 3
                && cluster
                    .masters()
                    .await
                    .iter()
                    .all(|m| m.port != victim.port)
        })
        .await;
    let promoted_after = killed.elapsed();
    cluster.restart(victim.port).await;
    let mut n = 0;
    let posted = loop {
        n += 1;
        let event = json!({"sessionId": probe, "type": "t", "eventId": format!("probe-{n}")});
        let (s, v) = gws[1].post("/api/events", event).await;
        if s == 201 {
            break v["seq"].as_u64().unwrap();
        }
        assert_eq!(s, 503, "{v}");
        // A liveness bound, not a timing: on two loaded cores the cluster can report itself
        // down for a while after the restarted node rejoins (seen once at 30 s in a full run).
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "never writable again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The event comes to a client that asks for what followed the one before it.
    let mut watcher = subscribed(&gws[0], &probe, posted - 1).await;
    loop {
        let m = watcher.recv().await;
        if m["type"] == "event" && m["seq"].as_u64() == Some(posted) {
            break;
        }
    }
    println!(
        "cluster: master :{} killed with SIGKILL; a replica promoted after {} ms; the killed \
         node restarted, and a post to its partition delivered {} ms after the kill",
        victim.port,
        promoted_after.as_millis(),
        killed.elapsed().as_millis()
    );

    let mut acked: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut failures: BTreeMap<u16, u32> = BTreeMap::new();
    for p in posting {
        let (list, f) = p.await.unwrap();
        for (s, id) in list {
            acked.entry(s).or_default().push(id);
        }
        for (k, v) in f {
            *failures.entry(k).or_default() += v;
        }
    }
    println!("cluster: failed posts by status: {failures:?}");
    cluster.wait_ok().await;

    // Every partition subscribed again, each on the node that holds its slot now.
    cluster
        .wait(
            Duration::from_secs(30),
            "every partition resubscribed",
            || async {
                subscribed_channels(&cluster).await == channels
                    && each_on_its_owner(&cluster, &channels).await
            },
        )
        .await;

    let (verdict, tallies) = crowd.finish(&gws[0].endpoint()).await;
    let mut stored = 0;
    for s in &sessions {
        stored += support::assert_stored_exactly(&gws[2].endpoint(), s, &acked[s]).await;
    }
    assert_eq!(stored, POSTERS * EVENTS_PER_POSTER);
    let expected = (POSTERS * EVENTS_PER_POSTER * CLIENTS_PER_SESSION) as u64;
    println!(
        "cluster: delivered {}, lost {}, duplicated {}, reordered {} ({} clients)",
        verdict.delivered,
        verdict.lost,
        verdict.duplicated,
        verdict.reordered,
        tallies.len()
    );
    assert_eq!(verdict.lost, 0);
    assert_eq!(verdict.duplicated, 0);
    assert_eq!(verdict.reordered, 0);
    assert_eq!(verdict.delivered, expected);
    for g in gws {
        g.stop().await;
    }
}

/// `deploy/redis-cluster.sh` starts the same cluster by hand: a gateway given the settings it
/// prints serves, and `down` stops every process it started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deploy_script_starts_a_cluster_a_gateway_uses() {
    let dir = tempfile::tempdir().unwrap();
    // Six ports in a row, their cluster bus ports (10000 above) free too.
    let free_run = || loop {
        let p = support::free_port();
        let free = |q: u16| std::net::TcpListener::bind(("127.0.0.1", q)).is_ok();
        if p < 55_000 && (0..6).all(|i| free(p + i) && free(p + i + 10_000)) {
            break p;
        }
    };
    let base = std::cell::Cell::new(free_run());
    let script = |cmd: &str| {
        std::process::Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/redis-cluster.sh"
        ))
        .arg(cmd)
        .env("CLUSTER_DIR", dir.path())
        .env("TMPDIR", dir.path())
        .env("CLUSTER_BASE_PORT", base.get().to_string())
        .output()
        .expect("run deploy/redis-cluster.sh")
    };
    // `down` whatever happens, so a failing test leaves no process behind.
    struct Down<F: Fn(&str) -> std::process::Output>(F);
    impl<F: Fn(&str) -> std::process::Output> Drop for Down<F> {
        fn drop(&mut self) {
            let _ = (self.0)("down");
        }
    }
    let _down = Down(script);
    let script = |cmd: &str| (_down.0)(cmd);
    // A port found free may be taken before its redis-server binds it (the other test here
    // starts servers and clients meanwhile): then `down`, and `up` again on other ports.
    let mut up = script("up");
    for _ in 0..2 {
        if up.status.success() {
            break;
        }
        eprintln!(
            "up on {} failed, trying other ports: {}",
            base.get(),
            String::from_utf8_lossy(&up.stderr)
        );
        let _ = script("down");
        base.set(free_run());
        up = script("up");
    }
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let printed = String::from_utf8_lossy(&up.stdout).to_string();
    let mut c = Config::default();
    for pair in printed.split_whitespace() {
        if let Some(("REDIS_CLUSTER_NODES", v)) = pair.split_once('=') {
            c.store.cluster.redis_cluster_nodes = v.split(',').map(String::from).collect();
        }
    }
    assert_eq!(c.store.cluster.redis_cluster_nodes.len(), 6, "{printed}");
    let gw = Gateway::start(c).await;
    let mut ws = WsClient::connect(&gw.ws_url()).await;
    ws.subscribe("by-hand", None, None).await;
    for i in 1..=20 {
        let (s, v) = gw
            .post("/api/events", json!({"sessionId": "by-hand", "type": "t"}))
            .await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(ws.next_event().await["seq"], i);
    }
    gw.stop().await;
    let status = String::from_utf8_lossy(&script("status").stdout).to_string();
    assert_eq!(status.matches(" up").count(), 6, "{status}");
    assert_eq!(status.matches(" master ").count(), 3, "{status}");
    let pids: Vec<u32> = status
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
        .collect();
    assert_eq!(pids.len(), 6, "{status}");
    assert!(script("down").status.success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .is_ok_and(|s| s.contains("State:\tZ")),
            "pid {pid} outlived `down`"
        );
    }
}
