//! The `afw-gateway` binary: parse the config, set up logging, bind, and run.

use std::process::ExitCode;

use afw_gateway::config::{Config, LogFormat};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// jemalloc, not glibc's malloc: tokio frees memory on other threads than the one that
/// allocated it, where glibc waits on its arenas' locks. Side by side (`scripts/bench-ab.sh`,
/// BENCHMARKS.md) it made ingest 1.13x as fast and held an idle WebSocket in 0.91x the bytes.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Exit code for a configuration the gateway cannot use (EX_USAGE).
const EXIT_CONFIG: u8 = 64;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "demo") {
        return demo(&args[1..]);
    }
    if args.get(1).is_some_and(|a| a == "token") {
        return token(&args[1..]);
    }
    if args.get(1).is_some_and(|a| a == "backup" || a == "restore") {
        return backup(&args[1..]);
    }
    if args.get(1).is_some_and(|a| a == "cleanup") {
        return cleanup(&args[1..]);
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => {
            // --help or --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let first = e.to_string();
            let line = first.lines().next().unwrap_or("invalid arguments");
            eprintln!("afw-gateway: {}", line.trim_start_matches("error: "));
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // The credentials are made again by `build`; made here first, a bad key entry or key file
    // stops start-up like any bad setting.
    if let Err(e) = config
        .validate()
        .and_then(|()| afw_gateway::credentials::Credentials::new(&config.auth).map(drop))
    {
        eprintln!("afw-gateway: invalid configuration: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    init_tracing(config.log_format);
    raise_open_file_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("afw-gateway: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async move {
        let addr = std::net::SocketAddr::new(config.host, config.port);
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("afw-gateway: cannot bind {addr} (PORT/HOST): {e}");
                return ExitCode::FAILURE;
            }
        };
        match afw_gateway::run(config, listener, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("afw-gateway: {e}");
                ExitCode::FAILURE
            }
        }
    });
    // Whatever is still running after the grace period is dropped, not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

/// A subcommand's arguments, or the exit code once its help (0) or its error (64) is printed.
fn subcommand_args<T: Parser>(args: &[std::ffi::OsString]) -> Result<T, ExitCode> {
    T::try_parse_from(args).map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            ExitCode::from(EXIT_CONFIG)
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// `afw-gateway token --sub ada [--tenant T] [--role viewer] [--ttl 1h] [--sessions 'build-*']`:
/// prints a signed token.
fn token(args: &[std::ffi::OsString]) -> ExitCode {
    let args = match subcommand_args::<afw_gateway::credentials::TokenArgs>(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    match args.token() {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("afw-gateway token: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// The config from the environment and a runtime for a command on the data, or the exit code.
fn data_command() -> Result<(Config, tokio::runtime::Runtime), ExitCode> {
    let config = Config::try_parse_from(["afw-gateway"]).map_err(|e| {
        eprintln!(
            "afw-gateway: {}",
            e.to_string().lines().next().unwrap_or("")
        );
        ExitCode::from(EXIT_CONFIG)
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|_| ExitCode::FAILURE)?;
    Ok((config, runtime))
}

/// `afw-gateway cleanup [--dry-run]`: a line per key space on stderr, the report as JSON on
/// stdout.
fn cleanup(args: &[std::ffi::OsString]) -> ExitCode {
    use afw_gateway::backup as b;
    let a = match subcommand_args::<b::CleanupArgs>(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (config, runtime) = match data_command() {
        Ok(both) => both,
        Err(code) => return code,
    };
    match runtime.block_on(b::cleanup(&config, &a)) {
        Ok(report) => {
            let verb = if report.dry_run {
                "would remove"
            } else {
                "removed"
            };
            for (tenant, c) in &report.tenants {
                eprintln!(
                    "{tenant}: {verb} {} session index members, {} chain index entries, \
                     {} permission index entries, {} finished jobs, {} cache tag members; \
                     {} lapsed locks kept for their fencing tokens",
                    c.session_index,
                    c.chain_index,
                    c.permission_index,
                    c.finished_jobs,
                    c.tag_members,
                    c.lapsed_locks
                );
            }
            println!(
                "{}",
                serde_json::to_string(&report).expect("a report serializes")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("afw-gateway cleanup: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `afw-gateway backup --out FILE` and `afw-gateway restore --in FILE [--replace] [--prefix P]`,
/// on the Redis the environment names; a summary on stderr at the end.
fn backup(args: &[std::ffi::OsString]) -> ExitCode {
    use afw_gateway::backup as b;
    let restoring = args[0] == "restore";
    let (out, input) = if restoring {
        match subcommand_args::<b::RestoreArgs>(args) {
            Ok(a) => (None, Some(a)),
            Err(code) => return code,
        }
    } else {
        match subcommand_args::<b::BackupArgs>(args) {
            Ok(a) => (Some(a), None),
            Err(code) => return code,
        }
    };
    let (config, runtime) = match data_command() {
        Ok(both) => both,
        Err(code) => return code,
    };
    let done = runtime.block_on(async {
        match (&out, &input) {
            (Some(a), _) => b::backup(&config, a).await,
            (_, Some(a)) => b::restore(&config, a).await,
            _ => unreachable!("one of the two"),
        }
    });
    match done {
        Ok(s) if restoring => {
            eprintln!(
                "\rrestored {} keys; {} existed and were left as they are{}; {} had expired",
                s.keys,
                s.existing,
                if s.existing > 0 {
                    " (--replace overwrites them)"
                } else {
                    ""
                },
                s.gone
            );
            ExitCode::SUCCESS
        }
        Ok(s) => {
            eprintln!(
                "\rbacked up {} keys ({} went before they were read)",
                s.keys, s.gone
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("afw-gateway {}: {e}", args[0].to_string_lossy());
            ExitCode::FAILURE
        }
    }
}

/// `afw-gateway demo [--target URL] [--agents N]`: simulated agents until Ctrl-C.
fn demo(args: &[std::ffi::OsString]) -> ExitCode {
    let args = match subcommand_args::<afw_gateway::demo::DemoArgs>(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if let Err(e) = args.validate() {
        eprintln!("afw-gateway demo: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    init_tracing(LogFormat::Pretty);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("afw-gateway demo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        tracing::info!(target = %args.target, agents = args.agents, "demo agents running; Ctrl-C stops them");
        let stop = tokio_util::sync::CancellationToken::new();
        let trigger = stop.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            trigger.cancel();
        });
        afw_gateway::demo::run(args, stop).await;
    });
    ExitCode::SUCCESS
}

/// Every WebSocket holds a file descriptor: lift the soft open-file limit to the hard one (the
/// default soft limit, often 1024, would cap the instance at about a thousand clients).
fn raise_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
            tracing::info!(from = soft, to = hard, "raised the open-file limit");
        } else {
            tracing::info!(limit = soft, "open-file limit");
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown signal received");
}
