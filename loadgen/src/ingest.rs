//! `ingest`: `POST /api/events` (or, with `--hooks`, Claude Code hooks to
//! `POST /api/hooks/claude-code`) as fast as the gateway answers, over keep-alive connections.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Bytes;
use serde_json::{json, Value};

use crate::fanout::micros_since;
use crate::net::{self, Target};
use crate::procfs;
use crate::{costs, histogram, latency_json, progress, run_id, Args, Publish};

pub(crate) async fn ingest(args: &Args, targets: &[Target]) -> Value {
    let base = Instant::now();
    let posted = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    progress("ingest", vec![("posted", posted.clone())], stop.clone());
    let cpu_start = procfs::sum(&args.gateway_pid, procfs::cpu_secs);
    let self_cpu = procfs::cpu_secs(std::process::id());
    let run_for = Duration::from_secs_f64(args.duration);
    let pad = "x".repeat(args.payload_bytes);
    let run = run_id();
    let sessions = args.sessions.max(1);
    let hooks = args.hooks;
    let path = if hooks {
        "/api/hooks/claude-code"
    } else {
        "/api/events"
    };
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..args.connections.max(1) {
        let target = targets[c % targets.len()].clone();
        let (posted, pad, run) = (posted.clone(), pad.clone(), run.clone());
        let publish = Publish::of(args);
        clients.push(tokio::spawn(async move {
            let mut latency = histogram();
            let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
            let mut http = match net::Http::connect(&target).await {
                Ok(h) => h,
                Err(_) => {
                    statuses.insert(0, 1);
                    return (latency, statuses);
                }
            };
            let mut n: u64 = 0;
            while started.elapsed() < run_for {
                let session = (c + n as usize) % sessions;
                let body = if hooks {
                    format!(
                        r#"{{"session_id":"{run}-{session}","transcript_path":"/t.jsonl","cwd":"/w","hook_event_name":"PostToolUse","tool_name":"Bash","tool_input":{{"command":"npm test"}},"tool_response":{{"stdout":"ok"}},"tool_use_id":"toolu_{c}_{n}","sentAt":{},"pad":"{pad}"}}"#,
                        micros_since(base)
                    )
                } else {
                    format!(
                        r#"{{"sessionId":"{run}-{session}","type":"load","n":{n},"sentAt":{},"pad":"{pad}"}}"#,
                        micros_since(base)
                    )
                };
                let t0 = Instant::now();
                let (path, body) = if hooks {
                    (path.to_string(), Bytes::from(body))
                } else {
                    publish.request(&format!("{run}-{session}"), body)
                };
                let status = http.post(&path, body).await;
                let _ = latency.record((t0.elapsed().as_micros() as u64).max(1));
                match status {
                    Some(s) => {
                        *statuses.entry(s).or_default() += 1;
                        if s == 200 || s == 201 {
                            posted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    None => {
                        *statuses.entry(0).or_default() += 1;
                        match net::Http::connect(&target).await {
                            Ok(h) => http = h,
                            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                        }
                    }
                }
                n += 1;
            }
            (latency, statuses)
        }));
    }
    let mut latency = histogram();
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for c in clients {
        let (h, st) = c.await.expect("client");
        let _ = latency.add(&h);
        for (k, v) in st {
            *statuses.entry(k).or_default() += v;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let ok_count = posted.load(Ordering::Relaxed);
    let errors: u64 = statuses
        .iter()
        .filter(|(k, _)| !matches!(k, 200 | 201))
        .map(|(_, v)| v)
        .sum();
    json!({
        "scenario": "ingest",
        "path": path,
        "ok": errors == 0 && ok_count > 0,
        "targets": args.target,
        "connections": args.connections,
        "requests": latency.len(),
        "stored": ok_count,
        "statuses": statuses,
        "errors": errors,
        "secs": secs,
        "eventsPerSec": ok_count as f64 / secs,
        "latency": latency_json(&latency),
        "costs": costs(args, cpu_start, self_cpu),
    })
}
