//! One suite, run against both stores through the HTTP API: the memory store must behave
//! exactly like Redis. Each test body is a function of an [`Env`]; the macro at the bottom
//! makes a `memory::` and a `redis::` test of each.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use afw_gateway::Config;
use serde_json::{json, Value};
use support::{Gateway, RedisServer};

pub struct Env {
    pub gw: Gateway,
    pub redis: Option<RedisServer>,
}

impl Env {
    async fn start(redis: bool, tweak: fn(&mut Config)) -> Env {
        let redis = if redis {
            Some(RedisServer::start().await)
        } else {
            None
        };
        let mut config = support::config(redis.as_ref());
        tweak(&mut config);
        Env {
            gw: Gateway::start(config).await,
            redis,
        }
    }
}

fn defaults(_: &mut Config) {}

async fn events_of(gw: &Gateway, sid: &str, query: &str) -> Value {
    let (status, v) = gw.get(&format!("/api/events/{sid}{query}")).await;
    assert_eq!(status, 200, "{v}");
    v
}

fn seqs(page: &Value) -> Vec<u64> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect()
}

async fn session_crud(env: Env) {
    let gw = &env.gw;
    let (s, v) = gw
        .post("/api/sessions", json!({"id": "crud-1", "cwd": "/w", "hostname": "h", "platform": "linux", "userId": "u1", "metadata": {"k": [1, 2]}}))
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["id"], "crud-1");
    assert_eq!(v["status"], "in_progress");
    assert_eq!(v["metadata"], json!({"k": [1, 2]}));
    assert!(v["startedAt"].as_str().unwrap().ends_with('Z'));

    let (s, v) = gw.post("/api/sessions", json!({"id": "crud-1"})).await;
    assert_eq!((s, v["error"].as_str()), (409, Some("conflict")));

    let (s, v) = gw.post("/api/sessions", json!({})).await;
    assert_eq!(s, 201, "an id is made when none is given: {v}");
    assert!(!v["id"].as_str().unwrap().is_empty());

    let (s, v) = gw.get("/api/sessions/crud-1").await;
    assert_eq!(
        (s, v["cwd"].as_str(), v["userId"].as_str()),
        (200, Some("/w"), Some("u1"))
    );

    let (s, v) = gw
        .patch(
            "/api/sessions/crud-1",
            json!({"status": "completed", "summary": "done"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["summary"], "done");
    assert!(v["endedAt"].is_string(), "endedAt is set on completed: {v}");
    assert_eq!(v["cwd"], "/w", "a patch keeps the other fields");

    let (s, v) = gw
        .patch("/api/sessions/crud-1", json!({"status": "exploded"}))
        .await;
    assert_eq!((s, v["error"].as_str()), (400, Some("validation_failed")));
    let (s, _) = gw
        .patch("/api/sessions/nope", json!({"status": "failed"}))
        .await;
    assert_eq!(s, 404);
    let (s, _) = gw.get("/api/sessions/crud-1").await;
    assert_eq!(s, 200);

    let (s, _) = gw.delete("/api/sessions/crud-1").await;
    assert_eq!(s, 204);
    let (s, v) = gw.get("/api/sessions/crud-1").await;
    assert_eq!((s, v["error"].as_str()), (404, Some("not_found")));
    let (s, _) = gw.delete("/api/sessions/crud-1").await;
    assert_eq!(s, 404);
}

async fn concurrent_patches_of_different_fields_both_survive(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "atomic"})).await;
    for round in 0..20 {
        let a = gw.patch(
            "/api/sessions/atomic",
            json!({"summary": format!("s{round}")}),
        );
        let b = gw.patch(
            "/api/sessions/atomic",
            json!({"metadata": {"round": round}}),
        );
        let c = gw.patch(
            "/api/sessions/atomic",
            json!({"endReason": format!("r{round}")}),
        );
        let ((sa, _), (sb, _), (sc, _)) = tokio::join!(a, b, c);
        assert_eq!((sa, sb, sc), (200, 200, 200));
        let (_, v) = gw.get("/api/sessions/atomic").await;
        assert_eq!(v["summary"], format!("s{round}"), "{v}");
        assert_eq!(v["metadata"], json!({"round": round}), "{v}");
        assert_eq!(v["endReason"], format!("r{round}"), "{v}");
    }
}

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

