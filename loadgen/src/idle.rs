//! `idle`: N subscribers (WebSockets, or SSE streams with `--transport sse`), each of a
//! session, held open; what each costs the gateway in memory.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::feed::Feed;
use crate::net::{self, Target};
use crate::procfs;
use crate::{costs, progress, run_id, Args};

/// Opens `n` subscribers (of `args.transport`), connection `i` on target `i % targets` to
/// session `i % sessions`, and hands each to `serve`.
pub(crate) async fn open_subscribers<F, Fut>(
    args: &Args,
    targets: &[Target],
    n: usize,
    opened: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    serve: F,
) -> Vec<tokio::task::JoinHandle<()>>
where
    F: Fn(usize, Feed) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let gate = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let run = run_id();
    let transport = args.transport;
    let pusher = args.pusher_app.clone();
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let target = targets[i % targets.len()].clone();
        // The how-manyth connection to its target, which picks its source address.
        let nth = i / targets.len();
        let session = format!("{run}-{}", i % args.sessions.max(1));
        let permit = Arc::clone(&gate).acquire_owned().await.expect("semaphore");
        let (opened, failed, serve) = (opened.clone(), failed.clone(), serve.clone());
        let pusher = pusher.clone();
        handles.push(tokio::spawn(async move {
            let src = net::source_for(&target, nth);
            let connected = Feed::open(transport, &pusher, &target, src, &session).await;
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

pub(crate) async fn idle(args: &Args, targets: &[Target]) -> Value {
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
        move |_i: usize, mut feed: Feed| {
            let closed = closed.clone();
            let stop = stop.clone();
            async move {
                // Reading answers the server's pings; anything ending the stream is a close.
                loop {
                    tokio::select! {
                        m = feed.next_text() => match m {
                            Some(_) => continue,
                            None => {
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
        "transport": format!("{:?}", args.transport).to_lowercase(),
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
