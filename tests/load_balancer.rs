//! The proof through the real load balancer: `deploy/local-cluster.sh` runs redis-server,
//! three gateway processes and nginx with `deploy/nginx.conf`, and every client and agent
//! here talks to nginx alone. Clients resume with `since`/`epoch` wherever nginx sends them;
//! agents retry with their `eventId`.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// The tests here each run a whole cluster; one at a time, so that on a 2-core machine one
/// test's load never makes another's timeouts fire.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `fail_timeout` of the upstreams in `deploy/nginx.conf`'s setups.
const NGINX_FAIL_TIMEOUT: Duration = Duration::from_millis(2100);

fn event(session: &str, n: u64) -> Value {
    json!({"sessionId": session, "type": "lb", "eventId": format!("{session}-{n}"), "n": n})
}

/// `clients` resuming clients spread over `sessions`, all through `lb`.
fn crowd(lb: std::net::SocketAddr, sessions: &[String], clients: usize) -> Crowd {
    let through = instances(&[lb]);
    let mut crowd = Crowd::default();
    for i in 0..clients {
        crowd.add(Follow {
            session: sessions[i % sessions.len()].clone(),
            instances: through.clone(),
            start: 0,
            stall: None,
        });
    }
    crowd
}

/// One agent per session posting `n` events through `lb`, each until stored.
fn agents(
    lb: std::net::SocketAddr,
    sessions: &[String],
    n: u64,
    pace: Duration,
) -> Vec<tokio::task::JoinHandle<Poster>> {
    sessions
        .iter()
        .map(|s| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut poster = Poster::new(instances(&[lb]), 0);
                for i in 0..n {
                    poster.post(&event(&s, i)).await;
                    tokio::time::sleep(pace).await;
                }
                poster
            })
        })
        .collect()
}

async fn check_stored(lb: &Endpoint, sessions: &[String], n: u64) {
    for s in sessions {
        let ids: Vec<String> = stored_events(lb, s)
            .await
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        let want: Vec<String> = (0..n).map(|i| format!("{s}-{i}")).collect();
        assert_eq!(ids, want, "{s}: every posted event stored once, in order");
    }
}

