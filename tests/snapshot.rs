//! `MEMORY_SNAPSHOT_FILE` (`--snapshot FILE`): a gateway process on the embedded store is
//! stopped (SIGTERM) and started again on the same file, and finds what it had: sessions with
//! their streams (a client resumes exactly, `recovered:true`), pending commands and input,
//! chains, locks with their fencing tokens, jobs, cached values with their tags, user context,
//! and another tenant's data, still kept apart. A file it cannot read stops the start.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{Endpoint, GatewayProcess, WsClient};

const ADMIN: &str = "snapshot-admin-0123456789";
const ACME: &str = "snapshot-acme-01234567890";

async fn start(file: &std::path::Path) -> GatewayProcess {
    GatewayProcess::start(&[
        ("MEMORY_SNAPSHOT_FILE", file.display().to_string()),
        ("AFW_API_KEYS", format!("{ADMIN},acme:{ACME}:admin")),
    ])
    .await
}

async fn stop(mut gw: GatewayProcess) {
    gw.term();
    let status = gw
        .wait_exit(Duration::from_secs(20))
        .await
        .expect("stopped");
    assert!(status.success(), "{status:?}");
}

async fn fill(admin: &Endpoint, acme: &Endpoint) {
    for i in 0..5 {
        admin
            .post_event(json!({"sessionId": "kept", "type": "step", "i": i}))
            .await;
    }
    let ok = |(s, v): (u16, serde_json::Value), want: u16| assert_eq!(s, want, "{v}");
    ok(
        admin
            .post("/api/sessions/kept/commands", json!({"type": "pause"}))
            .await,
        201,
    );
    ok(
        admin
            .post("/api/sessions/kept/input", json!({"input": "yes"}))
            .await,
        201,
    );
    ok(
        admin
            .post(
                "/api/sessions/kept/chains",
                json!({"id": "c-1", "title": "build"}),
            )
            .await,
        201,
    );
    ok(
        admin
            .post("/api/locks/deploy", json!({"owner": "w1", "ttlMs": 600000}))
            .await,
        200,
    );
    ok(
        admin
            .post(
                "/api/queues/mail/jobs",
                json!({"type": "send", "jobId": "m-1"}),
            )
            .await,
        201,
    );
    let put = admin
        .request(
            reqwest::Method::PUT,
            "/api/cache/k1",
            Some(json!({"value": {"a": 1}, "ttlSeconds": 600, "tags": ["t1"]})),
        )
        .await;
    ok(put, 200);
    ok(
        admin
            .post(
                "/api/context",
                json!({"userId": "ada", "preferences": {"theme": "dark"}}),
            )
            .await,
        200,
    );
    acme.post_event(json!({"sessionId": "theirs", "type": "step"}))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_the_same_snapshot_finds_everything_it_had() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("afw.snapshot");
    let gw = start(&file).await;
    let (admin, acme) = (gw.endpoint().with_key(ADMIN), gw.endpoint().with_key(ACME));
    fill(&admin, &acme).await;
    let (_, before) = admin.get("/api/events/kept").await;
    let epoch = before["epoch"].as_str().unwrap().to_string();
    let (_, lock) = admin.get("/api/locks/deploy").await;
    stop(gw).await;
    let text = std::fs::read_to_string(&file).expect("the snapshot was written");
    assert!(
        text.starts_with("{\"afwMemorySnapshot\":1"),
        "{}",
        &text[..80]
    );

    let gw = start(&file).await;
    let (admin, acme) = (gw.endpoint().with_key(ADMIN), gw.endpoint().with_key(ACME));
    let (s, after) = admin.get("/api/events/kept").await;
    assert_eq!(s, 200, "{after}");
    assert_eq!(after["events"], before["events"], "the stream as it was");
    // A client resumes exactly where it stopped: same epoch, the events after seq 3.
    let mut ws = WsClient::connect(&admin.ws_url()).await;
    let confirm = ws.subscribe("kept", Some(3), Some(&epoch)).await;
    assert_eq!(confirm["payload"]["recovered"], true, "{confirm}");
    assert_eq!(ws.next_event().await["seq"], 4);
    assert_eq!(ws.next_event().await["seq"], 5);
    admin
        .post_event(json!({"sessionId": "kept", "type": "after"}))
        .await;
    assert_eq!(ws.next_event().await["seq"], 6, "the stream goes on");

    let (_, commands) = admin.get("/api/sessions/kept/commands").await;
    assert_eq!(commands["commands"][0]["type"], "pause", "{commands}");
    let (_, input) = admin.get("/api/sessions/kept/input").await;
    assert_eq!(input["inputs"][0]["input"], "yes", "{input}");
    let (s, chain) = admin.get("/api/chains/c-1").await;
    assert_eq!(
        (s, chain["title"].as_str()),
        (200, Some("build")),
        "{chain}"
    );
    let (_, held) = admin.get("/api/locks/deploy").await;
    assert_eq!(held["held"], true, "{held}");
    assert_eq!(held["fencingToken"], lock["fencingToken"]);
    let (_, stats) = admin.get("/api/queues/mail/stats").await;
    assert_eq!(stats["waiting"], 1, "{stats}");
    let (_, cached) = admin.get("/api/cache/k1").await;
    assert_eq!(cached["value"], json!({"a": 1}), "{cached}");
    let (_, gone) = admin
        .post("/api/cache/invalidate", json!({"tags": ["t1"]}))
        .await;
    assert_eq!(
        gone["invalidated"], 1,
        "the tag came back with its entry: {gone}"
    );
    let (_, context) = admin.get("/api/context?userId=ada").await;
    assert_eq!(
        context["context"]["preferences"]["theme"], "dark",
        "{context}"
    );
    // The other tenant's session is its own still.
    let (s, _) = acme.get("/api/sessions/theirs").await;
    assert_eq!(s, 200);
    let (s, _) = admin.get("/api/sessions/theirs").await;
    assert_eq!(s, 404);
    ws.close().await;
    stop(gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_it_cannot_read_stops_the_start_and_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("afw.snapshot");
    std::fs::write(
        &file,
        "{\"afwMemorySnapshot\":1,\"tenants\":[{\"tenant\":nul",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_afw-gateway"))
        .env_clear()
        .env("PORT", "0")
        .env("MEMORY_SNAPSHOT_FILE", &file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(err.contains("afw.snapshot"), "{err}");
    assert!(
        std::fs::read_to_string(&file).unwrap().ends_with("nul"),
        "left as it was"
    );
}
