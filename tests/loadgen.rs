//! Smoke runs of the load generator against real gateway processes: seconds long, tiny
//! numbers, but every figure checked, so the tool and the guarantees it measures stay honest.

mod support;

use serde_json::Value;
use support::{GatewayProcess, RedisServer};

/// Runs afw-loadgen with `args` against `gateways` (targets and pids) and returns its report,
/// failing the test when it reports a failure.
async fn loadgen(args: &[&str], gateways: &[&GatewayProcess]) -> Value {
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let urls: Vec<String> = gateways.iter().map(|g| g.url("")).collect();
    let pids: Vec<String> = gateways.iter().map(|g| g.pid().to_string()).collect();
    args.extend([
        "--target".into(),
        urls.join(","),
        "--gateway-pid".into(),
        pids.join(","),
        "--json".into(),
    ]);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(support::loadgen_binary())
            .args(&args)
            .output()
            .expect("run afw-loadgen")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "afw-loadgen printed no JSON ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    println!("{report}");
    assert!(
        out.status.success(),
        "afw-loadgen reported a failure: {report}"
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_holds_every_connection_and_measures_memory() {
    let gw = GatewayProcess::start(&[]).await;
    let r = loadgen(
        &[
            "idle",
            "--connections",
            "200",
            "--sessions",
            "20",
            "--duration",
            "1",
        ],
        &[&gw],
    )
    .await;
    assert_eq!(r["connectionsHeld"], 200);
    assert_eq!(r["failures"], 0);
    assert_eq!(r["closedByServer"], 0);
    assert!(
        r["gatewayRssPerConnectionBytes"].as_f64().unwrap() > 0.0,
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_over_two_instances_loses_duplicates_and_reorders_nothing() {
    let redis = RedisServer::start().await;
    let a = GatewayProcess::start(&[("REDIS_URL", redis.url())]).await;
    let b = GatewayProcess::start(&[("REDIS_URL", redis.url())]).await;
    let r = loadgen(
        &[
            "fanout",
            "--connections",
            "60",
            "--sessions",
            "6",
            "--rate",
            "300",
            "--duration",
            "2",
            "--publishers",
            "3",
            "--payload-bytes",
            "200",
        ],
        &[&a, &b],
    )
    .await;
    let sent = r["eventsSent"].as_u64().unwrap();
    assert!(sent > 100, "{r}");
    assert_eq!(
        r["deliveriesExpected"],
        sent * 10,
        "60 subscribers over 6 sessions"
    );
    assert_eq!(r["deliveriesReceived"], r["deliveriesExpected"]);
    for k in ["lost", "duplicated", "reordered", "subscriberFailures"] {
        assert_eq!(r[k], 0, "{k}: {r}");
    }
    assert!(r["latency"]["p99Ms"].as_f64().unwrap() > 0.0);
    assert!(r["deliveriesPerGatewayCpuSec"].as_f64().unwrap() > 0.0);
    // Every post was answered 201: stored, and not taken for a duplicate.
    assert_eq!(r["publishStatuses"]["201"], sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_stores_every_post() {
    let gw = GatewayProcess::start(&[]).await;
    let r = loadgen(&["ingest", "--connections", "4", "--duration", "1"], &[&gw]).await;
    let stored = r["stored"].as_u64().unwrap();
    assert!(stored > 0, "{r}");
    assert_eq!(r["errors"], 0);
    assert_eq!(r["requests"], stored);
    assert_eq!(r["statuses"]["201"], stored);
}

/// Each service cycle runs error-free on Redis, and the jobs the `workers` cycle counts as
/// done are the ones the queues hold as completed (none done twice, none left active).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_cycles_run_clean_and_count_what_the_store_holds() {
    let redis = RedisServer::start().await;
    let gw = GatewayProcess::start(&[("REDIS_URL", redis.url())]).await;
    for kind in ["locks", "jobs", "cache"] {
        let r = loadgen(&[kind, "--connections", "4", "--duration", "1"], &[&gw]).await;
        assert!(r["cycles"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["errors"], 0, "{r}");
    }
    let r = loadgen(
        &["workers", "--connections", "8", "--duration", "1"],
        &[&gw],
    )
    .await;
    assert_eq!(r["errors"], 0, "{r}");
    let cycles = r["cycles"].as_u64().unwrap();
    assert!(cycles > 0, "{r}");
    let mut conn = redis.connection().await.unwrap();
    let (mut cursor, mut keys) = (0u64, Vec::new());
    loop {
        let (next, batch): (u64, Vec<String>) = ::redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("*-w*:completed")
            .query_async(&mut conn)
            .await
            .unwrap();
        keys.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let mut completed = 0;
    for k in &keys {
        let n: u64 = ::redis::cmd("ZCARD")
            .arg(k)
            .query_async(&mut conn)
            .await
            .unwrap();
        completed += n;
    }
    assert_eq!(completed, cycles, "every cycle one job completed: {keys:?}");
}

/// The floor `scripts/bench.sh` measures the gateway against: `limit-server` serves the
/// `fanout` scenario with nothing lost, in order, writing frame by frame or coalesced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_server_serves_fanout_in_both_modes() {
    for mode in [&[][..], &["--coalesce", "--write-delay-ms", "2"][..]] {
        let port = support::free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut child = std::process::Command::new(support::loadgen_binary())
            .args(["limit-server", "--listen", &listen])
            .args(mode)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start limit-server");
        let at = support::Endpoint::new(listen.parse().unwrap());
        at.wait_ready().await;
        let out = tokio::task::spawn_blocking({
            let target = at.url("");
            let pid = child.id().to_string();
            move || {
                std::process::Command::new(support::loadgen_binary())
                    .args(["fanout", "--connections", "40", "--sessions", "4"])
                    .args(["--rate", "400", "--duration", "1", "--publishers", "2"])
                    .args(["--target", &target, "--gateway-pid", &pid, "--json"])
                    .output()
                    .expect("run afw-loadgen")
            }
        })
        .await
        .unwrap();
        let _ = child.kill();
        let _ = child.wait();
        let r: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
        assert!(out.status.success(), "{mode:?}: {r}");
        assert!(r["eventsSent"].as_u64().unwrap() > 100, "{r}");
        assert_eq!(r["deliveriesReceived"], r["deliveriesExpected"], "{r}");
        assert!(
            r["deliveriesPerGatewayCpuSec"].as_f64().unwrap() > 0.0,
            "{r}"
        );
    }
}
