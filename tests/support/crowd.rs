//! Crowds for fault and chaos tests: resuming clients that count what they saw, and agents
//! that post until their events are stored.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::gateway::Endpoint;
use super::ws::small_buffer_stream;
use super::WAIT;

/// What one resuming client saw: every event seq in arrival order, and how it got them.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub session: String,
    pub seqs: Vec<u64>,
    pub connects: u32,
    /// Close codes the server sent, with counts.
    pub closes: std::collections::BTreeMap<u16, u32>,
    /// Subscribes with `since` answered `recovered:true` (exact resumes).
    pub resumed: u32,
    /// Subscribes with `since` answered `recovered:false`.
    pub unrecovered: u32,
    /// The longest time from losing a connection to being subscribed again.
    pub max_reconnect_gap: Duration,
}

/// Delivered, lost, duplicated and reordered events of a [`Tally`] against the head seq.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
}

impl Verdict {
    pub fn add(&mut self, o: Verdict) {
        self.delivered += o.delivered;
        self.lost += o.lost;
        self.duplicated += o.duplicated;
        self.reordered += o.reordered;
    }
}

impl Tally {
    pub fn last(&self) -> u64 {
        self.seqs.iter().copied().max().unwrap_or(0)
    }

    pub fn verdict(&self, head: u64) -> Verdict {
        let mut seen = std::collections::BTreeSet::new();
        let mut v = Verdict::default();
        let mut max = 0;
        for &seq in &self.seqs {
            v.delivered += 1;
            if !seen.insert(seq) {
                v.duplicated += 1;
            } else if seq < max {
                v.reordered += 1;
            }
            max = max.max(seq);
        }
        v.lost = (1..=head).filter(|s| !seen.contains(s)).count() as u64;
        v
    }
}

/// How a resuming client behaves.
#[derive(Clone)]
pub struct Follow {
    pub session: String,
    /// Instances to use, shared with the test (which swaps dead ones out); the client starts at
    /// `start` and moves to the next one on every disconnect.
    pub instances: std::sync::Arc<parking_lot::Mutex<Vec<std::net::SocketAddr>>>,
    pub start: usize,
    /// Stop reading once.
    pub stall: Option<Stall>,
}

/// A pause in a client's reading: starts `after` the client starts, lasts until `resume` turns
/// true (when given), or `max` at most.
#[derive(Clone)]
pub struct Stall {
    pub after: Duration,
    pub max: Duration,
    pub resume: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Stall {
    async fn wait(mut self) {
        let resumed = async {
            match &mut self.resume {
                Some(rx) => {
                    let _ = rx.wait_for(|r| *r).await;
                }
                None => std::future::pending().await,
            }
        };
        let _ = tokio::time::timeout(self.max, resumed).await;
    }
}

/// A client as a browser should be written: subscribes with `since` = the last seq it has and
/// the epoch it knows, and on any close or error reconnects to the next instance. Returns when
/// it holds the session's `target` seq (set by the test once posting is over).
pub async fn follow(f: Follow, mut target: tokio::sync::watch::Receiver<Option<u64>>) -> Tally {
    let mut tally = Tally {
        session: f.session.clone(),
        ..Tally::default()
    };
    let mut epoch: Option<String> = None;
    let mut next = f.start;
    let stall_at = f
        .stall
        .map(|st| (tokio::time::Instant::now() + st.after, st));
    let mut stalled = false;
    let reached = |t: &Tally, target: Option<u64>| target.is_some_and(|h| t.last() >= h);
    let mut lost_at: Option<Instant> = None;
    loop {
        if reached(&tally, *target.borrow()) {
            return tally;
        }
        let addr = {
            let list = f.instances.lock();
            list[next % list.len()]
        };
        next += 1;
        let connected = tokio::time::timeout(Duration::from_secs(5), async {
            let stream = small_buffer_stream(addr).await.ok()?;
            let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws"), stream)
                .await
                .ok()?;
            Some(ws)
        })
        .await;
        let Ok(Some(mut ws)) = connected else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        tally.connects += 1;
        let mut sub =
            serde_json::json!({"type": "subscribe", "sessionId": f.session, "since": tally.last()});
        if let Some(e) = &epoch {
            sub["epoch"] = e.as_str().into();
        }
        if ws
            .send(Message::Text(sub.to_string().into()))
            .await
            .is_err()
        {
            continue;
        }
        let asked_since = tally.last() > 0;
        loop {
            if let Some((at, st)) = &stall_at {
                if !stalled && tokio::time::Instant::now() >= *at {
                    stalled = true;
                    st.clone().wait().await;
                }
            }
            let m = tokio::select! {
                m = ws.next() => m,
                _ = target.changed() => {
                    if reached(&tally, *target.borrow()) {
                        let _ = ws.close(None).await;
                        return tally;
                    }
                    continue;
                }
            };
            let text = match m {
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Close(frame))) => {
                    if let Some(fr) = frame {
                        *tally.closes.entry(fr.code.into()).or_default() += 1;
                    }
                    break;
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => break,
            };
            let v: Value = serde_json::from_str(&text).expect("server sent JSON");
            match v["type"].as_str() {
                Some("subscription_confirmed") if v["sessionId"] == f.session.as_str() => {
                    if let Some(t) = lost_at.take() {
                        tally.max_reconnect_gap = tally.max_reconnect_gap.max(t.elapsed());
                    }
                    if asked_since {
                        if v["payload"]["recovered"] == true {
                            tally.resumed += 1;
                        } else {
                            tally.unrecovered += 1;
                        }
                    }
                    if let Some(e) = v["payload"]["epoch"].as_str() {
                        epoch = Some(e.to_string());
                    }
                }
                Some("event") => {
                    tally.seqs.push(v["seq"].as_u64().expect("seq"));
                    if let Some(e) = v["epoch"].as_str() {
                        epoch = Some(e.to_string());
                    }
                    if let Some(e) = v["epoch"].as_str() {
                        epoch = Some(e.to_string());
                    }
                    if reached(&tally, *target.borrow()) {
                        let _ = ws.close(None).await;
                        return tally;
                    }
                }
                // A subscribe the store could not answer: subscribe again, elsewhere.
                Some("error") if v["sessionId"] == f.session.as_str() => break,
                _ => {}
            }
        }
        lost_at.get_or_insert_with(Instant::now);
    }
}

