//! The Pusher protocol, for peers that speak it (sockudo, Pusher itself): a subscriber opens
//! `/app/{key}` and sends `pusher:subscribe` for its session's channel; a publisher POSTs
//! `/apps/{id}/events` signed as Pusher's HTTP API requires (HMAC-SHA256 of the method, path
//! and sorted query with the app's secret, the body's MD5 among them). Events carry the same
//! JSON (`n`, `sentAt`) as `data`, so the scenarios count and time them as they do ours.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use hyper::body::Bytes;
use md5::{Digest, Md5};
use serde::Deserialize;
use sha2::Sha256;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::net::{self, Target, Ws};

/// A Pusher app's credentials, `ID:KEY:SECRET` on the command line.
#[derive(Clone, Debug)]
pub(crate) struct App {
    id: String,
    key: String,
    secret: String,
}

impl std::str::FromStr for App {
    type Err = String;
    fn from_str(text: &str) -> Result<App, String> {
        let mut parts = text.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(id), Some(key), Some(secret)) if !id.is_empty() && !key.is_empty() => Ok(App {
                id: id.into(),
                key: key.into(),
                secret: secret.into(),
            }),
            _ => Err("give the Pusher app as ID:KEY:SECRET".into()),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl App {
    /// The signed path and body of publishing `data` as event `load` on `channel`.
    pub(crate) fn publish(&self, channel: &str, data: &str) -> (String, Bytes) {
        let body = serde_json::json!({"name": "load", "channel": channel, "data": data});
        let body = serde_json::to_vec(&body).expect("a JSON body");
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.signed(&body, secs)
    }

    fn signed(&self, body: &[u8], secs: u64) -> (String, Bytes) {
        let path = format!("/apps/{}/events", self.id);
        let query = format!(
            "auth_key={}&auth_timestamp={secs}&auth_version=1.0&body_md5={}",
            self.key,
            hex(&Md5::digest(body))
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.as_bytes()).expect("any key");
        mac.update(format!("POST\n{path}\n{query}").as_bytes());
        let signature = hex(&mac.finalize().into_bytes());
        (
            format!("{path}?{query}&auth_signature={signature}"),
            Bytes::copy_from_slice(body),
        )
    }

    /// Opens `/app/{key}`, subscribes to `channel` and waits for the confirmation.
    pub(crate) async fn subscribe(
        &self,
        target: &Target,
        source: Option<SocketAddr>,
        channel: &str,
    ) -> Result<Ws, String> {
        let stream = net::tcp(target, source).await.map_err(|e| e.to_string())?;
        let url = format!(
            "ws://{}/app/{}?protocol=7&client=afw-loadgen&version=1.0",
            target.addr, self.key
        );
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
            .await
            .map_err(|e| e.to_string())?;
        let sub = serde_json::json!({"event": "pusher:subscribe", "data": {"channel": channel}});
        ws.send(Message::Text(sub.to_string().into()))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.contains("pusher:error") => {
                    return Err(t.to_string())
                }
                Some(Ok(Message::Text(t))) if t.contains("subscription_succeeded") => {
                    return Ok(ws)
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("closed before the confirmation".into()),
            }
        }
    }
}

#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow, default)]
    data: Option<Cow<'a, str>>,
}

/// What the scenarios read of a Pusher message: an event as the gateway frames one (`type`
/// `event`, its data as `payload`), or, for anything else, the text as it came. A
/// `pusher:ping` is answered.
pub(crate) async fn next_text(ws: &mut Ws) -> Option<String> {
    loop {
        let text = match ws.next().await {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(_)) => continue,
            _ => return None,
        };
        let Ok(m) = serde_json::from_str::<Incoming<'_>>(&text) else {
            return Some(text.to_string());
        };
        match (&*m.event, m.data) {
            ("load", Some(data)) => return Some(format!(r#"{{"type":"event","payload":{data}}}"#)),
            ("pusher:ping", _) => {
                let pong = Message::Text(r#"{"event":"pusher:pong","data":{}}"#.into());
                ws.send(pong).await.ok()?;
            }
            _ => return Some(text.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::App;

    /// Pusher's documented example (pusher.com/docs/channels/library_auth_reference/rest-api).
    #[test]
    fn signs_as_pusher_documents() {
        let app: App = "3:278d425bdf160c739803:7ad3773142a6692b25b8"
            .parse()
            .unwrap();
        let body = br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
        let (path, _) = app.signed(body, 1353088179);
        assert_eq!(
            path,
            "/apps/3/events?auth_key=278d425bdf160c739803&auth_timestamp=1353088179\
             &auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f\
             &auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        );
    }
}
