//! One session's stream as server-sent events (`GET /api/sessions/:id/stream`): the messages a
//! WebSocket subscriber gets, each a `data:` line, and each stored event with
//! `id: <epoch>:<seq>` so that a client resumes exactly with `Last-Event-ID`. It joins the hub
//! like a WebSocket connection (registered before the history is read), keeps its
//! [`Position`], fills gaps from the store, has the same byte budget, and ends (after an
//! `error` message) where a WebSocket would close: over the budget (`slow_consumer`), when a
//! read from the store fails (`store_unavailable`), at shutdown. The client reconnects with
//! `Last-Event-ID` and loses nothing. Between messages, a comment keeps proxies from timing
//! the stream out. With `?format=ag-ui` the same stream is written as AG-UI events
//! ([`super::ag_ui`]).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Bytes;
use futures::Stream;
use tokio::time::{Instant, Sleep};

use super::ag_ui::AgUi;
use super::hub::{self, ConnHandle, ConnQueue, Outbound};
use super::position::{Admit, Position};
use super::protocol as proto;
use super::tally::Tally;
use super::ws::WsContext;
use crate::domain::event::ReadFrom;
use crate::scope::local;
use crate::store::{Pages, StoreError};
use crate::tenancy::Tenant;

/// Messages taken from the queue into one chunk at most.
const BATCH: usize = 64;
/// What the client waits before reconnecting, told once at the start (milliseconds).
const RETRY_MS: u64 = 1000;
const KEEPALIVE: &[u8] = b": keep-alive\n\n";

/// Where to start: after this seq of this epoch (`None`: live only, from now), in which form.
pub struct Start {
    pub since: Option<u64>,
    pub epoch: Option<String>,
    pub ag_ui: bool,
}

/// A stream being served; dropping it (the client went away) leaves the hub.
pub struct SseStream {
    ctx: Arc<WsContext>,
    tenant: Arc<Tenant>,
    /// The session as the hub keys it (scoped to the tenant).
    sid: Arc<str>,
    handle: ConnHandle,
    queue: ConnQueue,
    pos: Position,
    /// Reading stored events from the store before going on with the live ones: up to
    /// `until` (everything when `None`), then `then` (the live event that showed the gap).
    fill: Option<Fill>,
    first: Option<Vec<u8>>,
    done: bool,
    keepalive: Pin<Box<Sleep>>,
    /// The AG-UI profile's state (`?format=ag-ui`).
    ag_ui: Option<Box<AgUi>>,
}

struct Fill {
    until: Option<u64>,
    then: Option<Outbound>,
}

/// Joins the hub and reads where the stream starts; `Err` (a 503) when the store does not answer.
pub async fn open(
    ctx: Arc<WsContext>,
    tenant: Arc<Tenant>,
    sid: Arc<str>,
    id: u64,
    from: Start,
) -> Result<SseStream, StoreError> {
    let (handle, queue) = hub::queue(id, ctx.outbound_limit);
    // Register first: every event stored after the read below reaches the queue.
    ctx.hub.subscribe(&sid, &handle);
    ctx.hub.metrics().sse_streams.inc();
    let keepalive = Box::pin(tokio::time::sleep(ctx.sse_keepalive));
    let mut s = SseStream {
        ctx,
        tenant,
        sid,
        handle,
        queue,
        pos: Position::default(),
        fill: None,
        first: None,
        done: false,
        keepalive,
        ag_ui: None,
    };
    let page = s.page_size();
    let (read, limit) = match from.since {
        Some(since) => (ReadFrom::After(since), page),
        None => (ReadFrom::Tail(0), 0),
    };
    let session_id = local(&s.sid).to_string();
    let range = s
        .tenant
        .stores
        .events
        .read_events(&session_id, read, limit)
        .await?;
    let recovered = from
        .since
        .is_some_and(|since| range.can_resume(since, from.epoch.as_deref()));
    s.ctx.hub.metrics().resumed(from.since.is_some(), recovered);
    let mut buf = format!("retry: {RETRY_MS}\n\n").into_bytes();
    s.pos = Position {
        epoch: range.epoch.as_deref().map(Arc::from),
        last: range.head_seq,
    };
    if recovered {
        s.pos.last = from.since.unwrap_or(0);
    }
    if from.ag_ui {
        let prelude = s.ag_ui_prelude(&session_id).await?;
        group(
            &mut buf,
            s.pos.epoch.as_deref().map(|e| (e, s.pos.last)),
            &prelude,
        );
    } else {
        let confirm = proto::subscribed(
            &session_id,
            range.head_seq,
            range.epoch.as_deref(),
            recovered,
        );
        data(&mut buf, None, &confirm);
    }
    if recovered {
        let since = s.pos.last;
        let start = range.start_after(since);
        let epoch: Arc<str> = Arc::from(range.epoch.as_deref().unwrap_or_default());
        s.stored(&mut buf, &epoch, start, &range.events);
        s.fill = Some(Fill {
            until: None,
            then: None,
        });
    }
    s.first = Some(buf);
    Ok(s)
}

