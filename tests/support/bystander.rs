//! What an attack must not touch: a bystander agent posting to its own session and a
//! subscriber watching it, both on connections made before the attack; and the peak resident
//! memory of the gateway process while it runs.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::task::JoinHandle;

use super::{rss_kib, Endpoint, WsClient};

/// An agent posting one event every 20 ms to `session` and a subscriber of it.
pub struct Bystander {
    stop: Arc<AtomicBool>,
    poster: JoinHandle<Vec<u16>>,
    watcher: JoinHandle<Vec<u64>>,
}

impl Bystander {
    /// Starts both and waits until the first event has gone round.
    pub async fn start(at: Endpoint, session: &str) -> Bystander {
        let mut ws = WsClient::connect(&at.ws_url()).await;
        ws.subscribe(session, None, None).await;
        let stop = Arc::new(AtomicBool::new(false));
        let poster = {
            let (stop, session) = (Arc::clone(&stop), session.to_string());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Acquire) {
                    n += 1;
                    let body = json!({"sessionId": session, "type": "bystander", "eventId": format!("b-{n}")});
                    let (s, _) = at.post("/api/events", body).await;
                    statuses.push(s);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                statuses
            })
        };
        let watcher = {
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                loop {
                    match ws.try_recv(Duration::from_millis(1500)).await {
                        Some(m) if m["type"] == "event" => seqs.push(m["seq"].as_u64().unwrap()),
                        Some(_) => {}
                        None if stop.load(Ordering::Acquire) => return seqs,
                        None => {}
                    }
                }
            })
        };
        Bystander {
            stop,
            poster,
            watcher,
        }
    }

    /// Stops, and checks that every post was stored and the subscriber saw each exactly once,
    /// in order.
    pub async fn finish(self) {
        self.stop.store(true, Ordering::Release);
        let statuses = self.poster.await.expect("poster");
        let seqs = self.watcher.await.expect("watcher");
        assert!(statuses.len() > 5, "the bystander kept posting");
        assert!(
            statuses.iter().all(|s| *s == 201),
            "every bystander post was stored: {statuses:?}"
        );
        let expected: Vec<u64> = (1..=statuses.len() as u64).collect();
        assert_eq!(seqs, expected, "the bystander's subscriber missed nothing");
    }
}

/// Samples a process's resident memory every 10 ms until stopped.
pub struct PeakRss {
    sampling: Arc<AtomicBool>,
    sampler: JoinHandle<u64>,
    pub baseline_kib: u64,
}

impl PeakRss {
    pub fn start(pid: u32) -> PeakRss {
        let sampling = Arc::new(AtomicBool::new(true));
        let baseline_kib = rss_kib(pid);
        let sampler = {
            let sampling = Arc::clone(&sampling);
            tokio::task::spawn_blocking(move || {
                let mut peak = 0;
                while sampling.load(Ordering::Acquire) {
                    peak = peak.max(rss_kib(pid));
                    std::thread::sleep(Duration::from_millis(10));
                }
                peak
            })
        };
        PeakRss {
            sampling,
            sampler,
            baseline_kib,
        }
    }

    /// How far the peak rose above the baseline, in MiB.
    pub async fn rise_mib(self) -> u64 {
        self.sampling.store(false, Ordering::Release);
        let peak = self.sampler.await.expect("sampler");
        peak.saturating_sub(self.baseline_kib) / 1024
    }
}
