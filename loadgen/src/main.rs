//! `afw-loadgen`: measures a gateway the way its users choose one: connections held and memory
//! per connection (`idle`), fan-out rate, loss and delivery latency (`fanout`), and HTTP ingest
//! (`ingest`). Every published event carries the load generator's own send time and a counter,
//! so loss and latency are measured against any server speaking the same routes, whether or
//! not it assigns `seq`.
//!
//! `afw-loadgen <idle|fanout|ingest> --target URL[,URL...] [--connections N] [--sessions N]
//! [--rate N] [--duration SECS] [--json]`; see `--help`.

mod net;
mod procfs;
mod services;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use futures::StreamExt;
use hdrhistogram::Histogram;
use hyper::body::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use net::Target;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Open N WebSocket connections, each subscribed to a session, and hold them.
    Idle,
    /// N subscribers over S sessions while publishers POST events at --rate.
    Fanout,
    /// POST /api/events as fast as the server answers, over --connections keep-alive clients.
    Ingest,
    /// Lock acquire+release pairs, each client on a lock of its own.
    Locks,
    /// Job enqueue, claim and complete cycles (the claim's latency is reported).
    Jobs,
    /// Jobs as busy workers run them: bulk enqueues, and completions that claim the next job.
    Workers,
    /// Cache GETs that hit.
    Cache,
}

#[derive(Parser, Debug)]
#[command(
    name = "afw-loadgen",
    version,
    about = "Load generator for afw-gateway"
)]
pub(crate) struct Args {
    scenario: Scenario,
    /// Gateway base URLs (http://IP:PORT), comma-separated; clients and publishers are spread
    /// over them round-robin.
    #[arg(long, value_delimiter = ',', required = true)]
    target: Vec<String>,
    /// WebSocket connections (idle, fanout) or HTTP connections (ingest).
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Sessions the subscribers are spread over.
    #[arg(long, default_value_t = 10)]
    sessions: usize,
    /// Events per second, in all (fanout).
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Seconds to hold (idle), publish (fanout) or post (ingest).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Publishing connections (fanout); each has one request in flight.
    #[arg(long, default_value_t = 8)]
    publishers: usize,
    /// Bytes of padding in each event, to model larger payloads.
    #[arg(long, default_value_t = 0)]
    payload_bytes: usize,
    /// Gateway process ids (comma-separated), to measure their CPU and resident memory.
    #[arg(long, value_delimiter = ',')]
    gateway_pid: Vec<u32>,
    /// Connections opened at once while connecting.
    #[arg(long, default_value_t = 512)]
    connect_concurrency: usize,
    /// Bearer API key for the gateway.
    #[arg(long, env = "AFW_LOADGEN_API_KEY")]
    api_key: Option<String>,
    /// Print one JSON object with every figure instead of a table.
    #[arg(long)]
    json: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let targets: Result<Vec<Target>, String> = args
        .target
        .iter()
        .map(|t| Target::parse(t, args.api_key.clone()))
        .collect();
    let targets = match targets {
        Ok(t) if !t.is_empty() => t,
        Ok(_) => fail("give at least one --target"),
        Err(e) => fail(&e),
    };
    let need = args.connections as u64 * 2 + 1024;
    let nofile = procfs::raise_nofile(need);
    if nofile < need {
        eprintln!(
            "afw-loadgen: the open-file limit is {nofile}; {} connections need about {need} \
             (run `ulimit -n {need}` first, as root if the hard limit is lower)",
            args.connections
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let report = runtime.block_on(async {
        match args.scenario {
            Scenario::Idle => idle(&args, &targets).await,
            Scenario::Fanout => fanout(&args, &targets).await,
            Scenario::Ingest => ingest(&args, &targets).await,
            Scenario::Locks => services::run(services::Kind::Locks, &args, &targets).await,
            Scenario::Jobs => services::run(services::Kind::Jobs, &args, &targets).await,
            Scenario::Workers => services::run(services::Kind::Workers, &args, &targets).await,
            Scenario::Cache => services::run(services::Kind::Cache, &args, &targets).await,
        }
    });
    let ok = report["ok"].as_bool().unwrap_or(false);
    if args.json {
        println!("{report}");
    } else {
        print_table(&report);
    }
    if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("afw-loadgen: {msg}");
    std::process::exit(64)
}

fn print_table(report: &Value) {
    fn walk(prefix: &str, v: &Value) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v);
                }
            }
            other => println!("{prefix:<40} {other}"),
        }
    }
    walk("", report);
}

