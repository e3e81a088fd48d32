//! The instances' figures for the operations view: an instance's record of its figures is
//! read back by `GET /api/ops/summary` (`recorded`), and on Redis it is one HASH that expires
//! three report periods after the last record.

use std::time::Duration;

use afw_gateway::Config;

use crate::Env;

fn every_second(c: &mut Config) {
    c.operations.ops_report_secs = 1;
}

async fn an_instance_s_record_is_read_back(env: Env) {
    let mut last = serde_json::Value::Null;
    for _ in 0..50 {
        let (s, v) = env.gw.get("/api/ops/summary").await;
        assert_eq!(s, 200, "{v}");
        if v["instances"][0]["recorded"] == true {
            assert_eq!(v["instances"].as_array().unwrap().len(), 1, "{v}");
            assert_eq!(v["errors"], serde_json::json!([]));
            if let Some(redis) = &env.redis {
                let mut c = redis.connection().await.unwrap();
                let ttl: i64 = ::redis::cmd("PTTL")
                    .arg("afw:instances")
                    .query_async(&mut c)
                    .await
                    .unwrap();
                assert!((1..=3000).contains(&ttl), "expires: {ttl}");
            }
            return;
        }
        last = v;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never recorded: {last}");
}

conformance! {
    an_instance_s_record_is_read_back => super::every_second,
}
