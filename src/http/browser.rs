//! What a web page on another site may not do with a gateway it can reach (one on the user's
//! own machine, say): a browser sends whatever requests a page asks for, so the gateway tells
//! them apart by the headers a page cannot forge.
//!
//! - **Host.** Without `AFW_API_KEYS`, on a loopback address, only loopback names are served
//!   (`localhost`, `*.localhost`, `127.0.0.0/8`, `[::1]`) and those of `AFW_ALLOWED_HOSTS`:
//!   a page that rebinds its own name to 127.0.0.1 (DNS rebinding) sends its own name, and is
//!   answered 403 `host_not_allowed`. As the Vite dev server and Jupyter do.
//! - **Origin.** A request that carries `Origin` (every WebSocket handshake and every
//!   cross-origin or non-GET request a browser makes) must come from the gateway's own origin
//!   or one of the allowed origins (`AFW_CORS_ORIGINS`, or those of the compatibility mode);
//!   else 403 `origin_not_allowed`, so another site can neither open `/ws` nor post to the API.
//! - **Sec-Fetch-Site.** A cross-site request without an allowed `Origin` (a `no-cors` GET,
//!   which could consume a session's input) is refused the same way; only the dashboard's own
//!   files may be navigated to from elsewhere.
//! - The JSON content type on bodies is the extractor's ([`super::extract::JsonBody`]).
//!
//! `/health` and `/ready` are exempt (probes), and the dashboard's files (public anyway). The
//! check runs in the access middleware ([`super::auth`]), before the API keys'.

use std::net::IpAddr;

use axum::http::{header, HeaderMap, HeaderName, StatusCode};

use super::error::ApiError;

static SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// Who may call: decided once from the config.
#[derive(Debug, Clone)]
pub struct BrowserPolicy {
    /// `None`: any Host (the gateway has keys, or AFW_INSECURE with no AFW_ALLOWED_HOSTS).
    hosts: Option<Vec<String>>,
    /// Origins allowed beside the gateway's own; `None`: any (`*`).
    origins: Option<Vec<String>>,
}

impl BrowserPolicy {
    pub fn new(
        keyed: bool,
        loopback_bind: bool,
        allowed_hosts: &[String],
        origins: &[String],
    ) -> BrowserPolicy {
        let lower = |v: &[String]| v.iter().map(|s| s.to_ascii_lowercase()).collect();
        let hosts = if allowed_hosts.iter().any(|h| h == "*") {
            None
        } else if !keyed && (loopback_bind || !allowed_hosts.is_empty()) {
            Some(lower(allowed_hosts))
        } else {
            None
        };
        let origins = if origins.iter().any(|o| o == "*") {
            None
        } else {
            Some(
                origins
                    .iter()
                    .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                    .collect(),
            )
        };
        BrowserPolicy { hosts, origins }
    }

    /// Why this request is refused, if it is.
    pub fn refuse(&self, path: &str, headers: &HeaderMap) -> Option<ApiError> {
        if path == "/health" || path == "/ready" {
            return None;
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if let Some(allowed) = &self.hosts {
            let listed =
                |a: &String| a.eq_ignore_ascii_case(host) || a.eq_ignore_ascii_case(name(host));
            if !is_loopback_host(host) && !allowed.iter().any(listed) {
                return Some(forbidden(
                    "host_not_allowed",
                    "this gateway has no keys and answers only loopback host names (and those of AFW_ALLOWED_HOSTS)",
                ));
            }
        }
        // Agents and tools send neither header: they are done here.
        let origin = headers.get(header::ORIGIN);
        let cross = origin.is_none()
            && headers
                .get(&SEC_FETCH_SITE)
                .is_some_and(|s| s == "cross-site" || s == "same-site");
        if origin.is_none() && !cross {
            return None;
        }
        if super::web::is_public(path) {
            return None;
        }
        match origin.map(|o| o.to_str()) {
            Some(Ok(origin)) if self.allows(origin, host) => None,
            Some(Ok(_)) => Some(forbidden(
                "origin_not_allowed",
                "requests from this origin are not allowed (AFW_CORS_ORIGINS lists the origins that are)",
            )),
            Some(Err(_)) => Some(forbidden(
                "origin_not_allowed",
                "the Origin header is not text",
            )),
            None => Some(forbidden(
                "origin_not_allowed",
                "cross-site requests need an allowed Origin",
            )),
        }
    }

    fn allows(&self, origin: &str, host: &str) -> bool {
        let origin = origin.trim_end_matches('/');
        // The gateway's own origin: the page was served by it (its authority is our Host).
        let authority = origin.split_once("://").map_or("", |(_, a)| a);
        if !host.is_empty() && authority.eq_ignore_ascii_case(host) {
            return true;
        }
        match &self.origins {
            None => true,
            Some(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)),
        }
    }
}