/// A unique prefix for this run's session ids.
pub(crate) fn run_id() -> String {
    format!("lg{}", std::process::id())
}

/// The load generator's own CPU and memory, beside the gateway's.
pub(crate) fn costs(args: &Args, cpu_start: Option<f64>, self_cpu_start: Option<f64>) -> Value {
    let me = std::process::id();
    let gw_cpu = procfs::sum(&args.gateway_pid, procfs::cpu_secs)
        .zip(cpu_start)
        .map(|(now, start)| now - start);
    json!({
        "gatewayCpuSecs": gw_cpu,
        "gatewayRssBytes": procfs::sum(&args.gateway_pid, procfs::rss_f64),
        "loadgenCpuSecs": procfs::cpu_secs(me).zip(self_cpu_start).map(|(n, s)| n - s),
        "loadgenRssBytes": procfs::rss_bytes(me),
    })
}

/// Prints a progress line to stderr every second until `stop` is set.
pub(crate) fn progress(
    label: &'static str,
    counters: Vec<(&'static str, Arc<AtomicU64>)>,
    stop: Arc<AtomicBool>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let parts: Vec<String> = counters
                .iter()
                .map(|(k, v)| format!("{k} {}", v.load(Ordering::Relaxed)))
                .collect();
            eprintln!("afw-loadgen {label}: {}", parts.join(", "));
        }
    });
}

/// Opens `n` subscribed WebSocket connections, connection `i` on target `i % targets` to
/// session `i % sessions`, and hands each to `serve`.
async fn open_subscribers<F, Fut>(
    args: &Args,
    targets: &[Target],
    n: usize,
    opened: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    serve: F,
) -> Vec<tokio::task::JoinHandle<()>>
where
    F: Fn(usize, net::Ws) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let gate = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let run = run_id();
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let target = targets[i % targets.len()].clone();
        // The how-manyth connection to its target, which picks its source address.
        let nth = i / targets.len();
        let session = format!("{run}-{}", i % args.sessions.max(1));
        let permit = Arc::clone(&gate).acquire_owned().await.expect("semaphore");
        let (opened, failed, serve) = (opened.clone(), failed.clone(), serve.clone());
        handles.push(tokio::spawn(async move {
            let src = net::source_for(&target, nth);
            let connected = net::subscribe(&target, src, &session).await;
            drop(permit);
            match connected {
                Ok(ws) => {
                    opened.fetch_add(1, Ordering::Relaxed);
                    serve(i, ws).await;
                }
                Err(e) => {
                    if failed.fetch_add(1, Ordering::Relaxed) < 5 {
                        eprintln!("afw-loadgen: connection {i} failed: {e}");
                    }
                }
            }
        }));
    }
    // Wait until every connection has been tried.
    let _ = gate
        .acquire_many(args.connect_concurrency.max(1) as u32)
        .await;
    handles
}