impl Drop for SseStream {
    fn drop(&mut self) {
        self.ctx.hub.unsubscribe(&self.sid, self.handle.id);
        self.handle.close();
        self.ctx.hub.metrics().sse_streams.dec();
    }
}

/// The response body: chunks until the stream ends.
pub fn body(s: SseStream) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    futures::stream::unfold(s, |mut s| async move {
        let chunk = s.next_chunk().await?;
        Some((Ok(Bytes::from(chunk)), s))
    })
}

impl SseStream {
    /// As many events per replay page as the byte budget holds of the largest ones.
    fn page_size(&self) -> usize {
        (self.ctx.outbound_limit / self.ctx.max_event_bytes.max(1)).clamp(1, proto::REPLAY_PAGE)
    }

    async fn next_chunk(&mut self) -> Option<Vec<u8>> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        let shutdown = self.ctx.shutdown.clone();
        loop {
            if self.done {
                return None;
            }
            let chunk = if self.fill.is_some() {
                self.fill_page().await
            } else {
                self.live(&shutdown).await
            };
            if !chunk.is_empty() {
                return Some(chunk);
            }
        }
    }

    /// Waits for what comes next (nothing to write when it was only events already sent).
    async fn live(&mut self, shutdown: &tokio_util::sync::CancellationToken) -> Vec<u8> {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => {
                let mut buf = Vec::new();
                self.end(&mut buf, "going_away", "server shutting down; resume with Last-Event-ID", None);
                buf
            }
            item = self.queue.recv() => {
                let mut buf = Vec::new();
                match item {
                    None => self.end(&mut buf, "slow_consumer", "over the byte budget; resume with Last-Event-ID", None),
                    Some(item) => self.drain(&mut buf, item),
                }
                buf
            }
            _ = &mut self.keepalive => {
                let at = Instant::now() + self.ctx.sse_keepalive;
                self.keepalive.as_mut().reset(at);
                KEEPALIVE.to_vec()
            }
        }
    }

    /// Writes `first` and what else is queued (up to [`BATCH`]), stopping at a gap.
    fn drain(&mut self, buf: &mut Vec<u8>, first: Outbound) {
        let mut item = first;
        let mut tally = Tally::default();
        for _ in 0..BATCH {
            tally.count(&item);
            self.queue.release(&item);
            self.on_outbound(buf, item);
            if self.fill.is_some() || self.done {
                break;
            }
            match self.queue.try_recv() {
                Some(next) => item = next,
                None => break,
            }
        }
        tally.publish(self.ctx.hub.metrics());
    }

    fn on_outbound(&mut self, buf: &mut Vec<u8>, item: Outbound) {
        match &item {
            Outbound::Event(e) => match self.pos.admit(&e.epoch, e.seq) {
                Admit::Skip => {}
                Admit::Next => self.framed(buf, &e.epoch, e.seq, e.frame.as_str()),
                Admit::Gap => {
                    self.fill = Some(Fill {
                        until: Some(e.seq - 1),
                        then: Some(item),
                    })
                }
            },
            Outbound::CatchUp { .. } => {
                self.fill = Some(Fill {
                    until: None,
                    then: None,
                })
            }
            Outbound::Unsubscribed { session_id, reason } => {
                self.done = true;
                match &self.ag_ui {
                    None => data(buf, None, &proto::unsubscribed(local(session_id), reason)),
                    Some(_) => data(buf, None, &AgUi::error("unsubscribed", reason).to_string()),
                }
            }
            Outbound::Message(m) => match self.ag_ui.as_mut() {
                None => data(buf, None, m.frame.as_str()),
                Some(a) => group(buf, None, &a.message(m.frame.as_str())),
            },
        }
    }

    /// One page of the fill, or, once it is done, the live event that started it.
    async fn fill_page(&mut self) -> Vec<u8> {
        let mut buf = Vec::new();
        let Some(fill) = self.fill.as_ref() else {
            return buf;
        };
        let until = fill.until;
        let session_id = local(&self.sid);
        let tenant = Arc::clone(&self.tenant);
        let mut pages = Pages::new(
            &*tenant.stores.events,
            session_id,
            self.pos.epoch.clone(),
            self.pos.last,
            until,
        );
        match pages.next(self.page_size()).await {
            Ok(Some(page)) => {
                self.pos.epoch = Some(Arc::clone(&page.epoch));
                self.stored(&mut buf, &page.epoch, page.start, &page.events);
            }
            Ok(None) => {
                let then = self.fill.take().and_then(|f| f.then);
                if let Some(Outbound::Event(e)) = then {
                    if self.pos.admit(&e.epoch, e.seq) != Admit::Skip {
                        self.pos.last = e.seq;
                        self.framed(&mut buf, &e.epoch, e.seq, e.frame.as_str());
                    }
                }
            }
            Err(e) => {
                tracing::warn!(session = %session_id, error = %e, "stream catch-up read failed; ending it");
                let message = "the store did not answer; resume with Last-Event-ID";
                let session_id = session_id.to_string();
                self.end(&mut buf, "store_unavailable", message, Some(&session_id));
            }
        }
        buf
    }

    /// Stored events (seq `start`, `start + 1`, ...) not sent yet.
    fn stored(&mut self, buf: &mut Vec<u8>, epoch: &Arc<str>, start: u64, events: &[Arc<str>]) {
        let frames = self.ctx.hub.frames();
        let session_id = local(&self.sid);
        for (i, event) in events.iter().enumerate() {
            let seq = start + i as u64;
            if seq <= self.pos.last {
                continue;
            }
            match self.ag_ui.as_mut() {
                None => data(
                    buf,
                    Some((epoch, seq)),
                    &frames.frame(session_id, seq, epoch, event),
                ),
                Some(a) => group(buf, Some((epoch, seq)), &a.event(event)),
            }
            self.pos.last = seq;
        }
    }

    /// Writes a live event as the hub framed it (or as its AG-UI events).
    fn framed(&mut self, buf: &mut Vec<u8>, epoch: &str, seq: u64, frame: &str) {
        match self.ag_ui.as_mut() {
            None => data(buf, Some((epoch, seq)), frame),
            Some(a) => group(
                buf,
                Some((epoch, seq)),
                &a.event(proto::event_payload(frame)),
            ),
        }
    }

    /// The stream's last message, when it ends for `code`.
    fn end(&mut self, buf: &mut Vec<u8>, code: &str, message: &str, session: Option<&str>) {
        self.done = true;
        match &self.ag_ui {
            None => data(buf, None, &proto::error(code, message, session)),
            Some(_) => data(buf, None, &AgUi::error(code, message).to_string()),
        }
    }

    /// The AG-UI profile's first events: the session's events up to where the stream starts
    /// taken in (read a page at a time), then [`AgUi::prelude`] with the session as stored.
    async fn ag_ui_prelude(
        &mut self,
        session_id: &str,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let mut a = Box::new(AgUi::new(session_id));
        let stores = &self.tenant.stores;
        let until = Some(self.pos.last);
        let mut pages = Pages::new(
            &*stores.events,
            session_id,
            self.pos.epoch.clone(),
            0,
            until,
        );
        while let Some(page) = pages.next(self.page_size()).await? {
            page.events.iter().for_each(|e| a.fold(e));
        }
        let session = stores.sessions.get_session(session_id).await?;
        let prelude = a.prelude(serde_json::to_value(session).unwrap_or_default());
        self.ag_ui = Some(a);
        Ok(prelude)
    }
}

