//! `fanout`: N subscribers over S sessions while publishers post at a rate; every delivery
//! checked for loss, duplicates and order, with its latency.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::feed::Feed;
use crate::idle::open_subscribers;
use crate::net::{self, Target};
use crate::procfs;
use crate::{costs, histogram, latency_json, progress, run_id, Args, Publish};

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(default)]
    payload: Option<Payload>,
}

#[derive(Deserialize)]
struct Payload {
    n: Option<u64>,
    #[serde(rename = "sentAt")]
    sent_at: Option<u64>,
}

/// What one subscriber saw of its session's counter `n` (0, 1, 2, ...).
#[derive(Default)]
struct Seen {
    next: u64,
    missing: std::collections::BTreeSet<u64>,
    received: u64,
    duplicated: u64,
    reordered: u64,
}

impl Seen {
    fn saw(&mut self, n: u64) {
        self.received += 1;
        if n == self.next {
            self.next += 1;
        } else if n > self.next {
            self.missing.extend(self.next..n);
            self.next = n + 1;
        } else if self.missing.remove(&n) {
            self.reordered += 1;
        } else {
            self.duplicated += 1;
        }
    }

    /// Events of the session this subscriber never got, given how many were sent.
    fn lost(&self, sent: u64) -> u64 {
        self.missing.len() as u64 + sent.saturating_sub(self.next)
    }
}

pub(crate) fn micros_since(base: Instant) -> u64 {
    base.elapsed().as_micros() as u64
}

struct SubscriberResult {
    session: usize,
    seen: Seen,
    latency: Histogram<u64>,
}

