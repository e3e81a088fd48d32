//! What operators look at: Redis as it reports itself (`/api/health/redis`) and each
//! dependency's state (`/health?checks=true`), on the embedded store, on a live Redis, on one
//! whose policy can evict the gateway's keys, and on one that is gone; its password never in
//! an answer.

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use support::ws::WsClient;
use support::{Gateway, RedisServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_embedded_store_redis_is_disabled_and_the_checks_are_healthy() {
    let gw = Gateway::start(support::config(None)).await;
    let (s, body) = gw.get("/api/health/redis").await;
    assert_eq!((s, &body["status"]), (200, &json!("disabled")), "{body}");
    let (s, body) = gw.get("/health?checks=true").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["status"], "healthy", "{body}");
    assert_eq!(body["checks"]["store"]["status"], "up", "{body}");
    let (s, body) = gw.get("/health").await;
    assert_eq!((s, &body["status"]), (200, &json!("ok")));
    assert!(
        body.get("checks").is_none(),
        "plain /health asks nothing: {body}"
    );
    let (s, body) = gw.get("/health?checks=maybe").await;
    assert_eq!(s, 400, "{body}");
    assert!(body["error"].is_string(), "{body}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_reports_itself_warns_of_an_evicting_policy_and_is_503_when_gone() {
    let mut redis = RedisServer::start().await;
    const PASSWORD: &str = "s3cret-redis-pass";
    let url = redis.require_password(PASSWORD).await;
    let mut config = support::config(Some(&redis));
    config.store.redis_url = Some(url.clone());
    let gw = Gateway::start(config).await;
    gw.post_event(json!({"sessionId": "ops-1", "type": "t"}))
        .await;

    let (s, r) = gw.get("/api/health/redis").await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["status"], "up", "{r}");
    assert_eq!(r["mode"], "standalone", "{r}");
    assert_eq!(r["role"], "master", "{r}");
    assert!(r["latencyMs"].as_f64().is_some_and(|l| l >= 0.0), "{r}");
    assert!(
        r["keys"].as_u64().is_some_and(|k| k >= 2),
        "the event's keys: {r}"
    );
    assert!(r["usedMemory"].as_u64().is_some_and(|m| m > 0), "{r}");
    assert!(r["usedMemoryHuman"].is_string(), "{r}");
    assert_eq!(r["maxMemory"], 0, "{r}");
    assert_eq!(r["evictionPolicy"], "noeviction", "{r}");
    assert!(r["version"].as_str().is_some_and(|v| !v.is_empty()), "{r}");
    assert!(
        r["connectedClients"].as_u64().is_some_and(|n| n >= 2),
        "{r}"
    );
    assert_eq!(r["pubsub"]["subscribed"], true, "{r}");
    assert_eq!(r["pubsub"]["channels"], 4, "{r}");
    assert_eq!(r["pubsub"]["reconnects"], 0, "{r}");
    assert!(
        r["pubsub"]["lastMessageAgeMs"].is_u64(),
        "the event came by pub/sub: {r}"
    );
    assert_eq!(r["warnings"], json!([]), "{r}");
    let (s, h) = gw.get("/health?checks=true").await;
    assert_eq!((s, &h["status"]), (200, &json!("healthy")), "{h}");
    assert_eq!(h["checks"]["redis"]["status"], "up", "{h}");
    assert_eq!(h["checks"]["pubsub"]["status"], "up", "{h}");

    let mut c = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // The probe's checks ask Redis for a PING only; the operator's report for INFO too.
    let infos = |text: String| {
        let line = text
            .lines()
            .find(|l| l.starts_with("cmdstat_info:"))
            .unwrap_or("");
        let calls = line.split("calls=").nth(1).unwrap_or("0");
        calls.split(',').next().unwrap().parse::<u64>().unwrap()
    };
    let mut stats = redis::cmd("INFO");
    stats.arg("commandstats");
    let before = infos(stats.query_async(&mut c).await.unwrap());
    gw.get("/health?checks=true").await;
    let after = infos(stats.query_async(&mut c).await.unwrap());
    assert_eq!(after, before + 1, "only the test's own INFO");
    gw.get("/api/health/redis").await;
    let last = infos(stats.query_async(&mut c).await.unwrap());
    assert_eq!(last, after + 2, "the report's INFO and the test's");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .query_async(&mut c)
        .await
        .unwrap();
    let (_, r) = gw.get("/api/health/redis").await;
    let warning = r["warnings"][0].as_str().unwrap_or_default();
    assert!(
        warning.contains("allkeys-lru") && warning.contains("noeviction"),
        "{r}"
    );

    redis.kill9();
    let (s, r) = gw.get("/api/health/redis").await;
    assert_eq!((s, &r["status"]), (503, &json!("down")), "{r}");
    assert!(r["error"].as_str().is_some_and(|e| !e.is_empty()), "{r}");
    let (s, h) = gw.get("/health?checks=true").await;
    assert_eq!((s, &h["status"]), (503, &json!("unhealthy")), "{h}");
    assert_eq!(h["checks"]["redis"]["status"], "down", "{h}");
    let (s, _) = gw.get("/health").await;
    assert_eq!(s, 200, "liveness does not depend on Redis");
    for body in [r.to_string(), h.to_string()] {
        assert!(!body.contains(PASSWORD), "the password leaked: {body}");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_health_is_the_operators() {
    let mut config = support::config(None);
    config.auth.api_keys = vec![
        "admin-key-0123456789".into(),
        "default:viewer-key-012345678:viewer".into(),
        "other:other-admin-key-01234567:admin".into(),
    ];
    let gw = Gateway::start(config).await;
    let (s, _) = gw.endpoint().get("/api/health/redis").await;
    assert_eq!(s, 401);
    let (s, _) = gw
        .with_key("viewer-key-012345678")
        .get("/api/health/redis")
        .await;
    assert_eq!(s, 403, "a viewer");
    let (s, _) = gw
        .with_key("other-admin-key-01234567")
        .get("/api/health/redis")
        .await;
    assert_eq!(s, 403, "another tenant's admin");
    let (s, _) = gw
        .with_key("admin-key-0123456789")
        .get("/api/health/redis")
        .await;
    assert_eq!(s, 200);
    let (s, h) = gw.endpoint().get("/health?checks=true").await;
    assert_eq!(s, 200, "probes need no credentials: {h}");
    gw.stop().await;
}

/// The text of `/metrics`.
async fn scrape(gw: &Gateway) -> String {
    let resp = gw.http.get(gw.url("/metrics")).send().await.unwrap();
    resp.text().await.unwrap()
}

/// Every sample of `/metrics` whose name and labels start with `prefix`, summed.
async fn sample(gw: &Gateway, prefix: &str) -> f64 {
    let text = scrape(gw).await;
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_named_job_queues_depths_are_read_at_the_scrape() {
    let mut config = support::config(None);
    config.operations.metrics_job_queues = vec!["q1".into()];
    let gw = Gateway::start(config).await;
    for i in 0..3 {
        let (s, v) = gw
            .post(
                "/api/queues/q1/jobs",
                json!({"type": "t", "data": {"i": i}}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    gw.post("/api/queues/q2/jobs", json!({"type": "t"})).await;
    let (s, v) = gw
        .post("/api/queues/q1/claim", json!({"workerId": "w1"}))
        .await;
    assert_eq!(s, 200, "{v}");
    let depth = |state: &str| format!("afw_job_queue_jobs{{queue=\"q1\",state=\"{state}\"}}");
    assert_eq!(sample(&gw, &depth("waiting")).await, 2.0);
    assert_eq!(sample(&gw, &depth("active")).await, 1.0);
    assert_eq!(sample(&gw, &depth("dead")).await, 0.0);
    let text = scrape(&gw).await;
    assert!(
        !text.contains("queue=\"q2\""),
        "only the named queues: {text}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_histograms_by_route_fan_out_latency_and_redis_commands() {
    let mut redis = RedisServer::start().await;
    let gw = Gateway::start(support::config(Some(&redis))).await;
    let mut ws = WsClient::connect(&gw.ws_url()).await;
    gw.post("/api/sessions", json!({"id": "m-1"})).await;
    ws.subscribe("m-1", None, None).await;
    // Latencies are observed for one written batch in eight per worker thread.
    let mut epoch = String::new();
    for i in 0..40 {
        gw.post_event(json!({"sessionId": "m-1", "type": "t", "i": i}))
            .await;
        epoch = ws.next_event().await["epoch"].as_str().unwrap().to_string();
    }
    // Resumes by outcome: from seq 38 of the stream's epoch, and from another epoch.
    for (e, want) in [(epoch.as_str(), true), ("not-the-epoch", false)] {
        let mut again = WsClient::connect(&gw.ws_url()).await;
        let confirm = again.subscribe("m-1", Some(38), Some(e)).await;
        assert_eq!(confirm["payload"]["recovered"], want, "{confirm}");
        again.close().await;
    }
    assert_eq!(
        sample(&gw, "afw_resumes_total{outcome=\"recovered\"}").await,
        1.0
    );
    assert_eq!(
        sample(&gw, "afw_resumes_total{outcome=\"unrecoverable\"}").await,
        1.0
    );
    let (s, _) = gw.get("/no/such/route").await;
    assert_eq!(s, 404);
    let count = "afw_http_request_duration_seconds_count";
    let events = format!("{count}{{route=\"/api/events\",class=\"2xx\"}}");
    assert_eq!(sample(&gw, &events).await, 40.0);
    let bucket =
        "afw_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/api/events\",class=\"2xx\"}";
    assert_eq!(sample(&gw, bucket).await, 40.0);
    let unmatched = format!("{count}{{route=\"unmatched\",class=\"4xx\"}}");
    assert_eq!(
        sample(&gw, &unmatched).await,
        1.0,
        "a raw path is never a label"
    );
    assert_eq!(
        sample(&gw, "afw_frames_out_total{type=\"event\"}").await,
        40.0
    );
    assert!(sample(&gw, "afw_bytes_out_total").await > 0.0);
    assert!(sample(&gw, "afw_fanout_latency_seconds_count").await >= 1.0);
    assert!(sample(&gw, "afw_hub_queue_seconds_count").await >= 1.0);
    assert!(sample(&gw, "afw_subscriptions ").await >= 1.0);
    assert_eq!(sample(&gw, "afw_sessions_watched ").await, 1.0);
    // The store's commands by op: the append script by its name (its first call is sent
    // again once the script is loaded).
    let appends = "redis_commands_total{op=\"events_append\"}";
    assert!((40.0..=41.0).contains(&sample(&gw, appends).await));
    let timed = "redis_command_duration_seconds_count{op=\"events_append\"}";
    assert_eq!(sample(&gw, timed).await, sample(&gw, appends).await);
    assert_eq!(sample(&gw, "redis_connection_status ").await, 1.0);

    redis.kill9();
    let (s, _) = gw.get("/api/sessions/m-1").await;
    assert_eq!(s, 503);
    assert!(sample(&gw, "redis_commands_failed_total{").await >= 1.0);
    assert_eq!(sample(&gw, "redis_connection_status ").await, 0.0);
    ws.close().await;
    gw.stop().await;
}

fn promtool() -> String {
    std::env::var("AFW_PROMTOOL").unwrap_or_else(|_| "promtool".into())
}

/// Runs promtool with `args` in `dir`, `stdin` piped in; its exit status and output.
fn run_promtool(args: &[&str], dir: &Path, stdin: &str) -> (bool, String) {
    let mut child = Command::new(promtool())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}): scripts/test.sh installs it (apt-get install prometheus)")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Every metric `src/metrics/mod.rs` registers, with its kind: a labelled family is served
/// only once it has a child (a close code, a failed op), so a scrape alone does not list it.
fn registered(root: &Path) -> Vec<(String, &'static str)> {
    let src = std::fs::read_to_string(root.join("src/metrics/mod.rs")).unwrap();
    let lines: Vec<&str> = src.lines().map(str::trim).collect();
    let mut found = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if *l != "registry.register(" {
            continue;
        }
        let name = lines[i + 1].trim_matches(|c| c == '"' || c == ',');
        let field = lines[i + 3]
            .strip_prefix("m.")
            .and_then(|f| f.split('.').next())
            .unwrap_or_else(|| panic!("registry.register's third line: {}", lines[i + 3]));
        let declared = lines
            .iter()
            .find(|d| {
                d.starts_with(&format!("pub {field}: ")) || d.starts_with(&format!("{field}: "))
            })
            .unwrap_or_else(|| panic!("the field {field}"));
        let kind = if declared.contains("Histogram") {
            "histogram"
        } else if declared.contains("Counter") {
            "counter"
        } else {
            "gauge"
        };
        found.push((name.to_string(), kind));
    }
    found
}

/// The metric names a `/metrics` text serves, and those registered but not yet served, as
/// PromQL sees them (a counter's `_total`, a histogram's `_bucket`, `_count` and `_sum`).
fn served(text: &str, registered: &[(String, &'static str)]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let typed = text.lines().filter_map(|l| l.strip_prefix("# TYPE "));
    let typed = typed.filter_map(|rest| rest.split_once(' '));
    let all = typed.chain(registered.iter().map(|(n, k)| (n.as_str(), *k)));
    for (name, kind) in all {
        match kind {
            "counter" => names.insert(format!("{name}_total")),
            "histogram" => {
                for s in ["_bucket", "_count", "_sum"] {
                    names.insert(format!("{name}{s}"));
                }
                true
            }
            _ => names.insert(name.to_string()),
        };
    }
    names
}

/// The gateway's metric names an expression uses.
fn used(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("afw_") || w.starts_with("redis_"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alerts_pass_promtool_and_the_dashboard_and_alerts_use_only_served_metrics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (ok, out) = run_promtool(
        &["check", "rules", "deploy/prometheus/alerts.yml"],
        root,
        "",
    );
    assert!(ok && out.contains("SUCCESS: 5 rules found"), "{out}");
    // Each alert fires on its condition and not otherwise (series written in the test file).
    let fixtures = root.join("tests/fixtures/prometheus");
    let (ok, out) = run_promtool(&["test", "rules", "alerts.test.yml"], &fixtures, "");
    assert!(ok, "{out}");

    let redis = RedisServer::start().await;
    let gw = Gateway::start(support::config(Some(&redis))).await;
    gw.post_event(json!({"sessionId": "p-1", "type": "t"}))
        .await;
    let text = scrape(&gw).await;
    // promtool's lint reads the classic text format, where a counter's help goes with its
    // `_total` name; OpenMetrics puts it on the family's name. Anything else it says fails.
    let (_, out) = run_promtool(&["check", "metrics"], root, &text);
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let family = line
            .strip_suffix(" no help text")
            .and_then(|n| n.strip_suffix("_total"));
        assert!(
            family.is_some_and(|f| text.contains(&format!("# HELP {f} "))),
            "promtool check metrics: {line}"
        );
    }
    let registered = registered(root);
    assert!(registered.len() >= 30, "{registered:?}");
    let names = served(&text, &registered);
    assert!(names.contains("redis_commands_total"), "{names:?}");
    assert!(names.contains("afw_ws_closes_total"), "{names:?}");
    assert!(
        names.contains("afw_fanout_latency_seconds_bucket"),
        "{names:?}"
    );

    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("deploy/grafana/afw-gateway.json")).unwrap(),
    )
    .unwrap();
    let mut exprs: Vec<String> = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            exprs.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    assert!(exprs.len() >= 20, "{exprs:?}");
    let rules = std::fs::read_to_string(root.join("deploy/prometheus/alerts.yml")).unwrap();
    // Each rule's `expr:`, folded over the lines up to its `for:`.
    let mut expr: Option<String> = None;
    for line in rules.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("expr:") {
            expr = Some(rest.to_string());
        } else if line.starts_with("for:") {
            exprs.extend(expr.take());
        } else if let Some(e) = expr.as_mut() {
            e.push(' ');
            e.push_str(line);
        }
    }
    assert!(
        exprs.iter().any(|e| e.contains("histogram_quantile")),
        "{exprs:?}"
    );
    for expr in &exprs {
        for name in used(expr) {
            assert!(names.contains(&name), "{name} (in {expr}) is not served");
        }
    }
    gw.stop().await;
}
