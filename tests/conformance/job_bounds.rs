//! Job queues under heavy and hostile use, the same on both stores: a lease ends when its
//! latest extension says; finished jobs leave room in the queue and their history is bounded
//! on its own; a job's errors are bounded; claims and dead-letter pages stop at
//! `READ_MAX_BYTES` and the dead letters page with a cursor.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::Endpoint;
use crate::Env;

async fn post_ok(gw: &Endpoint, path: &str, body: Value) -> Value {
    let (s, v) = gw.post(path, body).await;
    assert!(s == 200 || s == 201, "{path}: {s} {v}");
    v
}

async fn claim(gw: &Endpoint, q: &str, body: Value) -> Vec<Value> {
    let v = post_ok(gw, &format!("/api/queues/{q}/claim"), body).await;
    v["jobs"].as_array().unwrap().clone()
}

async fn stats(gw: &Endpoint, q: &str) -> Value {
    let (s, v) = gw.get(&format!("/api/queues/{q}/stats")).await;
    assert_eq!(s, 200, "{v}");
    v
}

fn ids(jobs: &[Value]) -> Vec<String> {
    jobs.iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect()
}

async fn a_shortened_lease_lapses_at_its_new_end(env: Env) {
    let gw: &Endpoint = &env.gw;
    post_ok(gw, "/api/queues/l/jobs", json!({"type": "t", "jobId": "j"})).await;
    let job = claim(gw, "l", json!({"workerId": "w1", "leaseMs": 600_000})).await;
    let token = job[0]["lease"]["token"].clone();
    // A worker that heartbeats with a short extension and then dies.
    post_ok(
        gw,
        "/api/queues/l/jobs/j/extend",
        json!({"token": token, "leaseMs": 200}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    // The lease is over: another worker gets the job, and the dead worker's token is refused.
    let again = claim(gw, "l", json!({"workerId": "w2"})).await;
    assert_eq!(
        ids(&again),
        ["j"],
        "the job went back when its extended lease ended"
    );
    assert_eq!(again[0]["attempts"], 2);
    let (s, v) = gw
        .post(
            "/api/queues/l/jobs/j/complete",
            json!({"token": token, "result": "late"}),
        )
        .await;
    assert_eq!((s, &v["error"]), (409, &json!("not_holder")), "{v}");
    let (_, v) = gw.get("/api/queues/l/jobs/j").await;
    assert_eq!(v["job"]["lease"]["workerId"], "w2");
    assert!(v["job"]["errors"][0]["error"]
        .as_str()
        .unwrap()
        .contains("lease expired (worker w1)"));
}

async fn finished_jobs_leave_room_and_their_history_is_bounded(env: Env) {
    let gw: &Endpoint = &env.gw;
    // JOB_QUEUE_MAX_JOBS is 20: twenty jobs fill the queue...
    let jobs: Vec<Value> = (0..20)
        .map(|i| json!({"type": "t", "jobId": format!("j{i:02}")}))
        .collect();
    post_ok(gw, "/api/queues/h/bulk", json!({ "jobs": jobs })).await;
    let (s, v) = gw
        .post("/api/queues/h/jobs", json!({"type": "t", "jobId": "over"}))
        .await;
    assert_eq!((s, &v["error"]), (429, &json!("queue_full")), "{v}");
    // ...and once they are done, they no longer count: the queue takes new work at once.
    for job in claim(gw, "h", json!({"workerId": "w", "max": 20})).await {
        let id = job["id"].as_str().unwrap();
        let body = if id < "j13" {
            json!({"token": job["lease"]["token"], "result": id})
        } else {
            json!({"token": job["lease"]["token"], "error": "no", "retry": false})
        };
        let op = if id < "j13" { "complete" } else { "fail" };
        post_ok(gw, &format!("/api/queues/h/jobs/{id}/{op}"), body).await;
    }
    let (s, v) = gw
        .post("/api/queues/h/jobs", json!({"type": "t", "jobId": "after"}))
        .await;
    assert_eq!(s, 201, "finished jobs do not count against the cap: {v}");
    // A priority out of range is refused, i64::MIN too (its `abs` wraps).
    for priority in [i64::MIN, 1001, -1001] {
        let (s, v) = gw
            .post(
                "/api/queues/h/jobs",
                json!({"type": "t", "priority": priority}),
            )
            .await;
        assert_eq!(s, 400, "{priority}: {v}");
    }
    // JOB_HISTORY_MAX is 5: the newest five completed (j08..j12) and dead (j15..j19) stay.
    let st = stats(gw, "h").await;
    assert_eq!(
        (&st["completed"], &st["dead"]),
        (&json!(5), &json!(5)),
        "{st}"
    );
    assert_eq!(gw.get("/api/queues/h/jobs/j00").await.0, 404, "oldest gone");
    assert_eq!(
        gw.get("/api/queues/h/jobs/j13").await.0,
        404,
        "oldest dead gone"
    );
    let (_, v) = gw.get("/api/queues/h/jobs/j12").await;
    assert_eq!(
        (&v["job"]["state"], &v["job"]["result"]),
        (&json!("completed"), &json!("j12"))
    );
    let (_, v) = gw.get("/api/queues/h/dead").await;
    assert_eq!(
        ids(v["jobs"].as_array().unwrap()),
        ["j19", "j18", "j17", "j16", "j15"]
    );
}

fn small_queue(c: &mut afw_gateway::Config) {
    c.services.job_queue_max_jobs = 20;
    c.services.job_history_max = 5;
}

/// Claims job `j` of queue `e` (waiting for its retry to come due) and fails it with an error
/// `n` padded to `pad` bytes; the numbers of the errors it then keeps, and their JSON.
async fn fail_once(gw: &Endpoint, n: u64, pad: usize) -> (Vec<u64>, Value) {
    let job = loop {
        let got = claim(gw, "e", json!({"workerId": "w", "wait": 1})).await;
        if let Some(j) = got.into_iter().next() {
            break j;
        }
    };
    let error = json!({"n": n, "pad": "p".repeat(pad)});
    post_ok(
        gw,
        "/api/queues/e/jobs/j/fail",
        json!({"token": job["lease"]["token"], "error": error}),
    )
    .await;
    let (_, v) = gw.get("/api/queues/e/jobs/j").await;
    let errors = v["job"]["errors"].clone();
    let kept = errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["error"]["n"].as_u64().unwrap())
        .collect();
    (kept, errors)
}

async fn a_jobs_errors_are_bounded_newest_kept(env: Env) {
    let gw: &Endpoint = &env.gw;
    let fixed = json!({"type": "fixed", "delayMs": 1});
    post_ok(
        gw,
        "/api/queues/e/jobs",
        json!({"type": "t", "jobId": "j", "maxAttempts": 40, "backoff": fixed}),
    )
    .await;
    // Thirty failures of 100 bytes: JOB_ERRORS_MAX (4) keeps the newest four.
    let mut kept = Vec::new();
    for n in 1..=30 {
        kept = fail_once(gw, n, 100).await.0;
    }
    assert_eq!(kept, [27, 28, 29, 30]);
    // Errors of 1,500 bytes: JOB_MAX_BYTES (4 KiB) holds two of them, the newest.
    let mut errors = Value::Null;
    for n in 31..=34 {
        (kept, errors) = fail_once(gw, n, 1500).await;
    }
    assert_eq!(kept, [33, 34], "{errors}");
    assert!(
        errors.to_string().len() <= 4096,
        "{}",
        errors.to_string().len()
    );
    let (_, v) = gw.get("/api/queues/e/jobs/j").await;
    assert_eq!(v["job"]["attempts"], 34);
}

fn few_errors(c: &mut afw_gateway::Config) {
    c.services.job_errors_max = 4;
    c.services.job_max_bytes = 4096;
}

async fn claims_and_dead_letter_pages_stop_at_read_max_bytes(env: Env) {
    let gw: &Endpoint = &env.gw;
    // Twelve jobs of about 200 KiB: READ_MAX_BYTES (1 MiB) carries five or six of them.
    let pad = "d".repeat(200 * 1024);
    for i in 0..12 {
        post_ok(
            gw,
            "/api/queues/big/jobs",
            json!({"type": "t", "jobId": format!("j{i:02}"), "data": pad, "maxAttempts": 1}),
        )
        .await;
    }
    let first = claim(gw, "big", json!({"workerId": "w", "max": 100})).await;
    assert!(
        (5..=6).contains(&first.len()),
        "a claim stops at READ_MAX_BYTES: {}",
        first.len()
    );
    let mut all = first;
    while all.len() < 12 {
        let more = claim(gw, "big", json!({"workerId": "w", "max": 100})).await;
        assert!(!more.is_empty());
        all.extend(more);
    }
    for job in &all {
        let id = job["id"].as_str().unwrap();
        post_ok(
            gw,
            &format!("/api/queues/big/jobs/{id}/fail"),
            json!({"token": job["lease"]["token"], "error": "x"}),
        )
        .await;
    }
    // The dead letters page by bytes too, newest first, each once across the pages.
    let mut seen = Vec::new();
    let mut path = "/api/queues/big/dead?limit=1000".to_string();
    let mut pages = 0;
    loop {
        let (s, v) = gw.get(&path).await;
        assert_eq!(s, 200, "{v}");
        pages += 1;
        let page = v["jobs"].as_array().unwrap();
        assert!(
            v.to_string().len() < 1_400_000,
            "a page is about READ_MAX_BYTES"
        );
        seen.extend(ids(page));
        match v["nextCursor"].as_str() {
            Some(c) => path = format!("/api/queues/big/dead?limit=1000&cursor={c}"),
            None => break,
        }
        assert!(pages < 10);
    }
    assert!(pages >= 2, "{pages}");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 12, "each dead job once: {seen:?}");
    // Small pages by count go on from the cursor the same way.
    let (_, v) = gw.get("/api/queues/big/dead?limit=5").await;
    let c = v["nextCursor"].as_str().unwrap().to_string();
    let (_, w) = gw
        .get(&format!("/api/queues/big/dead?limit=5&cursor={c}"))
        .await;
    let both: Vec<String> = ids(v["jobs"].as_array().unwrap())
        .into_iter()
        .chain(ids(w["jobs"].as_array().unwrap()))
        .collect();
    assert_eq!(both, seen[..both.len()].to_vec());
    let (s, v) = gw.get("/api/queues/big/dead?cursor=nope").await;
    assert_eq!((s, &v["error"]), (400, &json!("validation_failed")), "{v}");
}

fn small_reads(c: &mut afw_gateway::Config) {
    c.events.read_max_bytes = 1024 * 1024;
}

conformance! {
    a_shortened_lease_lapses_at_its_new_end => crate::defaults,
    finished_jobs_leave_room_and_their_history_is_bounded => super::small_queue,
    a_jobs_errors_are_bounded_newest_kept => super::few_errors,
    claims_and_dead_letter_pages_stop_at_read_max_bytes => super::small_reads,
}
