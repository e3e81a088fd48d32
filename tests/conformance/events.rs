//! Events: consecutive seqs, batches in order and all or nothing, reads by seq and time,
//! idempotent eventIds, the per-session cap.

use std::time::Duration;

use serde_json::{json, Value};

use crate::{events_of, seqs, Env};

async fn events_get_consecutive_seqs_and_create_the_session(env: Env) {
    let gw = &env.gw;
    let mut posters = Vec::new();
    for p in 0..5 {
        let http = gw.http.clone();
        let url = gw.url("/api/events");
        posters.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..20 {
                let r = http
                    .post(&url)
                    .json(&json!({"sessionId": "seq-1", "type": "tick", "poster": p, "i": i}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
                got.push(r.json::<Value>().await.unwrap()["seq"].as_u64().unwrap());
            }
            got
        }));
    }
    let mut all = Vec::new();
    for p in posters {
        all.extend(p.await.unwrap());
    }
    all.sort();
    assert_eq!(all, (1..=100).collect::<Vec<_>>(), "each seq exactly once");

    let page = events_of(gw, "seq-1", "").await;
    assert_eq!(seqs(&page), (1..=100).collect::<Vec<_>>());
    assert_eq!(page["headSeq"], 100);
    assert!(page["epoch"].is_string());
    let first = &page["events"][0];
    for f in ["eventId", "receivedAt", "timestamp", "sessionId", "type"] {
        assert!(first[f].is_string(), "stored event has {f}: {first}");
    }

    let (s, v) = gw.get("/api/sessions/seq-1").await;
    assert_eq!(
        (s, v["status"].as_str()),
        (200, Some("in_progress")),
        "the first event creates the session: {v}"
    );

    // A client's own seq never overrides the store's.
    let seq = gw
        .post_event(json!({"sessionId": "seq-1", "type": "t", "seq": 5}))
        .await;
    assert_eq!(seq, 101);
}

