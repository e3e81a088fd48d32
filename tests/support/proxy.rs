//! A TCP proxy in front of Redis that can wedge the pub/sub connections going through it.
#![allow(dead_code)]

use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// A TCP proxy in front of Redis that can wedge the pub/sub connections going through it:
/// their sockets stay open, but nothing is forwarded any more in either direction (what a
/// half-dead NAT entry or a stuck Redis connection looks like from the gateway).
pub struct Proxy {
    pub port: u16,
    wedge: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    accept: JoinHandle<()>,
    conns: std::sync::Arc<parking_lot::Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start(target_port: u16) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let wedge = std::sync::Arc::new(tokio::sync::watch::channel(false).0);
        let conns = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let (w, c) = (wedge.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)).await else {
                    continue;
                };
                c.lock()
                    .push(tokio::spawn(pipe(client, server, w.subscribe())));
            }
        });
        Proxy {
            port,
            wedge,
            accept,
            conns,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// From now on, every connection that has sent SUBSCRIBE stops forwarding (and keeps its
    /// sockets open). Connections made later are not affected.
    pub fn wedge_subscribers(&self) {
        let _ = self.wedge.send(true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        for c in self.conns.lock().drain(..) {
            c.abort();
        }
    }
}

/// Forwards both ways until either side closes; a subscriber connection wedges for good when
/// the wedge is set.
async fn pipe(client: TcpStream, server: TcpStream, mut wedge: tokio::sync::watch::Receiver<bool>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let subscriber = AtomicBool::new(false);
    // The futures borrow the socket halves, so dropping them when the wedge wins leaves the
    // sockets open.
    let wedged = async {
        loop {
            if wedge.changed().await.is_err() {
                return std::future::pending::<()>().await;
            }
            if *wedge.borrow() && subscriber.load(Ordering::Acquire) {
                return;
            }
        }
    };
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if buf[..n]
                .windows(9)
                .any(|w| w.eq_ignore_ascii_case(b"SUBSCRIBE"))
            {
                subscriber.store(true, Ordering::Release);
            }
            if sw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if cw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let wedged_now = tokio::select! {
        _ = up => false,
        _ = down => false,
        _ = wedged => true,
    };
    if wedged_now {
        // Forward nothing and keep both sockets open until the proxy is dropped.
        std::future::pending::<()>().await;
    }
}
