//! Job queues: a lease shortened by its extension, idle claims that must not spin, a queue
//! that must keep taking work, results charged to the memory budget, a job's errors, and the
//! dead letters.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{Endpoint, PeakRss};
use crate::{memory, ok, together, Pair};

/// A worker that heartbeats with a short extension and dies: its job goes back when the
/// extension ends, and fifty claims waiting on another instance meanwhile sleep instead of
/// retrying every millisecond (once 64,559 scripts a second for 300 waiting claims).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_claims_sleep_until_a_shortened_lease_ends() {
    let pair = Pair::start(&[]).await;
    let (a, b) = (pair.a.endpoint(), pair.b.endpoint());
    ok(&a, "/api/queues/q/jobs", json!({"type": "t", "jobId": "j"})).await;
    let (_, v) = a
        .post(
            "/api/queues/q/claim",
            json!({"workerId": "dies", "leaseMs": 600_000}),
        )
        .await;
    let token = v["jobs"][0]["lease"]["token"].clone();
    ok(
        &a,
        "/api/queues/q/jobs/j/extend",
        json!({"token": token, "leaseMs": 300}),
    )
    .await;
    let before = pair.script_calls().await;
    let got = together(50, |i| {
        let b = b.clone();
        async move {
            let (s, v) = b
                .post(
                    "/api/queues/q/claim",
                    json!({"workerId": format!("w{i}"), "wait": 3}),
                )
                .await;
            assert_eq!(s, 200, "{v}");
            v["jobs"].as_array().unwrap().len()
        }
    })
    .await;
    let calls = pair.script_calls().await - before;
    assert_eq!(
        got.iter().sum::<usize>(),
        1,
        "one waiting claim got the job: {got:?}"
    );
    // Fifty claims for three seconds, the bystander's posts and the job's hand-over: a few
    // hundred scripts, where a busy retry ran one every millisecond per claim.
    println!("50 idle claims for 3 s ran {calls} scripts");
    assert!(calls < 1_000, "{calls} scripts: the waiting claims spun");
    let (s, v) = a
        .post("/api/queues/q/jobs/j/complete", json!({"token": token}))
        .await;
    assert_eq!((s, &v["error"]), (409, &json!("not_holder")), "{v}");
    pair.finish().await;
}

/// A queue capped at 100 jobs, worked through three times over: finished jobs never fill it
/// (once it refused every enqueue after its first hundred jobs were done).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_queue_keeps_taking_work() {
    let pair = Pair::start(&[("JOB_QUEUE_MAX_JOBS", "100"), ("JOB_HISTORY_MAX", "150")]).await;
    let (a, b) = (pair.a.endpoint(), pair.b.endpoint());
    for round in 0..3 {
        let jobs: Vec<Value> = (0..100)
            .map(|i| json!({"type": "t", "jobId": format!("r{round}-{i}")}))
            .collect();
        let (s, v) = a
            .post("/api/queues/busy/bulk", json!({ "jobs": jobs }))
            .await;
        assert_eq!(s, 201, "round {round}: {v}");
        let (_, v) = b
            .post(
                "/api/queues/busy/claim",
                json!({"workerId": "w", "max": 100}),
            )
            .await;
        for job in v["jobs"].as_array().unwrap() {
            let id = job["id"].as_str().unwrap();
            ok(
                &b,
                &format!("/api/queues/busy/jobs/{id}/complete"),
                json!({"token": job["lease"]["token"], "result": 1}),
            )
            .await;
        }
    }
    let (_, st) = a.get("/api/queues/busy/stats").await;
    assert_eq!(st["completed"], 150, "history bounded on its own: {st}");
    pair.finish().await;
}

/// Completions with 250 KiB results on an 8 MiB memory budget: refused (503 `store_full`,
/// the job still active) once the budget is spent, where they were all taken (532 MB of RSS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_results_are_charged_to_the_memory_budget() {
    let gw = memory(&[("MEMORY_STORE_MAX_BYTES", "8388608")]).await;
    let at = gw.endpoint();
    let rss = PeakRss::start(gw.pid());
    let result = "r".repeat(250 * 1024);
    let (mut stored, mut refused) = (0, 0);
    for i in 0..80 {
        let id = format!("j{i}");
        ok(
            &at,
            "/api/queues/big/jobs",
            json!({"type": "t", "jobId": id}),
        )
        .await;
        let (_, v) = at
            .post("/api/queues/big/claim", json!({"workerId": "w"}))
            .await;
        let token = v["jobs"][0]["lease"]["token"].clone();
        let (s, v) = at
            .post(
                &format!("/api/queues/big/jobs/{id}/complete"),
                json!({"token": token, "result": result}),
            )
            .await;
        match s {
            200 => stored += 1,
            503 => {
                assert_eq!(v["error"], "store_full", "{v}");
                let (_, job) = at.get(&format!("/api/queues/big/jobs/{id}")).await;
                assert_eq!(job["job"]["state"], "active", "nothing changed: {job}");
                refused += 1;
            }
            _ => panic!("{s} {v}"),
        }
    }
    let rise = rss.rise_mib().await;
    println!("results on an 8 MiB budget: {stored} stored, {refused} refused, RSS +{rise} MiB");
    assert!(
        stored * 250 <= 8 * 1024,
        "{stored} results of 250 KiB stored"
    );
    assert!(refused > 40, "{refused}");
    assert!(rise < 64, "RSS rose {rise} MiB");
}

