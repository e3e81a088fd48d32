//! Live delivery over real WebSockets: fan-out across instances on one Redis, recovery with
//! `since`, the prefix end to end, pub/sub loss, deletion, slow consumers, bad frames; and the
//! same stream as server-sent events, and as AG-UI events.

mod ag_ui;
mod connections;
mod delivery;
mod group_commit;
mod recovery;
mod resume;
mod sse;
#[path = "../support/mod.rs"]
mod support;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures::future::join_all;
use serde_json::{json, Value};
use support::{Gateway, RedisServer, WsClient};
use tokio_tungstenite::tungstenite::Message;

/// Reads events until `total` have arrived, checking as it goes that each session's seqs go
/// up by exactly one from `start[session]`; returns the eventIds seen per session.
async fn receive_in_order(
    client: &mut WsClient,
    total: usize,
    start: &BTreeMap<String, u64>,
) -> BTreeMap<String, Vec<String>> {
    let mut next: BTreeMap<String, u64> = start.clone();
    let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for _ in 0..total {
        let m = client.next_event().await;
        let sid = m["sessionId"].as_str().unwrap().to_string();
        let seq = m["seq"].as_u64().unwrap();
        let want = next
            .get_mut(&sid)
            .unwrap_or_else(|| panic!("event for unexpected session {sid}"));
        assert_eq!(
            seq, *want,
            "session {sid}: expected seq {want}, got {seq} (gap, duplicate or reorder)"
        );
        assert_eq!(m["payload"]["seq"], seq, "frame and payload agree");
        *want += 1;
        ids.entry(sid)
            .or_default()
            .push(m["payload"]["eventId"].as_str().unwrap().to_string());
    }
    ids
}