async fn sessions_expire_and_their_stream_starts_a_new_epoch(env: Env) {
    let gw = &env.gw;
    gw.post_event(json!({"sessionId": "ttl", "type": "t"}))
        .await;
    let old_epoch = events_of(gw, "ttl", "").await["epoch"].clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (s, _) = gw.get("/api/sessions/ttl").await;
        if s == 404 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the session never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        events_of(gw, "ttl", "").await["count"],
        0,
        "its events expire with it"
    );
    let seq = gw
        .post_event(json!({"sessionId": "ttl", "type": "t"}))
        .await;
    assert_eq!(seq, 1, "a new stream starts at 1");
    let new_epoch = events_of(gw, "ttl", "").await["epoch"].clone();
    assert_ne!(old_epoch, new_epoch, "and has a new epoch");
    let (s, v) = gw.get("/api/sessions?limit=10").await;
    assert_eq!(s, 200);
    let listed = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["id"] == "ttl")
        .count();
    assert_eq!(
        listed, 1,
        "the session comes back once, not once per life: {v}"
    );
}

async fn sessions_list_pages_and_filters(env: Env) {
    let gw = &env.gw;
    for i in 0..7 {
        let user = if i % 2 == 0 { "even" } else { "odd" };
        let (s, _) = gw
            .post(
                "/api/sessions",
                json!({"id": format!("list-{i}"), "userId": user}),
            )
            .await;
        assert_eq!(s, 201);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    gw.patch("/api/sessions/list-3", json!({"status": "failed"}))
        .await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let q = match &cursor {
            Some(c) => format!("/api/sessions?limit=3&cursor={c}"),
            None => "/api/sessions?limit=3".to_string(),
        };
        let (s, v) = gw.get(&q).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            v["count"].as_u64().unwrap() as usize,
            v["sessions"].as_array().unwrap().len()
        );
        seen.extend(
            v["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_string()),
        );
        match v["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..7).rev().map(|i| format!("list-{i}")).collect();
    assert_eq!(seen, expected, "newest first, each once");

    let (_, v) = gw.get("/api/sessions?userId=odd").await;
    let ids: HashSet<_> = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, HashSet::from(["list-1", "list-3", "list-5"]));
    let (_, v) = gw.get("/api/sessions?status=failed").await;
    assert_eq!(v["count"], 1);
    assert_eq!(v["sessions"][0]["id"], "list-3");
    assert_eq!(v["nextCursor"], Value::Null);
    let (s, _) = gw.get("/api/sessions?status=nope").await;
    assert_eq!(s, 400);
    let (s, _) = gw.get("/api/sessions?cursor=zz").await;
    assert_eq!(s, 400);

    gw.delete("/api/sessions/list-0").await;
    let (_, v) = gw.get("/api/sessions?userId=even").await;
    assert_eq!(v["count"], 3, "a deleted session leaves the listing: {v}");
}

async fn awaiting_sets_state_and_publishes_an_event(env: Env) {
    let gw = &env.gw;
    let (s, _) = gw.post("/api/sessions/ghost/awaiting", json!({})).await;
    assert_eq!(s, 404);
    gw.post("/api/sessions", json!({"id": "aw"})).await;
    let (s, v) = gw
        .post("/api/sessions/aw/awaiting", json!({"promptType": "choice", "promptText": "Proceed?", "quickResponses": ["yes", "no"]}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["conversationState"], "awaiting_input");
    assert_eq!(v["lastPrompt"]["promptText"], "Proceed?");
    let page = events_of(gw, "aw", "").await;
    assert_eq!(page["events"][0]["type"], "interaction:awaiting-input");
    assert_eq!(page["events"][0]["quickResponses"], json!(["yes", "no"]));
}

async fn commands(gw: &Gateway, sid: &str, query: &str) -> Vec<Value> {
    let (s, v) = gw
        .get(&format!("/api/sessions/{sid}/commands{query}"))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["count"].as_u64().unwrap() as usize,
        v["commands"].as_array().unwrap().len()
    );
    v["commands"].as_array().unwrap().clone()
}

async fn command_life_cycle(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "cmd"})).await;
    let (s, v) = gw
        .post(
            "/api/sessions/cmd/commands",
            json!({"type": "retry", "stepNumber": 3, "payload": {"why": "flaky"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["commandId"].as_str().unwrap().to_string();
    assert_eq!(v["command"]["commandId"], id.as_str());
    assert_eq!(
        v["command"]["command"],
        json!({"type": "retry", "stepNumber": 3, "payload": {"why": "flaky"}})
    );
    assert_eq!(v["command"]["status"], "pending");
    assert_eq!(v["command"]["sessionId"], "cmd");
    let (s, v2) = gw
        .post("/api/commands/cmd/commands", json!({"type": "pause"}))
        .await;
    assert_eq!(s, 201, "the alias route: {v2}");

    // Reads are not destructive: twice the same, oldest first.
    for _ in 0..2 {
        let list = commands(gw, "cmd", "").await;
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["commandId"], id.as_str());
        assert_eq!(list[1]["command"]["type"], "pause");
    }
    assert_eq!(gw.get("/api/commands/cmd/commands").await.1["count"], 2);

    let (s, a) = gw
        .post(
            &format!("/api/commands/{id}/ack"),
            json!({"result": {"ok": true}}),
        )
        .await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(
        a,
        json!({"success": true, "commandId": id, "acknowledged": true})
    );
    let list = commands(gw, "cmd", "").await;
    assert_eq!(list.len(), 1, "an acknowledged command is gone");
    let (s, _) = gw.post(&format!("/api/commands/{id}/ack"), json!({})).await;
    assert_eq!(s, 200, "acks are idempotent");
    let (s, e) = gw.post("/api/commands/nope/ack", json!({})).await;
    assert_eq!((s, e["error"].as_str()), (404, Some("not_found")));
    let other = list[0]["commandId"].as_str().unwrap().to_string();
    let (s, _) = gw
        .post(
            &format!("/api/sessions/elsewhere/commands/{other}/ack"),
            json!({}),
        )
        .await;
    assert_eq!(s, 404, "the session route checks the session");
    let (s, _) = gw
        .post(
            &format!("/api/sessions/cmd/commands/{other}/ack"),
            json!({"error": "could not pause"}),
        )
        .await;
    assert_eq!(s, 200);
    assert!(commands(gw, "cmd", "").await.is_empty());

    let page = events_of(gw, "cmd", "").await;
    let acks: Vec<&Value> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "command:acknowledged")
        .collect();
    assert_eq!(acks.len(), 2, "one event per command, not per ack: {page}");
    assert_eq!(acks[0]["commandId"], id.as_str());
    assert_eq!(acks[0]["commandType"], "retry");
    assert_eq!(acks[0]["success"], true);
    assert_eq!(acks[0]["result"], json!({"ok": true}));
    assert_eq!(acks[1]["success"], false);
    assert_eq!(acks[1]["error"], "could not pause");
}

async fn commands_expire_each_on_its_own_clock(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "exp"})).await;
    let (_, first) = gw
        .post("/api/sessions/exp/commands", json!({"type": "pause"}))
        .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    gw.post("/api/sessions/exp/commands", json!({"type": "resume"}))
        .await;
    assert_eq!(commands(gw, "exp", "").await.len(), 2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let list = commands(gw, "exp", "").await;
    assert_eq!(
        list.len(),
        1,
        "the first expired, the second not yet: {list:?}"
    );
    assert_eq!(list[0]["command"]["type"], "resume");
    let id = first["commandId"].as_str().unwrap();
    let (s, _) = gw.post(&format!("/api/commands/{id}/ack"), json!({})).await;
    assert_eq!(s, 404, "an expired command cannot be acknowledged");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(commands(gw, "exp", "").await.is_empty());
}

