//! What each client message does: `auth` first when credentials are pending, then
//! `subscribe`, `unsubscribe`, `input` and `ping`, each checked against the credentials.

use std::sync::Arc;

use serde_json::Value;

use super::grant::Grant;
use super::{proto, ClientMessage, Connection, End};
use crate::credentials::Role;
use crate::domain::control::NewInput;
use crate::domain::rate;
use crate::realtime::protocol::close;

impl Connection {
    pub(super) async fn on_text(&mut self, text: &str) -> Result<(), End> {
        if let Some(gcra) = self.ctx.message_limit {
            let now = self.ctx.epoch.elapsed().as_micros() as u64;
            let tat = Some(self.rate_tat).filter(|t| *t > 0);
            match rate::take(gcra, tat, now) {
                (_, Some(next)) => {
                    self.rate_tat = next;
                    self.rate_strikes = 0;
                }
                (d, None) => {
                    self.ctx.hub.metrics().ws_rate_limited.inc();
                    self.rate_strikes += 1;
                    if self.rate_strikes > proto::RATE_LIMITED_CLOSE_AFTER {
                        return Err(End::Close(close::POLICY, "rate limit"));
                    }
                    let retry = format!(
                        "over the message rate limit; retry in {} ms",
                        d.retry_after_us.div_ceil(1000)
                    );
                    return self.send_error("rate_limited", &retry, None).await;
                }
            }
        }
        let message = ClientMessage::parse(text);
        if let Grant::Pending = self.grant {
            return match message {
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
            };
        }
        match message {
            Err(e) => self.send_error(e.code, &e.message, None).await,
            Ok(ClientMessage::Auth { token }) => self.auth(&token).await,
            Ok(ClientMessage::Ping) => {
                self.send_text(proto::pong(&self.client_id.to_string()))
                    .await
            }
            Ok(ClientMessage::Unsubscribe { session_id }) => {
                self.subs.remove(session_id.as_str());
                self.ctx.hub.unsubscribe(&session_id, self.handle.id);
                self.send_text(proto::unsubscribed(&session_id, "client"))
                    .await
            }
            Ok(ClientMessage::Subscribe {
                session_id,
                since,
                epoch,
            }) => {
                if let Some(why) = self.refuse(&session_id, Role::Viewer) {
                    return self.send_error("forbidden", why, Some(&session_id)).await;
                }
                Box::pin(self.subscribe(session_id, since, epoch)).await
            }
            Ok(ClientMessage::Input {
                session_id,
                payload,
            }) => {
                if let Some(why) = self.refuse(&session_id, Role::Agent) {
                    return self.send_error("forbidden", why, Some(&session_id)).await;
                }
                Box::pin(self.input(session_id, payload)).await
            }
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
        let ctx = Arc::clone(&self.ctx);
        match ctx.control.push_input(&session_id, body, "ws").await {
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
}
