//! `afw-loadgen`: measures a gateway the way its users choose one: connections held and memory
//! per connection (`idle`), fan-out rate, loss and delivery latency (`fanout`), and HTTP ingest
//! (`ingest`). Every published event carries the load generator's own send time and a counter,
//! so loss and latency are measured against any server speaking the same routes, whether or
//! not it assigns `seq`.
//!
//! `afw-loadgen <idle|fanout|ingest> --target URL[,URL...] [--connections N] [--sessions N]
//! [--rate N] [--duration SECS] [--json]`; see `--help`. `afw-loadgen limit-server --listen
//! ADDR [--coalesce]` is the other side: the floor fan-out is measured against.

mod fanout;
mod feed;
mod idle;
mod ingest;
mod limit;
mod net;
mod procfs;
mod pusher;
mod services;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use serde_json::{json, Value};

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
    /// Permission prompts: a hook held on one target, decided through the next.
    Permissions,
    /// Serve, not load: the least a server must do for `fanout` (see `--listen`, `--coalesce`).
    LimitServer,
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
    #[arg(long, value_delimiter = ',')]
    target: Vec<String>,
    /// Where `limit-server` listens (IP:PORT).
    #[arg(long, default_value = "127.0.0.1:3099")]
    listen: std::net::SocketAddr,
    /// `limit-server` writes every frame queued for a connection in one `writev`, not one
    /// `write` per frame.
    #[arg(long)]
    coalesce: bool,
    /// With `--coalesce`, milliseconds a writer waits after its first frame for more.
    #[arg(long, default_value_t = 0.0)]
    write_delay_ms: f64,
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
    /// How subscribers (idle, fanout) connect: a WebSocket, or a server-sent-events stream.
    #[arg(long, value_enum, default_value = "ws")]
    transport: feed::Transport,
    /// The Pusher app (`ID:KEY:SECRET`) with `--transport pusher`.
    #[arg(long, default_value = "afw:afw-key:afw-secret")]
    pusher_app: pusher::App,
    /// Connections opened at once while connecting.
    #[arg(long, default_value_t = 512)]
    connect_concurrency: usize,
    /// Bearer API key for the gateway.
    #[arg(long, env = "AFW_LOADGEN_API_KEY")]
    api_key: Option<String>,
    /// Ingest posts Claude Code hooks (`PostToolUse`, each of its own `tool_use_id`) to
    /// `/api/hooks/claude-code` instead of events to `/api/events`.
    #[arg(long)]
    hooks: bool,
    /// Print one JSON object with every figure instead of a table.
    #[arg(long)]
    json: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.scenario == Scenario::LimitServer {
        return limit_server(&args);
    }
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
            Scenario::Idle => idle::idle(&args, &targets).await,
            Scenario::Fanout => fanout::fanout(&args, &targets).await,
            Scenario::Ingest => ingest::ingest(&args, &targets).await,
            Scenario::Locks => services::run(services::Kind::Locks, &args, &targets).await,
            Scenario::Jobs => services::run(services::Kind::Jobs, &args, &targets).await,
            Scenario::Workers => services::run(services::Kind::Workers, &args, &targets).await,
            Scenario::Cache => services::run(services::Kind::Cache, &args, &targets).await,
            Scenario::Permissions => {
                services::run(services::Kind::Permissions, &args, &targets).await
            }
            Scenario::LimitServer => unreachable!("served above"),
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

fn limit_server(args: &Args) -> std::process::ExitCode {
    procfs::raise_nofile(200_000);
    let mode = limit::Mode {
        coalesce: args.coalesce,
        delay: Duration::from_secs_f64(args.write_delay_ms.max(0.0) / 1000.0),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(limit::serve(args.listen, mode)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => fail(&format!("limit-server: {e}")),
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

/// How events are published: the gateway's `POST /api/events`, or a Pusher peer's signed
/// `POST /apps/{id}/events`.
#[derive(Clone)]
pub(crate) struct Publish(Option<pusher::App>);

impl Publish {
    pub(crate) fn of(args: &Args) -> Publish {
        Publish((args.transport == feed::Transport::Pusher).then(|| args.pusher_app.clone()))
    }

    /// The path and body that publish `event` (JSON with `sessionId`) to `session`.
    pub(crate) fn request(&self, session: &str, event: String) -> (String, hyper::body::Bytes) {
        match &self.0 {
            Some(app) => app.publish(session, &event),
            None => ("/api/events".into(), event.into()),
        }
    }
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
