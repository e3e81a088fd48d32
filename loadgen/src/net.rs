//! Sockets for the load generator: loopback source addresses (so one machine can open more
//! connections than one address has ephemeral ports), WebSocket clients, and one keep-alive
//! HTTP/1.1 connection per publisher.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Connections per loopback source address: well below the 28k ephemeral ports Linux has by
/// default, leaving room for sockets of earlier runs still in TIME_WAIT.
pub const PER_SOURCE: usize = 10_000;

/// A gateway to talk to.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub api_key: Option<String>,
}

impl Target {
    /// `http://host:port` (or `host:port`); the host must be an IP address.
    pub fn parse(text: &str, api_key: Option<String>) -> Result<Target, String> {
        let rest = text
            .trim()
            .trim_start_matches("http://")
            .trim_start_matches("ws://")
            .trim_end_matches('/');
        let rest = rest.strip_suffix("/ws").unwrap_or(rest);
        let addr = rest
            .replace("localhost", "127.0.0.1")
            .parse()
            .map_err(|_| format!("target {text}: give http://IP:PORT"))?;
        Ok(Target { addr, api_key })
    }
}

/// The source address of connection `i` to `target`: on loopback 127.0.0.2, .3, ... each
/// taking [`PER_SOURCE`] connections; elsewhere the system's choice.
pub fn source_for(target: &Target, i: usize) -> Option<SocketAddr> {
    if !target.addr.ip().is_loopback() {
        return None;
    }
    let n = (i / PER_SOURCE) as u32 + 2;
    let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 0)) + n);
    Some(SocketAddr::new(IpAddr::V4(ip), 0))
}

pub async fn tcp(target: &Target, source: Option<SocketAddr>) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(src) = source {
        // A port picked at bind time cannot take the destination into account; allow ports
        // whose earlier connections are still in TIME_WAIT.
        socket.set_reuseaddr(true)?;
        socket.bind(src)?;
    }
    let stream = socket.connect(target.addr).await?;
    stream.set_nodelay(true)?;
    // Closing resets instead of lingering in TIME_WAIT, so back-to-back runs of tens of
    // thousands of connections do not run out of ports.
    stream.set_zero_linger()?;
    Ok(stream)
}

pub type Ws = WebSocketStream<TcpStream>;

/// Opens a WebSocket, reads the greeting, subscribes to `session` and reads the confirmation.
pub async fn subscribe(
    target: &Target,
    source: Option<SocketAddr>,
    session: &str,
) -> Result<Ws, String> {
    let stream = tcp(target, source).await.map_err(|e| e.to_string())?;
    let mut url = format!("ws://{}/ws", target.addr);
    if let Some(k) = &target.api_key {
        url.push_str("?token=");
        url.push_str(k);
    }
    // Small buffers: the load generator holds as many connections as the gateway does.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .map_err(|e| e.to_string())?;
    let sub = format!(r#"{{"type":"subscribe","sessionId":"{session}"}}"#);
    ws.send(Message::Text(sub.into()))
        .await
        .map_err(|e| e.to_string())?;
    // The greeting, then the confirmation.
    let mut confirmed = false;
    while !confirmed {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                confirmed = t.contains("\"sessionId\"") && t.contains("subscription_confirmed");
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("closed before the confirmation".into()),
        }
    }
    Ok(ws)
}

/// One keep-alive HTTP/1.1 connection (opened again when the server answered
/// `connection: close`, as sockudo does to every API request).
pub struct Http {
    send: SendRequest<Full<Bytes>>,
    target: Target,
    closing: bool,
}

impl Http {
    pub async fn connect(target: &Target) -> Result<Http, String> {
        let stream = tcp(target, None).await.map_err(|e| e.to_string())?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        Ok(Http {
            send,
            target: target.clone(),
            closing: false,
        })
    }

    /// Sends a request (a JSON body when given); the status and body, or None when the
    /// connection failed.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Bytes>,
    ) -> Option<(u16, Bytes)> {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.target.addr.to_string());
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        if let Some(k) = &self.target.api_key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        let req = req.body(Full::new(body.unwrap_or_default())).ok()?;
        self.send.ready().await.ok()?;
        let resp = self.send.send_request(req).await.ok()?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        Some((status, body))
    }

    /// POSTs `body` as JSON; the status, or None when the connection failed.
    pub async fn post(&mut self, path: &str, body: Bytes) -> Option<u16> {
        let mut req = hyper::Request::post(path)
            .header("host", self.target.addr.to_string())
            .header("content-type", "application/json");
        if let Some(k) = &self.target.api_key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        let req = req.body(Full::new(body)).ok()?;
        if self.closing {
            *self = Http::connect(&self.target).await.ok()?;
        }
        self.send.ready().await.ok()?;
        let resp = self.send.send_request(req).await.ok()?;
        let status = resp.status().as_u16();
        self.closing = resp
            .headers()
            .get("connection")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        resp.into_body().collect().await.ok()?;
        Some(status)
    }
}
