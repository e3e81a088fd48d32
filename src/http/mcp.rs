//! `/mcp`: the Model Context Protocol's Streamable HTTP transport, served by the official Rust
//! SDK (`rmcp`) without sessions: any instance answers any request, and an instance keeps
//! nothing of a client between requests. The endpoint sits behind the same middleware as the
//! API (credentials in a bearer header, the browser rules on `Origin` and `Host`, rate
//! limits), and each tool ([`super::mcp_tools`]) is a call of an API route made in-process
//! with the caller's credentials: a tool can do exactly what its route lets those credentials
//! do, and answers what the route answers (a 4xx or 5xx as a tool error with the route's JSON
//! error). `ask_human` asks through the session's `awaiting` state and waits on its input
//! queue, so the dashboard's prompt box on any instance answers it.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{header, Request};
use axum::Router;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, GetTaskParams,
    GetTaskResult, Implementation, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
    ServerConfig, Tool, UpdateTaskParams,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{json, Map, Value};
use tokio::time::Instant;
use tower::ServiceExt;

use super::mcp_tasks::{self, Api};
use super::mcp_tools::{self, result, segment, Call, ASK_CALL_MAX_SECS, SESSION_HEADER};
use super::serve::Arrival;
use super::tenant::tenant_of;
use crate::app::AppState;
use crate::store::cache::CacheStore;

/// Headers of the MCP request that its tools' calls carry on.
const CARRIED: [&str; 5] = [
    "authorization",
    "host",
    "x-correlation-id",
    "x-forwarded-for",
    "x-forwarded-proto",
];
/// The longest answer of a route a tool reads.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;
/// One long poll of `ask_human` at most (milliseconds).
const ASK_POLL_MS: u128 = 25_000;

/// The tools, with the API they call.
#[derive(Clone)]
pub struct Tools {
    api: Router,
    app: AppState,
    list: Arc<Vec<Tool>>,
}

/// The `/mcp` service. `api` is the router its tools call.
pub fn service(api: Router, app: &AppState) -> StreamableHttpService<Tools, LocalSessionManager> {
    let list = mcp_tools::tools(app.config().control.mcp_task_max_secs)
        .into_iter()
        .map(|(name, description, schema)| {
            let Value::Object(schema) = schema else {
                unreachable!("every schema is an object")
            };
            Tool::new(name, description, Arc::new(schema))
        })
        .collect();
    let tools = Tools {
        api,
        app: app.clone(),
        list: Arc::new(list),
    };
    // Host and Origin are checked by the API's own rules (`browser`), before this.
    let mut config = StreamableHttpServerConfig::default().disable_allowed_hosts();
    config.legacy_session_mode = false;
    config.cancellation_token = app.shutdown_token().child_token();
    config.max_request_body_bytes = app.config().events.max_event_bytes + 64 * 1024;
    StreamableHttpService::new(
        move || Ok(tools.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}

impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tasks()
                .build(),
        )
        .with_instructions(
            "Report what you do with `report` and `report_step`; ask the person watching \
                 with `ask_human`; between steps take commands with `next_command` and \
                 acknowledge each with `ack_command`.",
        );
        info.server_info = Implementation::new("afw-gateway", env!("CARGO_PKG_VERSION"));
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.list.to_vec()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let parts = parts_of(&context)?;
        let args = request.arguments.clone().unwrap_or_default();
        let session = parts
            .headers
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok());
        let invalid = |m: String| McpError::invalid_params(m, None);
        if request.name == "ask_human" {
            let max = self.app.config().control.mcp_task_max_secs;
            let asked = mcp_tools::ask(&args, session, max).map_err(invalid)?;
            if let Some(refused) = self.put_question(parts, &asked.0, &asked.1).await {
                return Ok(refused.into());
            }
            if context
                .client_capabilities()
                .is_some_and(|c| c.supports_tasks())
            {
                return mcp_tasks::create(self, parts, asked).await;
            }
            let answer = tokio::select! {
                r = self.wait_for_answer(parts, asked) => r,
                _ = context.ct.cancelled() => return Err(McpError::internal_error("cancelled", None)),
            };
            return Ok(answer.into());
        }
        let call = mcp_tools::call(&request.name, &args, session).map_err(invalid)?;
        let (status, body) = self.dispatch(parts, call).await;
        Ok(result(status, body).into())
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        mcp_tasks::get(self, parts_of(&context)?, &request.task_id).await
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let parts = parts_of(&context)?;
        mcp_tasks::update(self, parts, &request.task_id, request.input_responses).await
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        mcp_tasks::cancel(self, parts_of(&context)?, &request.task_id).await
    }
}

