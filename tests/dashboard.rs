//! The dashboard's HTTP side: its files are built in (or read from WEB_DEMO_DIR), need no
//! credentials while everything else still does, carry a strict CSP, and the demo button's
//! route runs agents on the embedded store only.

mod support;

use std::time::Duration;

use afw_gateway::Config;
use serde_json::json;
use support::{Gateway, RedisServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_files_are_served_without_credentials() {
    let mut config = support::config(None);
    config.auth.api_keys = vec!["key-one-0123456789".into()];
    let gw = Gateway::start(config).await;
    let http = &gw.http;
    let page = http.get(gw.url("/?session=abc")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("/app.js") && html.contains("<title>afw-gateway</title>"));
    let built_in = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/web-demo/afw-client.js"
    ))
    .unwrap();
    for (path, kind) in [
        ("/afw-client.js", "text/javascript"),
        ("/app.js", "text/javascript"),
        ("/style.css", "text/css"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let r = http.get(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{path}"
        );
        if path == "/afw-client.js" {
            assert_eq!(r.text().await.unwrap(), built_in, "the built-in copy");
        }
    }
    // Only the named files: nothing else becomes public, and no path reaches the disk.
    for path in [
        "/Cargo.toml",
        "/web-demo/app.js",
        "/..%2fCargo.toml",
        "/api/sessions",
    ] {
        let (s, v) = gw.get(path).await;
        assert!(s == 401 || s == 404, "{path}: {s} {v}");
        assert!(v["error"].is_string(), "{path}: {v}");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_demo_dir_serves_the_files_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<p>edited</p>").unwrap();
    let gw = Gateway::start(Config {
        web_demo_dir: Some(dir.path().to_path_buf()),
        ..support::config(None)
    })
    .await;
    let r = gw.http.get(gw.url("/")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "<p>edited</p>");
    // A file the folder lacks is a JSON 404, not the built-in copy.
    let (s, v) = gw.get("/app.js").await;
    assert_eq!(s, 404, "{v}");
    gw.stop().await;
    let bad = Config {
        web_demo_dir: Some(dir.path().join("nothing-here")),
        ..support::config(None)
    };
    let e = bad.validate().unwrap_err();
    assert_eq!(e.var, "WEB_DEMO_DIR");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_button_runs_agents_on_the_embedded_store_only() {
    let gw = Gateway::start(support::config(None)).await;
    let (s, v) = gw.get("/api/demo").await;
    assert_eq!(
        (s, &v["available"], &v["agents"]),
        (200, &json!(true), &json!(0))
    );
    let r = gw
        .http
        .post(gw.url("/api/demo"))
        .json(&json!({"agents": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = gw
        .http
        .post(gw.url("/api/demo"))
        .json(&json!({"agents": 2, "speed": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Two sessions with a cwd and a user, whose first chain is under way.
    let mut sessions = Vec::new();
    for _ in 0..100 {
        let (_, v) = gw.get("/api/sessions").await;
        sessions = v["sessions"].as_array().cloned().unwrap_or_default();
        if sessions.len() == 2 && sessions.iter().all(|s| s["chainsCount"] == 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    for s in &sessions {
        assert!(
            s["cwd"].as_str().is_some_and(|c| c.starts_with("/home/")),
            "{s}"
        );
        assert!(s["userId"].is_string(), "{s}");
    }
    let (_, v) = gw.get("/api/demo").await;
    assert_eq!(v["agents"], 2);
    let r = gw.http.delete(gw.url("/api/demo")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let (_, v) = gw.get("/api/demo").await;
    assert_eq!(v["agents"], 0);
    gw.stop().await;

    let redis = RedisServer::start().await;
    let gw = Gateway::start(support::config(Some(&redis))).await;
    let (_, v) = gw.get("/api/demo").await;
    assert_eq!(v["available"], false);
    let r = gw
        .http
        .post(gw.url("/api/demo"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    gw.stop().await;
}
