//! What each client message does: `auth` first when credentials are pending, then
//! `subscribe`, `unsubscribe`, `input` and `ping`, each checked against the credentials.

use serde_json::Value;

use super::{proto, ClientMessage, Connection, End};
use crate::credentials::Role;
use crate::domain::control::NewInput;
use crate::domain::rate;
use crate::realtime::protocol::close;

impl Connection {
    pub(super) async fn on_text(&mut self, text: &str) -> Result<(), End> {
        // The refusals are boxed: their futures would otherwise grow every connection's.
        if let Some(over) = self.over_rate() {
            return Box::pin(self.refuse_rate(over)).await;
        }
        let message = ClientMessage::parse(text);
        if self.pending {
            return Box::pin(self.pending(message)).await;
        }
        match message {
            Err(e) => self.send_error(e.code, &e.message, None).await,
            Ok(ClientMessage::Auth { token }) => Box::pin(self.auth(&token)).await,
            Ok(ClientMessage::Ping) => {
                self.send_text(proto::pong(&self.client_id.to_string()))
                    .await
            }
            Ok(ClientMessage::Unsubscribe { session_id }) => {
                let sid = self.hub_key(&session_id);
                self.subs.remove(&sid);
                self.ctx.hub.unsubscribe(&sid, self.handle.id);
                self.send_text(proto::unsubscribed(&session_id, "client"))
                    .await
            }
            Ok(ClientMessage::Subscribe {
                session_id,
                since,
                epoch,
            }) => match self.refuse(&session_id, Role::Viewer) {
                // Boxed like the work itself, so that no arm holds its fields across an await
                // in every connection's future.
                Some(why) => Box::pin(self.forbidden(session_id, why)).await,
                None => Box::pin(self.subscribe(session_id, since, epoch)).await,
            },
            Ok(ClientMessage::Input {
                session_id,
                payload,
            }) => match self.refuse(&session_id, Role::Agent) {
                Some(why) => Box::pin(self.forbidden(session_id, why)).await,
                None => Box::pin(self.input(session_id, payload)).await,
            },
        }
    }

    /// Queues `payload` as input: `{input, prompt?}` as over HTTP, or the bare input value.
    async fn input(&mut self, session_id: String, payload: Value) -> Result<(), End> {
        let body = match payload {
            Value::Object(mut o) if o.contains_key("input") => NewInput {
                input: o.remove("input"),
                prompt: o.remove("prompt"),
            },
            other => NewInput {
                input: Some(other),
                prompt: None,
            },
        };
        let tenant = self.tenant();
        match tenant
            .services
            .control
            .push_input(&session_id, body, "ws")
            .await
        {
            Ok(item) => {
                self.send_text(proto::input_queued(&session_id, &item["inputId"]))
                    .await
            }
            Err(e) => {
                self.send_error(e.code(), &e.message(), Some(&session_id))
                    .await
            }
        }
    }

    /// Takes one message from the connection's budget (`WS_RATE_LIMIT_*`): `None` when it may
    /// be served, else how long until one may (µs).
    fn over_rate(&mut self) -> Option<u64> {
        let gcra = self.ctx.message_limit?;
        let now = self.ctx.epoch.elapsed().as_micros() as u64;
        let tat = Some(self.rate_tat).filter(|t| *t > 0);
        match rate::take(gcra, tat, now) {
            (_, Some(next)) => {
                self.rate_tat = next;
                self.rate_strikes = 0;
                None
            }
            (d, None) => Some(d.retry_after_us),
        }
    }

    /// A message over the rate: an `error`, or after too many in a row, 1008.
    async fn refuse_rate(&mut self, retry_after_us: u64) -> Result<(), End> {
        self.ctx.hub.metrics().ws_rate_limited.inc();
        self.rate_strikes = self.rate_strikes.saturating_add(1);
        if u32::from(self.rate_strikes) > proto::RATE_LIMITED_CLOSE_AFTER {
            return Err(End::Close(close::POLICY, "rate limit"));
        }
        let retry = format!(
            "over the message rate limit; retry in {} ms",
            retry_after_us.div_ceil(1000)
        );
        self.send_error("rate_limited", &retry, None).await
    }

    /// A message the credentials do not allow.
    async fn forbidden(&mut self, session_id: String, why: &'static str) -> Result<(), End> {
        self.send_error("forbidden", why, Some(&session_id)).await
    }

    /// A message before any credentials: only `auth` is served.
    async fn pending(
        &mut self,
        message: Result<ClientMessage, proto::ProtocolError>,
    ) -> Result<(), End> {
        match message {
            Ok(ClientMessage::Auth { token }) => self.auth(&token).await,
            Err(e) => self.send_error(e.code, &e.message, None).await,
            Ok(_) => {
                self.send_error(
                    "unauthorized",
                    "send {\"type\":\"auth\",\"token\":...} first",
                    None,
                )
                .await
            }
        }
    }
}
