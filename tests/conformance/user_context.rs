//! User context: the default on first read, preferences merged field by field, recent
//! searches newest first without duplicates, bounded history, tenants apart, TTL, bounds.

use serde_json::{json, Value};

use crate::support::Endpoint;
use crate::Env;

async fn update(gw: &Endpoint, body: Value) -> Value {
    let (s, v) = gw.post("/api/context", body).await;
    assert_eq!(s, 200, "{v}");
    v["context"].clone()
}

async fn a_read_answers_the_default_the_first_write_creates_it_and_changes_merge(env: Env) {
    let gw: &Endpoint = &env.gw;
    let (s, v) = gw.get("/api/context?userId=ada&tenantId=acme").await;
    assert_eq!(s, 200, "{v}");
    let c = &v["context"];
    assert_eq!(
        (
            &c["userId"],
            &c["tenantId"],
            &c["preferences"],
            &c["recentSearches"],
            &c["sessionHistory"]
        ),
        (
            &json!("ada"),
            &json!("acme"),
            &json!({}),
            &json!([]),
            &json!([])
        )
    );
    assert_eq!(c["createdAt"], c["updatedAt"]);
    // A read stores nothing (reads create no state); the first write creates the context.
    if let Some(r) = &env.redis {
        assert!(r.keys().await.iter().all(|k| !k.contains("context")));
    }
    let c = update(gw, json!({"userId": "ada", "tenantId": "acme", "preferences": {"theme": "dark", "lang": "en", "layout": {"cols": []}}})).await;
    assert_eq!(
        c["preferences"],
        json!({"theme": "dark", "lang": "en", "layout": {"cols": []}})
    );
    let created = c["createdAt"].clone();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let c = update(
        gw,
        json!({"userId": "ada", "tenantId": "acme", "preferences": {"lang": "en"}}),
    )
    .await;
    assert_eq!(c["createdAt"], created);
    assert_ne!(c["updatedAt"], created);
    let c = update(
        gw,
        json!({"userId": "ada", "tenantId": "acme", "preferences": {"theme": null, "size": 3}}),
    )
    .await;
    assert_eq!(
        c["preferences"],
        json!({"lang": "en", "layout": {"cols": []}, "size": 3}),
        "merged field by field; null removes"
    );
    for q in ["a", "b", "a", "c"] {
        update(
            gw,
            json!({"userId": "ada", "tenantId": "acme", "addRecentSearch": q}),
        )
        .await;
    }
    let c = update(gw, json!({"userId": "ada", "tenantId": "acme", "recordSessionEvent": {"type": "page_view", "data": {"page": "/"}}})).await;
    assert_eq!(
        c["recentSearches"],
        json!(["c", "a", "b"]),
        "newest first, a repeat moves to the front"
    );
    assert_eq!(c["sessionHistory"][0]["type"], "page_view");
    assert_eq!(c["sessionHistory"][0]["data"], json!({"page": "/"}));
    assert!(c["sessionHistory"][0]["timestamp"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    // Another tenant's user of the same id is another context.
    let (_, other) = gw.get("/api/context?userId=ada").await;
    assert_eq!(
        (
            other["context"]["tenantId"].as_str(),
            &other["context"]["preferences"]
        ),
        (Some("default"), &json!({}))
    );
    if let Some(redis) = &env.redis {
        let mut conn = redis.connection().await.unwrap();
        let pttl: i64 = ::redis::cmd("PTTL")
            .arg("afw:t:acme:context:{ada}")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(
            (23 * 3_600_000..=24 * 3_600_000).contains(&pttl),
            "CONTEXT_TTL_HOURS: {pttl}"
        );
    }
    let (s, d) = gw.delete("/api/context?userId=ada&tenantId=acme").await;
    assert_eq!((s, &d["deleted"]), (200, &json!(true)));
    let (_, again) = gw.get("/api/context?userId=ada&tenantId=acme").await;
    assert_eq!(
        again["context"]["preferences"],
        json!({}),
        "cleared, then the default again"
    );
    assert_eq!(
        gw.get("/api/context?userId=ada").await.1["context"]["tenantId"],
        "default"
    );
}

async fn searches_and_history_stay_within_their_limits(env: Env) {
    let gw: &Endpoint = &env.gw;
    for i in 0..6 {
        update(gw, json!({"userId": "u", "addRecentSearch": format!("q{i}"), "recordSessionEvent": {"type": "e", "data": i}})).await;
    }
    let c = gw.get("/api/context?userId=u").await.1["context"].clone();
    assert_eq!(c["recentSearches"], json!(["q5", "q4", "q3"]));
    let data: Vec<Value> = c["sessionHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["data"].clone())
        .collect();
    assert_eq!(data, [json!(5), json!(4)]);
}

async fn bad_context_requests_name_the_field_and_change_nothing(env: Env) {
    let gw: &Endpoint = &env.gw;
    update(
        gw,
        json!({"userId": "b", "preferences": {"one": 1, "two": 2}}),
    )
    .await;
    for (body, field) in [
        (json!({"preferences": {}}), "userId"),
        (
            json!({"userId": "b", "tenantId": "t".repeat(201)}),
            "tenantId",
        ),
        (
            json!({"userId": "b", "addRecentSearch": "  "}),
            "addRecentSearch",
        ),
        (
            json!({"userId": "b", "addRecentSearch": "x".repeat(501)}),
            "addRecentSearch",
        ),
        (
            json!({"userId": "b", "recordSessionEvent": {"data": 1}}),
            "recordSessionEvent.type",
        ),
        (
            json!({"userId": "b", "preferences": {"big": "x".repeat(2000)}}),
            "preferences.big",
        ),
        (json!({"userId": "b", "colour": 1}), "colour"),
    ] {
        let (s, v) = gw.post("/api/context", body.clone()).await;
        assert_eq!(s, 400, "{body}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains(field),
            "{field}: {v}"
        );
    }
    let (s, v) = gw
        .post(
            "/api/context",
            json!({"userId": "b", "preferences": {"three": 3}, "addRecentSearch": "x"}),
        )
        .await;
    assert_eq!(s, 409, "past CONTEXT_MAX_PREFERENCES: {v}");
    let (s, v) = gw
        .post(
            "/api/context",
            json!({"userId": "b", "preferences": {"one": null, "three": 3}}),
        )
        .await;
    assert_eq!(s, 200, "one out, one in stays within the limit: {v}");
    assert_eq!(gw.get("/api/context").await.0, 400, "userId is required");
    let c = gw.get("/api/context?userId=b").await.1["context"].clone();
    assert_eq!(c["preferences"], json!({"two": 2, "three": 3}));
    assert_eq!(
        c["recentSearches"],
        json!([]),
        "the refused change changed nothing"
    );
}

fn small_limits(c: &mut afw_gateway::Config) {
    c.services.recent_searches_limit = 3;
    c.services.session_history_limit = 2;
    c.services.context_max_preferences = 2;
    c.services.context_value_max_bytes = 1024;
}

conformance! {
    a_read_answers_the_default_the_first_write_creates_it_and_changes_merge => crate::defaults,
    searches_and_history_stay_within_their_limits => super::small_limits,
    bad_context_requests_name_the_field_and_change_nothing => super::small_limits,
}
