//! The HTTP edge: the router, its middleware, and one module per resource. Handlers are thin:
//! parse, call a service or a store, map the result; every failure leaves as an [`ApiError`].

use std::any::Any;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use axum::{middleware, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, Any as AnyOrigin, CorsLayer};

use crate::app::AppState;
use error::ApiError;

pub mod auth;
pub mod browser;
pub mod cache;
pub mod chains;
pub mod compat;
pub mod control;
pub mod demo;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod hooks;
pub mod jobs;
pub mod locks;
pub mod mcp;
pub mod mcp_tasks;
pub mod mcp_tools;
pub mod openapi;
pub mod ops;
pub mod parse_errors;
pub mod permissions;
pub mod rate;
pub mod request_id;
pub mod serve;
pub mod sessions;
pub mod stream;
pub mod tenant;
pub mod upgrade;
pub mod usage;
pub mod user_context;
pub mod waits;
pub mod web;
pub mod whoami;
pub mod workflow;

/// Room a cache put's body needs beside its value (key, TTL, tags).
const CACHE_BODY_ROOM: usize = 64 * 1024;

/// The whole router: the API's routes and, beside them, the MCP endpoint, whose tools call
/// those routes (`mcp`), each behind the same middleware.
pub fn router(app: AppState) -> Router {
    let config = app.config().clone();
    let access = Arc::new(auth::Access {
        browser: browser::BrowserPolicy::new(
            config.auth.required(),
            config.host.is_loopback(),
            &config.allowed_hosts,
            &allowed_origins(&config),
        ),
        credentials: app.credentials().clone(),
        tenants: app.tenants().clone(),
        limiter: config.rate_limits.http().map(|gcra| {
            rate::Limiter::new(
                app.stores().rates.clone(),
                gcra,
                std::time::Duration::from_millis(config.rate_limits.rate_limit_wait_ms),
                app.metrics_arc().clone(),
                config.rate_limits.trusted_proxies.clone(),
            )
        }),
    });
    let api = edge(routes(&config).fallback(not_found), &app, &access);
    let endpoint = Router::new().route_service("/mcp", mcp::service(api.clone(), &app));
    api.merge(edge(endpoint, &app, &access))
}

/// The API's routes, without the middleware.
fn routes(config: &crate::config::Config) -> Router<AppState> {
    let cached = Router::new()
        .route("/api/cache", delete(cache::clear))
        .route("/api/cache/stats", get(cache::stats))
        .route("/api/cache/invalidate", post(cache::invalidate))
        .route(
            "/api/cache/{key}",
            get(cache::get).put(cache::put).delete(cache::delete),
        )
        .route("/api/cache/{key}/incr", post(cache::incr))
        .layer(DefaultBodyLimit::max(
            config.services.cache_max_value_bytes + CACHE_BODY_ROOM,
        ));
    let batch = Router::new()
        .route("/api/events/batch", post(events::post_batch))
        .layer(DefaultBodyLimit::max(config.events.max_batch_bytes));
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .route("/api/health/redis", get(health::redis))
        .route("/api/ops/summary", get(ops::summary))
        .route("/api/openapi.json", get(openapi::document))
        .route("/api/sessions", post(sessions::create).get(sessions::list))
        .route(
            "/api/sessions/{id}",
            get(sessions::get)
                .put(sessions::put)
                .patch(sessions::update)
                .delete(sessions::delete),
        )
        .route("/api/sessions/{id}/awaiting", post(sessions::awaiting))
        .route("/api/sessions/{id}/stream", get(stream::stream))
        .route("/api/sessions/{id}/extend", post(sessions::extend))
        .route(
            "/api/sessions/{id}/commands",
            post(control::create_command).get(control::list_commands),
        )
        .route(
            "/api/commands/{id}/commands",
            post(compat::command_create).get(compat::command_list),
        )
        .route("/api/commands/{command_id}/ack", post(control::ack_command))
        .route(
            "/api/sessions/{id}/commands/{command_id}/ack",
            post(control::ack_session_command),
        )
        .route(
            "/api/sessions/{id}/input",
            post(control::create_input).get(control::take_input),
        )
        .route(
            "/api/sessions/{id}/input/{input_id}/ack",
            post(control::ack_input),
        )
        .route(
            "/api/sessions/{id}/chains",
            post(chains::create).get(chains::of_session),
        )
        .route("/api/chains", get(chains::list))
        .route("/api/chains/stats", get(chains::stats))
        .route("/api/chains/cleanup", post(chains::cleanup))
        .route("/api/chains/{id}", get(chains::get).patch(chains::patch))
        .route("/api/events", post(events::post_one))
        .route("/api/hooks/claude-code", post(hooks::claude_code))
        .route("/api/events/{session_id}", get(events::read))
        .route("/api/events/{session_id}/recent", get(events::recent))
        .route("/ws", get(upgrade::websocket))
        .route("/api/permissions", get(permissions::list))
        .route("/api/permissions/{id}", get(permissions::get))
        .route("/api/permissions/{id}/decision", post(permissions::decide))
        .route(
            "/api/permission-rules",
            get(permissions::rules).put(permissions::set_rules),
        )
        .route("/api/usage", get(usage::get))
        .route("/api/whoami", get(whoami::whoami))
        .route(
            "/api/workflow-state/active/list",
            get(workflow::active_list),
        )
        .route(
            "/api/workflow-state/active/detailed",
            get(workflow::active_detailed),
        )
        .route("/api/workflow-state/stats/overview", get(workflow::stats))
        .route("/api/workflow-state/cleanup", post(workflow::cleanup))
        .route("/api/workflow-state/{id}", get(workflow::get))
        .route("/api/workflow-state/{id}/{action}", post(workflow::control))
        .route(
            "/api/context",
            get(user_context::get)
                .post(user_context::update)
                .delete(user_context::delete),
        )
        .route(
            "/api/locks/{name}",
            post(locks::acquire).get(locks::get).delete(locks::release),
        )
        .route("/api/locks/{name}/extend", post(locks::extend))
        .route("/api/queues/{queue}/jobs", post(jobs::enqueue))
        .route("/api/queues/{queue}/bulk", post(jobs::enqueue_bulk))
        .route("/api/queues/{queue}/claim", post(jobs::claim))
        .route("/api/queues/{queue}/stats", get(jobs::stats))
        .route("/api/queues/{queue}/dead", get(jobs::dead))
        .route(
            "/api/queues/{queue}/dead/{id}/retry",
            post(jobs::retry_dead),
        )
        .route("/api/queues/{queue}/jobs/{id}", get(jobs::get))
        .route(
            "/api/queues/{queue}/jobs/{id}/complete",
            post(jobs::complete),
        )
        .route("/api/queues/{queue}/jobs/{id}/fail", post(jobs::fail))
        .route("/api/queues/{queue}/jobs/{id}/extend", post(jobs::extend))
        .route("/api/terminal/{id}/output", post(compat::terminal_output))
        .route("/api/users", get(compat::users))
        .route("/api/users/{id}/sessions", get(compat::user_sessions))
        .route("/api/files/{*rest}", any(compat::files))
        .route("/api/history/{*rest}", any(compat::history_under))
        .route("/api/history", any(compat::history))
        .route(
            "/api/demo",
            get(demo::status).post(demo::start).delete(demo::stop),
        )
        .layer(DefaultBodyLimit::max(config.events.max_event_bytes))
        .merge(batch)
        .merge(cached)
        .merge(web::routes())
}

