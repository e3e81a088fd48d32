//! Queues: commands and input, their expiry, consuming and acknowledging, validation, long
//! polls.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::Gateway;
use crate::{events_of, Env};

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
    // (A skip, not a resume: a resume would settle the pending pause at once.)
    gw.post(
        "/api/sessions/exp/commands",
        json!({"type": "skip", "stepNumber": 2}),
    )
    .await;
    assert_eq!(commands(gw, "exp", "").await.len(), 2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let list = commands(gw, "exp", "").await;
    assert_eq!(
        list.len(),
        1,
        "the first expired, the second not yet: {list:?}"
    );
    assert_eq!(list[0]["command"]["type"], "skip");
    let id = first["commandId"].as_str().unwrap();
    let (s, _) = gw.post(&format!("/api/commands/{id}/ack"), json!({})).await;
    assert_eq!(s, 404, "an expired command cannot be acknowledged");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(commands(gw, "exp", "").await.is_empty());
}

async fn consume_takes_commands_once(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "take"})).await;
    for body in [
        json!({"type": "pause"}),
        json!({"type": "retry", "stepNumber": 1}),
        json!({"type": "skip", "stepNumber": 2}),
    ] {
        gw.post("/api/sessions/take/commands", body).await;
    }
    let taken = commands(gw, "take", "?consume=true").await;
    let types: Vec<&str> = taken
        .iter()
        .map(|c| c["command"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["pause", "retry", "skip"]);
    assert!(commands(gw, "take", "?consume=true").await.is_empty());
    assert!(commands(gw, "take", "").await.is_empty());
    let id = taken[0]["commandId"].as_str().unwrap();
    let (s, _) = gw.post(&format!("/api/commands/{id}/ack"), json!({})).await;
    assert_eq!(s, 200, "a consumed command can still be acknowledged");
}

/// The ActionFlows clients read commands flat (`id`, `type`, `payload`, `target`) and send
/// `stepNumber` and `reason` inside `payload`; a newer command settles what it makes moot.
async fn commands_read_flat_and_newer_ones_settle_older(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "flat"})).await;
    let (s, v) = gw
        .post(
            "/api/sessions/flat/commands",
            json!({"type": "retry", "payload": {"stepNumber": 2}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let c = &v["command"];
    assert_eq!(c["id"], c["commandId"]);
    assert_eq!(c["type"], "retry");
    assert_eq!(c["command"]["stepNumber"], 2);
    assert_eq!(c["payload"], json!({"stepNumber": 2}));
    assert_eq!(c["target"], json!({"stepNumber": 2}));
    let (s, v) = gw
        .post(
            "/api/sessions/flat/commands",
            json!({"type": "abort", "payload": {"reason": "wrong branch"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["command"]["command"]["reason"], "wrong branch");
    // The abort settled the retry before it.
    let list = commands(gw, "flat", "").await;
    let types: Vec<&str> = list.iter().map(|c| c["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["abort"]);
    let abort_id = list[0]["id"].as_str().unwrap().to_string();
    gw.post(&format!("/api/commands/{abort_id}/ack"), json!({}))
        .await;

    // pause, then resume: an agent reading the queue sees only the resume.
    let (_, pause) = gw
        .post("/api/sessions/flat/commands", json!({"type": "pause"}))
        .await;
    let (_, resume) = gw
        .post("/api/sessions/flat/commands", json!({"type": "resume"}))
        .await;
    let list = commands(gw, "flat", "").await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["type"], "resume");
    let (_, page) = gw.get("/api/events/flat").await;
    let settled = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["commandId"] == pause["commandId"])
        .cloned()
        .expect("the settled pause is acknowledged as an event");
    assert_eq!(settled["success"], false);
    let said = settled["error"].as_str().unwrap();
    assert!(
        said.contains(resume["commandId"].as_str().unwrap()),
        "{said}"
    );
    // A pause after a resume is not settled by it.
    gw.post("/api/sessions/flat/commands", json!({"type": "pause"}))
        .await;
    assert_eq!(commands(gw, "flat", "").await.len(), 2);
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

async fn queues_are_bounded_by_items_and_answers_by_bytes(env: Env) {
    let gw = &env.gw;
    gw.post("/api/sessions", json!({"id": "qb"})).await;
    let pad = "i".repeat(1500);
    for n in 0..5 {
        let (s, v) = gw
            .post(
                "/api/sessions/qb/input",
                json!({"input": {"n": n, "pad": pad}}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let (s, v) = gw
        .post("/api/sessions/qb/input", json!({"input": "one more"}))
        .await;
    assert_eq!((s, v["error"].as_str()), (429, Some("queue_full")), "{v}");
    for (s, v) in [
        gw.post("/api/sessions/qb/commands", json!({"type": "pause"}))
            .await,
        gw.post("/api/sessions/qb/commands", json!({"type": "resume"}))
            .await,
    ] {
        assert_eq!(s, 201, "{v}");
    }
    // Answers stop before READ_MAX_BYTES; what is left stays queued, in order.
    let mut got = Vec::new();
    for _ in 0..5 {
        let (s, v) = gw.get("/api/sessions/qb/input").await;
        assert_eq!(s, 200, "{v}");
        let items = v["inputs"].as_array().unwrap();
        assert!(items.len() <= 2, "{}", items.len());
        got.extend(items.iter().map(|i| i["input"]["n"].as_u64().unwrap()));
        if got.len() == 5 {
            break;
        }
    }
    assert_eq!(got, [0, 1, 2, 3, 4]);
    // Taken items make room again.
    let (s, _) = gw
        .post("/api/sessions/qb/input", json!({"input": "again"}))
        .await;
    assert_eq!(s, 201);
}

conformance! {
    queues_are_bounded_by_items_and_answers_by_bytes => |c| {
        c.control.queue_max_items = 5;
        c.events.max_event_bytes = 4096;
        c.events.max_batch_bytes = 4096;
        c.events.read_max_bytes = 4096;
        c.realtime.ws_outbound_limit_bytes = 65536;
    },
    command_life_cycle => crate::defaults,
    commands_expire_each_on_its_own_clock => |c| c.control.queue_ttl_secs = 1,
    consume_takes_commands_once => crate::defaults,
    commands_read_flat_and_newer_ones_settle_older => crate::defaults,
    input_is_taken_all_at_once => crate::defaults,
    input_with_ack_stays_until_acknowledged => crate::defaults,
    bad_commands_and_input_are_refused_and_store_nothing => crate::defaults,
    long_polls_return_when_an_item_arrives => crate::defaults,
}
