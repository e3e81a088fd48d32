//! A WebSocket client speaking the gateway protocol.
#![allow(dead_code)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::WAIT;

/// A WebSocket client speaking the gateway protocol.
pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub client_id: String,
    pub instance_id: String,
}

impl WsClient {
    /// Connects and reads the greeting.
    pub async fn connect(url: &str) -> WsClient {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        WsClient::greeted(ws).await
    }

    /// Connects with a 4 KiB socket receive buffer, so that a client that stops reading backs
    /// up into the server's queue after kilobytes rather than the megabytes of kernel buffers.
    pub async fn connect_small_buffer(addr: std::net::SocketAddr) -> WsClient {
        let stream = small_buffer_stream(addr).await.expect("tcp connect");
        let url = match super::tenant_key() {
            Some(k) => format!("ws://{addr}/ws?token={k}"),
            None => format!("ws://{addr}/ws"),
        };
        let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
            .await
            .expect("ws handshake");
        WsClient::greeted(ws).await
    }

    async fn greeted(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> WsClient {
        let mut c = WsClient {
            ws,
            client_id: String::new(),
            instance_id: String::new(),
        };
        let hello = c.recv().await;
        assert_eq!(hello["type"], "subscription_confirmed", "{hello}");
        c.client_id = hello["payload"]["clientId"]
            .as_str()
            .expect("clientId")
            .to_string();
        c.instance_id = hello["payload"]["instanceId"]
            .as_str()
            .expect("instanceId")
            .to_string();
        c
    }

    pub async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("ws send");
    }

    pub async fn send_raw(&mut self, m: Message) {
        self.ws.send(m).await.expect("ws send");
    }

    /// The next JSON message (pings are answered by the library and skipped).
    pub async fn recv(&mut self) -> Value {
        self.try_recv(WAIT)
            .await
            .expect("a message within the wait")
    }

    /// The next JSON message within `wait`, or None.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<Value> {
        let text = self.try_recv_text(wait).await?;
        Some(serde_json::from_str(&text).expect("server sent JSON"))
    }

    /// The next text message within `wait`, unparsed (for readers of many large frames).
    pub async fn try_recv_text(&mut self, wait: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let m = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??;
            match m.expect("ws read") {
                Message::Text(t) => return Some(t.to_string()),
                Message::Close(f) => panic!("connection closed: {f:?}"),
                _ => continue,
            }
        }
    }

    /// Fails if any message arrives within a short while.
    pub async fn assert_quiet(&mut self, why: &str) {
        if let Some(m) = self.try_recv(Duration::from_millis(300)).await {
            panic!("{why}: got {m}");
        }
    }

    /// Reads until the close frame and returns its code.
    pub async fn recv_close(&mut self) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?
            {
                Some(Ok(Message::Close(f))) => {
                    // Finish the closing handshake as browsers do: reading on after the
                    // server's Close makes the library send its reply.
                    let _ = tokio::time::timeout(Duration::from_secs(1), self.ws.next()).await;
                    return f.map(|f| f.code.into());
                }
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    }

    /// Subscribes and returns the confirmation.
    pub async fn subscribe(
        &mut self,
        session_id: &str,
        since: Option<u64>,
        epoch: Option<&str>,
    ) -> Value {
        let mut msg = serde_json::json!({"type": "subscribe", "sessionId": session_id});
        if let Some(s) = since {
            msg["since"] = s.into();
        }
        if let Some(e) = epoch {
            msg["epoch"] = e.into();
        }
        self.send(msg).await;
        let confirm = self.recv().await;
        assert_eq!(confirm["type"], "subscription_confirmed", "{confirm}");
        assert_eq!(confirm["sessionId"], session_id, "{confirm}");
        confirm
    }

    /// The next `event` message, passing over heartbeats (they come every
    /// `WS_HEARTBEAT_SECS` whatever else flows, so a slow run sees one mid-stream); fails on
    /// anything else.
    pub async fn next_event(&mut self) -> Value {
        loop {
            let m = self.recv().await;
            if m["type"] != "heartbeat" {
                assert_eq!(m["type"], "event", "expected an event, got {m}");
                return m;
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// Sends Close and returns the server's answering Close frame (code, reason), or None
    /// when the connection ended without one.
    pub async fn close_handshake(mut self) -> Option<(u16, String)> {
        self.ws
            .send(Message::Close(Some(
                tokio_tungstenite::tungstenite::protocol::CloseFrame {
                    code: 1000.into(),
                    reason: "bye".into(),
                },
            )))
            .await
            .expect("send close");
        let answer = tokio::time::timeout(WAIT, async {
            while let Some(m) = self.ws.next().await {
                match m {
                    Ok(Message::Close(f)) => {
                        return f.map(|f| (u16::from(f.code), f.reason.to_string()))
                    }
                    Ok(_) => continue,
                    Err(_) => return None,
                }
            }
            None
        })
        .await;
        answer.ok().flatten()
    }
}

pub async fn small_buffer_stream(addr: std::net::SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    socket.connect(addr).await
}
