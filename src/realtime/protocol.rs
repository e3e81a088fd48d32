//! The WebSocket protocol (docs/protocol.md#websocket-get-ws): message types, close codes and limits, in one place.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

/// Protocol version announced on connect.
pub const PROTOCOL_VERSION: u32 = 1;
/// The server pings this often...
pub const PING_EVERY: Duration = crate::config::DEFAULT_WS_PING_EVERY;
/// ...and closes a connection whose pong has not come back within this.
pub const PONG_TIMEOUT: Duration = crate::config::DEFAULT_WS_PONG_TIMEOUT;
/// Largest message a client may send.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 64 * 1024;
/// Sessions one connection may be subscribed to at once.
pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: usize = 1024;
/// Events read from the store per step of a replay or gap fill.
pub const REPLAY_PAGE: usize = 1000;
/// Messages over the rate limit (`WS_RATE_LIMIT_*`) a connection may send in a row, each
/// answered `rate_limited`, before it is closed with 1008.
pub const RATE_LIMITED_CLOSE_AFTER: u32 = 50;

/// Close codes the server uses.
pub mod close {
    /// Server shutting down: reconnect (elsewhere) at once.
    pub const GOING_AWAY: u16 = 1001;
    /// A frame that breaks RFC 6455 (unmasked, reserved bits, unknown opcode, a control
    /// frame over 125 bytes, ...).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text message that is not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// Bad or expired credentials.
    pub const POLICY: u16 = 1008;
    /// A client message over [`super::MAX_CLIENT_MESSAGE_BYTES`].
    pub const TOO_BIG: u16 = 1009;
    /// No pong within [`super::PONG_TIMEOUT`].
    pub const PING_TIMEOUT: u16 = 1011;
    /// The store did not answer a read this connection needed to keep its stream gapless;
    /// the client resumes with `since`.
    pub const STORE_UNAVAILABLE: u16 = 1011;
    /// The client did not keep up with its events; come back with `since`.
    pub const SLOW_CONSUMER: u16 = 4008;
}

/// How a failed read ends the connection: the close code (and reason) the protocol gives the
/// client for what it sent, or nothing to send when the connection itself is gone. Read from
/// the WebSocket library's error text (axum does not expose its error type).
pub fn read_failure(error: &str) -> Option<(u16, &'static str)> {
    if error.contains("too long") || error.contains("Space limit") {
        Some((close::TOO_BIG, "message too big"))
    } else if error.contains("UTF-8") {
        Some((close::INVALID_DATA, "text is not UTF-8"))
    } else if error.contains("protocol error")
        && !error.contains("without closing handshake")
        && !error.contains("after having closed")
    {
        Some((close::PROTOCOL_ERROR, "protocol error"))
    } else {
        None
    }
}

/// A message from a client.
#[derive(Debug, PartialEq)]
pub enum ClientMessage {
    /// Start receiving a session's events; with `since`, first those after it.
    Subscribe {
        session_id: String,
        since: Option<u64>,
        epoch: Option<String>,
    },
    /// Stop receiving a session's events.
    Unsubscribe { session_id: String },
    /// Application-level ping, answered with `pong`.
    Ping,
    /// Input for the session's agent, queued like `POST /api/sessions/:id/input`.
    Input { session_id: String, payload: Value },
    /// Credentials: the first ones of a connection opened without, or fresh ones before the
    /// current ones expire.
    Auth { token: String },
}

/// Why a client message could not be used; sent back as an `error` message.
#[derive(Debug, PartialEq)]
pub struct ProtocolError {
    pub code: &'static str,
    pub message: String,
}

