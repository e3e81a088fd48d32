//! The agent control loop across instances on one Redis: long polls woken by a post on another
//! instance, many pollers and posters at once, commands pushed to WebSocket subscribers, input
//! over WebSocket, and a long poll whose client goes away.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{Gateway, RedisServer, WsClient};

async fn three(redis: &RedisServer) -> Vec<Gateway> {
    let mut gws = Vec::new();
    for _ in 0..3 {
        gws.push(Gateway::start(support::config(Some(redis))).await);
    }
    gws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_on_one_instance_wakes_for_a_post_on_another() {
    let redis = RedisServer::start().await;
    let gws = three(&redis).await;
    let (a, b) = (&gws[0], &gws[1]);
    a.post("/api/sessions", json!({"id": "lp"})).await;
    for (route, body) in [
        ("commands", json!({"type": "pause"})),
        ("input", json!({"input": "go on"})),
    ] {
        let poll = {
            let ep = b.endpoint();
            tokio::spawn(async move {
                let started = Instant::now();
                let (s, v) = ep.get(&format!("/api/sessions/lp/{route}?wait=30")).await;
                (s, v, started.elapsed())
            })
        };
        // Let the poll register on B, then post on A.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let posted = Instant::now();
        let (s, _) = a.post(&format!("/api/sessions/lp/{route}"), body).await;
        assert_eq!(s, 201);
        let (s, v, waited) = poll.await.unwrap();
        assert_eq!((s, &v["count"]), (200, &json!(1)), "{route}: {v}");
        println!(
            "{route}: the wait on B returned {:?} after the post on A",
            posted.elapsed()
        );
        assert!(
            waited < Duration::from_secs(15),
            "{route}: woken by the post, well before the 30 s wait ran out ({waited:?})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_pollers_and_posters_on_three_instances_take_every_command_once() {
    let redis = RedisServer::start().await;
    let gws = three(&redis).await;
    gws[0].post("/api/sessions", json!({"id": "busy"})).await;
    const POSTERS: usize = 25;
    const PER_POSTER: usize = 8;
    const TOTAL: usize = POSTERS * PER_POSTER;
    let mut posters = Vec::new();
    for p in 0..POSTERS {
        let ep = gws[p % 3].endpoint();
        posters.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..PER_POSTER {
                let (s, v) = ep
                    .post(
                        "/api/sessions/busy/commands",
                        json!({"type": "skip", "stepNumber": n + 1, "payload": {"p": p}}),
                    )
                    .await;
                assert_eq!(s, 201, "{v}");
                ids.push(v["commandId"].as_str().unwrap().to_string());
            }
            ids
        }));
    }
    let taken = std::sync::Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
    let mut pollers = Vec::new();
    for p in 0..25 {
        let ep = gws[(p + 1) % 3].endpoint();
        let taken = taken.clone();
        pollers.push(tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while taken.lock().len() < TOTAL && Instant::now() < deadline {
                let (s, v) = ep
                    .get("/api/sessions/busy/commands?consume=true&wait=1")
                    .await;
                assert_eq!(s, 200, "{v}");
                let ids: Vec<String> = v["commands"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["commandId"].as_str().unwrap().to_string())
                    .collect();
                taken.lock().extend(ids);
            }
        }));
    }
    let mut posted = HashSet::new();
    for p in posters {
        posted.extend(p.await.unwrap());
    }
    for p in pollers {
        p.await.unwrap();
    }
    let taken = taken.lock().clone();
    let unique: HashSet<String> = taken.iter().cloned().collect();
    println!(
        "{} commands posted, {} taken by 25 pollers",
        posted.len(),
        taken.len()
    );
    assert_eq!(taken.len(), TOTAL, "nothing taken twice");
    assert_eq!(unique, posted, "every command delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_reach_subscribers_everywhere_and_input_comes_over_websocket() {
    let redis = RedisServer::start().await;
    let gws = three(&redis).await;
    gws[0].post("/api/sessions", json!({"id": "ws"})).await;
    let mut watchers = Vec::new();
    for gw in &gws {
        let mut c = WsClient::connect(&gw.ws_url()).await;
        c.subscribe("ws", None, None).await;
        watchers.push(c);
    }
    let (_, v) = gws[2]
        .post(
            "/api/sessions/ws/commands",
            json!({"type": "abort", "reason": "user stop"}),
        )
        .await;
    for c in &mut watchers {
        let m = c.recv().await;
        assert_eq!(m["type"], "command", "{m}");
        assert_eq!(m["sessionId"], "ws");
        assert_eq!(m["payload"], v["command"], "the command as stored");
    }

    let c = &mut watchers[1];
    c.send(
        json!({"type": "input", "sessionId": "ws", "payload": {"input": "yes", "prompt": "Go?"}}),
    )
    .await;
    let queued = c.recv().await;
    assert_eq!(queued["type"], "input_queued", "{queued}");
    c.send(json!({"type": "input", "sessionId": "ws", "payload": 42}))
        .await;
    let second = c.recv().await;
    assert_eq!(second["type"], "input_queued", "{second}");
    c.send(json!({"type": "input", "sessionId": "nobody", "payload": "x"}))
        .await;
    let err = c.recv().await;
    assert_eq!(
        (err["type"].as_str(), err["code"].as_str()),
        (Some("error"), Some("not_found")),
        "{err}"
    );
    c.send(json!({"type": "input", "sessionId": "ws"})).await;
    assert_eq!(c.recv().await["code"], "invalid_message");

    let (_, v) = gws[0].get("/api/sessions/ws/input").await;
    assert_eq!(v["count"], 2, "{v}");
    assert_eq!(v["inputs"][0]["inputId"], queued["inputId"]);
    assert_eq!(v["inputs"][0]["source"], "ws");
    assert_eq!(v["inputs"][0]["input"], "yes");
    assert_eq!(v["inputs"][0]["prompt"], "Go?");
    assert_eq!(v["inputs"][1]["input"], 42);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_stops_when_its_client_goes_away() {
    use tokio::io::AsyncWriteExt;
    let redis = RedisServer::start().await;
    let gw = Gateway::start(support::config(Some(&redis))).await;
    let mut polls = Vec::new();
    for route in ["commands", "input"] {
        let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        let req =
            format!("GET /api/sessions/gone/{route}?wait=60 HTTP/1.1\r\nhost: localhost\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        polls.push(s);
    }
    let waiting = |n: f64| {
        let gw = gw.endpoint();
        async move {
            let deadline = Instant::now() + support::WAIT;
            loop {
                let v = gw.metric("afw_long_polls").await;
                if v == n {
                    return;
                }
                assert!(Instant::now() < deadline, "afw_long_polls is {v}, not {n}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    waiting(2.0).await;
    drop(polls);
    waiting(0.0).await;
    let _: Value = gw.get("/health").await.1;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_chain_updates_from_three_instances_lose_nothing() {
    let redis = RedisServer::start().await;
    let gws = three(&redis).await;
    gws[0].post("/api/sessions", json!({"id": "race"})).await;
    const STEPS: u64 = 60;
    let steps: Vec<Value> = (1..=STEPS).map(|n| json!(format!("step {n}"))).collect();
    let (s, v) = gws[0]
        .post(
            "/api/sessions/race/chains",
            json!({"id": "wide", "title": "Fan-out", "steps": steps}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let mut watcher = WsClient::connect(&gws[2].ws_url()).await;
    watcher.subscribe("race", None, None).await;
    // Every step completes at once, through all three instances, alongside data patches.
    let mut tasks = Vec::new();
    for n in 1..=STEPS {
        let ep = gws[n as usize % 3].endpoint();
        tasks.push(tokio::spawn(async move {
            let seq = ep
                .post_event(json!({"sessionId": "race", "type": "step:completed", "chainId": "wide", "stepNumber": n}))
                .await;
            assert!(seq >= 1);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (_, c) = gws[1].get("/api/chains/wide").await;
    let done = c["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "completed")
        .count();
    println!(
        "{STEPS} concurrent step updates on 3 instances: {done} steps completed, completedSteps {}",
        c["completedSteps"]
    );
    assert_eq!(done as u64, STEPS, "no update lost: {c}");
    assert_eq!(c["completedSteps"], STEPS);
    assert_eq!(c["progress"], 100.0);

    // Every change reached the subscriber on the third instance as a chain message; the last
    // one it sees has every step done.
    let deadline = Instant::now() + support::WAIT;
    loop {
        let m = watcher.recv().await;
        if m["type"] == "chain" {
            assert_eq!(m["sessionId"], "race");
            assert_eq!(m["payload"]["id"], "wide");
            if m["payload"]["completedSteps"] == STEPS {
                break;
            }
        }
        assert!(Instant::now() < deadline, "never saw the final chain state");
    }
}