/// Writes the AG-UI events that one stored event became, the `id:` on the last (or alone, when
/// it became none: the client's `Last-Event-ID` still moves on).
fn group(buf: &mut Vec<u8>, id: Option<(&str, u64)>, events: &[serde_json::Value]) {
    let Some((last, rest)) = events.split_last() else {
        if let Some((epoch, seq)) = id {
            buf.extend_from_slice(format!("id: {epoch}:{seq}\n\n").as_bytes());
        }
        return;
    };
    for e in rest {
        data(buf, None, &e.to_string());
    }
    data(buf, id, &last.to_string());
}

/// Appends one SSE message: an `id:` line for a stored event, then the JSON as one `data:`
/// line (a line break in JSON can only be whitespace between tokens, so it becomes a space).
fn data(buf: &mut Vec<u8>, id: Option<(&str, u64)>, json: &str) {
    if let Some((epoch, seq)) = id {
        buf.extend_from_slice(b"id: ");
        buf.extend_from_slice(epoch.as_bytes());
        buf.push(b':');
        buf.extend_from_slice(seq.to_string().as_bytes());
        buf.push(b'\n');
    }
    buf.extend_from_slice(b"data: ");
    let start = buf.len();
    buf.extend_from_slice(json.as_bytes());
    for b in &mut buf[start..] {
        if *b == b'\n' || *b == b'\r' {
            *b = b' ';
        }
    }
    buf.extend_from_slice(b"\n\n");
}

