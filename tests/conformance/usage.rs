//! Usage totals: a known sequence of events over several days (their timestamps are the
//! clock) gives exactly these totals per tenant, user and session, per day and month, by
//! model, in integer micro-dollars; a retried eventId never counts twice.

use serde_json::{json, Value};

use crate::support::Endpoint;
use crate::Env;

async fn usage(gw: &Endpoint, q: &str) -> Value {
    let (s, v) = gw.get(&format!("/api/usage?{q}")).await;
    assert_eq!(s, 200, "{q}: {v}");
    v
}

fn totals(v: &Value) -> (u64, u64, u64, u64) {
    let n = |k: &str| v[k].as_u64().unwrap();
    (
        n("inputTokens"),
        n("outputTokens"),
        n("costMicroUsd"),
        n("events"),
    )
}

async fn usage_counts_once_per_event_by_day_month_model_and_scope(env: Env) {
    let gw: &Endpoint = &env.gw;
    gw.post("/api/sessions", json!({"id": "s1", "userId": "ada"}))
        .await;
    let ev = |sid: &str, id: &str, ts: &str, usage: Value| json!({"sessionId": sid, "type": "llm:call", "eventId": id, "timestamp": ts, "usage": usage});
    gw.post_event(ev(
        "s1",
        "e1",
        "2026-11-30T23:59:59.999Z",
        json!({"inputTokens": 100, "outputTokens": 10, "costUsd": 0.001, "model": "m1"}),
    ))
    .await;
    gw.post_event(ev(
        "s1",
        "e2",
        "2026-12-01T00:00:00.000Z",
        json!({"inputTokens": 200, "outputTokens": 20, "costUsd": 0.0125, "model": "m2"}),
    ))
    .await;
    // A retry of e2 (the agent never saw the answer) stores nothing and counts nothing.
    gw.post_event(ev(
        "s1",
        "e2",
        "2026-12-01T00:00:00.000Z",
        json!({"inputTokens": 200, "outputTokens": 20, "costUsd": 0.0125, "model": "m2"}),
    ))
    .await;
    let mut bob = ev(
        "s2",
        "e3",
        "2026-12-01T10:00:00+02:00",
        json!({"inputTokens": 5, "outputTokens": 5, "costUsd": 0.1}),
    );
    bob["userId"] = "bob".into();
    bob["tenantId"] = "acme".into();
    gw.post_event(bob).await;
    let (s, v) = gw
        .post(
            "/api/events/batch",
            json!({"events": [
                ev("s1", "e4", "2026-12-02T12:00:00Z", json!({"inputTokens": 1, "costUsd": 1e-6, "model": "m1"})),
                {"sessionId": "s1", "type": "note", "eventId": "e5"},
                ev("s1", "e6", "2026-12-02T13:00:00Z", json!({"outputTokens": 7})),
            ]}),
        )
        .await;
    assert!(s == 200 || s == 201, "{v}");

    let day = |d: &str| format!("period=day&date={d}");
    assert_eq!(
        totals(&usage(gw, &day("2026-11-30")).await),
        (100, 10, 1_000, 1)
    );
    let d1 = usage(gw, &day("2026-12-01")).await;
    assert_eq!(totals(&d1), (200, 20, 12_500, 1), "e2 once: {d1}");
    assert_eq!(d1["costUsd"], json!(0.0125));
    assert_eq!(totals(&usage(gw, &day("2026-12-02")).await), (1, 7, 1, 2));
    let m11 = usage(gw, "period=month&date=2026-11").await;
    assert_eq!(totals(&m11), (100, 10, 1_000, 1));
    let m12 = usage(gw, "period=month&date=2026-12").await;
    assert_eq!(
        totals(&m12),
        (201, 27, 12_501, 3),
        "the month is the sum of its days, once: {m12}"
    );
    assert_eq!(m12["costUsd"], json!(0.012501));
    assert_eq!(totals(&m12["byModel"]["m1"]), (1, 0, 1, 1));
    assert_eq!(totals(&m12["byModel"]["m2"]), (200, 20, 12_500, 1));
    assert_eq!(m12["byModel"].as_object().unwrap().len(), 2);
    // The user's totals come from the session's userId; the session's are its own.
    assert_eq!(
        totals(&usage(gw, "period=month&date=2026-12&userId=ada").await),
        (201, 27, 12_501, 3)
    );
    assert_eq!(
        totals(&usage(gw, "period=month&date=2026-11&sessionId=s1").await),
        (100, 10, 1_000, 1)
    );
    assert_eq!(
        totals(&usage(gw, "period=day&date=2026-12-02&sessionId=s1").await),
        (1, 7, 1, 2)
    );
    // Another tenant's usage is apart; its day is the UTC day of the event's time.
    let acme = usage(gw, "period=day&date=2026-12-01&tenantId=acme&userId=bob").await;
    assert_eq!(totals(&acme), (5, 5, 100_000, 1));
    assert_eq!(acme["tenantId"], "acme");
    assert_eq!(
        totals(&usage(gw, "period=month&date=2026-12-01&tenantId=acme").await),
        (5, 5, 100_000, 1)
    );
    assert_eq!(
        totals(&usage(gw, &day("2026-12-01&userId=bob")).await),
        (0, 0, 0, 0)
    );
    assert_eq!(totals(&usage(gw, &day("2025-01-01")).await), (0, 0, 0, 0));
}