async fn consume_takes_commands_once(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "take"})).await;
    for t in ["pause", "resume", "cancel"] {
        gw.post("/api/sessions/take/commands", json!({"type": t}))
            .await;
    }
    let taken = commands(gw, "take", "?consume=true").await;
    let types: Vec<&str> = taken
        .iter()
        .map(|c| c["command"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["pause", "resume", "cancel"]);
    assert!(commands(gw, "take", "?consume=true").await.is_empty());
    assert!(commands(gw, "take", "").await.is_empty());
    let id = taken[0]["commandId"].as_str().unwrap();
    let (s, _) = gw.post(&format!("/api/commands/{id}/ack"), json!({})).await;
    assert_eq!(s, 200, "a consumed command can still be acknowledged");
}

async fn input_is_taken_all_at_once(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "in"})).await;
    let mut ids = Vec::new();
    for (i, answer) in [json!("yes"), json!({"choice": 2}), json!(["a", "b"])]
        .into_iter()
        .enumerate()
    {
        let (s, v) = gw
            .post(
                "/api/sessions/in/input",
                json!({"input": answer, "prompt": format!("q{i}")}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["inputQueued"]["source"], "api");
        assert_eq!(v["inputQueued"]["input"], answer);
        assert_eq!(v["inputId"], v["inputQueued"]["inputId"]);
        ids.push(v["inputId"].clone());
    }
    let (s, v) = gw.get("/api/sessions/in/input").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["available"], true);
    assert_eq!(v["count"], 3);
    assert_eq!(v["input"], v["inputs"][0]);
    let got: Vec<Value> = v["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["inputId"].clone())
        .collect();
    assert_eq!(got, ids, "every item, oldest first");
    assert_eq!(v["inputs"][1]["prompt"], "q1");
    let (_, v) = gw.get("/api/sessions/in/input").await;
    assert_eq!(
        v,
        json!({"sessionId": "in", "available": false, "count": 0, "input": null, "inputs": []})
    );
}