/// Reads a `Last-Event-ID` (`<epoch>:<seq>`, as the stream's `id:` lines give it).
pub fn parse_last_event_id(text: &str) -> Option<(String, u64)> {
    let (epoch, seq) = text.trim().rsplit_once(':')?;
    let seq = seq.parse().ok()?;
    (!epoch.is_empty()).then(|| (epoch.to_string(), seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_data_line_and_ids_round_trip() {
        let mut buf = Vec::new();
        data(&mut buf, Some(("e1", 7)), "{\"a\":\r\n 1}");
        assert_eq!(buf, b"id: e1:7\ndata: {\"a\":   1}\n\n");
        assert_eq!(parse_last_event_id("e1:7"), Some(("e1".into(), 7)));
        assert_eq!(parse_last_event_id("a:b:12"), Some(("a:b".into(), 12)));
        assert_eq!(parse_last_event_id("7"), None);
        assert_eq!(parse_last_event_id(":7"), None);
        assert_eq!(parse_last_event_id("e:x"), None);
    }

    #[test]
    fn a_group_has_its_id_on_the_last() {
        let mut buf = Vec::new();
        group(&mut buf, Some(("e", 4)), &[]);
        let events = [serde_json::json!({"a":1}), serde_json::json!({"b":2})];
        group(&mut buf, Some(("e", 5)), &events);
        assert_eq!(
            buf,
            b"id: e:4\n\ndata: {\"a\":1}\n\nid: e:5\ndata: {\"b\":2}\n\n"
        );
    }
}
