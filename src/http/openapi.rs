//! `GET /api/openapi.json`: the HTTP API as an OpenAPI 3.1 document, made by `utoipa` from the
//! handlers' own annotations and their body and query types (the same structs the handlers
//! parse), so it says what the code does. `tests/openapi.rs` checks the document with a
//! validator from PyPI and that its operations are exactly the router's routes, so a route
//! without its documentation fails the build's tests.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::{IntoResponses, OpenApi, ToSchema};

use super::*;

/// Every error's body: a stable code, a sentence, the request's id, and for some codes more.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// A stable code (`invalid`, `not_found`, `unauthorized`, `forbidden`, `too_large`,
    /// `rate_limited`, `store_unavailable`, …).
    error: String,
    /// What went wrong, for people.
    message: String,
    /// The request's `x-request-id`.
    request_id: String,
    /// For `invalid`: each field and its problem; for conflicts, what conflicted.
    #[schema(value_type = Option<Object>)]
    details: Option<serde_json::Value>,
}

/// The answers any route may give besides its own (each with an [`ErrorBody`]).
#[derive(IntoResponses)]
#[allow(dead_code)] // a description of answers, never built
pub enum Errors {
    /// The input is not what the route takes (`details` lists each field's problem).
    #[response(status = 400)]
    Invalid(#[to_schema] ErrorBody),
    /// No credentials, or ones the gateway does not accept (when credentials are configured).
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The credentials' role, tenant or sessions do not reach this, or a browser's cross-site
    /// request.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// Over a rate limit (`Retry-After` says when to come back) or a quota.
    #[response(status = 429)]
    Limited(ErrorBody),
    /// The store did not answer; nothing was written (`Retry-After: 1`).
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "afw-gateway",
        description = "The HTTP API of afw-gateway, a real-time event gateway for agents: \
            sessions and their ordered event streams, commands and input, chains, and the \
            services beside them (locks, job queues, cache, user context, usage). The \
            WebSocket protocol on `/ws` and the MCP endpoint on `/mcp` are described in \
            docs/protocol.md and docs/agents.md."
    ),
    paths(
        health::health, health::ready, health::metrics, health::redis, ops::summary,
        document,
        sessions::create, sessions::list, sessions::get, sessions::update, sessions::put,
        sessions::delete,
        sessions::awaiting, sessions::extend, stream::stream,
        control::create_command, control::list_commands, control::ack_command,
        control::ack_session_command, control::create_input, control::take_input,
        control::ack_input, compat::command_create, compat::command_list,
        chains::create, chains::of_session, chains::list, chains::stats, chains::cleanup,
        chains::get, chains::patch,
        events::post_one, events::post_batch, events::read, events::recent,
        hooks::claude_code, upgrade::websocket,
        permissions::list, permissions::get, permissions::decide, permissions::rules,
        permissions::set_rules, usage::get, whoami::whoami,
        workflow::active_list, workflow::active_detailed, workflow::stats, workflow::cleanup,
        workflow::get, workflow::control,
        user_context::get, user_context::update, user_context::delete,
        locks::acquire, locks::get, locks::release, locks::extend,
        jobs::enqueue, jobs::enqueue_bulk, jobs::claim, jobs::stats, jobs::dead,
        jobs::retry_dead, jobs::get, jobs::complete, jobs::fail, jobs::extend,
        cache::clear, cache::stats, cache::invalidate, cache::get, cache::put, cache::delete,
        cache::incr,
        compat::terminal_output, compat::users, compat::user_sessions, compat::files,
        compat::history_under, compat::history,
        demo::status, demo::start, demo::stop,
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "operations", description = "Health, readiness, metrics, Redis, the operations view"),
        (name = "sessions", description = "Sessions and their live streams"),
        (name = "events", description = "Posting and reading a session's events"),
        (name = "control", description = "Commands to an agent and input from people"),
        (name = "chains", description = "Chains of steps and the workflow view of them"),
        (name = "agents", description = "Claude Code's hooks and permission requests"),
        (name = "services", description = "Locks, job queues, cache, user context, usage"),
        (name = "compat", description = "What the ActionFlows clients call"),
    )
)]
pub struct ApiDoc;

static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_json()
        .expect("the document serializes")
});

/// This document: the HTTP API in OpenAPI 3.1.
#[utoipa::path(get, path = "/api/openapi.json", tag = "operations", operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"), Errors))]
pub async fn document() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
        .into_response()
}
