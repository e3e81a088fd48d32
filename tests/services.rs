//! The services beside the stream across instances: three gateways on one real Redis, with many
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

/// 10,000 jobs enqueued through three instances and claimed by 16 workers on them, two of
/// which die holding their jobs: every job is completed exactly once (the original's
/// ZRANGE-then-ZREM gave one job to two workers, and nothing put a dead worker's job back).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_jobs_on_three_instances_complete_exactly_once() {
    const JOBS: usize = 10_000;
    let (_redis, gws) = three_instances().await;
    let endpoints: Vec<Endpoint> = gws.iter().map(|g| g.endpoint()).collect();
    let mut producers = Vec::new();
    for p in 0..8usize {
        let gw = endpoints[p % 3].clone();
        producers.push(tokio::spawn(async move {
            for i in (p..JOBS).step_by(8) {
                let (s, v) = gw
                    .post("/api/queues/work/jobs", json!({"type": "n", "data": {"i": i}, "jobId": format!("j{i}"), "priority": i % 3}))
                    .await;
                assert_eq!(s, 201, "{v}");
            }
        }));
    }
    let completed: Arc<Mutex<std::collections::HashMap<String, usize>>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..16usize {
        let gw = endpoints[w % 3].clone();
        let completed = completed.clone();
        workers.push(tokio::spawn(async move {
            let mut idle = 0;
            loop {
                // Workers 0 and 1 die holding their first claim: a short lease, never settled.
                let dies = w < 2;
                let lease = if dies { 300 } else { 30_000 };
                let (s, v) = gw
                    .post("/api/queues/work/claim", json!({"workerId": format!("w{w}"), "max": 25, "leaseMs": lease, "wait": 1}))
                    .await;
                assert_eq!(s, 200, "{v}");
                let jobs = v["jobs"].as_array().unwrap().clone();
                if dies && !jobs.is_empty() {
                    return;
                }
                if jobs.is_empty() {
                    idle += 1;
                    if idle >= 4 && completed.lock().len() == JOBS {
                        return;
                    }
                    continue;
                }
                idle = 0;
                for j in jobs {
                    let id = j["id"].as_str().unwrap().to_string();
                    let path = format!("/api/queues/work/jobs/{id}/complete");
                    let (s, r) = gw.post(&path, json!({"token": j["lease"]["token"], "result": j["data"]["i"]})).await;
                    assert_eq!(s, 200, "{r}");
                    *completed.lock().entry(id).or_default() += 1;
                }
            }
        }));
    }
    for p in producers {
        p.await.expect("producer");
    }
    for w in workers {
        w.await.expect("worker");
    }
    let done = std::mem::take(&mut *completed.lock());
    assert_eq!(done.len(), JOBS, "every job completed");
    assert!(done.values().all(|&n| n == 1), "no job completed twice");
    let (_, st) = endpoints[1].get("/api/queues/work/stats").await;
    assert_eq!(
        st,
        json!({"queue": "work", "waiting": 0, "delayed": 0, "active": 0, "completed": JOBS, "failed": 0, "dead": 0})
    );
    // The dead workers' jobs came back with their lapsed attempt on record.
    let mut retried = 0;
    for i in 0..JOBS {
        let (_, j) = endpoints[i % 3]
            .get(&format!("/api/queues/work/jobs/j{i}"))
            .await;
        if j["job"]["attempts"] == 2 {
            assert!(j["job"]["errors"][0]["error"]
                .as_str()
                .unwrap()
                .contains("lease expired"));
            retried += 1;
        }
        if i > 2000 && retried > 0 {
            break;
        }
    }
    assert!(
        retried > 0,
        "some jobs were held by a dead worker and put back"
    );
}