/// Instances a test spreads its clients over; the test swaps dead ones out while they run.
pub type Instances = std::sync::Arc<parking_lot::Mutex<Vec<std::net::SocketAddr>>>;

pub fn instances(addrs: &[std::net::SocketAddr]) -> Instances {
    std::sync::Arc::new(parking_lot::Mutex::new(addrs.to_vec()))
}

/// An agent that posts each event until it is stored, as a careful agent must: with its
/// `eventId`, so a retry after a lost answer cannot store it twice, moving to the next instance
/// after each failure. Only 503 (with Retry-After) and no answer at all count as retryable;
/// anything else fails the test.
pub struct Poster {
    http: reqwest::Client,
    instances: Instances,
    next: usize,
    /// Failed attempts by status (0: no answer).
    pub failures: BTreeMap<u16, u32>,
}

impl Poster {
    pub fn new(instances: Instances, start: usize) -> Poster {
        Poster {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("HTTP client"),
            instances,
            next: start,
            failures: BTreeMap::new(),
        }
    }

    /// Posts `event` (which must carry an `eventId`) until stored; returns its seq.
    pub async fn post(&mut self, event: &Value) -> u64 {
        assert!(event["eventId"].is_string(), "retries need an eventId");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                Instant::now() < deadline,
                "event never stored: {event} (failures {:?})",
                self.failures
            );
            let addr = {
                let list = self.instances.lock();
                list[self.next % list.len()]
            };
            match self
                .http
                .post(format!("http://{addr}/api/events"))
                .json(event)
                .send()
                .await
            {
                Ok(r) if r.status() == 201 || r.status() == 200 => {
                    let v: Value = r.json().await.expect("JSON answer");
                    return v["seq"].as_u64().expect("seq");
                }
                Ok(r) if r.status() == 503 => {
                    assert!(
                        r.headers().contains_key("retry-after"),
                        "a 503 says when to retry"
                    );
                    *self.failures.entry(503).or_default() += 1;
                }
                // A load balancer whose upstream went away mid-request: whether the event
                // was stored is unknown, so it is posted again with its eventId.
                Ok(r) if r.status() == 502 || r.status() == 504 => {
                    *self.failures.entry(r.status().as_u16()).or_default() += 1;
                }
                Ok(r) => {
                    let status = r.status();
                    panic!(
                        "unexpected {status}: {}",
                        r.text().await.unwrap_or_default()
                    )
                }
                Err(_) => *self.failures.entry(0).or_default() += 1,
            }
            self.next += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// What agents acknowledged, by session (eventIds in posting order), and their failed
/// attempts by status.
pub type Acked = (Vec<(String, String)>, BTreeMap<u16, u32>);

/// `posters` agents, each posting `events` events round-robin over `sessions` (agent `p`'s
/// `n`-th is `p{p}-{n}`, with `pad`), pausing `pause` between them, each until stored.
pub fn agents(
    live: &Instances,
    sessions: &[String],
    posters: usize,
    events: usize,
    pad: &str,
    pause: Duration,
) -> Vec<JoinHandle<Acked>> {
    (0..posters)
        .map(|p| {
            let live = live.clone();
            let sessions = sessions.to_vec();
            let pad = pad.to_string();
            tokio::spawn(async move {
                let mut poster = Poster::new(live, p);
                let mut acked: Vec<(String, String)> = Vec::new();
                for n in 0..events {
                    let session = &sessions[(p + n) % sessions.len()];
                    let id = format!("p{p}-{n}");
                    let mut event =
                        serde_json::json!({"sessionId": session, "type": "t", "eventId": id});
                    if !pad.is_empty() {
                        event["pad"] = pad.clone().into();
                    }
                    poster.post(&event).await;
                    acked.push((session.clone(), id));
                    tokio::time::sleep(pause).await;
                }
                (acked, poster.failures)
            })
        })
        .collect()
}

/// Asserts that `session` holds exactly the events `acked` names, once each, at seqs 1..n
/// with no hole; returns how many.
pub async fn assert_stored_exactly(at: &Endpoint, session: &str, acked: &[String]) -> usize {
    let stored = stored_events(at, session).await;
    let seqs: Vec<u64> = stored.iter().map(|(seq, _)| *seq).collect();
    let want_seqs: Vec<u64> = (1..=stored.len() as u64).collect();
    assert_eq!(seqs, want_seqs, "{session}: seqs 1..n with no hole");
    let ids: std::collections::BTreeSet<&String> = stored.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), stored.len(), "{session}: no event stored twice");
    let want: std::collections::BTreeSet<&String> = acked.iter().collect();
    assert_eq!(ids, want, "{session}: exactly the acknowledged events");
    stored.len()
}

