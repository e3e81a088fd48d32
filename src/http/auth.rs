//! Who may call, in one middleware: first the browser rules ([`super::browser`]: the Host, the
//! Origin, cross-site requests), then the credentials ([`crate::credentials`]): with any
//! configured, every route but `/health`, `/ready` and the dashboard's files needs
//! `Authorization: Bearer <key or token>` (or, for `/ws` and a session's SSE stream, `?token=`;
//! for `/ws` also an `auth` message once connected), and the route's role ([`need`]). The
//! principal rides on the request as an extension for the handlers that look at it (the
//! WebSocket, the SSE stream). One layer rather than two: each middleware layer costs every
//! request an allocation.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::browser::BrowserPolicy;
use super::error::ApiError;
use super::rate::Limiter;
use crate::credentials::{Credentials, Principal, Role};
use crate::domain::control::ControlQueue;
use crate::scope::scope_of;
use crate::tenancy::Tenants;

/// What the middleware checks, made once from the config.
pub struct Access {
    pub browser: BrowserPolicy,
    pub credentials: Arc<Credentials>,
    /// Each credential's (and refused address's) rate limit; `None`: unlimited.
    pub limiter: Option<Limiter>,
    /// The tenants a credential may name (its requests are served by that tenant's stores).
    pub tenants: Arc<Tenants>,
}

/// What a route needs.
#[derive(Debug, PartialEq, Eq)]
pub enum Need {
    /// Nothing: health, readiness, the dashboard's files.
    Open,
    /// A credential with at least this role.
    Role(Role),
}

/// The role each route needs. Reads need `viewer`, writes `agent`, and the operations routes
/// (metrics, cleanups, clearing the cache, the demo agents) `admin`. Taking input, and reading
/// commands with `consume=true`, are writes although they are GETs.
pub fn need(method: &Method, path: &str, query: Option<&str>) -> Need {
    if matches!(path, "/health" | "/ready") || super::web::is_public(path) {
        return Need::Open;
    }
    let read = method == Method::GET || method == Method::HEAD;
    let admin = matches!(path, "/metrics" | "/api/health/redis" | "/api/ops/summary")
        || (path == "/api/demo" && !read)
        || (method == Method::POST
            && matches!(path, "/api/chains/cleanup" | "/api/workflow-state/cleanup"))
        || (method == Method::DELETE && path == "/api/cache")
        || (method == Method::PUT && path == "/api/permission-rules");
    if admin {
        Need::Role(Role::Admin)
    } else if read && !takes(path, query) {
        Need::Role(Role::Viewer)
    } else {
        Need::Role(Role::Agent)
    }
}

/// Whether a GET removes what it reads: a poll of a session's input or commands that takes
/// them ([`super::control::poll_takes`], the handlers' own reading of `consume`).
fn takes(path: &str, query: Option<&str>) -> bool {
    let session = path.starts_with("/api/sessions/") || path.starts_with("/api/commands/");
    let queue = if path.ends_with("/input") {
        ControlQueue::Input
    } else if path.ends_with("/commands") {
        ControlQueue::Commands
    } else {
        return false;
    };
    session && super::control::poll_takes(queue, query)
}

/// Routes about the whole instance rather than one tenant's data: its metrics, its Redis, the
/// operations view and the demo agents it runs (which post as the default tenant).
fn instance_wide(path: &str) -> bool {
    matches!(
        path,
        "/metrics" | "/api/demo" | "/api/health/redis" | "/api/ops/summary"
    )
}

/// The session a route's path names, for credentials narrowed to some sessions.
fn named_session(path: &str) -> Option<&str> {
    let rest = path
        .strip_prefix("/api/sessions/")
        .or_else(|| path.strip_prefix("/api/events/"))
        .or_else(|| path.strip_prefix("/api/commands/"))?;
    let id = rest.split('/').next().filter(|id| !id.is_empty())?;
    (id != "batch").then_some(id)
}

