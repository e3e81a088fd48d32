//! Long polls parked by one client are capped per credential, so one client cannot park
//! thousands of claims and lock waits (19 KB each) while others still can.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{Endpoint, PeakRss};
use crate::Pair;

const HOSTILE: &str = "hostile-key-0123456789";
const WORKER: &str = "worker-key-0123456789";

async fn post_as(at: &Endpoint, key: &str, path: &str, body: Value) -> (u16, Value) {
    let r = at
        .http
        .post(at.url(path))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("POST");
    crate::support::status_json(r).await
}

/// One key parks MAX_WAITS_PER_CLIENT (200) claims and lock waits; the next is 429
/// `too_many_waits` at once, while another key's worker still long-polls and is woken by its
/// job (once a client could park 5,000 claims and 5,000 lock waits, +186 MB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_long_polls_are_capped_per_credential() {
    let keys = format!("{HOSTILE},{WORKER},bystander-key-0123456789");
    let pair = Pair::start(&[("AFW_API_KEYS", &keys), ("MAX_WAITS_PER_CLIENT", "200")]).await;
    let a = pair.a.endpoint();
    let rss = PeakRss::start(pair.a.pid());
    // 100 claims and 100 lock waits of 5 s: all parked.
    let (_, held) = post_as(
        &a,
        HOSTILE,
        "/api/locks/l",
        json!({"owner": "x", "ttlMs": 60_000}),
    )
    .await;
    assert_eq!(held["acquired"], true, "{held}");
    let parked: Vec<_> = (0..200)
        .map(|i| {
            let a = a.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    post_as(
                        &a,
                        HOSTILE,
                        &format!("/api/queues/q{i}/claim"),
                        json!({"workerId": "h", "wait": 5}),
                    )
                    .await
                } else {
                    post_as(
                        &a,
                        HOSTILE,
                        "/api/locks/l",
                        json!({"owner": "h", "ttlMs": 1000, "waitMs": 5000}),
                    )
                    .await
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The 201st of that key is refused at once, and changes nothing.
    let (s, v) = post_as(
        &a,
        HOSTILE,
        "/api/queues/x/claim",
        json!({"workerId": "h", "wait": 5}),
    )
    .await;
    assert_eq!((s, &v["error"]), (429, &json!("too_many_waits")), "{v}");
    // A claim without wait is no long poll: still answered.
    let (s, _) = post_as(&a, HOSTILE, "/api/queues/x/claim", json!({"workerId": "h"})).await;
    assert_eq!(s, 200);
    // Another key's worker long-polls as ever, and is woken by its job.
    let worker = {
        let a = a.clone();
        tokio::spawn(async move {
            post_as(
                &a,
                WORKER,
                "/api/queues/work/claim",
                json!({"workerId": "w", "wait": 10}),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, _) = post_as(&a, WORKER, "/api/queues/work/jobs", json!({"type": "t"})).await;
    assert_eq!(s, 201);
    let (s, v) = worker.await.unwrap();
    assert_eq!((s, v["count"].as_u64()), (200, Some(1)), "{v}");
    for p in parked {
        let (s, v) = p.await.unwrap();
        assert!(
            s == 200 || s == 409,
            "a parked wait answers when its time is up: {s} {v}"
        );
    }
    let rise = rss.rise_mib().await;
    println!("200 parked long polls: RSS +{rise} MiB");
    // Once they answered, the key may wait again.
    let (s, _) = post_as(
        &a,
        HOSTILE,
        "/api/queues/x/claim",
        json!({"workerId": "h", "wait": 0.1}),
    )
    .await;
    assert_eq!(s, 200);
    pair.finish().await;
}
