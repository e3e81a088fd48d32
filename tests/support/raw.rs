//! HTTP/1.1 spoken by hand over a TCP socket: what an attacker sends (half a request line, a
//! body one byte at a time, oversized headers), and reading what comes back.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::WAIT;

/// Opens a connection and writes `bytes` on it.
pub async fn raw_send(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("tcp connect");
    s.write_all(bytes).await.expect("write");
    s
}

/// Reads until the server closes the connection (or `WAIT` passes) and returns what came.
pub async fn read_to_close(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(out),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
}

/// The status and body of one response on a connection the server closes after it.
pub fn parse_response(bytes: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(bytes).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Sends one request with `Connection: close` and reads the answer.
pub async fn raw_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let auth = super::auth_header();
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n");
    let mut s = raw_send(addr, req.as_bytes()).await;
    let bytes = read_to_close(&mut s).await.expect("an answer");
    parse_response(&bytes)
}

/// Whether the server closed the connection within `within`, having sent nothing.
pub async fn closed_silently(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    matches!(
        tokio::time::timeout(within, s.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

/// Like [`raw_get`], but 0 when the server closes the connection without an answer.
pub async fn raw_get_or_closed(addr: SocketAddr, path: &str) -> u16 {
    let auth = super::auth_header();
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n");
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return 0;
    };
    if s.write_all(req.as_bytes()).await.is_err() {
        return 0;
    }
    match read_to_close(&mut s).await {
        Some(bytes) => parse_response(&bytes).0,
        None => 0,
    }
}

/// A WebSocket opened by hand (`GET /ws` upgrade), past the server's greeting frame, so a
/// test can send frames no library would.
pub async fn raw_websocket(addr: SocketAddr) -> TcpStream {
    let req = format!("GET /ws HTTP/1.1\r\nHost: localhost\r\n{}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", super::auth_header());
    let mut s = raw_send(addr, req.as_bytes()).await;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.expect("upgrade answer");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let (opcode, _) = read_frame(&mut s).await.expect("greeting");
    assert_eq!(opcode, 1, "a text greeting");
    s
}

/// One frame from the server (never masked): its opcode and payload.
pub async fn read_frame(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    tokio::time::timeout(WAIT, s.read_exact(&mut h))
        .await
        .ok()?
        .ok()?;
    let len = match h[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).await.ok()?;
            u16::from_be_bytes(l) as usize
        }
        127 => {
            let mut l = [0u8; 8];
            s.read_exact(&mut l).await.ok()?;
            u64::from_be_bytes(l) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await.ok()?;
    Some((h[0] & 0x0f, payload))
}

/// The code of the server's close frame, skipping other frames; None if the connection ends
/// without one.
pub async fn read_close_code(s: &mut TcpStream) -> Option<u16> {
    loop {
        let (opcode, payload) = read_frame(s).await?;
        if opcode == 8 {
            return Some(u16::from_be_bytes([*payload.first()?, *payload.get(1)?]));
        }
    }
}
