//! A connection's session streams. It keeps, per subscribed session, the epoch and last seq
//! it sent, and everything it sends goes through that check, so replay and live events meet
//! without a gap or a duplicate: it registers with the hub *before* reading history, sends the
//! history, and then skips the live events the history already covered. A live event further
//! ahead than the next seq makes it read the missing ones from the store first.

use std::sync::Arc;

use axum::extract::ws::Message;

use super::{close, proto, Connection, End};
use crate::domain::event::ReadFrom;
use crate::domain::session::check_session_id;
use crate::realtime::hub::Outbound;
use crate::realtime::position::{Admit, Position};
use crate::scope::local;
use crate::store::{Pages, StoreError};

/// Where a connection stands in one session's stream.
pub(super) type Sub = Position;

impl Connection {
    pub(super) async fn subscribe(
        &mut self,
        session_id: String,
        since: Option<u64>,
        epoch: Option<String>,
    ) -> Result<(), End> {
        if let Err(p) = check_session_id(&session_id) {
            return self
                .send_error(
                    "invalid_message",
                    &format!("{}: {}", p.field, p.problem),
                    None,
                )
                .await;
        }
        // `sid` keys the hub and `subs`; the store and the client know the session as
        // `session_id`.
        let sid = self.hub_key(&session_id);
        if !self.subs.contains_key(&sid)
            && self.subs.len() >= proto::MAX_SUBSCRIPTIONS_PER_CONNECTION
        {
            return self
                .send_error(
                    "too_many_subscriptions",
                    "unsubscribe from a session first",
                    Some(&session_id),
                )
                .await;
        }
        // Register first: every event stored after the read below reaches the queue.
        self.ctx.hub.subscribe(&sid, &self.handle);
        let read = match since {
            Some(s) => ReadFrom::After(s),
            None => ReadFrom::Tail(0),
        };
        let mut page_size = self.first_page();
        let limit = if since.is_some() { page_size } else { 0 };
        let tenant = self.tenant();
        let range = match tenant
            .stores
            .events
            .read_events(&session_id, read, limit)
            .await
        {
            Ok(r) => r,
            Err(e) => return self.subscribe_failed(&sid, e).await,
        };
        let recovered = since.is_some_and(|s| range.can_resume(s, epoch.as_deref()));
        self.ctx.hub.metrics().resumed(since.is_some(), recovered);
        self.subs.insert(
            Arc::clone(&sid),
            Sub {
                epoch: range.epoch.as_deref().map(Arc::from),
                last: range.head_seq,
            },
        );
        let confirm = proto::subscribed(
            &session_id,
            range.head_seq,
            range.epoch.as_deref(),
            recovered,
        );
        self.send_text(confirm).await?;
        if recovered {
            let since = since.unwrap_or(0);
            // Send from `since`; the live queue then continues from whatever was sent last.
            self.sub_mut(&sid).last = since;
            let start = range.start_after(since);
            let epoch = range.epoch.clone().unwrap_or_default();
            page_size = self.pace(page_size, &range.events);
            self.send_stored(&sid, &epoch, start, range.events).await?;
            self.catch_up_paced(&sid, None, page_size).await?;
        }
        Ok(())
    }

    async fn subscribe_failed(&mut self, sid: &Arc<str>, e: StoreError) -> Result<(), End> {
        tracing::warn!(session = %local(sid), error = %e, "subscribe failed");
        self.subs.remove(sid);
        self.ctx.hub.unsubscribe(sid, self.handle.id);
        self.send_error(
            "store_unavailable",
            "the store did not answer; subscribe again shortly",
            Some(local(sid)),
        )
        .await
    }

    /// The first page of a replay: as many of the largest events as the outbound budget holds.
    fn first_page(&self) -> usize {
        (self.ctx.outbound_limit / self.ctx.max_event_bytes.max(1)).clamp(1, proto::REPLAY_PAGE)
    }

    /// Sizes the next replay page from this one, so one page stays within the outbound budget
    /// whatever the events weigh: halved past it, doubled (up to [`proto::REPLAY_PAGE`]) while
    /// under half of it. A replay so holds about one budget of memory, as live frames do.
    fn pace(&self, size: usize, page: &[Arc<str>]) -> usize {
        let bytes: usize = page.iter().map(|e| e.len()).sum();
        let budget = self.ctx.outbound_limit;
        if bytes > budget {
            (size / 2).max(1)
        } else if bytes < budget / 2 && page.len() >= size {
            (size * 2).min(proto::REPLAY_PAGE)
        } else {
            size
        }
    }

