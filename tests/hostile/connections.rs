//! Connections and requests that never finish, or too many of them: timeouts, the connection and WebSocket caps, a flood of half-sent heads, and what hyper answers below the router.

use super::*;

fn timeouts(c: &mut Config) {
    c.http.http_header_timeout = Duration::from_secs(1);
    c.http.http_body_timeout = Duration::from_secs(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_requests_are_cut_off_by_their_timeouts() {
    let mut config = support::config(None);
    timeouts(&mut config);
    let gw = Gateway::start(config).await;
    // Half a request line once stayed open for minutes.
    let mut half = raw_send(gw.addr, b"GET /api/sess").await;
    assert!(
        closed_silently(&mut half, Duration::from_secs(5)).await,
        "an unfinished request line is closed after HTTP_HEADER_TIMEOUT_SECS"
    );
    // So does a keep-alive connection left idle after its request.
    let mut idle = raw_send(gw.addr, b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    let answered = read_to_close(&mut idle).await.expect("closed in time");
    assert_eq!(parse_response(&answered).0, 200);
    // A body at a byte every 300 ms: 408 when HTTP_BODY_TIMEOUT_SECS has passed.
    let head = format!("POST /api/events HTTP/1.1\r\nHost: localhost\r\n{}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n", auth_header());
    let mut slow = raw_send(gw.addr, head.as_bytes()).await;
    let trickle = async {
        for _ in 0..20 {
            if slow.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    trickle.await;
    let answer = read_to_close(&mut slow).await.expect("answered");
    let (status, body) = parse_response(&answer);
    assert_eq!(status, 408, "{body}");
    let body: Value = serde_json::from_str(&body).expect("a JSON error");
    assert_eq!(body["error"], "request_timeout");
    // A header past HTTP_MAX_HEADER_BYTES is refused, not buffered.
    let big = format!(
        "GET /health HTTP/1.1\r\nHost: localhost\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(64 * 1024)
    );
    let mut s = raw_send(gw.addr, big.as_bytes()).await;
    let answer = read_to_close(&mut s).await.expect("closed");
    assert_ne!(parse_response(&answer).0, 200);
    assert_eq!(gw.get("/health").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_connections_health_still_answers_and_the_rest_is_refused() {
    const MAX: usize = 16;
    let mut config = support::config(None);
    config.http.max_connections = MAX;
    let gw = Gateway::start(config).await;
    // Idle sockets up to the limit (the test client's own pooled connection counts too).
    let mut held = Vec::new();
    let mut refused = None;
    for n in 0..MAX + 2 {
        let (status, body) = raw_get(gw.addr, "/api/sessions").await;
        if status == 503 {
            refused = Some((n, body));
            break;
        }
        assert_eq!(status, 200, "{body}");
        held.push(tokio::net::TcpStream::connect(gw.addr).await.unwrap());
    }
    let (n, body) = refused.expect("a request past MAX_CONNECTIONS is refused");
    assert!(n <= MAX, "refused only once the limit was reached ({n})");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "over_capacity");
    // Health checks still answer, so the balancer sees a live, full instance.
    assert_eq!(raw_get(gw.addr, "/health").await.0, 200);
    assert_eq!(raw_get(gw.addr, "/ready").await.0, 200);
    // Past the headroom too, a connection is closed at once: once the instance has taken every
    // connection of the headroom (each counted as refused), the next one is dropped.
    let before = gw.metric("afw_connections_refused_total").await;
    for _ in 0..HEALTH_HEADROOM {
        held.push(tokio::net::TcpStream::connect(gw.addr).await.unwrap());
    }
    let taken = tokio::time::Instant::now() + WAIT;
    while gw.metric("afw_connections_refused_total").await < before + HEALTH_HEADROOM as f64 {
        assert!(
            tokio::time::Instant::now() < taken,
            "the headroom was taken"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut extra = raw_send(gw.addr, b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    let answer = read_to_close(&mut extra).await.expect("closed");
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    // Once the sockets go, the instance serves again, and says what it refused.
    drop(held);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if raw_get(gw.addr, "/api/sessions").await.0 == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gw.metric("afw_connections_refused_total").await >= 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrades_past_the_limit_are_closed_with_1013() {
    let mut config = support::config(None);
    config.realtime.ws_max_connections = 2;
    let gw = Gateway::start(config).await;
    let a = WsClient::connect(&gw.ws_url()).await;
    let _b = WsClient::connect(&gw.ws_url()).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(gw.ws_url()).await.unwrap();
    let close = loop {
        use futures::StreamExt;
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(f))) => break f,
            Some(Ok(_)) => continue,
            other => panic!("expected a close, got {other:?}"),
        }
    };
    assert_eq!(close.map(|f| u16::from(f.code)), Some(1013));
    a.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut c = WsClient::connect(&gw.ws_url()).await;
    c.subscribe("s", None, None).await;
    assert_eq!(gw.metric("afw_ws_refused_total").await, 1.0);
}