fn perr(code: &'static str, message: impl Into<String>) -> ProtocolError {
    ProtocolError {
        code,
        message: message.into(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscribeFields {
    session_id: String,
    since: Option<u64>,
    epoch: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UnsubscribeFields {
    session_id: String,
}

#[derive(Deserialize)]
struct AuthFields {
    token: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InputFields {
    session_id: String,
    payload: Value,
}

impl ClientMessage {
    pub fn parse(text: &str) -> Result<ClientMessage, ProtocolError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| perr("invalid_json", format!("message is not JSON: {e}")))?;
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| perr("invalid_message", "message needs a string field \"type\""))?
            .to_string();
        let fields = |e: serde_json::Error| perr("invalid_message", format!("{kind}: {e}"));
        match kind.as_str() {
            "subscribe" => {
                let f: SubscribeFields = serde_json::from_value(value).map_err(fields)?;
                Ok(ClientMessage::Subscribe {
                    session_id: f.session_id,
                    since: f.since,
                    epoch: f.epoch,
                })
            }
            "unsubscribe" => {
                let f: UnsubscribeFields = serde_json::from_value(value).map_err(fields)?;
                Ok(ClientMessage::Unsubscribe {
                    session_id: f.session_id,
                })
            }
            "ping" => Ok(ClientMessage::Ping),
            "input" => {
                let f: InputFields = serde_json::from_value(value).map_err(fields)?;
                Ok(ClientMessage::Input {
                    session_id: f.session_id,
                    payload: f.payload,
                })
            }
            "auth" => {
                let f: AuthFields = serde_json::from_value(value).map_err(fields)?;
                Ok(ClientMessage::Auth { token: f.token })
            }
            other => Err(perr(
                "unknown_type",
                format!("unknown message type \"{other}\""),
            )),
        }
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// How event messages look on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EventFrames {
    /// `{type:"event", sessionId, seq, epoch, payload}`: the contract's envelope.
    #[default]
    Envelope,
    /// The stored event itself (its own `type`, `sessionId`, `timestamp`, `seq`), as the
    /// ActionFlows dashboard reads it (`AFW_COMPAT=actionflows`; see [`super::compat`]). It has
    /// no `epoch`.
    Bare,
}

/// The heartbeat message of each frame format. The ActionFlows dashboard passes over a
/// `pong` silently and warns about any other message without a `sessionId`.
pub const HEARTBEAT: &str = r#"{"type":"heartbeat"}"#;
pub const HEARTBEAT_AS_PONG: &str = r#"{"type":"pong","heartbeat":true}"#;

impl EventFrames {
    pub fn heartbeat(self) -> &'static str {
        match self {
            EventFrames::Envelope => HEARTBEAT,
            EventFrames::Bare => HEARTBEAT_AS_PONG,
        }
    }

    pub fn frame(self, session_id: &str, seq: u64, epoch: &str, event: &str) -> String {
        match self {
            EventFrames::Envelope => event_frame(session_id, seq, epoch, event),
            EventFrames::Bare => super::compat::event(event),
        }
    }

    /// A new command's message; none for the ActionFlows dashboard, which has no use for it.
    pub fn command(self, session_id: &str, record: &str) -> Option<String> {
        match self {
            EventFrames::Envelope => Some(command_frame(session_id, record)),
            EventFrames::Bare => None,
        }
    }

    /// A changed chain's message; for the ActionFlows dashboard, the session's `currentChain`.
    pub fn chain(self, session_id: &str, chain: &str) -> Option<String> {
        match self {
            EventFrames::Envelope => Some(chain_frame(session_id, chain)),
            EventFrames::Bare => super::compat::chain(session_id, chain),
        }
    }
}

/// `event`: one stored event, built by concatenation so the stored JSON is not re-encoded.
pub fn event_frame(session_id: &str, seq: u64, epoch: &str, event: &str) -> String {
    let sid = json_str(session_id);
    let ep = json_str(epoch);
    let mut s = String::with_capacity(event.len() + sid.len() + ep.len() + 64);
    s.push_str("{\"type\":\"event\",\"sessionId\":");
    s.push_str(&sid);
    s.push_str(",\"seq\":");
    s.push_str(&seq.to_string());
    s.push_str(",\"epoch\":");
    s.push_str(&ep);
    s.push_str(",\"payload\":");
    s.push_str(event);
    s.push('}');
    s
}

/// The stored event inside an [`event_frame`] (its `payload`, the frame's last member); any
/// other frame (a bare one is the event itself) as it is.
pub fn event_payload(frame: &str) -> &str {
    const AT: &str = ",\"payload\":";
    match frame.find(AT) {
        Some(i) if frame.starts_with("{\"type\":\"event\",") => {
            &frame[i + AT.len()..frame.len() - 1]
        }
        _ => frame,
    }
}

/// `command`: a new command's record, pushed to the session's subscribers.
pub fn command_frame(session_id: &str, record: &str) -> String {
    message_frame("command", session_id, record)
}

/// `chain`: a chain as it now stands, pushed to the session's subscribers.
pub fn chain_frame(session_id: &str, chain: &str) -> String {
    message_frame("chain", session_id, chain)
}

fn message_frame(kind: &str, session_id: &str, payload: &str) -> String {
    let sid = json_str(session_id);
    let mut s = String::with_capacity(payload.len() + sid.len() + 48);
    s.push_str("{\"type\":\"");
    s.push_str(kind);
    s.push_str("\",\"sessionId\":");
    s.push_str(&sid);
    s.push_str(",\"payload\":");
    s.push_str(payload);
    s.push('}');
    s
}

/// The greeting sent on connect.
pub fn connected(client_id: &str, instance_id: &str) -> String {
    json!({
        "type": "subscription_confirmed",
        "payload": {
            "clientId": client_id,
            "message": "connected",
            "instanceId": instance_id,
            "protocol": PROTOCOL_VERSION,
        }
    })
    .to_string()
}

pub fn subscribed(session_id: &str, head_seq: u64, epoch: Option<&str>, recovered: bool) -> String {
    json!({
        "type": "subscription_confirmed",
        "sessionId": session_id,
        "payload": {
            "message": format!("subscribed to {session_id}"),
            "headSeq": head_seq,
            "epoch": epoch,
            "recovered": recovered,
        }
    })
    .to_string()
}

pub fn unsubscribed(session_id: &str, reason: &str) -> String {
    json!({"type": "unsubscribed", "sessionId": session_id, "reason": reason}).to_string()
}

pub fn input_queued(session_id: &str, input_id: &Value) -> String {
    json!({"type": "input_queued", "sessionId": session_id, "inputId": input_id}).to_string()
}

/// The answer to an accepted `auth` message: when the credentials expire (`null`: never).
pub fn auth_ok(expires_at_ms: Option<i64>) -> String {
    let at = expires_at_ms.map_or(Value::Null, crate::time::iso_ms);
    json!({"type": "auth_ok", "expiresAt": at}).to_string()
}

pub fn pong(client_id: &str) -> String {
    json!({"type": "pong", "clientId": client_id}).to_string()
}

pub fn error(code: &str, message: &str, session_id: Option<&str>) -> String {
    let mut v = json!({"type": "error", "code": code, "payload": {"message": message}});
    if let Some(sid) = session_id {
        v["sessionId"] = json!(sid);
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_message() {
        assert_eq!(
            ClientMessage::parse(r#"{"type":"subscribe","sessionId":"s","since":4,"epoch":"e"}"#),
            Ok(ClientMessage::Subscribe {
                session_id: "s".into(),
                since: Some(4),
                epoch: Some("e".into())
            })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"unsubscribe","sessionId":"s"}"#),
            Ok(ClientMessage::Unsubscribe {
                session_id: "s".into()
            })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"ping"}"#),
            Ok(ClientMessage::Ping)
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"auth","token":"t"}"#),
            Ok(ClientMessage::Auth { token: "t".into() })
        );
    }

    #[test]
    fn names_what_is_wrong() {
        let code = |t: &str| ClientMessage::parse(t).unwrap_err().code;
        assert_eq!(code("{nope"), "invalid_json");
        assert_eq!(code("[1]"), "invalid_message");
        assert_eq!(code(r#"{"type":"dance"}"#), "unknown_type");
        assert_eq!(code(r#"{"type":"subscribe"}"#), "invalid_message");
        assert_eq!(
            code(r#"{"type":"subscribe","sessionId":"s","since":-1}"#),
            "invalid_message"
        );
        assert_eq!(code(r#"{"type":"auth"}"#), "invalid_message");
    }

    #[test]
    fn the_payload_of_an_event_frame() {
        let frame = event_frame("s", 3, "e1", r#"{"type":"x","payload":{"a":1}}"#);
        assert_eq!(event_payload(&frame), r#"{"type":"x","payload":{"a":1}}"#);
        let bare = r#"{"type":"step:started"}"#;
        assert_eq!(event_payload(bare), bare);
    }

    #[test]
    fn event_frame_is_valid_json() {
        let f = event_frame("a\"b", 3, "e1", r#"{"x":1}"#);
        let v: Value = serde_json::from_str(&f).unwrap();
        assert_eq!(v["sessionId"], "a\"b");
        assert_eq!(v["seq"], 3);
        assert_eq!(v["payload"]["x"], 1);
    }
}
