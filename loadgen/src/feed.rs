//! A subscriber's feed of a session, over either transport the gateway serves: a WebSocket
//! (`subscribe` message) or a server-sent-events stream (`GET /api/sessions/:id/stream`,
//! read through hyper). Both give the same JSON messages, so the scenarios read text alone; a
//! Pusher-protocol peer's events are read into the same shape.

use std::net::SocketAddr;

use futures::StreamExt;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::Message;

use crate::net::{self, Target, Ws};

/// How subscribers connect.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    Ws,
    Sse,
    /// A Pusher-protocol server (`--pusher-app`): subscribers on `/app/{key}`, publishers
    /// signed to `/apps/{id}/events`.
    Pusher,
}

pub(crate) enum Feed {
    Ws(Box<Ws>),
    Sse(SseFeed),
    Pusher(Box<Ws>),
}

pub(crate) struct SseFeed {
    body: Incoming,
    buf: Vec<u8>,
}

impl Feed {
    /// Connects and subscribes to `session`, returning once the subscription is confirmed.
    pub(crate) async fn open(
        transport: Transport,
        pusher: &crate::pusher::App,
        target: &Target,
        source: Option<SocketAddr>,
        session: &str,
    ) -> Result<Feed, String> {
        match transport {
            Transport::Ws => Ok(Feed::Ws(Box::new(
                net::subscribe(target, source, session).await?,
            ))),
            Transport::Pusher => Ok(Feed::Pusher(Box::new(
                pusher.subscribe(target, source, session).await?,
            ))),
            Transport::Sse => {
                let mut feed = Feed::Sse(SseFeed::open(target, source, session).await?);
                match feed.next_text().await {
                    Some(t) if t.contains("subscription_confirmed") => Ok(feed),
                    other => Err(format!("no confirmation: {other:?}")),
                }
            }
        }
    }

    /// The next message's JSON text; `None` when the feed ended.
    pub(crate) async fn next_text(&mut self) -> Option<String> {
        match self {
            Feed::Ws(ws) => loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) => return Some(t.to_string()),
                    Some(Ok(_)) => continue,
                    _ => return None,
                }
            },
            Feed::Sse(s) => s.next_data().await,
            Feed::Pusher(ws) => crate::pusher::next_text(ws).await,
        }
    }
}

impl SseFeed {
    async fn open(
        target: &Target,
        source: Option<SocketAddr>,
        session: &str,
    ) -> Result<SseFeed, String> {
        let stream = net::tcp(target, source).await.map_err(|e| e.to_string())?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let mut req = hyper::Request::get(format!("/api/sessions/{session}/stream"))
            .header("host", target.addr.to_string());
        if let Some(k) = &target.api_key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        let req = req.body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;
        let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
        if resp.status() != 200 {
            return Err(format!("stream answered {}", resp.status()));
        }
        Ok(SseFeed {
            body: resp.into_body(),
            buf: Vec::new(),
        })
    }

    /// The next `data:` line's text, passing over comments and `retry:`.
    async fn next_data(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&block);
                if let Some(data) = text.lines().find_map(|l| l.strip_prefix("data: ")) {
                    return Some(data.to_string());
                }
                continue;
            }
            let frame = self.body.frame().await?.ok()?;
            if let Ok(data) = frame.into_data() {
                self.buf.extend_from_slice(&data);
            }
        }
    }
}