pub(crate) async fn fanout(args: &Args, targets: &[Target]) -> Value {
    let base = Instant::now();
    let sessions = args.sessions.max(1);
    let opened = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let delivered = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    progress(
        "fanout",
        vec![
            ("subscribed", opened.clone()),
            ("sent", sent.clone()),
            ("delivered", delivered.clone()),
        ],
        stop.clone(),
    );
    let (results_tx, mut results_rx) = tokio::sync::mpsc::unbounded_channel::<SubscriberResult>();
    let serve = {
        let delivered = delivered.clone();
        let done = done.clone();
        move |i: usize, mut feed: Feed| {
            let delivered = delivered.clone();
            let done = done.clone();
            let results_tx = results_tx.clone();
            async move {
                let mut seen = Seen::default();
                let mut latency = histogram();
                loop {
                    let m = tokio::select! {
                        m = feed.next_text() => m,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {
                            if done.load(Ordering::Relaxed) { break } else { continue }
                        }
                    };
                    let Some(text) = m else { break };
                    let Ok(frame) = serde_json::from_str::<Frame<'_>>(&text) else {
                        continue;
                    };
                    if frame.kind != "event" {
                        continue;
                    }
                    if let Some(Payload {
                        n: Some(n),
                        sent_at: Some(at),
                    }) = frame.payload
                    {
                        let _ = latency.record(micros_since(base).saturating_sub(at).max(1));
                        seen.saw(n);
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let _ = results_tx.send(SubscriberResult {
                    session: i % sessions,
                    seen,
                    latency,
                });
            }
        }
    };
    let subs = open_subscribers(
        args,
        targets,
        args.connections,
        opened.clone(),
        failed.clone(),
        serve,
    )
    .await;
    let subscribed = opened.load(Ordering::Relaxed);
    let mut per_session_subs = vec![0u64; sessions];
    for i in 0..args.connections {
        per_session_subs[i % sessions] += 1;
    }

    // Publishers: session s belongs to publisher s % P, so its counter goes out in order.
    let cpu_start = procfs::sum(&args.gateway_pid, procfs::cpu_secs);
    let self_cpu = procfs::cpu_secs(std::process::id());
    let publishers = args.publishers.clamp(1, sessions);
    let per_pub_rate = args.rate as f64 / publishers as f64;
    let publish_for = Duration::from_secs_f64(args.duration);
    let pad = "x".repeat(args.payload_bytes);
    let run = run_id();
    let started = Instant::now();
    let mut pubs = Vec::new();
    for p in 0..publishers {
        let target = targets[p % targets.len()].clone();
        let mine: Vec<usize> = (0..sessions).filter(|s| s % publishers == p).collect();
        let (sent, pad, run) = (sent.clone(), pad.clone(), run.clone());
        let publish = Publish::of(args);
        pubs.push(tokio::spawn(async move {
            let mut counts = vec![0u64; sessions];
            let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
            let Ok(mut http) = net::Http::connect(&target).await else {
                *statuses.entry(0).or_default() += 1;
                return (counts, statuses);
            };
            let mut k: u64 = 0;
            while started.elapsed() < publish_for {
                let due = started + Duration::from_secs_f64(k as f64 / per_pub_rate);
                tokio::time::sleep_until(due.into()).await;
                let s = mine[(k as usize) % mine.len()];
                let n = counts[s];
                let body = format!(
                    r#"{{"sessionId":"{run}-{s}","type":"load","n":{n},"sentAt":{},"pad":"{pad}"}}"#,
                    micros_since(base)
                );
                let (path, body) = publish.request(&format!("{run}-{s}"), body);
                match http.post(&path, body).await {
                    Some(st @ (200 | 201)) => {
                        counts[s] += 1;
                        sent.fetch_add(1, Ordering::Relaxed);
                        *statuses.entry(st).or_default() += 1;
                    }
                    Some(st) => *statuses.entry(st).or_default() += 1,
                    None => {
                        *statuses.entry(0).or_default() += 1;
                        match net::Http::connect(&target).await {
                            Ok(h) => http = h,
                            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                        }
                    }
                }
                k += 1;
            }
            (counts, statuses)
        }));
    }
    let mut sent_per_session = vec![0u64; sessions];
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for p in pubs {
        let (counts, st) = p.await.expect("publisher");
        for (s, c) in counts.into_iter().enumerate() {
            sent_per_session[s] += c;
        }
        for (k, v) in st {
            *statuses.entry(k).or_default() += v;
        }
    }
    let publish_secs = started.elapsed().as_secs_f64();
    let expected: u64 = (0..sessions)
        .map(|s| sent_per_session[s] * per_session_subs[s])
        .sum();
    // Drain: until everything expected arrived, or nothing arrived for 3 s.
    let mut last = delivered.load(Ordering::Relaxed);
    let mut quiet_since = Instant::now();
    while delivered.load(Ordering::Relaxed) < expected
        && quiet_since.elapsed() < Duration::from_secs(3)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = delivered.load(Ordering::Relaxed);
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
    }
    let deliver_secs = started.elapsed().as_secs_f64();
    let costs = costs(args, cpu_start, self_cpu);
    done.store(true, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for s in subs {
        let _ = s.await;
    }
    let mut latency = histogram();
    let (mut received, mut lost, mut duplicated, mut reordered) = (0u64, 0u64, 0u64, 0u64);
    while let Ok(r) = results_rx.try_recv() {
        received += r.seen.received;
        lost += r.seen.lost(sent_per_session[r.session]);
        duplicated += r.seen.duplicated;
        reordered += r.seen.reordered;
        let _ = latency.add(&r.latency);
    }
    // Subscribers that never connected lose everything of their session.
    let events_sent: u64 = sent_per_session.iter().sum();
    let failed_subs = failed.load(Ordering::Relaxed);
    let publish_errors: u64 = statuses
        .iter()
        .filter(|(k, _)| !matches!(k, 200 | 201))
        .map(|(_, v)| v)
        .sum();
    let gw_cpu = costs["gatewayCpuSecs"].as_f64();
    json!({
        "scenario": "fanout",
        "transport": format!("{:?}", args.transport).to_lowercase(),
        "ok": lost == 0 && duplicated == 0 && reordered == 0 && failed_subs == 0 && publish_errors == 0 && received == expected,
        "targets": args.target,
        "subscribers": subscribed,
        "subscriberFailures": failed_subs,
        "sessions": sessions,
        "rateRequested": args.rate,
        "eventsSent": events_sent,
        "publishStatuses": statuses,
        "deliveriesExpected": expected,
        "deliveriesReceived": received,
        "lost": lost,
        "duplicated": duplicated,
        "reordered": reordered,
        "publishSecs": publish_secs,
        "eventsPerSec": events_sent as f64 / publish_secs,
        "deliveriesPerSec": received as f64 / deliver_secs,
        "deliveriesPerGatewayCpuSec": gw_cpu.filter(|c| *c > 0.0).map(|c| received as f64 / c),
        "latency": latency_json(&latency),
        "costs": costs,
    })
}

#[cfg(test)]
mod tests {
    use super::Seen;

    #[test]
    fn counts_gaps_reorders_and_duplicates() {
        let mut s = Seen::default();
        for n in [0, 1, 3, 2, 2, 5] {
            s.saw(n);
        }
        assert_eq!((s.received, s.reordered, s.duplicated), (6, 1, 1));
        // 4 never came, and 6 and 7 of the 8 sent did not either.
        assert_eq!(s.lost(8), 3);
    }
}
