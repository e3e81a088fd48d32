//! One WebSocket connection: a single task that reads client messages, drains the hub's
//! queue for this connection, pings, and closes (1001 on shutdown, 4008 when over budget).
//!
//! What it keeps per subscribed session, and how replay and live events meet without a gap or
//! a duplicate, is `streams`; what each client message does, `messages`; what its credentials
//! allow and when they run out, `grant`; the deadline of every write, `deadline`.

use std::future::Future;
use std::sync::Arc;

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use futures::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::hub::{self, ConnHandle, ConnQueue, Hub};
use super::tally::Tally;

mod deadline;
mod grant;
mod messages;
mod streams;
mod subs;
use super::protocol::{self as proto, close, ClientMessage};
use crate::credentials::{Credentials, Principal};
use crate::domain::rate::Gcra;
use crate::scope::{scope_of, scoped};
use crate::service::quotas::Connected;
use crate::tenancy::{Tenant, Tenants};
use deadline::bounded;
use grant::expiry;

/// Messages written per flush at most.
const BATCH: usize = 64;
/// Bytes buffered before the socket is written without waiting for the flush.
const WRITE_BUFFER: usize = 16 * 1024;

/// How long a closing connection waits for its close frame to be written and answered.
const CLOSE_GRACE: std::time::Duration = proto::PONG_TIMEOUT;

/// What every connection needs from its instance, shared by all of them (one `Arc` each).
pub struct WsContext {
    pub hub: Arc<Hub>,
    /// Each tenant's stores (to read streams) and services (to queue `input` like HTTP).
    pub tenants: Arc<Tenants>,
    pub instance_id: Arc<str>,
    /// Cancelled on shutdown: every connection closes with 1001.
    pub shutdown: CancellationToken,
    /// Checks an `auth` message's token, and tells whether one is needed at all.
    pub credentials: Arc<Credentials>,
    /// How long a connection opened without credentials may take to send them.
    pub auth_timeout: Duration,
    /// How long a connection outlives its token's expiry, waiting for a fresh one.
    pub auth_grace: Duration,
    /// How fast one connection may send messages (`WS_RATE_LIMIT_*`); `None`: unlimited.
    pub message_limit: Option<Gcra>,
    /// What the connections' message budgets count time from.
    pub epoch: Instant,
    pub outbound_limit: usize,
    /// Largest stored event: with `outbound_limit`, sizes the first page of a replay.
    pub max_event_bytes: usize,
    /// How long one write may wait for the socket before the client counts as too slow.
    pub write_timeout: Duration,
    /// How long a connection waits for more frames once one is queued, to write them
    /// together (`WS_WRITE_COALESCE_MS`; None: write at once).
    pub write_coalesce: Option<Duration>,
    pub ping_every: Duration,
    pub pong_timeout: Duration,
    /// An application-level heartbeat message this often (`WS_HEARTBEAT_SECS`; None: off):
    /// browser code cannot see WebSocket pings, so this is what tells it the link is alive.
    pub heartbeat_every: Option<Duration>,
    pub heartbeat: &'static str,
    /// How often an SSE stream (which needs what a connection needs) sends a keep-alive comment.
    pub sse_keepalive: Duration,
}

/// Serves one upgraded connection until it closes. `principal` is what the upgrade's
/// credentials said; without them, when credentials are required, the connection waits for an
/// `auth` message.
/// (Not an `async fn`: its arguments would stay in every connection's future beside the
/// connection made of them.)
pub fn serve(
    ctx: Arc<WsContext>,
    (id, client_id): (u64, uuid::Uuid),
    socket: WebSocket,
    principal: Option<Arc<Principal>>,
    held: Option<Connected>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut conn = Connection::new(ctx, (id, client_id), socket, principal);
    conn.held = held;
    // `run` borrows the connection: an `async fn` taking `self` by value keeps two copies of
    // it in its future (the argument and the binding it moves into), 208 bytes more per
    // connection.
    async move { conn.run().await }
}