async fn batch_follows_array_order_and_is_all_or_nothing(env: Env) {
    let gw = &env.gw;
    let (s, v) = gw
        .post(
            "/api/events/batch",
            json!({"events": [
                {"sessionId": "b1", "type": "a"},
                {"sessionId": "b2", "type": "a"},
                {"sessionId": "b1", "type": "b"},
                {"sessionId": "b1", "type": "c"},
            ]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let got: Vec<(String, u64)> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["sessionId"].as_str().unwrap().to_string(),
                r["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("b1".into(), 1),
            ("b2".into(), 1),
            ("b1".into(), 2),
            ("b1".into(), 3)
        ]
    );
    let types: Vec<_> = events_of(gw, "b1", "").await["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types, ["a", "b", "c"]);

    let (s, v) = gw
        .post(
            "/api/events/batch",
            json!({"events": [{"sessionId": "b3", "type": "ok"}, {"sessionId": "b3"}]}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(v["details"][0]["field"], "events[1].type", "{v}");
    assert_eq!(
        events_of(gw, "b3", "").await["count"],
        0,
        "nothing of a rejected batch is stored"
    );
    let (s, _) = gw.get("/api/sessions/b3").await;
    assert_eq!(s, 404);

    let too_many: Vec<Value> = (0..1001)
        .map(|_| json!({"sessionId": "b4", "type": "x"}))
        .collect();
    let (s, _) = gw
        .post("/api/events/batch", json!({"events": too_many}))
        .await;
    assert_eq!(s, 400);
    let (s, _) = gw.post("/api/events/batch", json!({"events": []})).await;
    assert_eq!(s, 400);
}

async fn reads_by_after_since_and_recent(env: Env) {
    let gw = &env.gw;
    for i in 0..3 {
        gw.post_event(json!({"sessionId": "r1", "type": "early", "i": i}))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cutoff = afw_gateway::time::now().0;
    tokio::time::sleep(Duration::from_millis(20)).await;
    for i in 0..2 {
        gw.post_event(json!({"sessionId": "r1", "type": "late", "i": i}))
            .await;
    }

    let page = events_of(gw, "r1", "?after=2&limit=2").await;
    assert_eq!(seqs(&page), [3, 4]);
    assert_eq!(page["nextAfter"], 4);
    assert_eq!(page["headSeq"], 5);
    let page = events_of(gw, "r1", "?after=4").await;
    assert_eq!(seqs(&page), [5]);
    assert!(
        page.get("nextAfter").is_none(),
        "no nextAfter at the head: {page}"
    );
    assert_eq!(
        seqs(&events_of(gw, "r1", "?after=5").await),
        Vec::<u64>::new()
    );

    let page = events_of(gw, "r1", &format!("?since={cutoff}")).await;
    assert_eq!(
        seqs(&page),
        [4, 5],
        "since returns events received at or after it"
    );
    let page = events_of(gw, "r1", &format!("?since={cutoff}&limit=1")).await;
    assert_eq!(
        (seqs(&page), page["nextAfter"].as_u64()),
        (vec![4], Some(4))
    );

    let recent = events_of(gw, "r1", "/recent?limit=3&seconds=60").await;
    assert_eq!(seqs(&recent), [3, 4, 5]);
    assert!(recent["cutoffTime"].is_string());

    let (s, v) = gw
        .get("/api/events/r1?after=1&since=2026-01-01T00:00:00Z")
        .await;
    assert_eq!((s, v["error"].as_str()), (400, Some("validation_failed")));
    let (s, _) = gw.get("/api/events/r1?since=yesterday").await;
    assert_eq!(s, 400);
    let (s, _) = gw.get("/api/events/r1?limit=1001").await;
    assert_eq!(s, 400);
    let (s, _) = gw.get("/api/events/r1?after=-1").await;
    assert_eq!(s, 400);
    let page = events_of(gw, "r1", "?after=18446744073709551615").await;
    assert_eq!(
        (page["count"].as_u64(), page["headSeq"].as_u64()),
        (Some(0), Some(5)),
        "{page}"
    );

    let empty = events_of(gw, "never-posted", "").await;
    assert_eq!(
        (empty["count"].as_u64(), empty["headSeq"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(empty["epoch"].is_null());
}

async fn event_ids_are_idempotent(env: Env) {
    let gw = &env.gw;
    let (s, first) = gw
        .post(
            "/api/events",
            json!({"sessionId": "i1", "type": "t", "eventId": "once"}),
        )
        .await;
    assert_eq!(s, 201);
    gw.post_event(json!({"sessionId": "i1", "type": "t"})).await;
    let (s, again) = gw
        .post(
            "/api/events",
            json!({"sessionId": "i1", "type": "t", "eventId": "once"}),
        )
        .await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["seq"], first["seq"]);
    let (s, v) = gw
        .post(
            "/api/events/batch",
            json!({"events": [
                {"sessionId": "i1", "type": "t", "eventId": "once"},
                {"sessionId": "i1", "type": "t", "eventId": "twice"},
                {"sessionId": "i1", "type": "t", "eventId": "twice"},
            ]}),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(v["results"][0]["duplicate"], true);
    assert_eq!(v["results"][1]["seq"], 3);
    assert_eq!(v["results"][2]["seq"], 3);
    assert_eq!(v["results"][2]["duplicate"], true);
    assert_eq!(seqs(&events_of(gw, "i1", "").await), [1, 2, 3]);
    // The same eventId in another session is another event.
    let (s, _) = gw
        .post(
            "/api/events",
            json!({"sessionId": "i2", "type": "t", "eventId": "once"}),
        )
        .await;
    assert_eq!(s, 201);
}

async fn each_session_keeps_its_newest_events(env: Env) {
    let gw = &env.gw;
    for i in 0..8 {
        gw.post_event(json!({"sessionId": "trim", "type": "t", "i": i}))
            .await;
    }
    let page = events_of(gw, "trim", "").await;
    assert_eq!(seqs(&page), [4, 5, 6, 7, 8]);
    assert_eq!(page["headSeq"], 8);
    assert_eq!(
        seqs(&events_of(gw, "trim", "?after=1").await),
        [4, 5, 6, 7, 8]
    );
    assert_eq!(seqs(&events_of(gw, "trim", "?after=6").await), [7, 8]);
}

async fn odd_ids_are_ids_of_their_own(env: Env) {
    let gw = &env.gw;
    // A session named like another session's id plus its epoch, with an eventId that would
    // complete the other's dedup key if keys were joined without escaping.
    let v = gw
        .post(
            "/api/events",
            json!({"sessionId": "V", "type": "t", "eventId": "z"}),
        )
        .await;
    assert_eq!(v.0, 201, "{}", v.1);
    let epoch = events_of(gw, "V", "").await["epoch"]
        .as_str()
        .unwrap()
        .to_string();
    let forged = format!("V:{epoch}");
    let (s, v) = gw
        .post(
            "/api/events",
            json!({"sessionId": forged, "type": "t", "eventId": "z"}),
        )
        .await;
    assert_eq!((s, v["seq"].as_u64()), (201, Some(1)), "{v}");
    let (s, v) = gw
        .post(
            "/api/events",
            json!({"sessionId": "V", "type": "t", "eventId": format!("{epoch}:z")}),
        )
        .await;
    assert_eq!(
        (s, v.get("duplicate")),
        (201, None),
        "another session's event is not a duplicate: {v}"
    );
    assert_eq!(v["seq"], 2);
    for id in [
        "a:b",
        "{x}",
        "a}b",
        "}",
        "{",
        "%7D",
        "*",
        "sp ace",
        "ü-日本",
        "a:b:{c}",
    ] {
        for (sid, eid) in [(id, "e"), ("odd", id)] {
            let body = json!({"sessionId": sid, "type": "t", "eventId": eid});
            let (s, first) = gw.post("/api/events", body.clone()).await;
            assert_eq!(s, 201, "{sid:?} {eid:?}: {first}");
            let (s, again) = gw.post("/api/events", body).await;
            assert_eq!(
                (s, again["duplicate"].as_bool()),
                (200, Some(true)),
                "{again}"
            );
            assert_eq!(again["seq"], first["seq"]);
            let page = events_of(gw, &urlencode(sid), "").await;
            assert!(
                page["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["eventId"] == eid),
                "{sid:?} holds {eid:?}: {page}"
            );
        }
    }
    let (_, page) = gw.get(&format!("/api/events/{}", urlencode("{x}"))).await;
    assert_eq!(page["count"], 1, "one event in session {{x}}: {page}");
    for sid in ["a\u{0}b", "a\r\nb"] {
        let (s, v) = gw
            .post("/api/events", json!({"sessionId": sid, "type": "t"}))
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("validation_failed")),
            "{v}"
        );
        let (s, v) = gw
            .post(
                "/api/events",
                json!({"sessionId": "ok", "type": "t", "eventId": sid}),
            )
            .await;
        assert_eq!(s, 400, "control characters in an eventId: {v}");
    }
}

/// Percent-encodes a path segment.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn bodies_are_stored_as_they_came(env: Env) {
    let gw = &env.gw;
    let body = r#"{"zeta": 123456789012345678901234567890, "sessionId": "raw", "type": "t", "n": 1.50, "nested": {"b": 1, "a": [1e3]}}"#;
    let r = gw
        .http
        .post(gw.url("/api/events"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let text = gw
        .http
        .get(gw.url("/api/events/raw"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"{"zeta":123456789012345678901234567890,"sessionId":"raw","type":"t","n":1.50,"nested":{"b": 1, "a": [1e3]},"#),
        "{text}"
    );
    // A member named twice is refused: which one counts would be up to each reader.
    let r = gw
        .http
        .post(gw.url("/api/events"))
        .header("content-type", "application/json")
        .body(r#"{"sessionId":"raw","type":"t","sessionId":"other"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

async fn reads_stop_at_their_byte_budget_and_page_on(env: Env) {
    let gw = &env.gw;
    let pad = "b".repeat(1000);
    for i in 0..10 {
        gw.post_event(json!({"sessionId": "rb", "type": "t", "i": i, "pad": pad}))
            .await;
    }
    let mut ws = crate::support::WsClient::connect(&gw.ws_url()).await;
    ws.subscribe("rb", Some(0), None).await;
    let mut after = 0;
    let mut pages = 0;
    loop {
        let page = crate::events_of(gw, "rb", &format!("?after={after}")).await;
        let seqs = crate::seqs(&page);
        assert!(!seqs.is_empty() && seqs.len() <= 4, "{seqs:?}");
        assert_eq!(seqs[0], after + 1);
        pages += 1;
        match page["nextAfter"].as_u64() {
            Some(n) => after = n,
            None => break,
        }
    }
    assert!(pages >= 3);
    // A replay pages the same way and misses nothing.
    for seq in 1..=10 {
        assert_eq!(ws.next_event().await["seq"], seq);
    }
    // `since` past the newest event finds nothing, without reading the stream through.
    let page = crate::events_of(gw, "rb", "?since=2999-01-01T00:00:00.000Z").await;
    assert_eq!(page["count"], 0);
    let page = crate::events_of(gw, "rb", "?since=2000-01-01T00:00:00.000Z&limit=2").await;
    assert_eq!(crate::seqs(&page), [1, 2]);
}

conformance! {
    reads_stop_at_their_byte_budget_and_page_on => |c| {
        c.events.max_event_bytes = 4096;
        c.events.max_batch_bytes = 4096;
        c.events.read_max_bytes = 4096;
        c.realtime.ws_outbound_limit_bytes = 65536;
    },
    bodies_are_stored_as_they_came => crate::defaults,
    events_get_consecutive_seqs_and_create_the_session => crate::defaults,
    batch_follows_array_order_and_is_all_or_nothing => crate::defaults,
    reads_by_after_since_and_recent => crate::defaults,
    event_ids_are_idempotent => crate::defaults,
    each_session_keeps_its_newest_events => |c| c.events.max_events_per_session = 5,
    odd_ids_are_ids_of_their_own => crate::defaults,
}