/// Two hundred concurrent writes to one user's context through three instances, half
/// preferences and half recent searches: every one lands (the original wrote a stale
/// snapshot back over the writes made meanwhile).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_context_writes_from_three_instances_all_land() {
    let redis = RedisServer::start().await;
    let mut gws = Vec::new();
    for _ in 0..3 {
        let mut config = support::config(Some(&redis));
        config.services.recent_searches_limit = 1000;
        gws.push(Gateway::start(config).await);
    }
    let tasks: Vec<_> = (0..200usize)
        .map(|i| {
            let gw = gws[i % 3].endpoint();
            tokio::spawn(async move {
                let body = if i % 2 == 0 {
                    json!({"userId": "busy", "preferences": {format!("p{i}"): i}})
                } else {
                    json!({"userId": "busy", "addRecentSearch": format!("s{i}")})
                };
                let (s, v) = gw.post("/api/context", body).await;
                assert_eq!(s, 200, "{v}");
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("writer");
    }
    let (_, v) = gws[0].get("/api/context?userId=busy").await;
    let c = &v["context"];
    let prefs = c["preferences"].as_object().unwrap();
    assert_eq!(prefs.len(), 100, "every preference write landed");
    assert!((0..200).step_by(2).all(|i| prefs[&format!("p{i}")] == i));
    let searches = c["recentSearches"].as_array().unwrap();
    assert_eq!(searches.len(), 100, "every search landed");
}

/// With Redis down every service's write answers 503 with Retry-After, never a 2xx, and
/// changes nothing; when Redis is back, what was written before is all there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_answers_503_for_every_service_and_changes_nothing() {
    let mut redis = RedisServer::start_persistent().await;
    let gw = Gateway::start(support::config(Some(&redis))).await;
    let (_, lock) = gw
        .post("/api/locks/l", json!({"owner": "a", "ttlMs": 600_000}))
        .await;
    gw.post("/api/queues/q/jobs", json!({"type": "t", "jobId": "j"}))
        .await;
    let put = |v: i64| json!({"value": v, "ttlSeconds": 600});
    gw.request(reqwest::Method::PUT, "/api/cache/k", Some(put(1)))
        .await;
    gw.post(
        "/api/context",
        json!({"userId": "u", "preferences": {"p": 1}}),
    )
    .await;

    redis.kill9();
    let writes: Vec<(reqwest::Method, &str, serde_json::Value)> = vec![
        (
            reqwest::Method::POST,
            "/api/locks/l2",
            json!({"owner": "b", "ttlMs": 1000}),
        ),
        (
            reqwest::Method::POST,
            "/api/queues/q/jobs",
            json!({"type": "t", "jobId": "j2"}),
        ),
        (
            reqwest::Method::POST,
            "/api/queues/q/claim",
            json!({"workerId": "w"}),
        ),
        (reqwest::Method::PUT, "/api/cache/k", put(2)),
        (reqwest::Method::POST, "/api/cache/k/incr", json!({})),
        (
            reqwest::Method::POST,
            "/api/context",
            json!({"userId": "u", "preferences": {"p": 2}}),
        ),
        (
            reqwest::Method::POST,
            "/api/events",
            json!({"sessionId": "s", "type": "t", "usage": {"inputTokens": 5}}),
        ),
    ];
    for (method, path, body) in &writes {
        let r = gw
            .http
            .request(method.clone(), gw.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503, "{method} {path}");
        assert_eq!(r.headers()["retry-after"], "1", "{method} {path}");
    }
    redis.start_again().await;
    gw.wait_ready().await;
    let (_, l) = gw.get("/api/locks/l").await;
    assert_eq!(
        (l["owner"].as_str(), &l["fencingToken"]),
        (Some("a"), &lock["fencingToken"])
    );
    assert_eq!(gw.get("/api/locks/l2").await.1["held"], false);
    let (_, st) = gw.get("/api/queues/q/stats").await;
    assert_eq!(
        (st["waiting"].as_u64(), st["active"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(gw.get("/api/cache/k").await.1["value"], 1);
    assert_eq!(
        gw.get("/api/context?userId=u").await.1["context"]["preferences"],
        json!({"p": 1})
    );
    assert_eq!(gw.get("/api/usage").await.1["inputTokens"], 0);
    gw.stop().await;
}