pub async fn middleware(State(access): State<Arc<Access>>, req: Request, next: Next) -> Response {
    if let Some(refused) = access.browser.refuse(req.uri().path(), req.headers()) {
        return refused.into_response();
    }
    if !access.credentials.required() {
        return next.run(req).await;
    }
    let Need::Role(role) = need(req.method(), req.uri().path(), req.uri().query()) else {
        return next.run(req).await;
    };
    let ws = req.uri().path() == "/ws";
    // A browser's WebSocket and `EventSource` cannot send a header.
    let in_query = ws || super::stream::is_stream(req.uri().path());
    let presented = bearer(&req).or_else(|| {
        in_query
            .then(|| query_token(req.uri().query().unwrap_or("")))
            .flatten()
    });
    let principal = match presented.map(|t| access.credentials.authenticate(&t)) {
        Some(Ok(p)) => p,
        // Refused credentials, and none, spend their address's budget (guessing keys is slow).
        refused => {
            if let Some(limiter) = &access.limiter {
                let client = limiter.client(&req);
                let tenant = crate::credentials::DEFAULT_TENANT;
                if let Some(limited) = limiter.check(tenant, "a:", &client).await {
                    return limited;
                }
            }
            match refused {
                Some(Err(refusal)) => return unauthorized(refusal.code, &refusal.message),
                // A WebSocket may send its credentials in its first message instead.
                _ if ws => return next.run(req).await,
                _ => {
                    return unauthorized(
                        "unauthorized",
                        "send Authorization: Bearer <key or token>",
                    )
                }
            }
        }
    };
    if let Some(refused) = refuse(&principal, role, req.uri().path(), ws) {
        return refused.into_response();
    }
    if let Some(limiter) = &access.limiter {
        if let Some(limited) = limiter
            .check(&principal.tenant, "k:", &principal.subject)
            .await
        {
            return limited;
        }
    }
    // Only the WebSocket, the SSE streams, `/api/whoami`, `/mcp` (whose tasks are the caller's) and the hooks (whose session's user it is) look at the
    // principal later; other requests are done with it here (an extension costs each request
    // an allocation). Another tenant's
    // requests carry that tenant, whose services [`super::tenant::Scoped`] hands out.
    let mut req = req;
    if scope_of(&principal.tenant).is_some() {
        let tenant = access.tenants.get(&principal.tenant);
        req.extensions_mut().insert(tenant);
    }
    let path = req.uri().path();
    if in_query
        || matches!(path, "/api/whoami" | "/mcp" | super::hooks::CLAUDE_CODE)
        || path.starts_with(super::permissions::PREFIX)
    {
        req.extensions_mut().insert(principal);
    }
    next.run(req).await
}

/// Whether `principal` may use a route of `path` that needs `role`.
fn refuse(principal: &Principal, role: Role, path: &str, ws: bool) -> Option<ApiError> {
    if !principal.allows(role) {
        return Some(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this route needs the {} role; the credentials have {}",
                role.as_str(),
                principal.role.as_str()
            ),
        ));
    }
    if instance_wide(path) && scope_of(&principal.tenant).is_some() {
        return Some(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this route is the instance's, for the default tenant's admin",
        ));
    }
    if principal.sessions.is_some() && !ws && path != "/api/whoami" {
        let reached = named_session(path).is_some_and(|id| principal.may_see(id));
        if !reached {
            return Some(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "these credentials reach only the sessions they name, on routes that name one",
            ));
        }
    }
    None
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

fn unauthorized(code: &'static str, message: &str) -> Response {
    let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, code, message).into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_need_roles() {
        let get = |p: &str, q: Option<&str>| need(&Method::GET, p, q);
        let post = |p: &str| need(&Method::POST, p, None);
        assert_eq!(get("/health", None), Need::Open);
        assert_eq!(get("/metrics", None), Need::Role(Role::Admin));
        assert_eq!(get("/api/sessions", None), Need::Role(Role::Viewer));
        assert_eq!(get("/api/sessions/s/input", None), Need::Role(Role::Agent));
        let peek = Some("consume=false&wait=1");
        assert_eq!(get("/api/sessions/s/input", peek), Need::Role(Role::Viewer));
        assert_eq!(
            get("/api/sessions/s/commands", None),
            Need::Role(Role::Viewer)
        );
        assert_eq!(
            get("/api/sessions/s/commands", Some("consume=1")),
            Need::Role(Role::Agent)
        );
        assert_eq!(
            get("/api/sessions/s/input", Some("consume=0")),
            Need::Role(Role::Viewer)
        );
        assert_eq!(
            get("/api/sessions/s/input", Some("consume=maybe")),
            Need::Role(Role::Agent)
        );
        let take = Some("wait=1&consume=true");
        assert_eq!(
            get("/api/sessions/s/commands", take),
            Need::Role(Role::Agent)
        );
        assert_eq!(
            get("/api/commands/s/commands", take),
            Need::Role(Role::Agent)
        );
        assert_eq!(post("/api/events"), Need::Role(Role::Agent));
        assert_eq!(post("/api/chains/cleanup"), Need::Role(Role::Admin));
        let delete = |p: &str| need(&Method::DELETE, p, None);
        assert_eq!(delete("/api/cache"), Need::Role(Role::Admin));
        assert_eq!(delete("/api/cache/k"), Need::Role(Role::Agent));
        assert_eq!(named_session("/api/sessions/s1/commands"), Some("s1"));
        assert_eq!(named_session("/api/events/s2/recent"), Some("s2"));
        assert_eq!(named_session("/api/events/batch"), None);
        assert_eq!(named_session("/api/sessions"), None);
        assert_eq!(query_token("a=1&token=k%20x"), Some("k x".into()));
        assert_eq!(query_token("a=1"), None);
    }
}