/// Closes a connection the instance will not serve (`1013`: try again later) with the closing
/// handshake, waiting a moment for the client's Close.
pub async fn refuse(mut socket: WebSocket, code: u16, reason: &'static str) {
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }));
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        if socket.send(frame).await.is_ok() {
            while let Some(Ok(m)) = socket.next().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        }
    })
    .await;
}

/// How the upgrade configures a connection. Buffers are eagerly allocated per connection;
/// clients send little (subscribe, ping), and a larger message just takes more reads. Idle
/// connections are what a gateway holds most of.
pub fn configure(ws: WebSocketUpgrade) -> WebSocketUpgrade {
    ws.max_message_size(proto::MAX_CLIENT_MESSAGE_BYTES)
        .max_frame_size(proto::MAX_CLIENT_MESSAGE_BYTES)
        .read_buffer_size(256)
        .write_buffer_size(WRITE_BUFFER)
}

/// Why the connection loop stopped.
enum End {
    /// The client went away or the socket failed: nothing more to send.
    Gone,
    /// The client sent Close: the library has queued the answering Close; it only needs to
    /// be flushed.
    ClientClosed,
    /// Close with this code and reason.
    Close(u16, &'static str),
}

struct Connection {
    ctx: Arc<WsContext>,
    /// Kept as 16 bytes and formatted when sent: it is held by every idle connection.
    client_id: uuid::Uuid,
    handle: ConnHandle,
    queue: ConnQueue,
    /// Read and written by this one task, so not split in two (a split puts the socket
    /// behind a lock in an allocation of its own, locked on every read and write).
    socket: WebSocket,
    subs: subs::Subs,
    /// The credentials held (`grant` says what they allow).
    principal: Option<Arc<Principal>>,
    /// Credentials are required and none came yet: only an `auth` message is served.
    pending: bool,
    /// When the connection closes with 1008 unless credentials (or fresh ones) come: the
    /// auth timeout while pending, the token's expiry plus the grace while held (µs since
    /// `ctx.epoch`; 0: never).
    auth_due_us: u64,
    /// Set when the due time changed, so the loop re-arms its timer.
    auth_changed: bool,
    /// The message budget's state (microseconds since `ctx.epoch`; 0: untouched).
    rate_tat: u64,
    /// The connection's place in its tenant's `TENANT_MAX_CONNECTIONS`, when it has one.
    held: Option<Connected>,
    /// Messages refused in a row for the rate; past [`proto::RATE_LIMITED_CLOSE_AFTER`] the
    /// connection is closed with 1008.
    rate_strikes: u8,
}

impl Connection {
    fn new(
        ctx: Arc<WsContext>,
        (id, client_id): (u64, uuid::Uuid),
        socket: WebSocket,
        principal: Option<Arc<Principal>>,
    ) -> Connection {
        let (handle, queue) = hub::queue(id, ctx.outbound_limit);
        let pending = principal.is_none() && ctx.credentials.required();
        let due = match &principal {
            Some(p) => expiry(p, ctx.auth_grace),
            None if pending => Some(Instant::now() + ctx.auth_timeout),
            None => None,
        };
        let mut conn = Connection {
            ctx,
            client_id,
            handle,
            queue,
            socket,
            subs: subs::Subs::default(),
            principal,
            pending,
            auth_due_us: 0,
            auth_changed: false,
            rate_tat: 0,
            rate_strikes: 0,
            held: None,
        };
        conn.set_auth_due(due);
        conn
    }

