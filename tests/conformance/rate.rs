//! Rate limits: a credential's burst, then 429 with the headers that say when to come back;
//! the budget refills at the rate; each credential and each refused address has its own; a
//! limited credential's requests change nothing. On Redis the state is one key per subject,
//! with an expiry.

use std::time::Duration;

use afw_gateway::Config;
use serde_json::json;

use crate::Env;

const KEY_A: &str = "rate-key-a-0123456789";
const KEY_B: &str = "rate-key-b-0123456789";

fn limited(c: &mut Config) {
    c.auth.api_keys = vec![KEY_A.into(), format!("default:{KEY_B}:agent")];
    c.rate_limits.rate_limit_rps = 2.0;
    c.rate_limits.rate_limit_burst = 5;
}

/// The status and headers of a GET with `key`.
async fn get(env: &Env, key: Option<&str>) -> (u16, reqwest::header::HeaderMap) {
    let mut rb = env.gw.http.get(env.gw.url("/api/sessions"));
    if let Some(k) = key {
        rb = rb.bearer_auth(k);
    }
    let r = rb.send().await.unwrap();
    (r.status().as_u16(), r.headers().clone())
}

async fn a_burst_then_429_with_when_to_come_back(env: Env) {
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(get(&env, Some(KEY_A)).await.0);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    let (s, h) = get(&env, Some(KEY_A)).await;
    assert_eq!(s, 429);
    let header = |n: &str| h[n].to_str().unwrap().parse::<u64>().unwrap();
    assert_eq!(header("ratelimit-limit"), 5);
    assert_eq!(header("ratelimit-remaining"), 0);
    assert_eq!(
        header("retry-after"),
        1,
        "one request comes back every 500 ms"
    );
    assert!((2..=3).contains(&header("ratelimit-reset")), "{h:?}");
    // The other credential has its own budget.
    assert_eq!(get(&env, Some(KEY_B)).await.0, 200);
    // At 2 a second, a second later two more come in, and no more.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again: Vec<u16> = futures::future::join_all((0..4).map(|_| get(&env, Some(KEY_A))))
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    // (Three when the requests themselves took long enough for one more to come in.)
    let allowed = again.iter().filter(|s| **s == 200).count();
    assert!((2..=3).contains(&allowed), "{again:?}");
}

async fn a_limited_write_changes_nothing(env: Env) {
    let agent = env.gw.with_key(KEY_B);
    let mut stored = 0;
    for i in 0..10 {
        let (s, v) = agent
            .post(
                "/api/events",
                json!({"sessionId": "lim", "type": "t", "i": i}),
            )
            .await;
        match s {
            201 => stored += 1,
            429 => assert_eq!(v["error"], "rate_limited"),
            other => panic!("{other} {v}"),
        }
    }
    // (Six when the posts themselves took long enough for one more to come in.)
    assert!((5..=6).contains(&stored), "{stored}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, page) = agent.get("/api/events/lim").await;
    assert_eq!(
        page["count"], stored,
        "only the allowed posts were stored: {page}"
    );
}

async fn refused_credentials_spend_their_address_budget(env: Env) {
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(get(&env, Some("wrong-key-0123456789")).await.0);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429]);
    assert_eq!(
        get(&env, None).await.0,
        429,
        "no credentials: the same address"
    );
    // A valid credential from that address is not held back by it.
    assert_eq!(get(&env, Some(KEY_A)).await.0, 200);
    if let Some(redis) = &env.redis {
        let mut c = ::redis::Client::open(redis.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let ttl: i64 = ::redis::cmd("PTTL")
            .arg("afw:rate:{a:127.0.0.1}")
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(
            (1..=4000).contains(&ttl),
            "the address's state expires: {ttl}"
        );
    }
}

conformance! {
    a_burst_then_429_with_when_to_come_back => super::limited,
    a_limited_write_changes_nothing => super::limited,
    refused_credentials_spend_their_address_budget => super::limited,
}