async fn input_with_ack_stays_until_acknowledged(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "ack"})).await;
    for n in 0..2 {
        gw.post("/api/sessions/ack/input", json!({"input": n}))
            .await;
    }
    for _ in 0..2 {
        let (_, v) = gw.get("/api/sessions/ack/input?consume=false").await;
        assert_eq!(v["count"], 2, "{v}");
    }
    let (_, v) = gw.get("/api/sessions/ack/input?consume=false").await;
    let first = v["inputs"][0]["inputId"].as_str().unwrap().to_string();
    let (s, a) = gw
        .post(&format!("/api/sessions/ack/input/{first}/ack"), json!({}))
        .await;
    assert_eq!(s, 200, "{a}");
    let (s, _) = gw
        .post(&format!("/api/sessions/ack/input/{first}/ack"), json!({}))
        .await;
    assert_eq!(s, 404, "already gone");
    let (_, v) = gw.get("/api/sessions/ack/input?consume=false").await;
    assert_eq!(v["count"], 1);
    assert_eq!(v["input"]["input"], 1);
}

async fn bad_commands_and_input_are_refused_and_store_nothing(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "bad"})).await;
    for (body, field) in [
        (json!({"type": "explode"}), "type"),
        (json!({}), "type"),
        (json!({"type": "retry"}), "stepNumber"),
        (json!({"type": "skip", "stepNumber": -1}), "stepNumber"),
        (json!({"type": "abort"}), "reason"),
        (json!({"type": "abort", "reason": 7}), "reason"),
    ] {
        let (s, v) = gw.post("/api/sessions/bad/commands", body.clone()).await;
        assert_eq!(s, 400, "{body}: {v}");
        assert_eq!(v["details"][0]["field"], field, "{body}: {v}");
    }
    let (s, v) = gw
        .post(
            "/api/sessions/bad/commands",
            json!({"type": "pause", "typo": 1}),
        )
        .await;
    assert_eq!(s, 400, "unknown fields: {v}");
    let (s, _) = gw
        .post("/api/sessions/ghost/commands", json!({"type": "pause"}))
        .await;
    assert_eq!(s, 404, "no such session");
    assert!(
        commands(gw, "bad", "").await.is_empty(),
        "nothing was queued"
    );
    for q in [
        "?wait=61",
        "?wait=soon",
        "?timeout=-1",
        "?wait=1&timeout=5",
        "?consume=maybe",
        "?limit=3",
    ] {
        let (s, v) = gw.get(&format!("/api/sessions/bad/commands{q}")).await;
        assert_eq!(s, 400, "{q}: {v}");
    }
    for body in [
        json!({}),
        json!({"input": null}),
        json!({"input": "x", "prompt": 5}),
        json!({"input": "x", "extra": 1}),
    ] {
        let (s, v) = gw.post("/api/sessions/bad/input", body.clone()).await;
        assert_eq!(s, 400, "{body}: {v}");
    }
    let (s, _) = gw
        .post("/api/sessions/ghost/input", json!({"input": "x"}))
        .await;
    assert_eq!(s, 404);
    assert_eq!(gw.get("/api/sessions/bad/input").await.1["count"], 0);
}