    fn sub_mut(&mut self, sid: &str) -> &mut Sub {
        self.subs.get_mut(sid).expect("subscribed")
    }

    /// Sends stored events (seq `start`, `start + 1`, ...) that this connection has not sent,
    /// in as few writes as the write buffer allows.
    async fn send_stored(
        &mut self,
        sid: &Arc<str>,
        epoch: &str,
        start: u64,
        events: Vec<Arc<str>>,
    ) -> Result<(), End> {
        for (i, event) in events.iter().enumerate() {
            let seq = start + i as u64;
            if seq <= self.subs.get(sid).map_or(u64::MAX, |s| s.last) {
                continue;
            }
            let frame = self.ctx.hub.frames().frame(local(sid), seq, epoch, event);
            self.feed(Message::Text(frame.into())).await?;
            self.sub_mut(sid).last = seq;
        }
        self.flush().await
    }

    /// Reads and sends what the store has after this connection's last seq for `sid`, up to
    /// `until` (or everything), staying within the connection's epoch.
    async fn catch_up(&mut self, sid: &Arc<str>, until: Option<u64>) -> Result<(), End> {
        let size = self.first_page();
        self.catch_up_paced(sid, until, size).await
    }

    async fn catch_up_paced(
        &mut self,
        sid: &Arc<str>,
        until: Option<u64>,
        mut page_size: usize,
    ) -> Result<(), End> {
        let Some(sub) = self.subs.get(sid) else {
            return Ok(());
        };
        let tenant = self.tenant();
        let mut pages = Pages::new(
            &*tenant.stores.events,
            local(sid),
            sub.epoch.clone(),
            sub.last,
            until,
        );
        loop {
            let page = match pages.next(page_size).await {
                Ok(Some(page)) => page,
                Ok(None) => return Ok(()),
                Err(e) => {
                    // Sending on would leave a gap: close, and the client resumes with
                    // `since` (here once the store answers, or on another instance).
                    tracing::warn!(session = %local(sid), error = %e, "catch-up read failed; closing");
                    return Err(End::Close(
                        close::STORE_UNAVAILABLE,
                        "store unavailable; resume with since",
                    ));
                }
            };
            match self.subs.get_mut(sid) {
                Some(sub) => sub.epoch = Some(Arc::clone(&page.epoch)),
                None => return Ok(()),
            }
            page_size = self.pace(page_size, &page.events);
            self.send_stored(sid, &page.epoch, page.start, page.events)
                .await?;
        }
    }

    pub(super) async fn on_outbound(&mut self, item: &Outbound) -> Result<(), End> {
        match item {
            Outbound::Event(e) => {
                let Some(sub) = self.subs.get_mut(&e.session_id) else {
                    return Ok(()); // unsubscribed while it was queued
                };
                match sub.admit(&e.epoch, e.seq) {
                    Admit::Skip => return Ok(()),
                    // The usual case: one lookup, then the shared frame. Recording the seq
                    // before the write is safe, since a failed write ends the connection.
                    Admit::Next => {}
                    Admit::Gap => {
                        Box::pin(self.catch_up(&e.session_id, Some(e.seq - 1))).await?;
                        match self.subs.get_mut(&e.session_id) {
                            Some(sub) => sub.last = e.seq,
                            None => return Ok(()),
                        }
                    }
                }
                self.feed(Message::Text(e.frame.clone())).await
            }
            Outbound::Unsubscribed { session_id, reason } => {
                self.subs.remove(session_id);
                self.send_text(proto::unsubscribed(local(session_id), reason))
                    .await
            }
            Outbound::CatchUp { session_id } => Box::pin(self.catch_up(session_id, None)).await,
            Outbound::Message(m) => {
                if !self.subs.contains_key(&m.session_id) {
                    return Ok(()); // unsubscribed while it was queued
                }
                self.feed(Message::Text(m.frame.clone())).await
            }
        }
    }
}
