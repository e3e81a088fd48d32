//! The functions every event or delivery runs through, timed by criterion (`cargo bench`), so a
//! change that slows one shows in review: the frame built once per event, the hub's offer of
//! an event to a session's subscribers (each then taking it from its queue), the draft a
//! posted event becomes, and the Redis keys the append builds. `cargo test --all-targets` runs
//! each once, so they also stay working.

use std::hint::black_box;
use std::sync::Arc;

use afw_gateway::bus::LiveEvent;
use afw_gateway::domain::event::{draft_event, EventContext};
use afw_gateway::realtime::hub::{queue, Hub};
use afw_gateway::realtime::protocol::EventFrames;
use afw_gateway::store::redis::keys::Keys;
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::value::RawValue;

/// A posted event of about 300 bytes, as agents send them.
const EVENT: &str = r#"{"sessionId":"bench-session","type":"tool_call","eventId":"e-1","timestamp":"2026-12-04T20:00:00.000Z","tool":"Bash","input":{"command":"cargo test --workspace","cwd":"/work"},"output":{"stdout":"test result: ok. 250 passed","exitCode":0},"durationMs":4123}"#;

fn frames(c: &mut Criterion) {
    c.bench_function("frame an event", |b| {
        b.iter(|| EventFrames::Envelope.frame(black_box("bench-session"), 42, "epoch-1", EVENT))
    });
}

fn hub_offer(c: &mut Criterion) {
    let hub = Hub::default();
    let queues: Vec<_> = (0..50)
        .map(|id| {
            let (handle, q) = queue(id, 1 << 30);
            hub.subscribe("s", &handle);
            (handle, q)
        })
        .collect();
    let mut queues: Vec<_> = queues.into_iter().map(|(_, q)| q).collect();
    let (epoch, event): (Arc<str>, Arc<str>) = ("epoch-1".into(), EVENT.into());
    let mut seq = 0;
    c.bench_function("offer an event to 50 subscribers, each taking it", |b| {
        b.iter(|| {
            seq += 1;
            let ev = LiveEvent {
                session_id: "s".into(),
                seq,
                epoch: Arc::clone(&epoch),
                event: Arc::clone(&event),
            };
            black_box(hub.offer(&ev));
            for q in &mut queues {
                let item = q.try_recv().expect("queued");
                q.release(&item);
            }
        })
    });
}

fn drafting(c: &mut Criterion) {
    let raw: Box<RawValue> = serde_json::from_str(EVENT).expect("JSON");
    let ctx = EventContext {
        received_at: "2026-12-04T20:00:00.123Z".into(),
        correlation_id: None,
    };
    c.bench_function("draft a posted event", |b| {
        b.iter(|| draft_event(black_box(&raw), &ctx, "").is_ok())
    });
}

fn keys(c: &mut Criterion) {
    let keys = Keys::new("afw:");
    c.bench_function("build an append's keys", |b| {
        b.iter(|| {
            let id = black_box("bench-session");
            (keys.session(id), keys.events(id), keys.dedup(id, "e-1"))
        })
    });
}

criterion_group!(hot, frames, hub_offer, drafting, keys);
criterion_main!(hot);
