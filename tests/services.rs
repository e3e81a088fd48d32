//! The seeds' services across instances: three gateways on one real Redis, with many
//! clients at once. Each test names the defect of the original it proves absent.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::json;
use support::{Endpoint, Gateway, RedisServer};

async fn three_instances() -> (RedisServer, Vec<Gateway>) {
    let redis = RedisServer::start().await;
    let mut gws = Vec::new();
    for _ in 0..3 {
        gws.push(Gateway::start(support::config(Some(&redis))).await);
    }
    (redis, gws)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Who holds the lock as the test saw it: worker, fencing token, expiry, and whether the
/// holder was killed (it never releases).
type Seen = Option<(usize, u64, i64, bool)>;

/// 20 workers on three instances contend for one lock for 10 s. At no instant do two hold it,
/// each grant's fencing token is above every earlier one, and a holder killed mid-hold loses
/// the lock at its TTL (the original released with a plain DEL and had no fencing).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_workers_on_three_instances_never_hold_one_lock_together() {
    let (_redis, gws) = three_instances().await;
    let endpoints: Vec<Endpoint> = gws.iter().map(|g| g.endpoint()).collect();
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let last_fence = Arc::new(AtomicU64::new(0));
    let grants = Arc::new(AtomicU64::new(0));
    let killed_lost_at_ttl = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(10);
    let kill_at = Instant::now() + Duration::from_secs(4);
    let mut workers = Vec::new();
    for w in 0..20usize {
        let gw = endpoints[w % 3].clone();
        let (seen, last_fence, grants, lost) = (
            seen.clone(),
            last_fence.clone(),
            grants.clone(),
            killed_lost_at_ttl.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut killed_once = false;
            while Instant::now() < end {
                let (s, g) = gw
                    .post(
                        "/api/locks/shared",
                        json!({"owner": format!("w{w}"), "ttlMs": 1500, "waitMs": 2000}),
                    )
                    .await;
                if s == 409 {
                    continue;
                }
                assert_eq!(s, 200, "{g}");
                let fence = g["fencingToken"].as_u64().unwrap();
                let expires = g["expiresAtMs"].as_i64().unwrap();
                // Worker 0 is killed while holding once: it never releases.
                let kill = w == 0 && !killed_once && Instant::now() >= kill_at;
                {
                    let mut cur = seen.lock();
                    if let Some((other, _, until, was_killed)) = *cur {
                        assert!(
                            was_killed && now_ms() >= until,
                            "worker {w} was granted the lock while worker {other} held it"
                        );
                        lost.fetch_add(1, Ordering::SeqCst);
                    }
                    let before = last_fence.swap(fence, Ordering::SeqCst);
                    assert!(fence > before, "fencing token {fence} after {before}");
                    *cur = Some((w, fence, expires, kill));
                }
                grants.fetch_add(1, Ordering::SeqCst);
                if kill {
                    killed_once = true;
                    continue;
                }
                tokio::time::sleep(Duration::from_millis(fence % 7)).await;
                *seen.lock() = None;
                let token = g["token"].as_str().unwrap();
                let (s, r) = gw.delete(&format!("/api/locks/shared?token={token}")).await;
                assert_eq!(s, 200, "the holder releases: {r}");
            }
        }));
    }
    for w in workers {
        w.await.expect("worker");
    }
    let n = grants.load(Ordering::SeqCst);
    assert!(n >= 50, "the lock changed hands {n} times");
    assert_eq!(
        killed_lost_at_ttl.load(Ordering::SeqCst),
        1,
        "the killed holder's lock was taken over once, after its TTL"
    );
}