fn sessions(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hundred_clients_and_six_agents_through_nginx_get_every_event_once_in_order() {
    let _serial = ONE_CLUSTER_AT_A_TIME.lock().await;
    let cluster = LocalCluster::up(3, &[]).await;
    let lb = cluster.lb.clone();
    let sessions = sessions("lb-", 6);
    for s in &sessions {
        assert_eq!(lb.post("/api/sessions", json!({"id": s})).await.0, 201);
    }
    let crowd = crowd(lb.addr, &sessions, 300);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let posting = agents(lb.addr, &sessions, 100, Duration::from_millis(5));
    // A long poll through nginx answers as soon as the command is posted (nginx neither
    // buffers it nor cuts it).
    let poll = {
        let lb = lb.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let (s, v) = lb.get("/api/sessions/lb-0/commands?wait=30").await;
            (s, v, t.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let posted = Instant::now();
    assert_eq!(
        lb.post("/api/sessions/lb-0/commands", json!({"type": "pause"}))
            .await
            .0,
        201
    );
    let (s, v, _) = poll.await.unwrap();
    assert_eq!((s, v["count"].as_u64()), (200, Some(1)), "{v}");
    assert!(
        posted.elapsed() < Duration::from_secs(10),
        "the long poll woke at once, not at its 30 s"
    );
    for p in posting {
        p.await.unwrap();
    }
    let (total, tallies) = crowd.finish(&lb).await;
    println!("through nginx: {total:?}");
    assert_eq!(
        total,
        Verdict {
            delivered: 300 * 100,
            ..Verdict::default()
        }
    );
    assert!(
        tallies.iter().all(|t| t.connects == 1),
        "nobody was disconnected"
    );
    check_stored(&lb, &sessions, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_killed_mid_stream_loses_no_event_through_nginx() {
    let _serial = ONE_CLUSTER_AT_A_TIME.lock().await;
    let cluster = LocalCluster::up(3, &[]).await;
    let lb = cluster.lb.clone();
    let sessions = sessions("kill-", 3);
    let crowd = crowd(lb.addr, &sessions, 90);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let posting = agents(lb.addr, &sessions, 150, Duration::from_millis(10));
    tokio::time::sleep(Duration::from_millis(700)).await;
    cluster.kill9(2).await;
    let mut failures = std::collections::BTreeMap::new();
    for p in posting {
        for (k, v) in p.await.unwrap().failures {
            *failures.entry(k).or_insert(0) += v;
        }
    }
    let (total, tallies) = crowd.finish(&lb).await;
    let reconnected = tallies.iter().filter(|t| t.connects > 1).count();
    println!("kill -9 through nginx: {total:?}; {reconnected} clients reconnected; agent retries {failures:?}");
    assert_eq!(
        total,
        Verdict {
            delivered: 90 * 150,
            ..Verdict::default()
        }
    );
    assert!(
        reconnected > 0,
        "the killed gateway's clients came back through nginx"
    );
    assert!(
        tallies.iter().all(|t| t.unrecovered == 0),
        "every resume was exact"
    );
    check_stored(&lb, &sessions, 150).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_through_nginx_loses_nothing_and_keeps_reconnects_short() {
    let _serial = ONE_CLUSTER_AT_A_TIME.lock().await;
    let cluster = LocalCluster::up(3, &[("SHUTDOWN_TIMEOUT_SECS", "5")]).await;
    let lb = cluster.lb.clone();
    let sessions = sessions("roll-", 3);
    let crowd = crowd(lb.addr, &sessions, 90);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let posting = agents(lb.addr, &sessions, 1000, Duration::from_millis(10));
    // Each in turn: SIGTERM and wait for it to drain and exit, start it again, and give nginx
    // its fail_timeout (2 s) to take the instance back before the next one goes.
    for n in 1..=3 {
        cluster.stop(n).await;
        cluster.start(n).await;
        tokio::time::sleep(NGINX_FAIL_TIMEOUT).await;
    }
    for p in posting {
        p.await.unwrap();
    }
    let (total, tallies) = crowd.finish(&lb).await;
    let gap = tallies.iter().map(|t| t.max_reconnect_gap).max().unwrap();
    let mut closes = std::collections::BTreeMap::new();
    for t in &tallies {
        for (c, n) in &t.closes {
            *closes.entry(*c).or_insert(0) += n;
        }
    }
    println!("rolling restart through nginx: {total:?}; close codes {closes:?}; longest reconnect {gap:?}");
    assert_eq!(
        total,
        Verdict {
            delivered: 90 * 1000,
            ..Verdict::default()
        }
    );
    assert!(
        closes.keys().all(|&c| c == 1001),
        "drained instances close with 1001 only: {closes:?}"
    );
    assert!(
        closes.get(&1001).copied().unwrap_or(0) > 0,
        "the restarts moved clients"
    );
    // The client's reconnect backoff tops out at 10 s (afw-client.js); nobody waited that long.
    assert!(
        gap < Duration::from_secs(10),
        "a client waited {gap:?} to be subscribed again"
    );
    assert!(tallies.iter().all(|t| t.unrecovered == 0));
    check_stored(&lb, &sessions, 1000).await;
}

/// nginx's own limits do not bite: 2,000 idle WebSockets held through it for a minute, the
/// gateway's pings flowing, none cut by a timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_idle_websockets_stay_open_through_nginx_for_a_minute() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    assert!(
        hard >= 6000,
        "2,000 proxied sockets need about 6,000 descriptors (hard limit {hard})"
    );
    const N: usize = 2000;
    let _serial = ONE_CLUSTER_AT_A_TIME.lock().await;
    let cluster = LocalCluster::up(3, &[("WS_PING_INTERVAL_SECS", "20")]).await;
    let lb = cluster.lb.clone();
    let pings = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let closed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut readers = Vec::new();
    for i in 0..N {
        let url = lb.ws_url();
        let (mut ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .expect("connect through nginx");
        let sub = json!({"type": "subscribe", "sessionId": format!("idle-{}", i % 50)});
        futures::SinkExt::send(&mut ws, Message::Text(sub.to_string().into()))
            .await
            .unwrap();
        let (pings, closed) = (pings.clone(), closed.clone());
        readers.push(tokio::spawn(async move {
            // Reading answers the server's pings (tungstenite queues each pong and flushes it
            // on the next read).
            let until = tokio::time::Instant::now() + Duration::from_secs(62);
            loop {
                match tokio::time::timeout_at(until, ws.next()).await {
                    Err(_) => return ws,
                    Ok(Some(Ok(Message::Ping(_)))) => {
                        pings.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(Some(Ok(_))) => {}
                    Ok(_) => {
                        closed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        return ws;
                    }
                }
            }
        }));
    }
    let opened = Instant::now();
    let mut held = Vec::new();
    for r in readers {
        held.push(r.await.unwrap());
    }
    let pings = pings.load(std::sync::atomic::Ordering::Relaxed);
    let closed = closed.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "idle through nginx: {N} sockets for {:?}, {pings} pings, {closed} closed",
        opened.elapsed()
    );
    assert_eq!(closed, 0, "no idle socket was cut");
    assert!(
        pings >= 2 * N as u64,
        "pings flowed on every socket ({pings} for {N})"
    );
    // Each socket still works: one event reaches all 40 subscribers of its session.
    assert!(
        lb.post_event(json!({"sessionId": "idle-0", "type": "still-here"}))
            .await
            >= 1
    );
    drop(held);
}

/// Server-sent-event readers through nginx (which must pass each message on at once, keep
/// an idle stream open, and reconnect a stream to another instance) get every event once, in
/// order, across a gateway killed mid-stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sse_readers_through_nginx_resume_across_a_killed_gateway_with_every_event_once() {
    let _serial = ONE_CLUSTER_AT_A_TIME.lock().await;
    let cluster = LocalCluster::up(3, &[("SSE_KEEPALIVE_SECS", "0.3")]).await;
    let lb = cluster.lb.clone();
    let sessions = sessions("sse-", 3);
    const N: u64 = 150;
    let readers: Vec<_> = (0..9)
        .map(|i| {
            let (lb, session) = (lb.clone(), sessions[i % 3].clone());
            tokio::spawn(async move {
                let path = format!("/api/sessions/{session}/stream?since=0");
                let mut s = SseClient::open(&lb, &path, None).await;
                let (mut seen, mut reconnects, mut comments) = (Vec::new(), 0, 0);
                while (seen.len() as u64) < N {
                    match s.next().await {
                        Some(m) if m.comment => comments += 1,
                        Some(m) if m.data["type"] == "event" => {
                            seen.push(m.data["payload"]["n"].as_u64().unwrap())
                        }
                        Some(_) => {}
                        None => {
                            reconnects += 1;
                            assert!(reconnects < 10, "{session}: reconnects keep failing");
                            let last = s.last_id.clone();
                            s = SseClient::open(&lb, &path, last.as_deref()).await;
                        }
                    }
                }
                (seen, reconnects, comments)
            })
        })
        .collect();
    // Idle first: only keep-alive comments flow, and nginx passes them on.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let posting = agents(lb.addr, &sessions, N, Duration::from_millis(10));
    tokio::time::sleep(Duration::from_millis(700)).await;
    cluster.kill9(2).await;
    for p in posting {
        p.await.unwrap();
    }
    let mut reconnected = 0;
    for r in readers {
        let (seen, reconnects, comments) = r.await.unwrap();
        assert_eq!(
            seen,
            (0..N).collect::<Vec<_>>(),
            "every event once, in order"
        );
        assert!(comments > 0, "keep-alive comments came through nginx");
        reconnected += (reconnects > 0) as usize;
    }
    println!("SSE through nginx, a gateway killed: {reconnected} of 9 readers reconnected");
    assert!(
        reconnected > 0,
        "the killed gateway's readers came back through nginx"
    );
}
