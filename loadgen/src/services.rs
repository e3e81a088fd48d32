//! The services beside the stream under load, each as a cycle one client repeats for the run:
//! - `locks`: acquire a lock of the client's own, then release it with its token;
//! - `jobs`: enqueue a job, claim it (the claim's latency is what is reported), complete it;
//! - `workers`: jobs the way busy workers run them: enqueued in bulks of [`BULK`], each
//!   completion claiming the worker's next job in the same request (its latency is what is
//!   reported); a worker with none left enqueues the next bulk and claims;
//! - `cache`: GET an entry that is there (a hit), after one PUT per client;
//! - `permissions`: a Claude Code `PermissionRequest` hook held on one target while the
//!   client, on the next target, finds the request among the pending ones and decides it; what
//!   is reported is the time from sending the decision to the held hook's answer.
//!
//! Clients are spread over the targets round-robin, each on one keep-alive connection (and
//! `permissions` clients on a second, to the next target).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hyper::body::Bytes;
use serde_json::{json, Value};

use crate::net::{self, Target};
use crate::{costs, histogram, latency_json, procfs, progress, run_id, Args};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Locks,
    Jobs,
    Workers,
    Cache,
    Permissions,
}

/// Jobs per bulk enqueue in the `workers` cycle.
pub const BULK: usize = 16;

/// The job a `workers` client holds: its queue, id and lease token.
type Held = Option<(String, String, Value)>;

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Locks => "locks",
            Kind::Jobs => "jobs",
            Kind::Workers => "workers",
            Kind::Cache => "cache",
            Kind::Permissions => "permissions",
        }
    }
}

/// One request: its JSON answer when its status is one of `ok`, else the status (0 for a
/// dropped connection).
async fn send(
    http: &mut net::Http,
    method: &str,
    path: &str,
    body: Option<Value>,
    ok: &[u16],
) -> Result<Value, u16> {
    let body = body.map(|v| Bytes::from(v.to_string()));
    match http.request(method, path, body).await {
        Some((s, answer)) if ok.contains(&s) => {
            Ok(serde_json::from_slice(&answer).unwrap_or(Value::Null))
        }
        Some((s, _)) => Err(s),
        None => Err(0),
    }
}

/// What one cycle's requests came to: the latency measured, or the first failing status
/// (0 for a dropped connection).
async fn cycle(
    kind: Kind,
    http: &mut net::Http,
    run: &str,
    c: usize,
    n: u64,
    held: &mut Held,
    other: &mut Option<net::Http>,
) -> Result<u64, u16> {
    let t0 = Instant::now();
    match kind {
        Kind::Locks => {
            let path = format!("/api/locks/{run}-{c}");
            let lock = json!({"owner": format!("c{c}"), "ttlMs": 10_000});
            let got = send(http, "POST", &path, Some(lock), &[200]).await?;
            let token = got["token"].as_str().unwrap_or_default();
            let release = format!("{path}?token={token}");
            send(http, "DELETE", &release, None, &[200]).await?;
            Ok(t0.elapsed().as_micros() as u64)
        }
        Kind::Jobs => {
            let queue = format!("{run}-{}", c % 4);
            let job = json!({"type": "load", "data": {"n": n}, "jobId": format!("{c}-{n}")});
            let path = format!("/api/queues/{queue}/jobs");
            send(http, "POST", &path, Some(job), &[201]).await?;
            let t_claim = Instant::now();
            let claim = json!({"workerId": format!("w{c}"), "wait": 1});
            let path = format!("/api/queues/{queue}/claim");
            let claimed = send(http, "POST", &path, Some(claim), &[200]).await?;
            let claim_us = t_claim.elapsed().as_micros() as u64;
            let Some(j) = claimed["jobs"].get(0) else {
                return Err(204);
            };
            let id = j["id"].as_str().unwrap_or_default();
            let done = json!({"token": j["lease"]["token"], "result": n});
            let path = format!("/api/queues/{queue}/jobs/{id}/complete");
            send(http, "POST", &path, Some(done), &[200]).await?;
            Ok(claim_us)
        }
        Kind::Workers => {
            let worker = format!("w{c}");
            if held.is_none() {
                let queue = format!("{run}-w{}", c % 4);
                let jobs: Vec<Value> = (0..BULK)
                    .map(|i| json!({"type": "load", "data": {"n": n}, "jobId": format!("{c}-{n}-{i}")}))
                    .collect();
                let bulk = json!({ "jobs": jobs });
                let path = format!("/api/queues/{queue}/bulk");
                send(http, "POST", &path, Some(bulk), &[201]).await?;
                let claim = json!({"workerId": worker, "wait": 1});
                let path = format!("/api/queues/{queue}/claim");
                let claimed = send(http, "POST", &path, Some(claim), &[200]).await?;
                *held = claimed["jobs"].get(0).map(|j| held_job(&queue, j));
            }
            let Some((queue, id, token)) = held.take() else {
                return Err(204);
            };
            let t = Instant::now();
            let done = json!({"token": token, "workerId": worker, "result": n, "next": {}});
            let path = format!("/api/queues/{queue}/jobs/{id}/complete");
            let answer = send(http, "POST", &path, Some(done), &[200]).await?;
            *held = answer["next"].get(0).map(|j| held_job(&queue, j));
            Ok(t.elapsed().as_micros() as u64)
        }
        Kind::Cache => {
            let path = format!("/api/cache/{run}-{}", c % 64);
            send(http, "GET", &path, None, &[200]).await?;
            Ok(t0.elapsed().as_micros() as u64)
        }
        Kind::Permissions => {
            let decider = other.as_mut().ok_or(0u16)?;
            permission_cycle(http, decider, run, c, n).await
        }
    }
}

