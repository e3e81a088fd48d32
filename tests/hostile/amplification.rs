//! Small requests that would make the gateway do or hold much: replays to clients that never read, chain amplification, the memory budget, malformed input to every service.

use super::*;

async fn replays_stay_within_the_budget(redis: bool) {
    let (gw, _redis) = process(redis, &[("WS_WRITE_TIMEOUT_SECS", "5")]).await;
    fill(&gw.endpoint(), "big", 16).await;
    let bystander = Bystander::start(gw.endpoint(), "by").await;
    let rss = PeakRss::start(gw.pid());
    // Ten clients replay the whole 16 MiB session and never read: each once pinned the whole
    // replay in gateway memory, and stayed open.
    let mut stuck = Vec::new();
    for _ in 0..10 {
        let mut c = WsClient::connect_small_buffer(gw.addr).await;
        c.subscribe("big", Some(0), None).await;
        stuck.push(c);
    }
    // Twenty that do read, all at once: a replay storm once starved the store connection.
    let mut readers = Vec::new();
    for _ in 0..20 {
        let url = gw.ws_url();
        readers.push(tokio::spawn(async move {
            let mut c = WsClient::connect(&url).await;
            c.subscribe("big", Some(0), None).await;
            let mut last = 0;
            // Frames start `{"type":"event","sessionId":"big","seq":N,`: read the seq there
            // rather than parse megabytes of JSON.
            let head = r#"{"type":"event","sessionId":"big","seq":"#;
            while let Some(t) = c.try_recv_text(Duration::from_secs(3)).await {
                let rest = t
                    .strip_prefix(head)
                    .unwrap_or_else(|| panic!("a reader was told {}", &t[..t.len().min(200)]));
                let seq: u64 = rest[..rest.find(',').unwrap()].parse().unwrap();
                assert_eq!(seq, last + 1, "in order, no gap");
                last = seq;
            }
            last
        }));
    }
    // And ten scans by time of the whole stream.
    let mut scans = Vec::new();
    for _ in 0..10 {
        let at = gw.endpoint();
        scans.push(tokio::spawn(async move {
            at.get("/api/events/big?since=2999-01-01T00:00:00.000Z")
                .await
                .0
        }));
    }
    for s in scans {
        assert_eq!(s.await.unwrap(), 200);
    }
    let head = gw.get("/api/events/big?limit=1").await.1["headSeq"]
        .as_u64()
        .unwrap();
    for r in readers {
        assert_eq!(r.await.unwrap(), head, "every reader got the whole replay");
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while gw.metric("afw_ws_closes_total{code=\"4008\"}").await < 10.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stuck clients were closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rise = rss.rise_mib().await;
    println!(
        "replays ({}): RSS rose {rise} MiB",
        if redis { "redis" } else { "memory" }
    );
    assert!(rise < 160, "RSS rose {rise} MiB");
    drop(stuck);
    bystander.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_stay_within_the_budget_on_memory() {
    replays_stay_within_the_budget(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_stay_within_the_budget_on_redis() {
    replays_stay_within_the_budget(true).await;
}

async fn chain_amplification_is_bounded(redis: bool) {
    let (gw, _redis) = process(redis, &[]).await;
    let bystander = Bystander::start(gw.endpoint(), "by").await;
    let rss = PeakRss::start(gw.pid());
    let error = "e".repeat(60 * 1024);
    for n in 1..=50 {
        let e = serde_json::json!({"sessionId": "amp", "type": "step:failed", "chainId": "amp", "stepNumber": n, "error": error});
        assert_eq!(gw.post("/api/events", e).await.0, 201);
    }
    for _ in 0..3 {
        let events: Vec<Value> = (1..=1000)
            .map(|n| serde_json::json!({"sessionId": "amp", "type": "step:started", "chainId": "amp", "stepNumber": n}))
            .collect();
        let (s, v) = gw
            .post("/api/events/batch", serde_json::json!({"events": events}))
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let rise = rss.rise_mib().await;
    println!(
        "chain amplification ({}): RSS rose {rise} MiB",
        if redis { "redis" } else { "memory" }
    );
    assert!(rise < 100, "RSS rose {rise} MiB (once 2.86 GB)");
    bystander.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_amplification_is_bounded_on_memory() {
    chain_amplification_is_bounded(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_amplification_is_bounded_on_redis() {
    chain_amplification_is_bounded(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_leaves_established_clients_and_health_working() {
    let (gw, _redis) = process(
        false,
        &[
            ("MAX_CONNECTIONS", "200"),
            ("HTTP_HEADER_TIMEOUT_SECS", "30"),
        ],
    )
    .await;
    let bystander = Bystander::start(gw.endpoint(), "by").await;
    let rss = PeakRss::start(gw.pid());
    // 2,000 sockets, each with an unfinished 8 KiB header.
    let mut flood = Vec::new();
    let head = format!("GET / HTTP/1.1\r\nX-Pad: {}", "f".repeat(8 * 1024));
    for _ in 0..2000 {
        if let Ok(mut s) = tokio::net::TcpStream::connect(gw.addr).await {
            let _ = s.write_all(head.as_bytes()).await;
            flood.push(s);
        }
    }
    // The flood's sockets past the limit hold the headroom only briefly, so health checks
    // get through again within seconds.
    let deadline = tokio::time::Instant::now() + WAIT;
    while raw_get_or_closed(gw.addr, "/health").await != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "/health answered again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rise = rss.rise_mib().await;
    println!("connection flood: RSS rose {rise} MiB");
    assert!(rise < 100, "RSS rose {rise} MiB");
    drop(flood);
    bystander.finish().await;
    assert!(gw.metric("afw_connections_refused_total").await > 1000.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_refuses_writes_past_its_budget() {
    let mut config = support::config(None);
    config.store.memory_store_max_bytes = 4 * 1024 * 1024;
    let gw = Gateway::start(config).await;
    let meta = "m".repeat(8 * 1024);
    let mut created = 0;
    let refusal = loop {
        let (s, v) = gw
            .post(
                "/api/sessions",
                serde_json::json!({"id": format!("s{created}"), "metadata": {"pad": meta}}),
            )
            .await;
        if s != 201 {
            break (s, v);
        }
        created += 1;
        assert!(created < 2000, "the budget was never met");
    };
    assert_eq!(
        (refusal.0, refusal.1["error"].as_str()),
        (503, Some("store_full")),
        "{}",
        refusal.1
    );
    assert!(created > 100, "{created} sessions before the budget");
    let (s, _) = gw
        .post(
            "/api/events",
            serde_json::json!({"sessionId": "s0", "type": "t", "pad": meta}),
        )
        .await;
    assert_eq!(s, 503, "events count against the budget too");
    assert!(gw.metric("afw_store_full_total").await >= 2.0);
    // Reads and deletes still work, and what a delete frees is written again.
    assert_eq!(gw.get("/api/sessions/s1").await.0, 200);
    for i in 0..created / 2 {
        assert_eq!(gw.delete(&format!("/api/sessions/s{i}")).await.0, 204);
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, v) = gw
        .post(
            "/api/sessions",
            serde_json::json!({"id": "after", "metadata": {"pad": meta}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_below_the_router_are_answered_as_the_protocols_say() {
    let gw = Gateway::start(support::config(None)).await;
    // HTTP that hyper refuses before any route sees it: still the API's JSON error.
    let too_big = format!(
        "GET /health HTTP/1.1\r\nHost: localhost\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(64 * 1024)
    );
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET /health HTTP/1.1\r\nHost: localhost\r\n{many}\r\n");
    for (raw, status, code) in [
        (too_big.as_bytes(), 431, "headers_too_large"),
        (many.as_bytes(), 431, "headers_too_large"),
        (b"GARBAGE\r\n\r\n".as_slice(), 400, "bad_request"),
        (
            b"GET /health HTTP/9.9\r\n\r\n".as_slice(),
            400,
            "bad_request",
        ),
    ] {
        let mut s = raw_send(gw.addr, raw).await;
        let answer = read_to_close(&mut s).await.expect("answered");
        let (got, body) = parse_response(&answer);
        assert_eq!(got, status, "{}", String::from_utf8_lossy(&answer));
        let v: Value = serde_json::from_str(&body).expect("a JSON body");
        assert_eq!(v["error"], code);
    }
    // WebSocket frames that break RFC 6455: a close with the code it names, not a dropped
    // connection.
    let mask = [1u8, 2, 3, 4];
    let masked = |first: u8, payload: &[u8]| {
        let mut f = vec![first, 0x80 | payload.len() as u8];
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    };
    let mut big_ping = vec![0x89, 0x80 | 126, 0, 126];
    big_ping.extend_from_slice(&mask);
    big_ping.extend(std::iter::repeat_n(0u8, 126));
    for (frame, code, what) in [
        (vec![0x81, 0x02, b'h', b'i'], 1002, "unmasked"),
        (masked(0xC1, b"hi"), 1002, "reserved bits"),
        (masked(0x83, b""), 1002, "opcode 3"),
        (masked(0x81, &[0xff, 0xfe]), 1007, "invalid UTF-8"),
        (big_ping, 1002, "126-byte ping"),
    ] {
        let mut s = raw_websocket(gw.addr).await;
        s.write_all(&frame).await.unwrap();
        assert_eq!(read_close_code(&mut s).await, Some(code), "{what}");
    }
    assert_eq!(gw.get("/health").await.0, 200);
}

/// Every route of the services beside the stream, fed bodies of every wrong shape and names with
/// control characters: each answer is a 4xx JSON error, and the instance keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_refuse_malformed_input_with_json_errors() {
    let gw = Gateway::start(support::config(None)).await;
    malformed_input_gets_json_errors(&gw).await;
    gw.stop().await;
}

/// The same with credentials required (an agent's key on every request), and hostile
/// credentials themselves: each answer is a 401 JSON error and nothing else happens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_credentials_required_malformed_input_and_credentials_get_json_errors() {
    let agent = "agent-key-0123456789";
    let mut config = support::config(None);
    config.auth.api_keys = vec![
        format!("default:{agent}:agent"),
        "admin-key-0123456789".into(),
    ];
    config.auth.jwt_secret = Some("a-test-secret-of-at-least-32-bytes!".into());
    let gw = Gateway::start(config).await;
    malformed_input_gets_json_errors(&gw.with_key(agent)).await;
    let long = "x".repeat(6000);
    let dotted = format!("{0}.{0}.{0}", "e".repeat(3000));
    let bad_header = format!("{}.e30.", "eyJhbGciOiJIUzI1NiJ9".repeat(200));
    for credential in [
        "",
        ".",
        "..",
        "a.b.c",
        "Bearer",
        long.as_str(),
        dotted.as_str(),
        bad_header.as_str(),
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5fQ.",
        "admin-key-012345678",
        "default:admin-key-0123456789",
    ] {
        let (status, v) = gw.with_key(credential).get("/api/sessions").await;
        assert_eq!(status, 401, "{:.40}: {v}", credential);
        assert!(v["error"].is_string(), "{v}");
    }
    for header in [
        "Basic YWRtaW4=",
        "Bearer",
        "bearer  ",
        "Token admin-key-0123456789",
    ] {
        let r = gw
            .http
            .get(gw.url("/api/sessions"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{header}");
    }
    let (status, _) = gw
        .with_key("admin-key-0123456789")
        .get("/api/sessions")
        .await;
    assert_eq!(status, 200, "the instance keeps serving");
    gw.stop().await;
}

async fn malformed_input_gets_json_errors(gw: &Endpoint) {
    let routes: &[(reqwest::Method, &str)] = &[
        (reqwest::Method::POST, "/api/locks/l"),
        (reqwest::Method::POST, "/api/locks/l/extend"),
        (reqwest::Method::POST, "/api/queues/q/jobs"),
        (reqwest::Method::POST, "/api/queues/q/bulk"),
        (reqwest::Method::POST, "/api/queues/q/claim"),
        (reqwest::Method::POST, "/api/queues/q/jobs/j/complete"),
        (reqwest::Method::POST, "/api/queues/q/jobs/j/fail"),
        (reqwest::Method::POST, "/api/queues/q/jobs/j/extend"),
        (reqwest::Method::PUT, "/api/cache/k"),
        (reqwest::Method::POST, "/api/cache/k/incr"),
        (reqwest::Method::POST, "/api/cache/invalidate"),
        (reqwest::Method::POST, "/api/context"),
        (reqwest::Method::POST, "/api/sessions/s/extend"),
    ];
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let bodies: Vec<String> = vec![
        "not json".into(),
        "[1,2]".into(),
        "\"text\"".into(),
        "{\"ttlMs\": 1e400}".into(),
        "{\"owner\": {}, \"ttlMs\": -5, \"workerId\": [], \"value\": \"\\u0000\", \"tags\": \"x\", \"by\": 1.5}".into(),
        "{\"userId\": \"a\\u0007b\", \"preferences\": []}".into(),
        "{\"type\": \"t\", \"priority\": 99999999999999999999}".into(),
        "{\"jobs\": [{\"type\": \"t\", \"priority\": 1e400}]}".into(),
        "{\"workerId\": \"w\", \"next\": {\"max\": 0}, \"ttlMs\": -1, \"jobs\": 5}".into(),
        deep,
    ];
    for (method, path) in routes {
        for body in &bodies {
            let r = gw
                .http
                .request(method.clone(), gw.url(path))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            assert!(
                (400..500).contains(&status),
                "{method} {path} {:.60}: {status} {text}",
                body
            );
            let v: Value =
                serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}"));
            assert!(v["error"].is_string(), "{path}: {text}");
        }
    }
    for path in [
        "/api/locks/a%00b",
        "/api/queues/a%07/stats",
        "/api/cache/%1F",
        "/api/usage?date=%00",
    ] {
        let (status, v) = gw.get(path).await;
        assert_eq!(status, 400, "{path}: {v}");
    }
    assert_eq!(gw.get("/health").await.0, 200);
}