/// The middleware every route is behind, outermost last: CORS (with `AFW_CORS_ORIGINS`), the
/// request id, the panic guard, then who may call ([`auth`]).
fn edge(routes: Router<AppState>, app: &AppState, access: &Arc<auth::Access>) -> Router {
    let config = app.config();
    routes
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            Arc::clone(access),
            auth::middleware,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(
            app.clone(),
            request_id::middleware,
        ))
        .layer(tower::util::option_layer(cors(&allowed_origins(config))))
        .layer(tower::util::option_layer(
            (!allowed_origins(config).is_empty()).then(|| middleware::from_fn(preflight)),
        ))
        .with_state(app.clone())
}

/// A CORS preflight's answer is 204 No Content (the CORS layer answers 200 with no body).
/// Installed only with `AFW_CORS_ORIGINS`, so other deployments' requests do not pay for it.
async fn preflight(req: axum::extract::Request, next: middleware::Next) -> Response {
    let asks = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(axum::http::header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut resp = next.run(req).await;
    if asks && resp.status() == StatusCode::OK {
        *resp.status_mut() = StatusCode::NO_CONTENT;
    }
    resp
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error",
    )
    .into_response()
}

/// The dashboard origins of the ActionFlows project (Vite's dev server and preview), allowed
/// by CORS under `AFW_COMPAT=actionflows` when `AFW_CORS_ORIGINS` is not set.
pub const ACTIONFLOWS_ORIGINS: [&str; 4] = [
    "http://localhost:5173",
    "http://127.0.0.1:5173",
    "http://localhost:4173",
    "http://127.0.0.1:4173",
];

/// The origins CORS allows: `AFW_CORS_ORIGINS`, else those of the compatibility mode.
fn allowed_origins(config: &crate::config::Config) -> Vec<String> {
    match (&config.compat, config.cors_origins.is_empty()) {
        (Some(crate::config::Compat::Actionflows), true) => {
            ACTIONFLOWS_ORIGINS.iter().map(|o| o.to_string()).collect()
        }
        _ => config.cors_origins.clone(),
    }
}

/// CORS only when origins are configured; without them the gateway adds no CORS headers.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers(AnyOrigin)
            .expose_headers([
                HeaderName::from_static(request_id::REQUEST_ID),
                HeaderName::from_static("retry-after"),
                HeaderName::from_static("ratelimit-limit"),
                HeaderName::from_static("ratelimit-remaining"),
                HeaderName::from_static("ratelimit-reset"),
            ]),
    )
}