/// Every stored event of a session (all pages), as (seq, eventId).
pub async fn stored_events(at: &Endpoint, session: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let (s, page) = at
            .get(&format!("/api/events/{session}?after={after}&limit=1000"))
            .await;
        assert_eq!(s, 200, "{page}");
        let events = page["events"].as_array().expect("events");
        if events.is_empty() {
            return out;
        }
        for e in events {
            after = e["seq"].as_u64().expect("seq");
            out.push((after, e["eventId"].as_str().expect("eventId").to_string()));
        }
    }
}

/// Resuming clients run as tasks, one target channel per session.
#[derive(Default)]
pub struct Crowd {
    handles: Vec<JoinHandle<Tally>>,
    targets: BTreeMap<String, tokio::sync::watch::Sender<Option<u64>>>,
}

impl Crowd {
    /// Starts one more client.
    pub fn add(&mut self, f: Follow) {
        let target = self
            .targets
            .entry(f.session.clone())
            .or_insert_with(|| tokio::sync::watch::channel(None).0)
            .subscribe();
        self.handles.push(tokio::spawn(follow(f, target)));
    }

    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Tells every client its session's head seq (read from `at`), waits until each holds it,
    /// and sums their verdicts.
    pub async fn finish(self, at: &Endpoint) -> (Verdict, Vec<Tally>) {
        let mut heads = BTreeMap::new();
        for (s, tx) in &self.targets {
            let (status, page) = at.get(&format!("/api/events/{s}?limit=1")).await;
            assert_eq!(status, 200, "{page}");
            let head = page["headSeq"].as_u64().expect("headSeq");
            heads.insert(s.clone(), head);
            tx.send_replace(Some(head));
        }
        let mut total = Verdict::default();
        let mut tallies = Vec::new();
        for h in self.handles {
            let t = tokio::time::timeout(Duration::from_secs(60), h)
                .await
                .expect("every client reaches its session's head seq")
                .expect("client task");
            total.add(t.verdict(heads[&t.session]));
            tallies.push(t);
        }
        (total, tallies)
    }
}