/// A job failed a hundred times with 200 KiB errors stays within JOB_MAX_BYTES of errors, so
/// every claim and read of it is small (once 25.6 MB, read whole by every claim and GET).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_errors_stay_bounded() {
    let pair = Pair::start(&[]).await;
    let a = pair.a.endpoint();
    let fixed = json!({"type": "fixed", "delayMs": 1});
    ok(
        &a,
        "/api/queues/err/jobs",
        json!({"type": "t", "jobId": "j", "maxAttempts": 200, "backoff": fixed}),
    )
    .await;
    let error = json!({"trace": "e".repeat(200 * 1024)});
    for _ in 0..100 {
        let (_, v) = a
            .post("/api/queues/err/claim", json!({"workerId": "w", "wait": 2}))
            .await;
        let token = v["jobs"][0]["lease"]["token"].clone();
        ok(
            &a,
            "/api/queues/err/jobs/j/fail",
            json!({"token": token, "error": error}),
        )
        .await;
    }
    let sizes = together(4, |_| {
        let a = a.clone();
        async move {
            let mut largest = 0;
            for _ in 0..10 {
                let (s, v) = a.get("/api/queues/err/jobs/j").await;
                assert_eq!(s, 200);
                largest = largest.max(v.to_string().len());
            }
            largest
        }
    })
    .await;
    let (_, v) = a.get("/api/queues/err/jobs/j").await;
    assert_eq!(v["job"]["attempts"], 100);
    assert!(
        sizes.iter().all(|n| *n < 300 * 1024),
        "the job read is about JOB_MAX_BYTES of errors: {sizes:?}"
    );
    pair.finish().await;
}

/// Two hundred dead jobs of 200 KiB: a page of dead letters is READ_MAX_BYTES with a cursor,
/// read while the bystander works on another instance (once 256 MB in one answer, and five at
/// once stalled Redis for everyone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_paged_by_bytes() {
    let pair = Pair::start(&[]).await;
    let a = pair.a.endpoint();
    let data = "d".repeat(200 * 1024);
    // Four at a time: a bulk is one body, within MAX_EVENT_BYTES.
    for chunk in 0..50 {
        let jobs: Vec<Value> = (0..4)
            .map(|i| json!({"type": "t", "jobId": format!("d{chunk}-{i}"), "data": data, "maxAttempts": 1}))
            .collect();
        let (s, v) = a.post("/api/queues/dl/bulk", json!({ "jobs": jobs })).await;
        assert_eq!(s, 201, "{v}");
    }
    let mut dead = 0;
    while dead < 200 {
        let (_, v) = a
            .post("/api/queues/dl/claim", json!({"workerId": "w", "max": 100}))
            .await;
        for job in v["jobs"].as_array().unwrap() {
            let id = job["id"].as_str().unwrap();
            let body = json!({"token": job["lease"]["token"], "error": "no"});
            ok(&a, &format!("/api/queues/dl/jobs/{id}/fail"), body).await;
            dead += 1;
        }
    }
    let pages = together(5, |_| {
        let a = a.clone();
        async move { walk_dead(&a).await }
    })
    .await;
    for (ids, largest) in pages {
        assert_eq!(ids, 200, "every dead job once across the pages");
        assert!(largest < 5 << 20, "a page of {largest} bytes");
    }
    pair.finish().await;
}

/// Walks the dead letters page by page: how many jobs, and the largest page in bytes.
async fn walk_dead(a: &Endpoint) -> (usize, usize) {
    let mut seen = std::collections::HashSet::new();
    let mut largest = 0;
    let mut path = "/api/queues/dl/dead?limit=1000".to_string();
    loop {
        let r = a.http.get(a.url(&path)).send().await.expect("GET");
        assert_eq!(r.status(), 200);
        let text = r.text().await.expect("body");
        largest = largest.max(text.len());
        let v: Value = serde_json::from_str(&text).expect("JSON");
        for j in v["jobs"].as_array().unwrap() {
            assert!(seen.insert(j["id"].as_str().unwrap().to_string()), "twice");
        }
        match v["nextCursor"].as_str() {
            Some(c) => path = format!("/api/queues/dl/dead?limit=1000&cursor={c}"),
            None => return (seen.len(), largest),
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