    async fn run(&mut self) {
        tracing::debug!("connected");
        self.ctx.hub.metrics().ws_connections.inc();
        let end = self.serve().await;
        for sid in self.subs.keys() {
            self.ctx.hub.unsubscribe(sid, self.handle.id);
        }
        if let End::ClientClosed = end {
            // Without the flush the client never gets its Close answered and sees 1006.
            let _ = tokio::time::timeout(CLOSE_GRACE, SinkExt::close(&mut self.socket)).await;
        }
        if let End::Close(code, reason) = end {
            self.ctx.hub.metrics().ws_closed(code);
            let frame = Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            }));
            // The closing handshake (RFC 6455 §7): send Close, then wait for the client's
            // Close before dropping the TCP connection; dropping it first can make the
            // client's stack reset the connection and lose the close frame with the reason.
            // The queue and subscriptions are already gone, so waiting holds only the socket,
            // and it lets a client that fell behind (slow, or not answering pings) still learn
            // why. On shutdown the instance does not wait: clients move on at once.
            let handshake = code != close::GOING_AWAY;
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                if SinkExt::send(&mut self.socket, frame).await.is_ok() && handshake {
                    while let Some(Ok(m)) = self.socket.next().await {
                        if matches!(m, Message::Close(_)) {
                            break;
                        }
                    }
                }
            })
            .await;
        }
        self.handle.close();
        self.ctx.hub.metrics().ws_connections.dec();
        tracing::debug!("disconnected");
    }

    async fn serve(&mut self) -> End {
        let greeting = proto::connected(&self.client_id.to_string(), &self.ctx.instance_id);
        if self.send_text(greeting).await.is_err() {
            return End::Gone;
        }
        // One timer serves the next ping, the pong deadline, the heartbeat and the auth
        // deadline: an idle connection holds a single timer entry. (The settings are read
        // from `ctx` where used: copies would be held by every connection's future.)
        let mut next_ping = Instant::now() + self.ctx.ping_every;
        let mut pong_due: Option<Instant> = None;
        let mut next_beat = self.ctx.heartbeat_every.map(|b| Instant::now() + b);
        let timer = tokio::time::sleep_until(self.wake_at(next_ping, pong_due, next_beat));
        tokio::pin!(timer);
        loop {
            let step = tokio::select! {
                biased;
                _ = self.ctx.shutdown.cancelled() => return End::Close(close::GOING_AWAY, "server shutting down"),
                incoming = self.socket.next() => match incoming {
                    None => return End::Gone,
                    Some(Ok(Message::Close(_))) => return End::ClientClosed,
                    Some(Err(e)) => {
                        let text = e.to_string();
                        tracing::debug!(error = %text, "read failed");
                        return match proto::read_failure(&text) {
                            Some((code, reason)) => End::Close(code, reason),
                            None => End::Gone,
                        };
                    }
                    // Boxed: a client message's handling is the largest thing the loop
                    // awaits, and every connection's future would be that large while idle.
                    Some(Ok(Message::Text(t))) => Box::pin(self.on_text(t.as_str())).await,
                    Some(Ok(Message::Binary(_))) => {
                        self.send_error("binary_not_supported", "send JSON text messages", None).await
                    }
                    Some(Ok(Message::Pong(_))) => {
                        pong_due = None;
                        Ok(())
                    }
                    Some(Ok(Message::Ping(_))) => Ok(()),
                },
                alive = self.queue.ready() => match alive {
                    true => self.drain().await,
                    false => return End::Close(close::SLOW_CONSUMER, "slow_consumer"),
                },
                _ = &mut timer => {
                    let now = Instant::now();
                    if pong_due.is_some_and(|due| due <= now) {
                        return End::Close(close::PING_TIMEOUT, "ping timeout");
                    }
                    if self.auth_due().is_some_and(|due| due <= now) {
                        return if self.pending {
                            End::Close(close::POLICY, "authentication required")
                        } else {
                            End::Close(close::POLICY, "credentials expired")
                        };
                    }
                    let mut r = Ok(());
                    if next_ping <= now {
                        next_ping = now + self.ctx.ping_every;
                        pong_due.get_or_insert(now + self.ctx.pong_timeout);
                        r = self.send(Message::Ping(Default::default())).await;
                    }
                    if let (Some(at), Some(b)) = (next_beat, self.ctx.heartbeat_every) {
                        if at <= now && r.is_ok() {
                            next_beat = Some(now + b);
                            r = self.send(Message::Text(Utf8Bytes::from_static(self.ctx.heartbeat))).await;
                        }
                    }
                    timer.as_mut().reset(self.wake_at(next_ping, pong_due, next_beat));
                    r
                }
            };
            if let Err(end) = step {
                return end;
            }
            if self.auth_changed {
                self.auth_changed = false;
                timer
                    .as_mut()
                    .reset(self.wake_at(next_ping, pong_due, next_beat));
            }
        }
    }

    /// When the connection's one timer fires next: the earliest of the next ping, the pong
    /// deadline, the next heartbeat and the auth deadline.
    fn wake_at(
        &self,
        next_ping: Instant,
        pong_due: Option<Instant>,
        next_beat: Option<Instant>,
    ) -> Instant {
        [pong_due, next_beat, self.auth_due()]
            .into_iter()
            .flatten()
            .fold(next_ping, Instant::min)
    }

    // The writes are plain functions returning the bounded write, not `async fn`s: an
    // `async fn` would hold its message beside the write that holds it too, in the future of
    // every caller up to the connection's own.
    fn send(&mut self, msg: Message) -> impl Future<Output = Result<(), End>> + '_ {
        bounded(
            SinkExt::send(&mut self.socket, msg),
            &self.handle,
            self.ctx.write_timeout,
        )
    }

    /// Writes into the socket's buffer without flushing (it flushes by itself past
    /// [`WRITE_BUFFER`]); [`Connection::flush`] sends the rest.
    fn feed(&mut self, msg: Message) -> impl Future<Output = Result<(), End>> + '_ {
        bounded(self.socket.feed(msg), &self.handle, self.ctx.write_timeout)
    }

    fn flush(&mut self) -> impl Future<Output = Result<(), End>> + '_ {
        bounded(
            SinkExt::flush(&mut self.socket),
            &self.handle,
            self.ctx.write_timeout,
        )
    }

    /// Sends what is queued (up to [`BATCH`] messages), then flushes once: under load one
    /// write carries many frames. With `WS_WRITE_COALESCE_MS` it first waits that long for
    /// more, unless a write's worth is queued already. It takes the messages off the queue
    /// itself, one at a time: one handed in would be held twice in the connection's future.
    async fn drain(&mut self) -> Result<(), End> {
        if let Some(delay) = self.ctx.write_coalesce {
            if self.handle.queued_bytes() < WRITE_BUFFER {
                tokio::time::sleep(delay).await;
            }
        }
        let mut tally = Tally::default();
        for _ in 0..BATCH {
            let Some(item) = self.queue.try_recv() else {
                break;
            };
            tally.count(&item);
            let r = self.on_outbound(&item).await;
            self.queue.release(&item);
            r?;
        }
        let r = self.flush().await;
        self.ctx.hub.metrics().ws_writes.inc();
        tally.publish(self.ctx.hub.metrics());
        r
    }

    /// The tenant the connection's credentials are of (the default one without them). A
    /// connection keeps its tenant: fresh credentials must name the same.
    fn tenant(&self) -> Arc<Tenant> {
        match &self.principal {
            Some(p) => self.ctx.tenants.get(&p.tenant),
            None => Arc::clone(self.ctx.tenants.default_tenant()),
        }
    }

    /// `session_id` as the hub keys it for this connection's tenant.
    fn hub_key(&self, session_id: &str) -> Arc<str> {
        let tenant = self.principal.as_deref().and_then(|p| scope_of(&p.tenant));
        scoped(tenant, session_id).into()
    }

    fn send_text(&mut self, text: String) -> impl Future<Output = Result<(), End>> + '_ {
        self.send(Message::Text(text.into()))
    }

    fn send_error(
        &mut self,
        code: &str,
        message: &str,
        session_id: Option<&str>,
    ) -> impl Future<Output = Result<(), End>> + '_ {
        self.send_text(proto::error(code, message, session_id))
    }
}
