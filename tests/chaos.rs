//! Every fault at once: 246 resuming clients on three gateway processes over one persistent
//! Redis, while seven agents post 3,600 events (600 of them 16 KiB each to one session), with the pub/sub connections killed, an instance
//! killed with SIGKILL, Redis killed and started again, an instance stopped with SIGTERM, and
//! some clients that stop reading for a while. Every client must end with every seq of its
//! session exactly once, in order; the stored streams must hold every acknowledged event once.
//! The counts are printed so a reader of the CI log can see what was proven.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use support::{Crowd, Follow, GatewayProcess, Poster, RedisServer, Stall, Verdict};

const SESSIONS: usize = 20;
const CLIENTS_PER_SESSION: usize = 12;
const POSTERS: usize = 6;
const EVENTS_PER_POSTER: usize = 500;
/// A session with large events, whose stalled readers fall megabytes behind.
const FIREHOSE: &str = "chaos-firehose";
const FIREHOSE_EVENTS: usize = 600;
const FIREHOSE_CLIENTS: usize = 6;

async fn gateway(redis: &RedisServer) -> GatewayProcess {
    GatewayProcess::start(&[
        ("REDIS_URL", redis.url()),
        ("PUBSUB_PROBE_SECS", "0.5".to_string()),
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_every_client_ends_with_every_event_once_in_order() {
    let mut redis = RedisServer::start_persistent().await;
    let mut gateways = vec![
        gateway(&redis).await,
        gateway(&redis).await,
        gateway(&redis).await,
    ];
    let live = support::instances(&gateways.iter().map(|g| g.addr).collect::<Vec<_>>());
    let sessions: Vec<String> = (0..SESSIONS).map(|i| format!("chaos-{i}")).collect();
    for s in sessions.iter().chain([&FIREHOSE.to_string()]) {
        let (status, v) = gateways[0].post("/api/sessions", json!({"id": s})).await;
        assert_eq!(status, 201, "{v}");
    }

    let mut crowd = Crowd::default();
    for (i, s) in sessions.iter().enumerate() {
        for j in 0..CLIENTS_PER_SESSION {
            let n = i * CLIENTS_PER_SESSION + j;
            crowd.add(Follow {
                session: s.clone(),
                instances: live.clone(),
                start: n,
                // One client in six stops reading for 3 s, somewhere in the first 5 s.
                stall: n.is_multiple_of(6).then(|| Stall {
                    after: Duration::from_millis(500 + (n as u64 * 97) % 4500),
                    max: Duration::from_secs(3),
                    resume: None,
                }),
            });
        }
    }
    // Half the firehose's readers stop reading early on until the firehose is done: megabytes
    // behind, they are closed with 4008 and come back with `since`.
    let (firehose_done, resume) = tokio::sync::watch::channel(false);
    for n in 0..FIREHOSE_CLIENTS {
        crowd.add(Follow {
            session: FIREHOSE.to_string(),
            instances: live.clone(),
            start: n,
            stall: (n % 2 == 0).then(|| Stall {
                after: Duration::from_millis(100 + 50 * n as u64),
                max: Duration::from_secs(30),
                resume: Some(resume.clone()),
            }),
        });
    }
    let clients = crowd.len();

    // Agents: each posts its events round-robin over the sessions, retrying with its eventId.
    let mut posting = support::agents(
        &live,
        &sessions,
        POSTERS,
        EVENTS_PER_POSTER,
        &"c".repeat(2048),
        Duration::from_millis(12),
    );

    {
        let live = live.clone();
        let pad = "f".repeat(16 * 1024);
        posting.push(tokio::spawn(async move {
            let mut poster = Poster::new(live, 0);
            let mut acked = Vec::new();
            for n in 0..FIREHOSE_EVENTS {
                let id = format!("f-{n}");
                poster
                    .post(&json!({"sessionId": FIREHOSE, "type": "t", "eventId": id, "pad": pad}))
                    .await;
                acked.push((FIREHOSE.to_string(), id));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            firehose_done.send_replace(true);
            (acked, poster.failures)
        }));
    }

    // The faults, while the agents post.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let killed = redis.kill_pubsub_clients().await;
    println!("chaos: killed {killed} pub/sub connections");

    tokio::time::sleep(Duration::from_millis(1000)).await;
    gateways[0].kill9();
    let replacement = gateway(&redis).await;
    live.lock()[0] = replacement.addr;
    gateways.push(replacement);
    println!("chaos: instance 0 killed with SIGKILL and replaced");

    tokio::time::sleep(Duration::from_millis(1000)).await;
    redis.kill9();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    redis.start_again().await;
    println!("chaos: Redis killed with SIGKILL, down 1 s, started again from its AOF");

    tokio::time::sleep(Duration::from_millis(1000)).await;
    gateways[1].term();
    let replacement = gateway(&redis).await;
    live.lock()[1] = replacement.addr;
    let exited = gateways[1].wait_exit(Duration::from_secs(20)).await;
    assert!(
        exited.is_some_and(|s| s.success()),
        "SIGTERM: clean exit ({exited:?})"
    );
    gateways.push(replacement);
    println!("chaos: instance 1 stopped with SIGTERM and replaced");

    let mut acked: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut post_failures: BTreeMap<u16, u32> = BTreeMap::new();
    for p in posting {
        let (list, failures) = p.await.unwrap();
        for (s, id) in list {
            acked.entry(s).or_default().push(id);
        }
        for (k, v) in failures {
            *post_failures.entry(k).or_default() += v;
        }
    }

    let at = gateways[2].endpoint();
    let (total, tallies) = crowd.finish(&at).await;

    // What the store holds: every acknowledged event, once, nothing else.
    let mut stored_total = 0;
    for s in sessions.iter().chain([&FIREHOSE.to_string()]) {
        stored_total += support::assert_stored_exactly(&at, s, &acked[s]).await;
    }

    let expected = (POSTERS * EVENTS_PER_POSTER * CLIENTS_PER_SESSION
        + FIREHOSE_EVENTS * FIREHOSE_CLIENTS) as u64;
    let connects: u32 = tallies.iter().map(|t| t.connects).sum();
    let resumed: u32 = tallies.iter().map(|t| t.resumed).sum();
    let unrecovered: u32 = tallies.iter().map(|t| t.unrecovered).sum();
    let mut closes: BTreeMap<u16, u32> = BTreeMap::new();
    for t in &tallies {
        for (code, n) in &t.closes {
            *closes.entry(*code).or_default() += n;
        }
    }
    println!(
        "chaos: {clients} clients on {} sessions, {stored_total} events acknowledged and \
         stored ({expected} deliveries expected)",
        SESSIONS + 1
    );
    println!(
        "chaos: delivered {}, lost {}, duplicated {}, reordered {}",
        total.delivered, total.lost, total.duplicated, total.reordered
    );
    println!(
        "chaos: {} reconnects, {resumed} exact resumes (recovered:true), {unrecovered} \
         recovered:false; server close codes {closes:?}; agent retries by status (0 = no \
         answer) {post_failures:?}",
        connects as usize - clients
    );

    assert_eq!(stored_total, POSTERS * EVENTS_PER_POSTER + FIREHOSE_EVENTS);
    assert_eq!(
        total,
        Verdict {
            delivered: expected,
            ..Verdict::default()
        },
        "every client has every seq of its session exactly once, in order"
    );
    assert_eq!(
        unrecovered, 0,
        "with Redis persistence every resume is exact"
    );
    assert!(
        resumed > 0 && closes.contains_key(&1001) && closes.contains_key(&4008),
        "the faults really hit the clients"
    );
}