async fn idle(args: &Args, targets: &[Target]) -> Value {
    let self_cpu = procfs::cpu_secs(std::process::id());
    let rss_before = procfs::sum(&args.gateway_pid, procfs::rss_f64);
    let opened = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let closed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    progress(
        "idle",
        vec![
            ("open", opened.clone()),
            ("failed", failed.clone()),
            ("closed", closed.clone()),
        ],
        stop.clone(),
    );
    let started = Instant::now();
    let hold = {
        let closed = closed.clone();
        let stop = stop.clone();
        move |_i: usize, mut ws: net::Ws| {
            let closed = closed.clone();
            let stop = stop.clone();
            async move {
                // Reading answers the server's pings; anything ending the stream is a close.
                loop {
                    tokio::select! {
                        m = ws.next() => match m {
                            Some(Ok(_)) => continue,
                            _ => {
                                if !stop.load(Ordering::Relaxed) {
                                    closed.fetch_add(1, Ordering::Relaxed);
                                }
                                return;
                            }
                        },
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {
                            if stop.load(Ordering::Relaxed) {
                                return;
                            }
                        }
                    }
                }
            }
        }
    };
    let handles = open_subscribers(
        args,
        targets,
        args.connections,
        opened.clone(),
        failed.clone(),
        hold,
    )
    .await;
    let connect_secs = started.elapsed().as_secs_f64();
    // Let the gateway settle, then measure, hold, and measure again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_held = procfs::sum(&args.gateway_pid, procfs::rss_f64);
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    let rss_end = procfs::sum(&args.gateway_pid, procfs::rss_f64);
    let costs = costs(args, None, self_cpu);
    stop.store(true, Ordering::Relaxed);
    let held = opened.load(Ordering::Relaxed) - closed.load(Ordering::Relaxed);
    let per_conn = rss_before
        .zip(rss_held)
        .filter(|_| held > 0)
        .map(|(b, h)| (h - b) / held as f64);
    for h in handles {
        h.abort();
    }
    let failures = failed.load(Ordering::Relaxed);
    json!({
        "scenario": "idle",
        "ok": failures == 0 && closed.load(Ordering::Relaxed) == 0,
        "targets": args.target,
        "connectionsRequested": args.connections,
        "connectionsHeld": held,
        "failures": failures,
        "closedByServer": closed.load(Ordering::Relaxed),
        "connectSecs": connect_secs,
        "gatewayRssBeforeBytes": rss_before,
        "gatewayRssHeldBytes": rss_held,
        "gatewayRssEndBytes": rss_end,
        "gatewayRssPerConnectionBytes": per_conn,
        "costs": costs,
    })
}

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

fn micros_since(base: Instant) -> u64 {
    base.elapsed().as_micros() as u64
}

pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

pub(crate) fn latency_json(h: &Histogram<u64>) -> Value {
    let ms = |us: u64| us as f64 / 1000.0;
    json!({
        "samples": h.len(),
        "p50Ms": ms(h.value_at_quantile(0.5)),
        "p99Ms": ms(h.value_at_quantile(0.99)),
        "p999Ms": ms(h.value_at_quantile(0.999)),
        "maxMs": ms(h.max()),
    })
}

struct SubscriberResult {
    session: usize,
    seen: Seen,
    latency: Histogram<u64>,
}

async fn fanout(args: &Args, targets: &[Target]) -> Value {
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
        move |i: usize, mut ws: net::Ws| {
            let delivered = delivered.clone();
            let done = done.clone();
            let results_tx = results_tx.clone();
            async move {
                let mut seen = Seen::default();
                let mut latency = histogram();
                loop {
                    let m = tokio::select! {
                        m = ws.next() => m,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {
                            if done.load(Ordering::Relaxed) { break } else { continue }
                        }
                    };
                    let text = match m {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(_)) => continue,
                        _ => break,
                    };
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
                match http.post("/api/events", Bytes::from(body)).await {
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

async fn ingest(args: &Args, targets: &[Target]) -> Value {
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
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..args.connections.max(1) {
        let target = targets[c % targets.len()].clone();
        let (posted, pad, run) = (posted.clone(), pad.clone(), run.clone());
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
                let body = format!(
                    r#"{{"sessionId":"{run}-{}","type":"load","n":{n},"sentAt":{},"pad":"{pad}"}}"#,
                    (c + n as usize) % sessions,
                    micros_since(base)
                );
                let t0 = Instant::now();
                let status = http.post("/api/events", Bytes::from(body)).await;
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
