//! Locks: grants and fencing tokens, holder-only extend and release, expiry, bounds, and a
//! wait woken by a release.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::Endpoint;
use crate::Env;

async fn take(gw: &Endpoint, name: &str, body: Value) -> (u16, Value) {
    gw.post(&format!("/api/locks/{name}"), body).await
}

async fn grants_fence_and_only_the_holder_extends_or_releases(env: Env) {
    let gw = &env.gw;
    let (s, a) = take(gw, "deploy", json!({"owner": "w1", "ttlMs": 5000})).await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["acquired"], true);
    let token = a["token"].as_str().unwrap().to_string();
    let fence1 = a["fencingToken"].as_u64().unwrap();
    assert!(a["expiresAt"].as_str().unwrap().ends_with('Z'));

    let (s, held) = take(gw, "deploy", json!({"owner": "w2", "ttlMs": 5000})).await;
    assert_eq!(s, 409, "{held}");
    assert_eq!(held["acquired"], false);
    assert_eq!(held["owner"], "w1");
    assert!(
        held.get("token").is_none(),
        "a token is shown only to its holder"
    );

    let (s, g) = gw.get("/api/locks/deploy").await;
    assert_eq!(
        (s, &g["held"], &g["owner"]),
        (200, &json!(true), &json!("w1"))
    );
    assert!(g.get("token").is_none());

    // A wrong token changes nothing.
    let (s, e) = gw
        .post(
            "/api/locks/deploy/extend",
            json!({"token": "nope", "ttlMs": 9000}),
        )
        .await;
    assert_eq!((s, e["error"].as_str()), (409, Some("not_holder")), "{e}");
    let (s, _) = gw.delete("/api/locks/deploy?token=nope").await;
    assert_eq!(s, 409);
    assert_eq!(
        gw.get("/api/locks/deploy").await.1["expiresAtMs"],
        a["expiresAtMs"]
    );

    let (s, e) = gw
        .post(
            "/api/locks/deploy/extend",
            json!({"token": token, "ttlMs": 9000}),
        )
        .await;
    assert_eq!(s, 200, "{e}");
    assert!(e["expiresAtMs"].as_i64() > a["expiresAtMs"].as_i64());
    assert_eq!(
        e["fencingToken"].as_u64(),
        Some(fence1),
        "an extension is the same grant"
    );

    let (s, r) = gw.delete(&format!("/api/locks/deploy?token={token}")).await;
    assert_eq!((s, &r["released"]), (200, &json!(true)), "{r}");
    let (s, _) = gw.delete(&format!("/api/locks/deploy?token={token}")).await;
    assert_eq!(s, 409, "a second release is not the holder's any more");
    let (s, g) = gw.get("/api/locks/deploy").await;
    assert_eq!(
        (s, &g["held"], g["fencingToken"].as_u64()),
        (200, &json!(false), Some(fence1))
    );

    let (s, b) = take(gw, "deploy", json!({"owner": "w2", "ttlMs": 5000})).await;
    assert_eq!(s, 200, "{b}");
    assert!(b["fencingToken"].as_u64().unwrap() > fence1);
    assert_ne!(b["token"], a["token"]);
}

