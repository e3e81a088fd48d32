//! Job queues: priority then FIFO, idempotent job ids, exclusive leases that only their
//! holder settles, expiry back to the queue, retries with backoff into the dead letters,
//! delayed jobs due on time, claims that wait, bounds, and removal of finished jobs.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::Endpoint;
use crate::Env;

async fn enqueue(gw: &Endpoint, q: &str, body: Value) -> Value {
    let (s, v) = gw.post(&format!("/api/queues/{q}/jobs"), body).await;
    assert_eq!(s, 201, "{v}");
    v["job"].clone()
}

async fn claim(gw: &Endpoint, q: &str, body: Value) -> Vec<Value> {
    let (s, v) = gw.post(&format!("/api/queues/{q}/claim"), body).await;
    assert_eq!(s, 200, "{v}");
    v["jobs"].as_array().unwrap().clone()
}

async fn settle(gw: &Endpoint, q: &str, job: &Value, op: &str, body: Value) -> (u16, Value) {
    let id = job["id"].as_str().unwrap();
    gw.post(&format!("/api/queues/{q}/jobs/{id}/{op}"), body)
        .await
}

fn token(job: &Value) -> Value {
    job["lease"]["token"].clone()
}

async fn stats(gw: &Endpoint, q: &str) -> Value {
    let (s, v) = gw.get(&format!("/api/queues/{q}/stats")).await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn higher_priority_first_fifo_within_and_job_ids_enqueue_once(env: Env) {
    let gw: &Endpoint = &env.gw;
    for (id, priority) in [("a", 0), ("b", 5), ("c", 0), ("d", 5), ("e", -3)] {
        enqueue(gw, "mail", json!({"type": "send", "data": {"to": id, "tags": []}, "priority": priority, "jobId": id})).await;
    }
    let (s, dup) = gw
        .post(
            "/api/queues/mail/jobs",
            json!({"type": "send", "jobId": "a", "data": 9}),
        )
        .await;
    assert_eq!((s, &dup["duplicate"]), (200, &json!(true)), "{dup}");
    assert_eq!(
        dup["job"]["data"],
        json!({"to": "a", "tags": []}),
        "the first one stands"
    );
    assert_eq!(stats(gw, "mail").await["waiting"], 5);

    let jobs = claim(gw, "mail", json!({"workerId": "w1", "max": 10})).await;
    let order: Vec<&str> = jobs.iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(order, ["b", "d", "a", "c", "e"]);
    let j = &jobs[0];
    assert_eq!(
        (j["state"].as_str(), j["attempts"].as_u64()),
        (Some("active"), Some(1))
    );
    assert_eq!(j["lease"]["workerId"], "w1");
    assert!(token(j).is_string());
    assert_eq!(
        j["data"],
        json!({"to": "b", "tags": []}),
        "data round-trips exactly"
    );
    assert!(
        claim(gw, "mail", json!({"workerId": "w2"}))
            .await
            .is_empty(),
        "a claim is exclusive"
    );
    for j in &jobs {
        let (s, v) = settle(
            gw,
            "mail",
            j,
            "complete",
            json!({"token": token(j), "result": {"ok": j["id"]}}),
        )
        .await;
        assert_eq!(s, 200, "{v}");
    }
    let (s, again) = settle(
        gw,
        "mail",
        &jobs[0],
        "complete",
        json!({"token": token(&jobs[0])}),
    )
    .await;
    assert_eq!((s, again["error"].as_str()), (409, Some("not_holder")));
    let st = stats(gw, "mail").await;
    assert_eq!(
        (
            st["completed"].as_u64(),
            st["active"].as_u64(),
            st["waiting"].as_u64()
        ),
        (Some(5), Some(0), Some(0))
    );
    let (_, got) = gw.get("/api/queues/mail/jobs/b").await;
    assert_eq!(got["job"]["state"], "completed");
    assert_eq!(got["job"]["result"], json!({"ok": "b"}));
    assert!(got["job"]["finishedAt"].is_string());
    assert!(got["job"]["lease"].is_null() && got["job"].get("token").is_none());
}

async fn only_the_lease_holder_settles_and_an_expired_lease_goes_back(env: Env) {
    let gw: &Endpoint = &env.gw;
    enqueue(
        gw,
        "q",
        json!({"type": "t", "jobId": "j1", "maxAttempts": 3}),
    )
    .await;
    let first = claim(gw, "q", json!({"workerId": "w1", "leaseMs": 300})).await;
    assert_eq!(first.len(), 1);
    let (s, _) = settle(
        gw,
        "q",
        &first[0],
        "extend",
        json!({"workerId": "w2", "leaseMs": 5000}),
    )
    .await;
    assert_eq!(s, 409, "another worker cannot extend");
    let (s, _) = settle(gw, "q", &first[0], "complete", json!({"token": "forged"})).await;
    assert_eq!(s, 409, "a wrong token cannot complete");
    tokio::time::sleep(Duration::from_millis(450)).await;
    let second = claim(gw, "q", json!({"workerId": "w2", "leaseMs": 5000})).await;
    assert_eq!(second.len(), 1, "the lapsed lease put the job back");
    assert_eq!(second[0]["attempts"], 2, "with its attempt counted");
    assert_ne!(token(&second[0]), token(&first[0]));
    let errors = second[0]["errors"].as_array().unwrap();
    assert!(
        errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("lease expired"),
        "{errors:?}"
    );
    for op in ["extend", "complete", "fail"] {
        let (s, v) = settle(
            gw,
            "q",
            &first[0],
            op,
            json!({"token": token(&first[0]), "error": "x"}),
        )
        .await;
        assert_eq!(s, 409, "the expired holder cannot {op}: {v}");
    }
    let (s, v) = settle(
        gw,
        "q",
        &second[0],
        "extend",
        json!({"workerId": "w2", "leaseMs": 60_000}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["job"]["lease"]["expiresAtMs"].as_i64() > second[0]["lease"]["expiresAtMs"].as_i64());
    let (s, v) = settle(
        gw,
        "q",
        &second[0],
        "complete",
        json!({"workerId": "w2", "token": token(&second[0])}),
    )
    .await;
    assert_eq!(
        (s, v["job"]["state"].as_str()),
        (200, Some("completed")),
        "{v}"
    );
}

async fn failures_back_off_then_dead_letter_and_can_be_retried(env: Env) {
    let gw: &Endpoint = &env.gw;
    let backoff = json!({"type": "fixed", "delayMs": 1000});
    enqueue(
        gw,
        "f",
        json!({"type": "t", "jobId": "flaky", "maxAttempts": 2, "backoff": backoff}),
    )
    .await;
    let j = claim(gw, "f", json!({"workerId": "w"})).await.remove(0);
    let (s, v) = settle(
        gw,
        "f",
        &j,
        "fail",
        json!({"token": token(&j), "error": {"code": 1}}),
    )
    .await;
    assert_eq!(
        (s, v["job"]["state"].as_str()),
        (200, Some("failed")),
        "{v}"
    );
    let run_at = chrono::DateTime::parse_from_rfc3339(v["job"]["runAt"].as_str().unwrap()).unwrap();
    let wait = run_at.timestamp_millis() - chrono::Utc::now().timestamp_millis();
    assert!(
        (0..=1000).contains(&wait),
        "a fixed 1 s backoff jittered to 0.5-1 s: {wait}"
    );
    assert_eq!(stats(gw, "f").await["failed"], 1);
    assert!(
        claim(gw, "f", json!({"workerId": "w"})).await.is_empty(),
        "not before its backoff"
    );
    let j = claim(gw, "f", json!({"workerId": "w", "wait": 5}))
        .await
        .remove(0);
    assert_eq!(j["attempts"], 2);
    assert!(chrono::Utc::now().timestamp_millis() >= run_at.timestamp_millis());
    let (s, v) = settle(
        gw,
        "f",
        &j,
        "fail",
        json!({"workerId": "w", "error": "again"}),
    )
    .await;
    assert_eq!(
        (s, v["job"]["state"].as_str()),
        (200, Some("dead")),
        "out of attempts: {v}"
    );
    let (_, dead) = gw.get("/api/queues/f/dead").await;
    assert_eq!(dead["count"], 1);
    let errs = dead["jobs"][0]["errors"].as_array().unwrap();
    assert_eq!(errs.len(), 2);
    assert_eq!(
        (errs[0]["error"].clone(), errs[0]["attempt"].clone()),
        (json!({"code": 1}), json!(1))
    );
    assert_eq!(
        (errs[1]["error"].clone(), errs[1]["attempt"].clone()),
        (json!("again"), json!(2))
    );
    let st = stats(gw, "f").await;
    assert_eq!(
        (st["dead"].as_u64(), st["failed"].as_u64()),
        (Some(1), Some(0))
    );

    // No retry asked: dead at once. A dead job goes back with its attempts reset.
    enqueue(gw, "f", json!({"type": "t", "jobId": "fatal"})).await;
    let j = claim(gw, "f", json!({"workerId": "w"})).await.remove(0);
    let (_, v) = settle(
        gw,
        "f",
        &j,
        "fail",
        json!({"workerId": "w", "error": "bad input", "retry": false}),
    )
    .await;
    assert_eq!(v["job"]["state"], "dead");
    let (s, v) = gw.post("/api/queues/f/dead/flaky/retry", json!({})).await;
    assert_eq!(
        (s, v["job"]["state"].as_str(), v["job"]["attempts"].as_u64()),
        (200, Some("waiting"), Some(0)),
        "{v}"
    );
    let (s, _) = gw.post("/api/queues/f/dead/flaky/retry", json!({})).await;
    assert_eq!(s, 404, "no longer dead");
    assert_eq!(
        claim(gw, "f", json!({"workerId": "w"})).await[0]["id"],
        "flaky"
    );
}

async fn delayed_jobs_come_due_on_time_and_claims_wait_for_work(env: Env) {
    let gw: Endpoint = (*env.gw).clone();
    let job = enqueue(&gw, "later", json!({"type": "t", "delayMs": 600})).await;
    assert_eq!(job["state"], "delayed");
    let due = chrono::DateTime::parse_from_rfc3339(job["runAt"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    assert!(claim(&gw, "later", json!({"workerId": "w"}))
        .await
        .is_empty());
    assert_eq!(stats(&gw, "later").await["delayed"], 1);
    let started = Instant::now();
    let got = claim(&gw, "later", json!({"workerId": "w", "wait": 20})).await;
    assert_eq!(got.len(), 1, "claimed at its time, within the wait");
    assert!(
        chrono::Utc::now().timestamp_millis() >= due,
        "not before its time"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "woken by its due time, not the end of the wait"
    );

    // A waiting claim is woken by an enqueue on any instance.
    let waiter = {
        let gw = gw.clone();
        tokio::spawn(async move { claim(&gw, "idle", json!({"workerId": "w", "wait": 20})).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished());
    let enqueued = Instant::now();
    enqueue(&gw, "idle", json!({"type": "t", "jobId": "wake"})).await;
    let got = waiter.await.unwrap();
    assert_eq!(got[0]["id"], "wake");
    assert!(enqueued.elapsed() < Duration::from_secs(15));
    let t = Instant::now();
    assert!(claim(&gw, "idle", json!({"workerId": "w", "wait": 0.3}))
        .await
        .is_empty());
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "an empty wait lasts its time"
    );
}

async fn bad_job_requests_name_the_field_and_change_nothing(env: Env) {
    let gw: &Endpoint = &env.gw;
    for (body, field) in [
        (json!({"data": 1}), "type"),
        (json!({"type": "t", "priority": 5000}), "priority"),
        (
            json!({"type": "t", "delayMs": 999_999_999_999u64}),
            "delayMs",
        ),
        (json!({"type": "t", "maxAttempts": 0}), "maxAttempts"),
        (json!({"type": "t", "backoff": "soon"}), "backoff"),
        (
            json!({"type": "t", "backoff": {"type": "linear"}}),
            "backoff.type",
        ),
        (json!({"type": "t", "jobId": ""}), "jobId"),
        (json!({"type": "t", "colour": 1}), "colour"),
        (json!({"type": "t", "data": "x".repeat(300_000)}), "data"),
    ] {
        let (s, v) = gw.post("/api/queues/bad/jobs", body.clone()).await;
        assert_eq!(s, 400, "{body}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains(field),
            "{field}: {v}"
        );
    }
    for (body, field) in [
        (json!({}), "workerId"),
        (json!({"workerId": "w", "leaseMs": 5}), "leaseMs"),
        (json!({"workerId": "w", "max": 0}), "max"),
        (json!({"workerId": "w", "wait": 9999}), "wait"),
    ] {
        let (s, v) = gw.post("/api/queues/bad/claim", body.clone()).await;
        assert_eq!(s, 400, "{body}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains(field),
            "{field}: {v}"
        );
    }
    let st = stats(gw, "bad").await;
    assert_eq!(
        st,
        json!({"queue": "bad", "waiting": 0, "delayed": 0, "active": 0, "completed": 0, "failed": 0, "dead": 0})
    );
    enqueue(gw, "bad", json!({"type": "t", "jobId": "j"})).await;
    let j = claim(gw, "bad", json!({"workerId": "w"})).await.remove(0);
    let (s, v) = settle(gw, "bad", &j, "complete", json!({})).await;
    assert_eq!(s, 400, "a lease must be named: {v}");
    let (s, v) = settle(gw, "bad", &j, "fail", json!({"workerId": "w"})).await;
    assert!(
        s == 400 && v["message"].as_str().unwrap().contains("error"),
        "{v}"
    );
    assert_eq!(stats(gw, "bad").await["active"], 1, "nothing changed");
    assert_eq!(gw.get("/api/queues/bad/jobs/nope").await.0, 404);
    let (s, _) = gw
        .post(
            "/api/queues/bad/jobs/nope/complete",
            json!({"workerId": "w"}),
        )
        .await;
    assert_eq!(s, 404);
    let long = "q".repeat(201);
    assert_eq!(gw.get(&format!("/api/queues/{long}/stats")).await.0, 400);
}

async fn finished_jobs_are_removed_after_their_keep_time(env: Env) {
    let gw: &Endpoint = &env.gw;
    enqueue(gw, "keep", json!({"type": "t", "jobId": "done"})).await;
    let j = claim(gw, "keep", json!({"workerId": "w"})).await.remove(0);
    settle(gw, "keep", &j, "complete", json!({"workerId": "w"})).await;
    assert_eq!(stats(gw, "keep").await["completed"], 1);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(stats(gw, "keep").await["completed"], 0);
    assert_eq!(gw.get("/api/queues/keep/jobs/done").await.0, 404);
    // Its id may be used again.
    enqueue(gw, "keep", json!({"type": "t", "jobId": "done"})).await;
}

fn keep_one_second(c: &mut afw_gateway::Config) {
    c.services.job_keep_secs = 1;
}

conformance! {
    higher_priority_first_fifo_within_and_job_ids_enqueue_once => crate::defaults,
    only_the_lease_holder_settles_and_an_expired_lease_goes_back => crate::defaults,
    failures_back_off_then_dead_letter_and_can_be_retried => crate::defaults,
    delayed_jobs_come_due_on_time_and_claims_wait_for_work => crate::defaults,
    bad_job_requests_name_the_field_and_change_nothing => crate::defaults,
    finished_jobs_are_removed_after_their_keep_time => super::keep_one_second,
}
