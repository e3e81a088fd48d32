//! The dashboard: the files of `web-demo/`, built into the binary so that `cargo run` and a
//! container need nothing beside it. With `WEB_DEMO_DIR` set they are read from that folder on
//! every request instead, so the page can be edited without a rebuild. Only the files named
//! here are served, from disk or not: no path from a request reaches the file system.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::error::ApiError;
use crate::app::AppState;

/// One file of the page: its name under `web-demo/`, its type and its built-in copy.
pub struct Asset {
    pub name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:literal) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("../../web-demo/", $name)),
        }
    };
}

/// Every file the page is made of.
pub const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("ops.js", "text/javascript; charset=utf-8"),
    asset!("afw-client.js", "text/javascript; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

/// Paths the page is served at; they need no credentials (the page asks for a key itself,
/// or gets a token from `AFW_TOKEN_URL`, which `/config.json` names).
pub fn is_public(path: &str) -> bool {
    path == "/" || path == "/config.json" || find(path.trim_start_matches('/')).is_some()
}

fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// A route for each file, and `/` for the page itself (deep links such as `/?session=<id>`
/// are read by the page's script).
pub fn routes() -> Router<AppState> {
    let index = find("index.html").expect("index.html is an asset");
    let mut router = Router::new()
        .route(
            "/",
            get(move |State(app), headers| serve(app, index, headers)),
        )
        .route("/config.json", get(page_config));
    for asset in ASSETS {
        router = router.route(
            &format!("/{}", asset.name),
            get(move |State(app), headers| serve(app, asset, headers)),
        );
    }
    router
}

/// What the page needs to know before it has credentials: where to get a token.
async fn page_config(State(app): State<AppState>) -> Response {
    let mut resp =
        axum::Json(serde_json::json!({"tokenUrl": app.config().auth.token_url})).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// The page's Content-Security-Policy: scripts, styles and connections to this host only
/// (its WebSocket named by the Host it was loaded from, when that is a plain host name), and
/// the origin of `AFW_TOKEN_URL`.
fn csp(host: Option<&str>, token_url: Option<&str>) -> String {
    let mut connect = String::from("'self'");
    let plain = |h: &str| {
        !h.is_empty()
            && h.len() <= 255
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
    };
    if let Some(h) = host.filter(|h| plain(h)) {
        connect.push_str(&format!(" ws://{h} wss://{h}"));
    }
    if let Some(origin) = token_url
        .and_then(url_origin)
        .filter(|o| plain(o.split("//").nth(1).unwrap_or("")))
    {
        connect.push(' ');
        connect.push_str(&origin);
    }
    format!(
        "default-src 'self'; connect-src {connect}; img-src 'self' data:; style-src 'self'; \
         script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
}

/// `https://host[:port]` of an absolute URL.
fn url_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    Some(format!("{scheme}://{host}"))
}

async fn serve(app: AppState, asset: &'static Asset, headers: axum::http::HeaderMap) -> Response {
    // The built-in copy is served from the binary's own bytes, not copied per request.
    let body = match &app.config().web_demo_dir {
        None => Body::from(asset.body),
        Some(dir) => match tokio::fs::read(dir.join(asset.name)).await {
            Ok(bytes) => Body::from(bytes),
            Err(e) => {
                tracing::warn!(file = asset.name, error = %e, "WEB_DEMO_DIR: cannot read");
                return ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("{} is not in WEB_DEMO_DIR", asset.name),
                )
                .into_response();
            }
        },
    };
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // Revalidated on every load, so a new binary's page is never mixed with an old script.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let policy = csp(host, app.config().auth.token_url.as_deref());
    if let Ok(v) = HeaderValue::from_str(&policy) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_named_files_are_public() {
        assert!(is_public("/"));
        assert!(is_public("/afw-client.js"));
        assert!(is_public("/index.html"));
        assert!(!is_public("/api/sessions"));
        assert!(!is_public("/../Cargo.toml"));
        assert!(!is_public("/web-demo/app.js"));
    }

    #[test]
    fn the_policy_names_this_host_and_the_token_origin() {
        let p = csp(
            Some("gw.example:8443"),
            Some("https://app.example/token?x=1"),
        );
        assert!(p.contains("connect-src 'self' ws://gw.example:8443 wss://gw.example:8443 https://app.example;"), "{p}");
        let p = csp(Some("evil; script-src *"), None);
        assert!(p.contains("connect-src 'self';"), "{p}");
        assert!(!p.contains("ws:"), "{p}");
    }
}
