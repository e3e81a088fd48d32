//! `limit-server`: the least a server must do for the `fanout` scenario, as the floor the
//! gateway's CPU per delivery is measured against. It takes WebSocket upgrades, reads one
//! `subscribe`, and for each `POST /api/events` builds the frame once (unmasked header and the
//! posted JSON as `payload`, `seq` counted per session) and queues the same bytes for every
//! subscriber of the session. Each connection's writer then writes one frame per `write`, or,
//! with `--coalesce`, every frame already queued in one `writev` of the shared bytes (after
//! waiting `--write-delay-ms` for more, like the gateway's `WS_WRITE_COALESCE_MS`).
//!
//! Nothing is stored, checked or authenticated, and a client's later messages are never read:
//! it is a floor, not a server.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// How the writers write.
#[derive(Clone, Copy, Debug)]
pub struct Mode {
    /// Every queued frame in one `writev` instead of one `write` per frame.
    pub coalesce: bool,
    /// With `coalesce`, how long a writer waits after its first frame for more.
    pub delay: Duration,
}

#[derive(Default)]
struct Session {
    seq: u64,
    subscribers: Vec<UnboundedSender<Bytes>>,
}

type Sessions = Arc<Mutex<HashMap<String, Session>>>;

/// Serves on `listen` until the process is stopped.
pub async fn serve(listen: SocketAddr, mode: Mode) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!("afw-loadgen limit-server: listening on {listen} ({mode:?})");
    let sessions: Sessions = Arc::default();
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let sessions = Arc::clone(&sessions);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let sessions = Arc::clone(&sessions);
                async move { Ok::<_, Infallible>(route(req, sessions, mode).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

async fn route(req: Request<Incoming>, sessions: Sessions, mode: Mode) -> Response<Full<Bytes>> {
    let answer = |status: StatusCode, body: &'static str| {
        let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *r.status_mut() = status;
        r
    };
    if req.headers().contains_key("sec-websocket-key") {
        return upgrade(req, sessions, mode);
    }
    if req.method() != hyper::Method::POST {
        return answer(StatusCode::OK, r#"{"status":"ok"}"#);
    }
    let Ok(body) = req.into_body().collect().await.map(|b| b.to_bytes()) else {
        return answer(StatusCode::BAD_REQUEST, r#"{"error":"body"}"#);
    };
    #[derive(Deserialize)]
    struct Posted<'a> {
        #[serde(rename = "sessionId", borrow)]
        session_id: &'a str,
    }
    let Ok(posted) = serde_json::from_slice::<Posted<'_>>(&body) else {
        return answer(StatusCode::BAD_REQUEST, r#"{"error":"sessionId"}"#);
    };
    let mut map = sessions.lock().expect("sessions");
    let session = map.entry(posted.session_id.to_owned()).or_default();
    session.seq += 1;
    let text = format!(
        r#"{{"type":"event","sessionId":"{}","seq":{},"payload":"#,
        posted.session_id, session.seq
    );
    let frame = frame(&[text.as_bytes(), &body, b"}"]);
    session
        .subscribers
        .retain(|s| s.send(frame.clone()).is_ok());
    answer(StatusCode::CREATED, r#"{"success":true}"#)
}

/// A server's text frame (unmasked) of the parts, as one buffer shared by every subscriber.
fn frame(parts: &[&[u8]]) -> Bytes {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(len + 10);
    out.push(0x81);
    match len {
        0..=125 => out.push(len as u8),
        126..=0xffff => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    for p in parts {
        out.extend_from_slice(p);
    }
    Bytes::from(out)
}

fn upgrade(mut req: Request<Incoming>, sessions: Sessions, mode: Mode) -> Response<Full<Bytes>> {
    let key = derive_accept_key(req.headers()["sec-websocket-key"].as_bytes());
    let upgrading = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(io) = upgrading.await else { return };
        let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(io), Role::Server, None).await;
        let session = loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    #[derive(Deserialize)]
                    struct Subscribe {
                        #[serde(rename = "sessionId")]
                        session_id: String,
                    }
                    if let Ok(s) = serde_json::from_str::<Subscribe>(&t) {
                        break s.session_id;
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            }
        };
        let (tx, rx) = unbounded_channel();
        let confirm = format!(
            r#"{{"type":"subscription_confirmed","sessionId":"{session}","seq":0,"recovered":false}}"#
        );
        let _ = tx.send(frame(&[confirm.as_bytes()]));
        sessions
            .lock()
            .expect("sessions")
            .entry(session)
            .or_default()
            .subscribers
            .push(tx);
        // Frames go straight to the socket under the WebSocket layer, which has nothing of
        // its own left to write once the subscribe is read.
        let _ = write(ws.get_mut(), rx, mode).await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", key)
        .body(Full::new(Bytes::new()))
        .expect("response")
}

async fn write<W: tokio::io::AsyncWrite + Unpin>(
    io: &mut W,
    mut rx: UnboundedReceiver<Bytes>,
    mode: Mode,
) -> std::io::Result<()> {
    let mut batch: Vec<Bytes> = Vec::new();
    loop {
        if !mode.coalesce {
            let Some(f) = rx.recv().await else {
                return Ok(());
            };
            io.write_all(&f).await?;
            continue;
        }
        if rx.recv_many(&mut batch, 1024).await == 0 {
            return Ok(());
        }
        if !mode.delay.is_zero() {
            tokio::time::sleep(mode.delay).await;
            while let Ok(f) = rx.try_recv() {
                batch.push(f);
            }
        }
        write_all_vectored(io, &batch).await?;
        batch.clear();
    }
}

/// Writes every buffer with as few `writev` calls as the socket takes.
async fn write_all_vectored<W: tokio::io::AsyncWrite + Unpin>(
    io: &mut W,
    bufs: &[Bytes],
) -> std::io::Result<()> {
    let (mut first, mut offset) = (0, 0);
    while first < bufs.len() {
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity((bufs.len() - first).min(1024));
        slices.push(IoSlice::new(&bufs[first][offset..]));
        slices.extend(bufs[first + 1..].iter().take(1023).map(|b| IoSlice::new(b)));
        let mut n = io.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while first < bufs.len() && n >= bufs[first].len() - offset {
            n -= bufs[first].len() - offset;
            first += 1;
            offset = 0;
        }
        offset += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn vectored_writes_carry_every_byte_in_order() {
        let bufs: Vec<Bytes> = (0..3000u32)
            .map(|i| Bytes::from(format!("<{i}>").repeat((i % 7) as usize + 1)))
            .collect();
        let (mut a, mut b) = tokio::io::duplex(512);
        let want: Vec<u8> = bufs.iter().flat_map(|b| b.to_vec()).collect();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut b, &mut got)
                .await
                .map(|_| got)
        });
        write_all_vectored(&mut a, &bufs).await.unwrap();
        drop(a);
        assert_eq!(reader.await.unwrap().unwrap(), want);
    }

    #[test]
    fn frames_carry_their_length() {
        assert_eq!(&frame(&[b"ab", b"c"])[..], b"\x81\x03abc");
        let long = vec![b'x'; 300];
        let f = frame(&[&long]);
        assert_eq!(&f[..4], &[0x81, 126, 1, 44]);
        assert_eq!(f.len(), 304);
    }
}