/// The name of a `Host` value without its port (`[::1]:3001` → `[::1]`).
fn name(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..=h.len()]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// `localhost`, `*.localhost`, or a loopback IP address, with or without a port (any case).
fn is_loopback_host(host: &str) -> bool {
    let n = name(host);
    let tail = n.len().saturating_sub(".localhost".len());
    if n.eq_ignore_ascii_case("localhost")
        || (n.is_char_boundary(tail) && n[tail..].eq_ignore_ascii_case(".localhost"))
    {
        return true;
    }
    // 127.0.0.0/8 written out (the common case, without parsing an address); a name that
    // only starts with "127." is no address, and not loopback.
    if let Some(rest) = n.strip_prefix("127.") {
        return rest.split('.').count() == 3
            && rest
                .split('.')
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
    }
    n.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

fn forbidden(code: &'static str, message: &'static str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, code, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn keyless_on_loopback_answers_loopback_names_only() {
        let p = BrowserPolicy::new(false, true, &["gw.internal".into()], &[]);
        for ok in [
            "localhost:3001",
            "127.0.0.1",
            "127.1.2.3:80",
            "[::1]:3001",
            "app.localhost",
            "gw.internal:3001",
        ] {
            assert!(
                p.refuse("/api/sessions", &headers(&[("host", ok)]))
                    .is_none(),
                "{ok}"
            );
        }
        for bad in [
            "attacker.example:3001",
            "localhost.attacker.example",
            "10.0.0.1",
            "127.attacker.example",
            "127.0.0.1.attacker.example",
            "",
        ] {
            let e = p
                .refuse("/api/sessions", &headers(&[("host", bad)]))
                .unwrap();
            assert_eq!(e.code, "host_not_allowed", "{bad}");
        }
        assert!(p.refuse("/health", &headers(&[("host", "x")])).is_none());
        let keyed = BrowserPolicy::new(true, true, &[], &[]);
        assert!(keyed
            .refuse("/api/sessions", &headers(&[("host", "gw.example")]))
            .is_none());
    }

    #[test]
    fn origins_must_be_our_own_or_allowed() {
        let p = BrowserPolicy::new(false, true, &[], &["http://localhost:5173".into()]);
        let at = |origin: &str| {
            p.refuse(
                "/ws",
                &headers(&[("host", "localhost:3001"), ("origin", origin)]),
            )
        };
        assert!(at("http://localhost:3001").is_none(), "same origin");
        assert!(at("http://localhost:5173").is_none(), "allowed");
        assert_eq!(
            at("http://localhost:4000").unwrap().code,
            "origin_not_allowed"
        );
        assert_eq!(at("null").unwrap().code, "origin_not_allowed");
        assert!(p
            .refuse(
                "/afw-client.js",
                &headers(&[("host", "localhost:3001"), ("origin", "http://x")])
            )
            .is_none());
        let cross = headers(&[("host", "localhost:3001"), ("sec-fetch-site", "cross-site")]);
        assert!(p.refuse("/api/sessions/s/input", &cross).is_some());
        assert!(p.refuse("/", &cross).is_none(), "a link to the dashboard");
        let any = BrowserPolicy::new(true, false, &[], &["*".into()]);
        assert!(any
            .refuse("/ws", &headers(&[("host", "a"), ("origin", "http://b")]))
            .is_none());
    }
}
