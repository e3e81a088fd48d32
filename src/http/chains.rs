//! Chains over HTTP (PROTOCOL §1, Chains). The state machine is [`crate::chains`]; these
//! handlers parse, call it, and map the result.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::extract::{session_path_id, ApiJson, ApiPath, ApiQuery};
use crate::app::AppState;
use crate::chains::{self, check_chain_id, Chain, ChainError, ChainPatch, NewChainBody};
use crate::error::ApiError;
use crate::store::ChainFilter;

impl From<ChainError> for ApiError {
    fn from(e: ChainError) -> Self {
        match e {
            ChainError::NotFound => ApiError::not_found("chain"),
            ChainError::Exists => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "a chain with this id exists",
            ),
            ChainError::Store(e) => e.into(),
        }
    }
}

fn chain_path_id(id: &str) -> Result<(), ApiError> {
    check_chain_id(id).map_err(|p| ApiError::validation(vec![p]))
}

pub async fn create(
    State(app): State<AppState>,
    ApiPath(session_id): ApiPath<String>,
    ApiJson(body): ApiJson<NewChainBody>,
) -> Result<Response, ApiError> {
    session_path_id(&session_id)?;
    let (id, spec) = body.check().map_err(ApiError::validation)?;
    super::sessions::require_session(&app, &session_id).await?;
    let id = id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let chain = Chain::new(id, session_id, spec, Utc::now());
    app.chains().create(&chain).await?;
    Ok((StatusCode::CREATED, Json(chain)).into_response())
}

pub async fn patch(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ChainPatch>,
) -> Result<Response, ApiError> {
    chain_path_id(&id)?;
    body.check().map_err(ApiError::validation)?;
    let chain = app
        .chains()
        .update(&id, |c, now| {
            body.apply(c, now);
            true
        })
        .await?;
    Ok(Json(chain).into_response())
}

pub async fn get(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    chain_path_id(&id)?;
    match app.chains().get(&id).await? {
        Some(c) => Ok(Json(c).into_response()),
        None => Err(ApiError::not_found("chain")),
    }
}

pub async fn of_session(
    State(app): State<AppState>,
    ApiPath(session_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    session_path_id(&session_id)?;
    let chains = app.chains().list(ChainFilter::Session(&session_id)).await?;
    Ok(
        Json(json!({"sessionId": session_id, "count": chains.len(), "chains": chains}))
            .into_response(),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
}

/// `?status=active` (pending, in_progress or paused), a single status, or every chain; most
/// recently updated first.
pub async fn list(
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let (filter, only) = match q.status.as_deref() {
        None => (ChainFilter::All, None),
        Some("active") => (ChainFilter::Active, None),
        Some(s) if chains::CHAIN_STATUSES.contains(&s) => (ChainFilter::All, Some(s)),
        Some(_) => {
            return Err(ApiError::validation(vec![crate::error::FieldProblem::new(
                "status",
                format!(
                    "must be active or one of {}",
                    chains::CHAIN_STATUSES.join(", ")
                ),
            )]))
        }
    };
    let mut chains = app.chains().list(filter).await?;
    if let Some(s) = only {
        chains.retain(|c| c.status == s);
    }
    chains.reverse();
    Ok(Json(json!({"count": chains.len(), "chains": chains})).into_response())
}

pub async fn stats(State(app): State<AppState>) -> Result<Response, ApiError> {
    let all = app.chains().list(ChainFilter::All).await?;
    Ok(Json(chains::stats(&all)).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CleanupBody {
    stale_secs: Option<u64>,
}

/// Fails active chains with no update for `staleSecs` (default `CHAIN_STALE_SECS`).
pub async fn cleanup(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<CleanupBody>,
) -> Result<Response, ApiError> {
    let stale =
        std::time::Duration::from_secs(body.stale_secs.unwrap_or(app.config().chain_stale_secs));
    let cleaned = app.chains().cleanup(stale).await?;
    Ok(Json(json!({"cleaned": cleaned})).into_response())
}

/// Applies chain and step events (already stored, each with its `eventId`). A failure is
/// logged and counted, not returned: the events are stored, and every chain change is
/// idempotent (a `chain:compiled` without `chainId` takes its `eventId` as the chain id), so
/// a retried post with the same `eventId` applies it again.
pub async fn apply_events(app: &AppState, events: &[(serde_json::Value, String)]) {
    for (event, event_id) in events {
        let Some((chain_id, what)) = chains::chain_event(event) else {
            continue;
        };
        let chain_id = match (&what, chain_id) {
            (chains::ChainEvent::Compiled(_), None) => Some(event_id.clone()),
            (_, id) => id,
        };
        let Some(session_id) = event["sessionId"].as_str() else {
            continue;
        };
        if let Err(e) = app.chains().apply_event(session_id, chain_id, what).await {
            app.metrics().chain_update_failures.inc();
            tracing::warn!(session = session_id, error = %e, "could not apply a chain event");
        }
    }
}

/// Whether an event body may move a chain (checked before the body is consumed).
pub fn is_chain_event(event: &serde_json::Value) -> bool {
    event["type"]
        .as_str()
        .is_some_and(|t| t.starts_with("chain:") || t.starts_with("step:"))
}
