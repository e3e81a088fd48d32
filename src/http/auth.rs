//! Who may call, in one middleware: first the browser rules ([`super::browser`]: the Host, the
//! Origin, cross-site requests), then API-key authentication: with `AFW_API_KEYS` set, every
//! route but `/health`, `/ready` and the dashboard's files needs `Authorization: Bearer <key>`
//! (or, for `/ws`, `?token=<key>`, since browsers cannot set headers on a WebSocket). One layer
//! rather than two: each middleware layer costs every request an allocation.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::browser::BrowserPolicy;
use super::error::ApiError;

const PUBLIC: [&str; 2] = ["/health", "/ready"];

/// What the middleware checks, made once from the config.
pub struct Access {
    pub browser: BrowserPolicy,
    pub keys: Vec<String>,
}

pub async fn middleware(State(access): State<Arc<Access>>, req: Request, next: Next) -> Response {
    if let Some(refused) = access.browser.refuse(req.uri().path(), req.headers()) {
        return refused.into_response();
    }
    let keys = &access.keys;
    if keys.is_empty()
        || PUBLIC.contains(&req.uri().path())
        || super::web::is_public(req.uri().path())
    {
        return next.run(req).await;
    }
    let presented = bearer(&req).or_else(|| {
        (req.uri().path() == "/ws")
            .then(|| query_token(req.uri().query().unwrap_or("")))
            .flatten()
    });
    match presented {
        Some(token)
            if keys
                .iter()
                .any(|k| constant_time_eq(k.as_bytes(), token.as_bytes())) =>
        {
            next.run(req).await
        }
        Some(_) => unauthorized("the credentials are not valid"),
        None => unauthorized("send Authorization: Bearer <api key>"),
    }
}

fn bearer(req: &Request) -> Option<String> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

fn query_token(query: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v)
}

fn unauthorized(message: &str) -> Response {
    let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

/// Compares without stopping at the first differing byte, so timing does not leak the key.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_keys() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert_eq!(query_token("a=1&token=k%20x"), Some("k x".into()));
        assert_eq!(query_token("a=1"), None);
    }
}
