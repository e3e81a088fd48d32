//! Chains: stats, the workflow views and cleanup over many large chains read nothing whole.

use serde_json::{json, Value};

use crate::support::PeakRss;
use crate::{ok, together, Pair};

/// Two hundred chains of about 200 KiB (40 MB): eight clients reading the stats, the workflow
/// views and cleanup at once raise the instance's memory by a few pages of chains, not by the
/// whole set each (once 289 MB to 2.7 GB, and it stayed there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_stats_and_views_read_nothing_whole() {
    let pair = Pair::start(&[("READ_MAX_BYTES", "1048576")]).await;
    let a = pair.a.endpoint();
    ok(&a, "/api/sessions", json!({"id": "big"})).await;
    let detail = "d".repeat(15_000);
    together(8, |t| {
        let a = a.clone();
        let detail = detail.clone();
        async move {
            for i in 0..25 {
                let steps: Vec<Value> = (0..13)
                    .map(|n| json!({"title": format!("step {n}"), "detail": detail}))
                    .collect();
                let body = json!({"id": format!("c{t}-{i}"), "title": "big", "steps": steps});
                ok(&a, "/api/sessions/big/chains", body).await;
            }
        }
    })
    .await;
    let rss = PeakRss::start(pair.a.pid());
    let reads = together(8, |_| {
        let a = a.clone();
        async move {
            let mut answers = Vec::new();
            for path in [
                "/api/chains/stats",
                "/api/workflow-state/stats/overview",
                "/api/workflow-state/active/detailed",
                "/api/workflow-state/active/list",
                "/api/chains?status=active",
            ] {
                let (s, v) = a.get(path).await;
                assert_eq!(s, 200, "{path}: {v}");
                answers.push(v);
            }
            let (s, v) = a
                .post("/api/workflow-state/cleanup", json!({"staleSecs": 3600}))
                .await;
            assert_eq!((s, &v["cleaned"]), (200, &json!(0)), "{v}");
            answers
        }
    })
    .await;
    let rise = rss.rise_mib().await;
    println!("8 clients over 200 chains of 200 KiB: RSS +{rise} MiB");
    for answers in &reads {
        assert_eq!(answers[0]["total"], 200, "{}", answers[0]);
        assert_eq!(answers[1]["statistics"]["activeExecutions"], 200);
        assert!(answers[2]["nextCursor"].is_string(), "the views are paged");
        assert!(answers[2]["count"].as_u64().unwrap() < 200);
    }
    assert!(rise < 100, "RSS rose {rise} MiB");
    pair.finish().await;
}