fn parts_of(context: &RequestContext<RoleServer>) -> Result<&Parts, McpError> {
    context
        .extensions
        .get::<Parts>()
        .ok_or_else(|| McpError::internal_error("the HTTP request is missing", None))
}

impl Api for Tools {
    async fn call(&self, parts: &Parts, call: Call) -> (u16, Value) {
        self.dispatch(parts, call).await
    }

    fn records(&self, parts: &Parts) -> Arc<dyn CacheStore> {
        let services = match tenant_of(parts) {
            Some(t) => &t.services,
            None => self.app.services(),
        };
        services.cache.store.clone()
    }

    fn keep_ms(&self) -> u64 {
        self.app.config().control.mcp_task_keep_secs * 1000
    }
}

impl Tools {
    /// Calls a route as the MCP request's caller.
    async fn dispatch(&self, parts: &Parts, call: Call) -> (u16, Value) {
        let mut req = Request::builder().method(call.method).uri(&call.path);
        for name in CARRIED {
            if let Some(v) = parts.headers.get(name) {
                req = req.header(name, v);
            }
        }
        let body = match call.body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let Ok(mut req) = req.body(body) else {
            return (
                400,
                json!({"error": "invalid_path", "message": "a tool argument does not fit the route"}),
            );
        };
        if let Some(a) = parts.extensions.get::<Arrival>() {
            req.extensions_mut().insert(Arrival {
                body_deadline: Instant::now() + Duration::from_secs(10),
                peer: a.peer,
            });
        }
        let Ok(resp) = self.api.clone().oneshot(req).await;
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), MAX_ANSWER_BYTES)
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        (status, body)
    }

    /// Puts the question to the session (made if new); the route's error as a tool result if
    /// it refused.
    async fn put_question(
        &self,
        parts: &Parts,
        session: &str,
        question: &Value,
    ) -> Option<CallToolResult> {
        let post = |path: String, body: Value| Call {
            method: "POST",
            path,
            body: Some(body),
        };
        let (s, v) = self
            .dispatch(parts, post("/api/sessions".into(), json!({"id": session})))
            .await;
        if s >= 400 && s != 409 {
            return Some(result(s, v));
        }
        let sid = segment(session);
        let path = format!("/api/sessions/{sid}/awaiting");
        let (s, v) = self.dispatch(parts, post(path, question.clone())).await;
        (s >= 400).then(|| result(s, v))
    }

    /// Waits for the session's input, [`ASK_CALL_MAX_SECS`] at most.
    async fn wait_for_answer(
        &self,
        parts: &Parts,
        (session, _, secs): (String, Value, u64),
    ) -> CallToolResult {
        let sid = segment(&session);
        let deadline = Instant::now() + Duration::from_secs(secs.min(ASK_CALL_MAX_SECS));
        loop {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_millis();
            if left == 0 {
                return result(200, json!({"answered": false, "sessionId": session}));
            }
            let poll = Call {
                method: "GET",
                path: format!(
                    "/api/sessions/{sid}/input?timeout={}",
                    left.min(ASK_POLL_MS)
                ),
                body: None,
            };
            let (s, v) = self.dispatch(parts, poll).await;
            if s >= 400 {
                return result(s, v);
            }
            if v["count"].as_u64().unwrap_or(0) > 0 {
                let mut answer = Map::new();
                answer.insert("answered".into(), true.into());
                answer.insert("sessionId".into(), session.clone().into());
                answer.insert("input".into(), v["input"].clone());
                answer.insert("inputs".into(), v["inputs"].clone());
                return result(200, Value::Object(answer));
            }
        }
    }
}
