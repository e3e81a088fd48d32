//! Job queues in batches: a bulk enqueue is one atomic step (every job stored, or none), a
//! completion can claim the worker's next job in the same step, and one wake-up for a bulk
//! reaches every claim waiting for it.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::Endpoint;
use crate::Env;

async fn bulk(gw: &Endpoint, q: &str, jobs: Value) -> (u16, Value) {
    gw.post(&format!("/api/queues/{q}/bulk"), json!({ "jobs": jobs }))
        .await
}

async fn stats(gw: &Endpoint, q: &str) -> Value {
    let (s, v) = gw.get(&format!("/api/queues/{q}/stats")).await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn claim(gw: &Endpoint, q: &str, body: Value) -> Vec<Value> {
    let (s, v) = gw.post(&format!("/api/queues/{q}/claim"), body).await;
    assert_eq!(s, 200, "{v}");
    v["jobs"].as_array().unwrap().clone()
}

async fn complete(gw: &Endpoint, q: &str, id: &str, body: Value) -> (u16, Value) {
    gw.post(&format!("/api/queues/{q}/jobs/{id}/complete"), body)
        .await
}

fn ids(jobs: &[Value]) -> Vec<&str> {
    jobs.iter().map(|j| j["id"].as_str().unwrap()).collect()
}

async fn a_bulk_enqueue_stores_every_job_or_none(env: Env) {
    let gw: &Endpoint = &env.gw;
    let (s, v) = gw
        .post(
            "/api/queues/bulk/jobs",
            json!({"type": "t", "jobId": "x", "data": 1}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = bulk(
        gw,
        "bulk",
        json!([
            {"type": "t", "jobId": "x", "data": 2},
            {"type": "t", "jobId": "y", "priority": 3},
            {"type": "t", "jobId": "z", "delayMs": 60_000},
            {"type": "t", "jobId": "y", "data": "again"},
            {"type": "t"},
        ]),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        (&v["count"], &v["created"], &v["duplicates"]),
        (&json!(5), &json!(3), &json!(2)),
        "{v}"
    );
    let jobs = v["jobs"].as_array().unwrap();
    let dup: Vec<bool> = jobs
        .iter()
        .map(|j| j["duplicate"].as_bool().unwrap())
        .collect();
    assert_eq!(dup, [true, false, false, true, false]);
    assert_eq!(jobs[0]["data"], 1, "the job already there stands");
    assert!(jobs[3]["data"].is_null(), "the first y of the bulk stands");
    assert_eq!(jobs[2]["state"], "delayed");
    assert!(jobs[4]["id"].is_string(), "a job without jobId gets one");
    let st = stats(gw, "bulk").await;
    assert_eq!((&st["waiting"], &st["delayed"]), (&json!(3), &json!(1)));
    let got = claim(gw, "bulk", json!({"workerId": "w", "max": 10})).await;
    assert_eq!(ids(&got)[..2], ["y", "x"], "priority first, then FIFO");

    // Every job already there: 200, nothing created.
    let (s, v) = bulk(gw, "bulk", json!([{"type": "t", "jobId": "x"}])).await;
    assert_eq!((s, &v["created"]), (200, &json!(0)), "{v}");

    // One bad job refuses the bulk, naming it; nothing of it is stored.
    let before = stats(gw, "bulk").await;
    for (jobs, field) in [
        (
            json!([{"type": "t", "jobId": "ok"}, {"data": 1}]),
            "jobs[1].type",
        ),
        (
            json!([{"type": "t", "jobId": "ok2"}, {"type": "t", "maxAttempts": 0}]),
            "jobs[1].maxAttempts",
        ),
        (json!([]), "jobs"),
        (
            json!((0..6)
                .map(|i| json!({"type": "t", "jobId": format!("n{i}")}))
                .collect::<Vec<_>>()),
            "jobs",
        ),
        (json!([{"type": "t", "colour": 1}]), "colour"),
    ] {
        let (s, v) = bulk(gw, "bulk", jobs.clone()).await;
        assert_eq!(s, 400, "{jobs}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains(field),
            "{field}: {v}"
        );
    }
    let (s, v) = gw.post("/api/queues/bulk/bulk", json!({})).await;
    assert!(
        s == 400 && v["message"].as_str().unwrap().contains("jobs"),
        "{v}"
    );
    assert_eq!(stats(gw, "bulk").await, before, "nothing changed");
    assert_eq!(gw.get("/api/queues/bulk/jobs/ok").await.0, 404);

    // Four jobs are in the queue: a bulk of five would take it past JOB_QUEUE_MAX_JOBS (8),
    // so none of them is stored; four fit.
    let five: Vec<Value> = (0..5)
        .map(|i| json!({"type": "t", "jobId": format!("f{i}")}))
        .collect();
    let (s, v) = bulk(gw, "bulk", json!(five)).await;
    assert_eq!(s, 429, "{v}");
    assert_eq!(v["error"], "queue_full");
    assert_eq!(stats(gw, "bulk").await, before, "nothing changed");
    let (s, v) = bulk(gw, "bulk", json!(five[..4])).await;
    assert_eq!((s, &v["created"]), (201, &json!(4)), "four fit: {v}");
}

async fn a_completion_claims_the_workers_next_job_in_the_same_step(env: Env) {
    let gw: &Endpoint = &env.gw;
    let jobs: Vec<Value> = ["a", "b", "c"]
        .iter()
        .map(|id| json!({"type": "t", "jobId": id}))
        .collect();
    assert_eq!(bulk(gw, "next", json!(jobs)).await.0, 201);
    let a = claim(gw, "next", json!({"workerId": "w1"})).await.remove(0);
    assert_eq!(a["id"], "a");

    let t = &a["lease"]["token"];
    let (s, v) = complete(
        gw,
        "next",
        "a",
        json!({"token": t, "next": {"workerId": "w1", "leaseMs": 5}}),
    )
    .await;
    assert!(
        s == 400 && v["message"].as_str().unwrap().contains("next.leaseMs"),
        "{v}"
    );
    assert_eq!(
        (
            &stats(gw, "next").await["active"],
            &stats(gw, "next").await["waiting"]
        ),
        (&json!(1), &json!(2)),
        "nothing changed"
    );
    let (s, v) = gw
        .post(
            "/api/queues/next/jobs/a/fail",
            json!({"token": t, "error": "x", "next": {}}),
        )
        .await;
    assert!(
        s == 400 && v["message"].as_str().unwrap().contains("next"),
        "{v}"
    );

    // A wrong lease completes nothing and claims nothing.
    let (s, v) = complete(
        gw,
        "next",
        "a",
        json!({"token": "not-it", "workerId": "w1", "next": {}}),
    )
    .await;
    assert_eq!((s, &v["error"]), (409, &json!("not_holder")), "{v}");
    assert_eq!(stats(gw, "next").await["waiting"], 2);

    // Completed, and the next job claimed under a lease of its own for the same worker: the
    // lease knows its worker, so a completion by token alone needs no workerId for its next.
    let (s, v) = complete(
        gw,
        "next",
        "a",
        json!({"token": t, "result": 1, "next": {}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["job"]["state"], "completed");
    let next = v["next"].as_array().unwrap();
    assert_eq!(ids(next), ["b"]);
    assert_eq!(next[0]["state"], "active");
    assert_eq!(next[0]["lease"]["workerId"], "w1");
    let tb = next[0]["lease"]["token"].clone();
    assert!(tb.is_string() && tb != *t, "a new lease: {tb}");
    // On Redis every key of the queue expires, the active set included: completing `a` emptied
    // it (so Redis dropped it) and the next claim made it again in the same step.
    if let Some(redis) = &env.redis {
        let mut conn = redis.connection().await.unwrap();
        for part in ["", ":waiting", ":active", ":completed"] {
            let key = format!("afw:jobs:{{next}}{part}");
            let pttl: i64 = ::redis::cmd("PTTL")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            assert!(pttl > 0, "{key} expires: {pttl}");
        }
    }

    // The next claim's workerId and max; then an empty queue answers an empty `next`.
    let (s, v) = complete(
        gw,
        "next",
        "b",
        json!({"token": tb, "next": {"workerId": "w2", "max": 5}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(ids(v["next"].as_array().unwrap()), ["c"]);
    assert_eq!(v["next"][0]["lease"]["workerId"], "w2");
    let (_, v) = complete(gw, "next", "c", json!({"workerId": "w2", "next": {}})).await;
    assert_eq!(v["next"], json!([]), "{v}");
    let (_, plain) = gw
        .post(
            "/api/queues/next/jobs/c/complete",
            json!({"workerId": "w2"}),
        )
        .await;
    assert_eq!(plain["error"], "not_holder", "settled once: {plain}");

    // With `wait`, the next claim is a long poll, woken by an enqueue.
    let d = {
        let jobs = [json!({"type": "t", "jobId": "d"})];
        assert_eq!(bulk(gw, "next", json!(jobs)).await.0, 201);
        claim(gw, "next", json!({"workerId": "w3"})).await.remove(0)
    };
    let waiter = {
        let gw = gw.clone();
        let tok = d["lease"]["token"].clone();
        tokio::spawn(async move {
            complete(
                &gw,
                "next",
                "d",
                json!({"token": tok, "workerId": "w3", "next": {"wait": 20}}),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "waiting for a next job");
    assert_eq!(
        stats(gw, "next").await["completed"],
        4,
        "completed before it waits"
    );
    let t0 = Instant::now();
    assert_eq!(
        gw.post("/api/queues/next/jobs", json!({"type": "t", "jobId": "e"}))
            .await
            .0,
        201
    );
    let (s, v) = waiter.await.unwrap();
    assert_eq!(s, 200, "{v}");
    assert_eq!(ids(v["next"].as_array().unwrap()), ["e"]);
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "woken, not timed out"
    );
}

async fn one_bulk_wakes_every_claim_waiting_for_it(env: Env) {
    let gw: &Endpoint = &env.gw;
    let waiters: Vec<_> = (0..4)
        .map(|i| {
            let gw = gw.clone();
            tokio::spawn(async move {
                claim(
                    &gw,
                    "crowd",
                    json!({"workerId": format!("w{i}"), "wait": 20}),
                )
                .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let jobs: Vec<Value> = (0..4)
        .map(|i| json!({"type": "t", "jobId": format!("j{i}")}))
        .collect();
    let t0 = Instant::now();
    assert_eq!(bulk(gw, "crowd", json!(jobs)).await.0, 201);
    let mut got = Vec::new();
    for w in waiters {
        let jobs = w.await.unwrap();
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        got.push(jobs[0]["id"].as_str().unwrap().to_string());
    }
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "every claim woken by the one bulk, none left to its wait's end"
    );
    got.sort();
    assert_eq!(got, ["j0", "j1", "j2", "j3"]);
}

/// Each kind of timed work (a delayed job, a retry, a lapsed lease, a finished job's removal)
/// comes on time in a queue whose other jobs are not due for long: the Redis store skips its
/// upkeep until the earliest of these, so each step that files a job under a time must bring
/// that time forward.
async fn timed_work_is_on_time_beside_work_that_is_not_due(env: Env) {
    let gw: &Endpoint = &env.gw;
    let one = |id: &str, extra: Value| {
        let mut j = json!({"type": "t", "jobId": id});
        for (k, v) in extra.as_object().unwrap() {
            j[k] = v.clone();
        }
        json!([j])
    };
    // A job held under a long lease: nothing in the queue is due for an hour.
    assert_eq!(bulk(gw, "timed", one("long", json!({}))).await.0, 201);
    let held = claim(gw, "timed", json!({"workerId": "w", "leaseMs": 3_600_000})).await;
    assert_eq!(ids(&held), ["long"]);

    let t0 = Instant::now();
    assert_eq!(
        bulk(gw, "timed", one("later", json!({"delayMs": 300})))
            .await
            .0,
        201
    );
    let got = claim(gw, "timed", json!({"workerId": "w", "wait": 10})).await;
    assert_eq!(ids(&got), ["later"], "the delayed job came due");

    let token = got[0]["lease"]["token"].clone();
    let (s, v) = gw
        .post(
            "/api/queues/timed/jobs/later/fail",
            json!({"token": token, "error": "again"}),
        )
        .await;
    assert_eq!((s, &v["job"]["state"]), (200, &json!("failed")), "{v}");
    let got = claim(
        gw,
        "timed",
        json!({"workerId": "w", "wait": 10, "leaseMs": 300}),
    )
    .await;
    assert_eq!(ids(&got), ["later"], "the retry came due");
    let got = claim(gw, "timed", json!({"workerId": "w2", "wait": 10})).await;
    assert_eq!(ids(&got), ["later"], "the lapsed lease put it back");
    assert_eq!(got[0]["attempts"], 3);
    assert!(
        t0.elapsed() < Duration::from_secs(9),
        "each came at its time, not at the end of a wait"
    );

    let token = got[0]["lease"]["token"].clone();
    let (s, _) = complete(gw, "timed", "later", json!({ "token": token })).await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        gw.get("/api/queues/timed/jobs/later").await.0,
        404,
        "removed after JOB_KEEP_SECS (1 s here)"
    );
    assert_eq!(gw.get("/api/queues/timed/jobs/long").await.0, 200);
}

fn keep_one_second(c: &mut afw_gateway::Config) {
    c.services.job_keep_secs = 1;
}

fn small_queue(c: &mut afw_gateway::Config) {
    c.services.job_bulk_max = 5;
    c.services.job_queue_max_jobs = 8;
}

conformance! {
    a_bulk_enqueue_stores_every_job_or_none => super::small_queue,
    a_completion_claims_the_workers_next_job_in_the_same_step => crate::defaults,
    one_bulk_wakes_every_claim_waiting_for_it => crate::defaults,
    timed_work_is_on_time_beside_work_that_is_not_due => super::keep_one_second,
}