async fn long_polls_return_when_an_item_arrives(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "lp"})).await;
    let (s, v) = gw.get("/api/sessions/lp/commands?timeout=200").await;
    assert_eq!(
        (s, &v["count"]),
        (200, &json!(0)),
        "an empty wait ends empty"
    );
    let poll = {
        let ep = gw.endpoint();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let (_, v) = ep.get("/api/sessions/lp/input?wait=20").await;
            (v, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.post("/api/sessions/lp/input", json!({"input": "go"}))
        .await;
    let (v, waited) = poll.await.unwrap();
    assert_eq!(v["input"]["input"], "go", "{v}");
    assert!(
        waited < Duration::from_secs(10),
        "answered when the input came, not at the end ({waited:?})"
    );
}

async fn post_events(gw: &Gateway, events: Vec<Value>) {
    for e in events {
        let (s, v) = gw.post("/api/events", e).await;
        assert!(s == 201 || s == 200, "{v}");
    }
}

async fn chain(gw: &Gateway, id: &str) -> Value {
    let (s, v) = gw.get(&format!("/api/chains/{id}")).await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn chain_progress_follows_its_events(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "wf"})).await;
    let ev = |t: &str, extra: Value| {
        let mut e = json!({"sessionId": "wf", "type": t, "chainId": "c1"});
        e.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        e
    };
    post_events(
        gw,
        vec![
            ev("chain:compiled", json!({"title": "Release", "source": "planner", "steps": ["plan", {"title": "code", "model": "m1"}, "test", "ship"]})),
            ev("chain:started", json!({})),
            ev("step:started", json!({"stepNumber": 1})),
            ev("step:completed", json!({"stepNumber": 1})),
        ],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The step number may also sit in the payload.
    post_events(
        gw,
        vec![
            json!({"sessionId": "wf", "type": "step:started", "payload": {"chainId": "c1", "stepNumber": 2}}),
            ev("step:completed", json!({"stepNumber": 2})),
        ],
    )
    .await;
    let c = chain(gw, "c1").await;
    assert_eq!(c["sessionId"], "wf");
    assert_eq!(c["title"], "Release");
    assert_eq!(c["source"], "planner");
    assert_eq!(c["status"], "in_progress");
    assert_eq!(
        (c["completedSteps"].as_u64(), c["totalSteps"].as_u64()),
        (Some(2), Some(4))
    );
    assert_eq!(c["currentStep"], 2);
    assert_eq!(c["progress"], 50.0);
    assert_eq!(
        c["steps"][1]["model"], "m1",
        "what the agent said about a step is kept"
    );
    assert_eq!(c["steps"][1]["status"], "completed");
    assert_eq!(c["steps"][2]["status"], "pending");
    let started = chrono::DateTime::parse_from_rfc3339(c["startedAt"].as_str().unwrap()).unwrap();
    let updated = chrono::DateTime::parse_from_rfc3339(c["updatedAt"].as_str().unwrap()).unwrap();
    let eta =
        chrono::DateTime::parse_from_rfc3339(c["estimatedCompletion"].as_str().unwrap()).unwrap();
    // At 50% the estimate is the start plus twice the elapsed time (to the ms of rounding).
    let want = started + (updated - started) * 2;
    assert!(
        (eta - want).num_milliseconds().abs() <= 2,
        "eta {eta} vs {want}"
    );

    let (_, list) = gw.get("/api/sessions/wf/chains").await;
    assert_eq!(
        (list["count"].as_u64(), &list["chains"][0]["id"]),
        (Some(1), &json!("c1"))
    );
    assert_eq!(gw.get("/api/sessions/wf").await.1["chainsCount"], 1);
    // A compiled chain without an id takes the event's id, so a retried post is harmless.
    for _ in 0..2 {
        post_events(gw, vec![json!({"sessionId": "wf", "type": "chain:compiled", "eventId": "ev-77", "title": "Again"})]).await;
    }
    assert_eq!(chain(gw, "ev-77").await["title"], "Again");
    assert_eq!(gw.get("/api/sessions/wf/chains").await.1["count"], 2);

    post_events(gw, vec![ev("chain:completed", json!({}))]).await;
    let c = chain(gw, "c1").await;
    assert_eq!(c["status"], "completed");
    assert_eq!(c["progress"], 100.0);
    assert_eq!(c["completedSteps"], 4);
    assert!(c["completedAt"].is_string());
    assert!(c.get("estimatedCompletion").is_none(), "{c}");
    // Step events for a chain the session does not name go to its newest chain.
    post_events(
        gw,
        vec![json!({"sessionId": "wf", "type": "chain:failed", "error": "boom"})],
    )
    .await;
    let c = chain(gw, "ev-77").await;
    assert_eq!(
        (c["status"].as_str(), c["error"].as_str()),
        (Some("failed"), Some("boom"))
    );
}

