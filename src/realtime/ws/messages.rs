//! What each client message does: `auth` first when credentials are pending, then
//! `subscribe`, `unsubscribe`, `input` and `ping`, each checked against the credentials.

use std::sync::Arc;

use serde_json::Value;

use super::grant::Grant;
use super::{proto, ClientMessage, Connection, End};
use crate::credentials::Role;
use crate::domain::control::NewInput;

impl Connection {
    pub(super) async fn on_text(&mut self, text: &str) -> Result<(), End> {
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
