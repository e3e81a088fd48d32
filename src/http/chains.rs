//! Chains over HTTP (docs/protocol.md#chain-and-step-events). The state machine is [`crate::domain::chain`]
//! and the compare-and-set loop [`crate::service::chains`]; these handlers parse, call them,
//! and map the result.

use super::tenant::Scoped;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::extract::{session_path_id, ApiJson, ApiPath, ApiQuery};
use crate::domain::chain::{self, Chain, CHAIN_STATUSES};
use crate::domain::chain_input::{check_chain_id, ChainPatch, NewChainBody};
use crate::domain::event::check_limit;
use crate::domain::FieldProblem;
use crate::service::chains::Chains;
use crate::service::sessions::Sessions;
use crate::store::Cursor;

/// Chains per listing page unless `limit` says otherwise.
const DEFAULT_LIST_LIMIT: usize = 100;

/// Longest stale limit a cleanup may name: ten years.
const MAX_STALE_SECS: u64 = 10 * 365 * 24 * 3600;

fn chain_path_id(id: &str) -> Result<(), ApiError> {
    check_chain_id(id).map_err(|p| ApiError::validation(vec![p]))
}

#[utoipa::path(post, path = "/api/sessions/{id}/chains", tag = "chains", operation_id = "createChain", params(("id" = String, Path, description = "The session id")), request_body = NewChainBody, responses((status = 201, description = "The Chain", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), (status = 409, description = "A chain with this id exists", body = Object), super::openapi::Errors))]
pub async fn create(
    Scoped(chains): Scoped<Chains>,
    Scoped(sessions): Scoped<Sessions>,
    ApiPath(session_id): ApiPath<String>,
    ApiJson(body): ApiJson<NewChainBody>,
) -> Result<Response, ApiError> {
    session_path_id(&session_id)?;
    let (id, spec) = body.check().map_err(ApiError::validation)?;
    sessions.require(&session_id).await?;
    let id = id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let mut chain = Chain::new(id, session_id, spec, Utc::now());
    chains.create(&mut chain).await?;
    Ok((StatusCode::CREATED, Json(chain)).into_response())
}

#[utoipa::path(patch, path = "/api/chains/{id}", tag = "chains", operation_id = "updateChain", params(("id" = String, Path, description = "The chain id")), request_body = ChainPatch, responses((status = 200, description = "The Chain as it now stands", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), (status = 409, description = "`ifVersion` did not match", body = Object), super::openapi::Errors))]
pub async fn patch(
    Scoped(chains): Scoped<Chains>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ChainPatch>,
) -> Result<Response, ApiError> {
    chain_path_id(&id)?;
    body.check().map_err(ApiError::validation)?;
    let chain = chains
        .update(&id, |c, now| {
            body.apply(c, now);
            true
        })
        .await?;
    Ok(Json(chain).into_response())
}

#[utoipa::path(get, path = "/api/chains/{id}", tag = "chains", operation_id = "getChain", params(("id" = String, Path, description = "The chain id")), responses((status = 200, description = "The Chain", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), super::openapi::Errors))]
pub async fn get(
    Scoped(chains): Scoped<Chains>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    chain_path_id(&id)?;
    match chains.get(&id).await? {
        Some(c) => Ok(Json(c).into_response()),
        None => Err(ApiError::not_found("chain")),
    }
}

#[utoipa::path(get, path = "/api/sessions/{id}/chains", tag = "chains", operation_id = "sessionChains", params(("id" = String, Path, description = "The session id")), responses((status = 200, description = "`{sessionId, count, chains}` in creation order", body = Object), super::openapi::Errors))]
pub async fn of_session(
    Scoped(chains): Scoped<Chains>,
    ApiPath(session_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    session_path_id(&session_id)?;
    let list = chains.of_session(&session_id).await?;
    Ok(Json(json!({"sessionId": session_id, "count": list.len(), "chains": list})).into_response())
}

/// A page's `limit` (default 100) and `cursor`, checked.
pub fn page_args(
    limit: Option<usize>,
    cursor: Option<&str>,
    problems: &mut Vec<FieldProblem>,
) -> (usize, Option<Cursor>) {
    let limit = limit.unwrap_or(DEFAULT_LIST_LIMIT);
    problems.extend(check_limit(limit).err());
    let cursor = match cursor.map(Cursor::decode) {
        None => None,
        Some(Some(c)) => Some(c),
        Some(None) => {
            problems.push(FieldProblem::new(
                "cursor",
                "is not a cursor this listing gave",
            ));
            None
        }
    };
    (limit, cursor)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// `?status=active` (pending, in_progress or paused), a single status, or every chain; most
/// recently updated first, `limit` at a time (default 100), with `nextCursor` to go on.
#[utoipa::path(get, path = "/api/chains", tag = "chains", operation_id = "listChains", params(ListQuery), responses((status = 200, description = "`{count, chains, nextCursor}`, most recently updated first", body = Object), super::openapi::Errors))]
pub async fn list(
    Scoped(chains): Scoped<Chains>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let mut problems = Vec::new();
    let (active, only) = match q.status.as_deref() {
        None => (false, None),
        Some("active") => (true, None),
        Some(s) if CHAIN_STATUSES.contains(&s) => (false, Some(s)),
        Some(_) => {
            problems.push(FieldProblem::new(
                "status",
                format!("must be active or one of {}", CHAIN_STATUSES.join(", ")),
            ));
            (false, None)
        }
    };
    let (limit, cursor) = page_args(q.limit, q.cursor.as_deref(), &mut problems);
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let (list, next) = chains.page(active, only, cursor, limit).await?;
    Ok(Json(json!({
        "count": list.len(),
        "chains": list,
        "nextCursor": next.map(|c| c.encode()),
    }))
    .into_response())
}

/// From the store's counters by status: no chain is read.
#[utoipa::path(get, path = "/api/chains/stats", tag = "chains", operation_id = "chainStats", responses((status = 200, description = "`{total, active, byStatus, averageProgress}`", body = Object), super::openapi::Errors))]
pub async fn stats(Scoped(chains): Scoped<Chains>) -> Result<Response, ApiError> {
    Ok(Json(chain::stats(&chains.counts().await?)).into_response())
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CleanupBody {
    stale_secs: Option<u64>,
}

impl CleanupBody {
    /// How long without an update makes an active chain stale (`default` unless given).
    pub fn stale(&self, default: std::time::Duration) -> Result<std::time::Duration, ApiError> {
        match self.stale_secs {
            Some(s) if s == 0 || s > MAX_STALE_SECS => {
                Err(ApiError::validation(vec![FieldProblem::new(
                    "staleSecs",
                    format!("must be 1-{MAX_STALE_SECS} seconds"),
                )]))
            }
            Some(s) => Ok(std::time::Duration::from_secs(s)),
            None => Ok(default),
        }
    }
}

/// Fails active chains with no update for `staleSecs` (default `CHAIN_STALE_SECS`).
#[utoipa::path(post, path = "/api/chains/cleanup", tag = "chains", operation_id = "cleanupChains", request_body = CleanupBody, responses((status = 200, description = "`{success, removed}`: stale active chains marked failed", body = Object), super::openapi::Errors))]
pub async fn cleanup(
    Scoped(chains): Scoped<Chains>,
    ApiJson(body): ApiJson<CleanupBody>,
) -> Result<Response, ApiError> {
    let stale = body.stale(chains.stale_after)?;
    let (cleaned, more) = chains.cleanup(stale).await?;
    Ok(Json(json!({"cleaned": cleaned, "more": more})).into_response())
}
