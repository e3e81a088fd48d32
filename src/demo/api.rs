//! The demo agent's view of the gateway: its HTTP API, as any agent would call it, with
//! retries so that an agent rides out a gateway restart (posts carry an `eventId`, so a retry
//! of one that was stored is answered as a duplicate, not stored twice).

use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// A failure the agent cannot get past by retrying.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client of one gateway.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    stop: CancellationToken,
}

const FIRST_RETRY: Duration = Duration::from_millis(200);
const LAST_RETRY: Duration = Duration::from_secs(5);

impl Api {
    pub fn new(base: &str, token: Option<String>, stop: CancellationToken) -> Api {
        Api {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .expect("an HTTP client without TLS builds"),
            base: base.trim_end_matches('/').to_string(),
            token,
            stop,
        }
    }

    pub fn stopped(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Sleeps, or returns early (false) when the demo is stopped.
    pub async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.stop.cancelled() => false,
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, Refused> {
        self.call(reqwest::Method::POST, path, Some(body), None)
            .await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value, Refused> {
        self.call(reqwest::Method::PATCH, path, Some(body), None)
            .await
    }

    /// A GET that may be a long poll of up to `wait`.
    pub async fn get(&self, path: &str, wait: Duration) -> Result<Value, Refused> {
        self.call(reqwest::Method::GET, path, None, Some(wait))
            .await
    }

    /// Calls until the gateway answers 2xx (retrying transport failures, 429 and 5xx with
    /// backoff), refuses (any other 4xx), or the demo stops.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        wait: Option<Duration>,
    ) -> Result<Value, Refused> {
        let url = format!("{}{path}", self.base);
        let mut delay = FIRST_RETRY;
        loop {
            if self.stopped() {
                return Err(Refused("stopped".into()));
            }
            let mut req = self
                .http
                .request(method.clone(), &url)
                .timeout(wait.unwrap_or_default() + Duration::from_secs(10));
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let sent = tokio::select! {
                r = req.send() => r,
                _ = self.stop.cancelled() => return Err(Refused("stopped".into())),
            };
            match sent {
                Ok(resp) if resp.status().is_success() => {
                    return Ok(resp.json().await.unwrap_or(Value::Null));
                }
                Ok(resp) if resp.status().is_server_error() || resp.status().as_u16() == 429 => {
                    tracing::debug!(status = %resp.status(), %url, "demo: retrying");
                }
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    return Err(Refused(format!("{method} {path}: {status} {text}")));
                }
                Err(e) => tracing::debug!(error = %e, %url, "demo: gateway unreachable, retrying"),
            }
            if !self.sleep(delay).await {
                return Err(Refused("stopped".into()));
            }
            delay = (delay * 2).min(LAST_RETRY);
        }
    }
}