async fn an_expired_lock_is_free_and_its_fence_keeps_growing(env: Env) {
    let gw = &env.gw;
    let (_, a) = take(gw, "exp", json!({"owner": "dies", "ttlMs": 150})).await;
    let (s, _) = take(gw, "exp", json!({"owner": "next", "ttlMs": 1000})).await;
    assert_eq!(s, 409);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(gw.get("/api/locks/exp").await.1["held"], false);
    let (s, e) = gw
        .post(
            "/api/locks/exp/extend",
            json!({"token": a["token"], "ttlMs": 1000}),
        )
        .await;
    assert_eq!(s, 409, "an expired holder cannot extend: {e}");
    let (s, b) = take(gw, "exp", json!({"owner": "next", "ttlMs": 1000})).await;
    assert_eq!(s, 200, "{b}");
    assert!(b["fencingToken"].as_u64() > a["fencingToken"].as_u64());
    let (s, _) = gw
        .delete(&format!(
            "/api/locks/exp?token={}",
            a["token"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, 409, "the old holder cannot release the new grant");
    assert_eq!(gw.get("/api/locks/exp").await.1["owner"], "next");
}

async fn a_wait_is_woken_by_the_release(env: Env) {
    let gw: Endpoint = (*env.gw).clone();
    let (_, a) = take(&gw, "w", json!({"owner": "first", "ttlMs": 30_000})).await;
    let waiter = {
        let gw = gw.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let r = take(
                &gw,
                "w",
                json!({"owner": "second", "ttlMs": 1000, "waitMs": 20_000}),
            )
            .await;
            (r, t.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiter.is_finished(),
        "the wait holds while the lock is held"
    );
    let released = Instant::now();
    gw.delete(&format!(
        "/api/locks/w?token={}",
        a["token"].as_str().unwrap()
    ))
    .await;
    let ((s, b), took) = waiter.await.unwrap();
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["owner"], "second");
    assert!(
        released.elapsed() < Duration::from_secs(5) && took < Duration::from_secs(10),
        "woken by the release, not by the end of its wait"
    );
    // A wait that runs out answers 409 with the holder.
    let (s, h) = take(
        &gw,
        "w",
        json!({"owner": "third", "ttlMs": 1000, "waitMs": 200}),
    )
    .await;
    assert_eq!((s, &h["owner"]), (409, &json!("second")));
}

async fn bad_lock_requests_name_the_field_and_change_nothing(env: Env) {
    let gw = &env.gw;
    for (body, field) in [
        (json!({"ttlMs": 1000}), "owner"),
        (json!({"owner": "a"}), "ttlMs"),
        (json!({"owner": "a", "ttlMs": 5}), "ttlMs"),
        (json!({"owner": "a", "ttlMs": 3_600_001}), "ttlMs"),
        (
            json!({"owner": "a", "ttlMs": 1000, "waitMs": 600_000}),
            "waitMs",
        ),
        (json!({"owner": "", "ttlMs": 1000}), "owner"),
        (json!({"owner": "a", "ttlMs": "soon"}), "ttlMs"),
        (json!({"owner": "a", "ttlMs": 1000, "extra": 1}), "extra"),
    ] {
        let (s, v) = take(gw, "bad", body.clone()).await;
        assert_eq!(s, 400, "{body}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains(field),
            "{body}: {v}"
        );
    }
    let long = "x".repeat(201);
    let (s, _) = take(gw, &long, json!({"owner": "a", "ttlMs": 1000})).await;
    assert_eq!(s, 400);
    let (s, v) = gw.delete("/api/locks/bad").await;
    assert_eq!(s, 400, "a release needs a token: {v}");
    assert_eq!(
        gw.get("/api/locks/bad").await.1,
        json!({"name": "bad", "held": false, "fencingToken": 0})
    );
}

async fn the_locks_held_are_counted_except_on_a_cluster(env: Env) {
    let gw = &env.gw;
    let mut tokens = Vec::new();
    for (name, ttl) in [
        ("h1", 600_000),
        ("h2", 600_000),
        ("h3", 600_000),
        ("short", 100),
    ] {
        let (s, v) = take(gw, name, json!({"owner": "o", "ttlMs": ttl})).await;
        assert_eq!(s, 200, "{v}");
        tokens.push(v["token"].as_str().unwrap().to_string());
    }
    let (s, _) = gw
        .delete(&format!("/api/locks/h2?token={}", tokens[1]))
        .await;
    assert_eq!(s, 200);
    let (s, _) = gw
        .post(
            "/api/locks/h3/extend",
            json!({"token": tokens[2], "ttlMs": 600_000}),
        )
        .await;
    assert_eq!(s, 200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, summary) = gw.get("/api/ops/summary").await;
    let held = &summary["locks"]["held"];
    if env.cluster.is_some() {
        assert!(held.is_null(), "not counted on a Cluster: {summary}");
    } else {
        assert_eq!(held, 2, "h1 and h3; h2 released, short expired: {summary}");
    }
}

conformance! {
    the_locks_held_are_counted_except_on_a_cluster => crate::defaults,
    grants_fence_and_only_the_holder_extends_or_releases => crate::defaults,
    an_expired_lock_is_free_and_its_fence_keeps_growing => crate::defaults,
    a_wait_is_woken_by_the_release => crate::defaults,
    bad_lock_requests_name_the_field_and_change_nothing => crate::defaults,
}