/// One permission prompt: the hook held on `hook`'s target, decided through `decider`'s; the
/// micros from sending the decision to the hook's answer.
async fn permission_cycle(
    hook: &mut net::Http,
    decider: &mut net::Http,
    run: &str,
    c: usize,
    n: u64,
) -> Result<u64, u16> {
    let sid = format!("{run}-p{c}-{n}");
    let body = json!({
        "session_id": sid, "transcript_path": "/t.jsonl", "cwd": "/w",
        "hook_event_name": "PermissionRequest", "tool_name": "Bash",
        "tool_input": {"command": format!("make deploy-{n}")},
    });
    let held = async {
        let answer = send(hook, "POST", "/api/hooks/claude-code", Some(body), &[200]).await;
        (answer, Instant::now())
    };
    let decide = async {
        let deadline = Instant::now() + Duration::from_secs(10);
        let id = loop {
            let list = send(
                decider,
                "GET",
                "/api/permissions?status=pending&limit=1000",
                None,
                &[200],
            )
            .await?;
            let found = list["permissions"].as_array().and_then(|ps| {
                ps.iter().find(|p| p["sessionId"] == sid.as_str())?["id"]
                    .as_str()
                    .map(str::to_string)
            });
            match found {
                Some(id) => break id,
                None if Instant::now() > deadline => return Err(404),
                None => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        };
        let sent = Instant::now();
        let path = format!("/api/permissions/{id}/decision");
        send(
            decider,
            "POST",
            &path,
            Some(json!({"behavior": "allow"})),
            &[200],
        )
        .await?;
        Ok::<Instant, u16>(sent)
    };
    let ((answer, answered), sent) = tokio::join!(held, decide);
    let sent = sent?;
    if answer?["hookSpecificOutput"]["decision"]["behavior"] != "allow" {
        return Err(500);
    }
    Ok(answered.saturating_duration_since(sent).as_micros() as u64)
}

fn held_job(queue: &str, j: &Value) -> (String, String, Value) {
    let id = j["id"].as_str().unwrap_or_default().to_string();
    (queue.to_string(), id, j["lease"]["token"].clone())
}

pub async fn run(kind: Kind, args: &Args, targets: &[Target]) -> Value {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    progress(kind.name(), vec![("cycles", done.clone())], stop.clone());
    let run = run_id();
    if kind == Kind::Cache {
        // The entries the clients read, each written once.
        let mut http = net::Http::connect(&targets[0]).await.expect("connect");
        for k in 0..64 {
            let v = json!({"value": {"profile": {"id": k, "name": "cached"}}, "ttlSeconds": 3600});
            let r = send(
                &mut http,
                "PUT",
                &format!("/api/cache/{run}-{k}"),
                Some(v),
                &[200],
            )
            .await;
            assert!(r.is_ok(), "cache setup: {r:?}");
        }
    }
    let cpu_start = procfs::sum(&args.gateway_pid, procfs::cpu_secs);
    let self_cpu = procfs::cpu_secs(std::process::id());
    let run_for = Duration::from_secs_f64(args.duration);
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..args.connections.max(1) {
        let target = targets[c % targets.len()].clone();
        let next = targets[(c + 1) % targets.len()].clone();
        let (done, run) = (done.clone(), run.clone());
        clients.push(tokio::spawn(async move {
            let mut latency = histogram();
            let mut failures: BTreeMap<u16, u64> = BTreeMap::new();
            let Ok(mut http) = net::Http::connect(&target).await else {
                failures.insert(0, 1);
                return (latency, failures);
            };
            let mut n = 0;
            let mut held = None;
            let mut other = match kind {
                Kind::Permissions => net::Http::connect(&next).await.ok(),
                _ => None,
            };
            while started.elapsed() < run_for {
                match cycle(kind, &mut http, &run, c, n, &mut held, &mut other).await {
                    Ok(us) => {
                        let _ = latency.record(us.max(1));
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(s) => {
                        *failures.entry(s).or_default() += 1;
                        if s == 0 {
                            match net::Http::connect(&target).await {
                                Ok(h) => http = h,
                                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                            }
                        }
                    }
                }
                n += 1;
            }
            (latency, failures)
        }));
    }
    let mut latency: Histogram<u64> = histogram();
    let mut failures: BTreeMap<u16, u64> = BTreeMap::new();
    for c in clients {
        let (h, f) = c.await.expect("client");
        let _ = latency.add(&h);
        for (k, v) in f {
            *failures.entry(k).or_default() += v;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let cycles = done.load(Ordering::Relaxed);
    let costs = costs(args, cpu_start, self_cpu);
    let per_op = costs["gatewayCpuSecs"]
        .as_f64()
        .filter(|_| cycles > 0)
        .map(|c| c * 1e6 / cycles as f64);
    let errors: u64 = failures.values().sum();
    json!({
        "scenario": kind.name(),
        "ok": errors == 0 && cycles > 0,
        "targets": args.target,
        "connections": args.connections,
        "cycles": cycles,
        "failures": failures,
        "errors": errors,
        "secs": secs,
        "cyclesPerSec": cycles as f64 / secs,
        "gatewayCpuMicrosPerCycle": per_op,
        "latency": latency_json(&latency),
        "latencyOf": match kind { Kind::Jobs => "claim", Kind::Workers => "complete+next", Kind::Locks => "acquire+release", Kind::Cache => "get", Kind::Permissions => "decision to hook answer" },
        "costs": costs,
    })
}
