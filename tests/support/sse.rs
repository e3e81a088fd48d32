//! A server-sent-events reader for a session's stream (`/api/sessions/:id/stream`): the HTTP
//! response read chunk by chunk and cut into messages (`id:`, `data:`, comments), as the
//! `EventSource` specification says.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::Value;

use super::gateway::Endpoint;
use super::WAIT;

/// One message of the stream.
#[derive(Debug, Clone)]
pub struct SseMessage {
    /// The `id:` line (`<epoch>:<seq>` for a stored event).
    pub id: Option<String>,
    /// The `data:` lines joined, parsed as JSON (`Null` for a comment).
    pub data: Value,
    /// Only a comment (`: keep-alive`).
    pub comment: bool,
}

pub struct SseClient {
    resp: reqwest::Response,
    buf: String,
    /// The id of the last message that had one (what a reconnect sends as `Last-Event-ID`).
    pub last_id: Option<String>,
}

/// A client with no overall timeout (a stream lasts as long as it is read).
pub fn stream_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(WAIT)
        .build()
        .expect("HTTP client")
}

impl SseClient {
    /// Opens `path` (with its query) on `ep`, with `Last-Event-ID` when given; the answer
    /// must be a 200 event stream.
    pub async fn open(ep: &Endpoint, path: &str, last_id: Option<&str>) -> SseClient {
        let (status, resp) = Self::request(ep, path, last_id).await;
        assert_eq!(status, 200, "{path}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert_eq!(ct, "text/event-stream");
        SseClient {
            resp,
            buf: String::new(),
            last_id: last_id.map(str::to_string),
        }
    }

    /// The raw answer (for a refused stream).
    pub async fn request(
        ep: &Endpoint,
        path: &str,
        last_id: Option<&str>,
    ) -> (u16, reqwest::Response) {
        let mut rb = stream_client().get(ep.url(path));
        if let Some(k) = &ep.key {
            rb = rb.bearer_auth(k);
        }
        if let Some(id) = last_id {
            rb = rb.header("last-event-id", id);
        }
        let resp = rb.send().await.expect("stream request");
        (resp.status().as_u16(), resp)
    }

    /// The next message, or `None` when the server ended the stream. Fails after `WAIT`.
    pub async fn next(&mut self) -> Option<SseMessage> {
        self.next_within(WAIT)
            .await
            .expect("a stream message in time")
    }

    /// The next message within `limit` (`Err` when none came), `Ok(None)` at the end.
    pub async fn next_within(&mut self, limit: Duration) -> Result<Option<SseMessage>, ()> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                return Ok(Some(self.parse(&block)));
            }
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Err(_) => return Err(()),
                Ok(Ok(Some(bytes))) => self.buf.push_str(std::str::from_utf8(&bytes).unwrap()),
                Ok(Ok(None)) | Ok(Err(_)) => return Ok(None),
            }
        }
    }

    fn parse(&mut self, block: &str) -> SseMessage {
        let mut id = None;
        let mut data = Vec::new();
        let mut comment = true;
        for line in block.lines().filter(|l| !l.is_empty()) {
            if line.starts_with(':') {
                continue;
            }
            comment = false;
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => id = Some(value.to_string()),
                "data" => data.push(value.to_string()),
                "retry" => {}
                other => panic!("unexpected field {other:?} in {block:?}"),
            }
        }
        if id.is_some() {
            self.last_id = id.clone();
        }
        let data = if data.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&data.join("\n")).unwrap_or_else(|e| panic!("{e}: {block:?}"))
        };
        SseMessage { id, data, comment }
    }

    /// The next message with data, passing over comments and `retry:`; `None` at the end.
    pub async fn next_data(&mut self) -> Option<SseMessage> {
        loop {
            match self.next().await {
                Some(m) if m.data.is_null() => continue,
                other => return other,
            }
        }
    }

    /// The next stored event (`id:` and an `event` message), failing on anything else.
    pub async fn next_event(&mut self) -> (String, Value) {
        let m = self.next_data().await.expect("the stream goes on");
        assert_eq!(m.data["type"], "event", "expected an event, got {:?}", m);
        let id = m.id.expect("an event has an id");
        let want = format!("{}:{}", m.data["epoch"].as_str().unwrap(), m.data["seq"]);
        assert_eq!(id, want, "the id is the event's epoch and seq");
        (id, m.data)
    }
}