async fn chain_routes_check_their_input(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "cr"})).await;
    let (s, c) = gw
        .post(
            "/api/sessions/cr/chains",
            json!({"id": "k1", "title": "Deploy", "totalSteps": 5}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(
        (c["status"].as_str(), c["progress"].as_f64()),
        (Some("pending"), Some(0.0))
    );
    let (s, _) = gw
        .post(
            "/api/sessions/cr/chains",
            json!({"id": "k1", "title": "Again"}),
        )
        .await;
    assert_eq!(s, 409);
    let (s, v) = gw
        .post("/api/sessions/cr/chains", json!({"steps": [1]}))
        .await;
    assert_eq!(s, 400, "{v}");
    let fields: Vec<&str> = v["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["title", "steps[0]"]);
    let (s, _) = gw
        .post("/api/sessions/nobody/chains", json!({"title": "x"}))
        .await;
    assert_eq!(s, 404);
    let (s, _) = gw
        .post(
            "/api/sessions/cr/chains",
            json!({"title": "x", "colour": "red"}),
        )
        .await;
    assert_eq!(s, 400, "unknown fields are refused");

    let (s, c) = gw
        .patch(
            "/api/chains/k1",
            json!({"status": "in_progress", "completedSteps": 2, "data": {"pr": 12}}),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(
        (c["progress"].as_f64(), &c["data"]),
        (Some(40.0), &json!({"pr": 12}))
    );
    assert!(c["startedAt"].is_string());
    let (s, _) = gw
        .patch("/api/chains/k1", json!({"status": "exploded"}))
        .await;
    assert_eq!(s, 400);
    let (s, _) = gw
        .patch("/api/chains/missing", json!({"status": "paused"}))
        .await;
    assert_eq!(s, 404);
    assert_eq!(
        chain(gw, "k1").await["data"],
        json!({"pr": 12}),
        "a refused patch changed nothing"
    );
    let (s, _) = gw.get("/api/chains?status=bogus").await;
    assert_eq!(s, 400);
    let (s, _) = gw.get("/api/chains/missing").await;
    assert_eq!(s, 404);
}

async fn chain_stats_count_finished_chains_and_cleanup_fails_stale_ones(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "st"})).await;
    for id in ["a", "b", "c"] {
        gw.post(
            "/api/sessions/st/chains",
            json!({"id": id, "title": id, "totalSteps": 2}),
        )
        .await;
    }
    gw.patch("/api/chains/a", json!({"status": "completed"}))
        .await;
    gw.patch(
        "/api/chains/b",
        json!({"status": "in_progress", "completedSteps": 1}),
    )
    .await;
    let (_, s) = gw.get("/api/chains/stats").await;
    assert_eq!(s["total"], 3, "{s}");
    assert_eq!(s["active"], 2);
    assert_eq!(s["byStatus"]["completed"], 1);
    assert_eq!(s["byStatus"]["in_progress"], 1);
    assert_eq!(s["byStatus"]["pending"], 1);
    assert_eq!(s["byStatus"]["cancelled"], 0);
    assert_eq!(s["averageProgress"], 50.0, "(100 + 50 + 0) / 3");
    let (_, active) = gw.get("/api/chains?status=active").await;
    let ids: HashSet<&str> = active["chains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, HashSet::from(["b", "c"]));

    let (s, v) = gw.post("/api/chains/cleanup", json!({})).await;
    assert_eq!((s, &v["cleaned"]), (200, &json!(0)), "nothing is stale yet");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    gw.patch("/api/chains/c", json!({"data": {"touched": true}}))
        .await;
    let (_, v) = gw
        .post("/api/chains/cleanup", json!({"staleSecs": 1}))
        .await;
    assert_eq!(v["cleaned"], 1, "only b had no update for a second: {v}");
    let b = chain(gw, "b").await;
    assert_eq!(
        (b["status"].as_str(), b["error"].as_str()),
        (Some("failed"), Some("stale"))
    );
    let (_, s) = gw.get("/api/chains/stats").await;
    assert_eq!(
        (s["active"].as_u64(), &s["byStatus"]["failed"]),
        (Some(1), &json!(1))
    );
}

async fn acknowledged_commands_move_chains(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "cc"})).await;
    gw.post(
        "/api/sessions/cc/chains",
        json!({"id": "run", "title": "Run"}),
    )
    .await;
    gw.post(
        "/api/sessions/cc/chains",
        json!({"id": "done", "title": "Done"}),
    )
    .await;
    gw.patch("/api/chains/run", json!({"status": "in_progress"}))
        .await;
    gw.patch("/api/chains/done", json!({"status": "completed"}))
        .await;
    let command = |t: &'static str| async move {
        let (_, v) = gw
            .post("/api/sessions/cc/commands", json!({"type": t}))
            .await;
        v["commandId"].as_str().unwrap().to_string()
    };
    let id = command("pause").await;
    assert_eq!(
        chain(gw, "run").await["status"],
        "in_progress",
        "not before the ack"
    );
    gw.post(
        &format!("/api/commands/{id}/ack"),
        json!({"result": "paused"}),
    )
    .await;
    assert_eq!(chain(gw, "run").await["status"], "paused");
    assert_eq!(
        chain(gw, "done").await["status"],
        "completed",
        "finished chains stay"
    );
    let id = command("resume").await;
    gw.post(
        &format!("/api/commands/{id}/ack"),
        json!({"error": "cannot resume"}),
    )
    .await;
    assert_eq!(
        chain(gw, "run").await["status"],
        "paused",
        "a failed ack moves nothing"
    );
    let id = command("resume").await;
    gw.post(&format!("/api/commands/{id}/ack"), json!({})).await;
    assert_eq!(chain(gw, "run").await["status"], "in_progress");
    let id = command("cancel").await;
    gw.post(&format!("/api/commands/{id}/ack"), json!({})).await;
    let c = chain(gw, "run").await;
    assert_eq!(c["status"], "cancelled");
    assert!(c["completedAt"].is_string());
}