async fn bad_usage_is_refused_and_counts_nothing(env: Env) {
    let gw: &Endpoint = &env.gw;
    for (usage, field) in [
        (json!({"inputTokens": -1}), "usage"),
        (json!({"inputTokens": 1.5}), "usage"),
        (json!({"costUsd": -0.5}), "usage.costUsd"),
        (json!({"costUsd": "0.5"}), "usage.costUsd"),
        (json!({"tokens": 3}), "usage"),
        (json!({"model": ""}), "usage.model"),
        (json!("lots"), "usage"),
    ] {
        let body = json!({"sessionId": "b", "type": "x", "timestamp": "2026-12-01T00:00:00Z", "usage": usage});
        let (s, v) = gw.post("/api/events", body).await;
        assert_eq!(s, 400, "{usage}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains(field),
            "{field}: {v}"
        );
    }
    assert_eq!(
        totals(&usage(gw, "period=day&date=2026-12-01").await),
        (0, 0, 0, 0)
    );
    assert_eq!(
        gw.get("/api/events/b").await.1["events"],
        json!([]),
        "no event was stored"
    );
    for q in [
        "period=week",
        "date=2026-13-01",
        "period=day&date=2026-12",
        "userId=a&sessionId=b",
        "colour=1",
    ] {
        assert_eq!(gw.get(&format!("/api/usage?{q}")).await.0, 400, "{q}");
    }
}

/// Totals saturate at 10^15 (exact in Redis's Lua numbers) and say so: a batch that takes
/// one past it is stored and delivered whole, and counts up to the bound. (An overflow once
/// stopped the append script halfway: the event stored but not published, and answered 503.)
async fn a_total_at_its_bound_saturates_and_the_event_is_still_stored(env: Env) {
    let gw: &Endpoint = &env.gw;
    let mut ws = crate::support::WsClient::connect(&gw.ws_url()).await;
    ws.subscribe("sat", None, None).await;
    let ts = "2026-12-02T12:00:00.000Z";
    // A thousand events of 10^12 tokens each in each direction and a million dollars each.
    let big = json!({"inputTokens": 1_000_000_000_000u64, "outputTokens": 1, "costUsd": 1_000_000});
    let events: Vec<Value> = (0..1001)
        .map(|i| json!({"sessionId": "sat", "type": "llm:call", "eventId": format!("e{i}"), "timestamp": ts, "usage": big}))
        .collect();
    for part in events.chunks(600) {
        let (s, v) = gw
            .post("/api/events/batch", json!({ "events": part }))
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let mut last = 0;
    while last < 1001 {
        let m = ws.next_event().await;
        assert_eq!(
            m["seq"].as_u64().unwrap(),
            last + 1,
            "every event delivered, in order"
        );
        last += 1;
    }
    let day = usage(gw, "date=2026-12-02").await;
    assert_eq!(
        totals(&day),
        (1_000_000_000_000_000, 1001, 1_000_000_000_000_000, 1001),
        "{day}"
    );
    assert_eq!(day["saturated"], true, "{day}");
    // A later event of the same bucket is stored too, and the bound holds.
    let one = json!({"sessionId": "sat", "type": "llm:call", "timestamp": ts, "usage": {"inputTokens": 5}});
    assert_eq!(gw.post("/api/events", one).await.0, 201);
    let day = usage(gw, "date=2026-12-02").await;
    assert_eq!(totals(&day).0, 1_000_000_000_000_000);
    assert_eq!(totals(&day).3, 1002);
    let other = usage(gw, "date=2026-12-01").await;
    assert_eq!(other["saturated"], false, "{other}");
}

/// A usage event names a user that `GET /api/usage?userId=` can name back.
async fn a_usage_user_must_be_a_name(env: Env) {
    let gw: &Endpoint = &env.gw;
    for user in ["", "\u{7}bell"] {
        let body = json!({"sessionId": "u", "type": "llm:call", "userId": user, "usage": {"inputTokens": 1}});
        let (s, v) = gw.post("/api/events", body).await;
        assert_eq!(s, 400, "{user:?}: {v}");
        assert!(v["message"].as_str().unwrap().contains("userId"), "{v}");
    }
    let (_, v) = gw.get("/api/events/u").await;
    assert_eq!(v["events"], json!([]), "nothing stored: {v}");
}

conformance! {
    usage_counts_once_per_event_by_day_month_model_and_scope => crate::defaults,
    bad_usage_is_refused_and_counts_nothing => crate::defaults,
    a_total_at_its_bound_saturates_and_the_event_is_still_stored => crate::defaults,
    a_usage_user_must_be_a_name => crate::defaults,
}
