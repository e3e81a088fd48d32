//! Redis under Sentinel: two gateways follow the primary the sentinels name. The primary is
//! killed with SIGKILL while agents post; once the sentinels promote a replica the gateways
//! write there by themselves, no event answered 2xx is lost (each waits for a replica,
//! `REDIS_WAIT_REPLICAS`), and every subscriber ends with every acknowledged event once, in
//! order. Real processes: three data nodes and three sentinels, two gateways.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use afw_gateway::Config;
use serde_json::json;
use support::{Crowd, Follow, Gateway, SentinelSet, MASTER};

const SESSIONS: usize = 4;
const CLIENTS_PER_SESSION: usize = 3;
const POSTERS: usize = 3;
const EVENTS_PER_POSTER: usize = 150;

fn config(set: &SentinelSet) -> Config {
    let mut c = Config::default();
    c.store.sentinel.redis_sentinels = set.sentinel_list();
    c.store.sentinel.redis_sentinel_master = Some(MASTER.into());
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_killed_under_load_loses_no_acknowledged_event() {
    let mut set = SentinelSet::start().await;
    let a = Gateway::start(config(&set)).await;
    let b = Gateway::start(config(&set)).await;
    let live = support::instances(&[a.addr, b.addr]);
    let sessions: Vec<String> = (0..SESSIONS).map(|i| format!("sentinel-{i}")).collect();
    for s in &sessions {
        let (status, v) = a.post("/api/sessions", json!({"id": s})).await;
        assert_eq!(status, 201, "{v}");
    }
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
        Duration::from_millis(20),
    );

    tokio::time::sleep(Duration::from_millis(800)).await;
    let old = set.kill_primary().await;
    let killed_at = std::time::Instant::now();
    let new = set.wait_promoted(old).await;
    println!(
        "sentinel: primary :{old} killed with SIGKILL; :{new} promoted after {:?}",
        killed_at.elapsed()
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
    println!("sentinel: failed posts while the primary moved, by status: {failures:?}");
    assert!(
        failures.values().sum::<u32>() > 0,
        "the posts met the failover"
    );

    // The gateways write to the new primary by themselves.
    let (s, v) = b
        .post(
            "/api/events",
            json!({"sessionId": "after", "type": "t", "eventId": "after-1"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    let (verdict, tallies) = crowd.finish(&a.endpoint()).await;
    for s in &sessions {
        support::assert_stored_exactly(&a.endpoint(), s, &acked[s]).await;
    }
    let expected = (POSTERS * EVENTS_PER_POSTER * CLIENTS_PER_SESSION) as u64;
    println!(
        "sentinel: delivered {}, lost {}, duplicated {}, reordered {} ({} clients)",
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
    a.stop().await;
    b.stop().await;
}

/// `deploy/redis-sentinel.sh` starts the same set by hand: a gateway given the settings it
/// prints serves, and `down` stops every process it started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deploy_script_starts_a_set_a_gateway_uses() {
    let dir = tempfile::tempdir().unwrap();
    // Three ports in a row for each kind, from free ones.
    let base = |_: ()| loop {
        let p = support::free_port();
        if p < 60000 && (1..3).all(|i| std::net::TcpListener::bind(("127.0.0.1", p + i)).is_ok()) {
            return p;
        }
    };
    let (data, sentinels) = (
        std::cell::Cell::new(base(())),
        std::cell::Cell::new(base(())),
    );
    let script = |cmd: &str| {
        std::process::Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/redis-sentinel.sh"
        ))
        .arg(cmd)
        .env("SENTINEL_DIR", dir.path())
        .env("TMPDIR", dir.path())
        .env("REDIS_BASE_PORT", data.get().to_string())
        .env("SENTINEL_BASE_PORT", sentinels.get().to_string())
        .output()
        .expect("run deploy/redis-sentinel.sh")
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
    // A port found free may be taken before its server binds it (the other test here starts
    // servers and clients meanwhile): then `down`, and `up` again on other ports.
    let mut up = script("up");
    for _ in 0..2 {
        if up.status.success() {
            break;
        }
        eprintln!(
            "up on {}/{} failed, trying other ports: {}",
            data.get(),
            sentinels.get(),
            String::from_utf8_lossy(&up.stderr)
        );
        let _ = script("down");
        data.set(base(()));
        sentinels.set(base(()));
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
        match pair.split_once('=') {
            Some(("REDIS_SENTINELS", v)) => {
                c.store.sentinel.redis_sentinels = v.split(',').map(String::from).collect()
            }
            Some(("REDIS_SENTINEL_MASTER", v)) => {
                c.store.sentinel.redis_sentinel_master = Some(v.into())
            }
            _ => {}
        }
    }
    assert_eq!(c.store.sentinel.redis_sentinels.len(), 3, "{printed}");
    let gw = Gateway::start(c).await;
    let (s, v) = gw
        .post("/api/events", json!({"sessionId": "by-hand", "type": "t"}))
        .await;
    assert_eq!(s, 201, "{v}");
    gw.stop().await;
    let status = String::from_utf8_lossy(&script("status").stdout).to_string();
    assert_eq!(status.matches(" up").count(), 6, "{status}");
    let pids: Vec<u32> = status
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
        .collect();
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