macro_rules! conformance {
    ($($name:ident => $tweak:expr),* $(,)?) => {
        mod memory {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(super::Env::start(false, $tweak).await).await; } )*
        }
        mod redis {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(super::Env::start(true, $tweak).await).await; } )*
        }
    };
}

conformance! {
    session_crud => super::defaults,
    concurrent_patches_of_different_fields_both_survive => super::defaults,
    events_get_consecutive_seqs_and_create_the_session => super::defaults,
    batch_follows_array_order_and_is_all_or_nothing => super::defaults,
    reads_by_after_since_and_recent => super::defaults,
    event_ids_are_idempotent => super::defaults,
    each_session_keeps_its_newest_events => |c| c.max_events_per_session = 5,
    sessions_expire_and_their_stream_starts_a_new_epoch => |c| c.session_ttl_secs = 1,
    sessions_list_pages_and_filters => super::defaults,
    awaiting_sets_state_and_publishes_an_event => super::defaults,
    command_life_cycle => super::defaults,
    commands_expire_each_on_its_own_clock => |c| c.queue_ttl_secs = 1,
    consume_takes_commands_once => super::defaults,
    input_is_taken_all_at_once => super::defaults,
    input_with_ack_stays_until_acknowledged => super::defaults,
    bad_commands_and_input_are_refused_and_store_nothing => super::defaults,
    long_polls_return_when_an_item_arrives => super::defaults,
    chain_progress_follows_its_events => super::defaults,
    chain_routes_check_their_input => super::defaults,
    chain_stats_count_finished_chains_and_cleanup_fails_stale_ones => super::defaults,
    acknowledged_commands_move_chains => super::defaults,
}
