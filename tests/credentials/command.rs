//! `afw-gateway token` signs what the gateway takes, and bad credential settings stop start-up
//! with one line naming the variable.

use std::process::Command;

use serde_json::json;

use super::support::{Gateway, WsClient};
use super::{config, fixture, SECRET};

fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_afw-gateway"));
    for var in [
        "AFW_API_KEYS",
        "AFW_JWT_SECRET",
        "AFW_JWT_PUBLIC_KEYS",
        "AFW_JWT_PRIVATE_KEY",
        "AFW_JWT_ISSUER",
        "AFW_JWT_AUDIENCE",
        "REDIS_URL",
        "PORT",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.args(args).envs(env.iter().copied()).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_command_signs_what_the_gateway_takes() {
    let gw = Gateway::start(config(None)).await;
    let (code, viewer, err) = run(
        &[
            "token",
            "--sub",
            "vera",
            "--ttl",
            "10m",
            "--sessions",
            "build-*",
        ],
        &[("AFW_JWT_SECRET", SECRET)],
    );
    assert_eq!(code, Some(0), "{err}");
    let v = gw.with_key(&viewer);
    assert_eq!(v.get("/api/events/build-1").await.0, 200);
    assert_eq!(
        v.post("/api/events", json!({"sessionId": "build-1", "type": "t"}))
            .await
            .0,
        403
    );
    let mut c = WsClient::connect(&format!("ws://{}/ws?token={viewer}", gw.addr)).await;
    c.subscribe("build-2", None, None).await;
    let (_, agent, _) = run(
        &["token", "--sub", "ada", "--role", "agent"],
        &[("AFW_JWT_SECRET", SECRET)],
    );
    let (s, _) = gw
        .with_key(&agent)
        .post("/api/events", json!({"sessionId": "build-1", "type": "t"}))
        .await;
    assert_eq!(s, 201);
    for (args, what) in [
        (vec!["token", "--sub", "a", "--role", "root"], "--role"),
        (vec!["token", "--sub", "a", "--ttl", "2y"], "--ttl"),
        (vec!["token", "--sub", "a", "--tenant", "ac:me"], "--tenant"),
    ] {
        let (code, _, err) = run(&args, &[("AFW_JWT_SECRET", SECRET)]);
        assert_eq!(code, Some(64), "{what}");
        assert!(err.contains(what), "{err}");
    }
    let (code, _, err) = run(&["token", "--sub", "a"], &[]);
    assert_eq!(code, Some(64));
    assert!(err.contains("AFW_JWT_SECRET"), "{err}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_key_signs_for_a_gateway_with_its_public_key() {
    let mut c = config(None);
    c.auth.jwt_secret = None;
    c.auth.jwt_public_keys = Some(fixture("ec.pub"));
    let gw = Gateway::start(c).await;
    let key = fixture("ec.key");
    let (code, t, err) = run(
        &["token", "--sub", "ada", "--role", "admin"],
        &[("AFW_JWT_PRIVATE_KEY", key.to_str().unwrap())],
    );
    assert_eq!(code, Some(0), "{err}");
    let ep = gw.with_key(&t);
    let metrics = ep.http.get(ep.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    gw.stop().await;
}

#[test]
fn bad_credential_settings_stop_start_up_naming_their_variable() {
    let missing = fixture("missing.pem");
    let not_a_key = fixture("README.md");
    for (var, value) in [
        ("AFW_API_KEYS", "ac/me:key-one-0123456789"),
        ("AFW_API_KEYS", "default:key-one-0123456789:root"),
        ("AFW_API_KEYS", "a:b:c:d"),
        ("AFW_JWT_SECRET", "too-short"),
        ("AFW_JWT_PUBLIC_KEYS", missing.to_str().unwrap()),
        ("AFW_JWT_PUBLIC_KEYS", not_a_key.to_str().unwrap()),
    ] {
        let (code, _, err) = run(&[], &[(var, value)]);
        assert_eq!(code, Some(64), "{var}={value}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(var), "{var}: {err}");
    }
}
