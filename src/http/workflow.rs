//! The workflow-state routes of the workstation's workflow-state manager, as views of chains ([`crate::domain::workflow`]). Pause,
//! resume and cancel are commands to the execution's agent, as for any chain: the state
//! moves when the agent acknowledges, so the view never says paused while the work goes on.

use super::tenant::Scoped;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::chains::{page_args, CleanupBody};
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::domain::chain::Chain;
use crate::domain::chain_input::check_chain_id;
use crate::domain::control::NewCommand;
use crate::domain::workflow::{is_active, overview, state, summary};
use crate::domain::FieldProblem;
use crate::service::chains::Chains;
use crate::service::control::Control;
use crate::service::ServiceError;

async fn chain(chains: &Chains, id: &str) -> Result<crate::domain::chain::Chain, ApiError> {
    check_chain_id(id).map_err(|p| ApiError::validation(vec![p]))?;
    chains
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found("workflow execution"))
}

#[utoipa::path(get, path = "/api/workflow-state/{id}", tag = "chains", operation_id = "getWorkflow", params(("id" = String, Path, description = "The chain id")), responses((status = 200, description = "The chain as workflow state", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), super::openapi::Errors))]
pub async fn get(
    Scoped(chains): Scoped<Chains>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let c = chain(&chains, &id).await?;
    Ok(Json(json!({"success": true, "state": state(&c)})).into_response())
}

/// `?limit=&cursor=` of the active views: a page at a time (at most `limit`, and at most
/// `READ_MAX_BYTES` of chains read), with `nextCursor` while more remain.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ActiveQuery {
    limit: Option<usize>,
    cursor: Option<String>,
}

/// A page of the active executions, and where the next starts.
async fn active_page(
    chains: &Chains,
    q: ActiveQuery,
) -> Result<(Vec<Chain>, Option<String>), ApiError> {
    let mut problems = Vec::new();
    let (limit, cursor) = page_args(q.limit, q.cursor.as_deref(), &mut problems);
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let (page, next) = chains.page(true, None, cursor, limit).await?;
    let list = page.into_iter().filter(is_active).collect();
    Ok((list, next.map(|c| c.encode())))
}

#[utoipa::path(get, path = "/api/workflow-state/active/list", tag = "chains", operation_id = "activeWorkflows", params(ActiveQuery), responses((status = 200, description = "The active chains, briefly", body = Object), super::openapi::Errors))]
pub async fn active_list(
    Scoped(chains): Scoped<Chains>,
    ApiQuery(q): ApiQuery<ActiveQuery>,
) -> Result<Response, ApiError> {
    let (page, next) = active_page(&chains, q).await?;
    let ids: Vec<String> = page.into_iter().map(|c| c.id).collect();
    Ok(Json(
        json!({"success": true, "activeExecutions": ids, "count": ids.len(), "nextCursor": next}),
    )
    .into_response())
}

#[utoipa::path(get, path = "/api/workflow-state/active/detailed", tag = "chains", operation_id = "activeWorkflowsDetailed", params(ActiveQuery), responses((status = 200, description = "The active chains with their steps", body = Object), super::openapi::Errors))]
pub async fn active_detailed(
    Scoped(chains): Scoped<Chains>,
    ApiQuery(q): ApiQuery<ActiveQuery>,
) -> Result<Response, ApiError> {
    let (page, next) = active_page(&chains, q).await?;
    let list: Vec<_> = page.iter().map(summary).collect();
    Ok(
        Json(json!({"success": true, "workflows": list, "count": list.len(), "nextCursor": next}))
            .into_response(),
    )
}

/// From the store's counters by status: no chain is read.
#[utoipa::path(get, path = "/api/workflow-state/stats/overview", tag = "chains", operation_id = "workflowStats", responses((status = 200, description = "Counts by status", body = Object), super::openapi::Errors))]
pub async fn stats(Scoped(chains): Scoped<Chains>) -> Result<Response, ApiError> {
    let counts = chains.counts().await?;
    Ok(Json(json!({"success": true, "statistics": overview(&counts)})).into_response())
}

/// Fails stale executions, a batch at a time (`more` says whether to call again).
#[utoipa::path(post, path = "/api/workflow-state/cleanup", tag = "chains", operation_id = "cleanupWorkflows", request_body = super::chains::CleanupBody, responses((status = 200, description = "`{success, removed}`", body = Object), super::openapi::Errors))]
pub async fn cleanup(
    Scoped(chains): Scoped<Chains>,
    ApiJson(body): ApiJson<CleanupBody>,
) -> Result<Response, ApiError> {
    let stale = body.stale(chains.stale_after)?;
    let (cleaned, more) = chains.cleanup(stale).await?;
    Ok(Json(
        json!({"success": true, "message": "Cleanup completed", "cleaned": cleaned, "errors": 0, "more": more}),
    )
    .into_response())
}

/// `POST /api/workflow-state/:executionId/{pause,resume,cancel}`: queues the command for the
/// execution's agent (202).
#[utoipa::path(post, path = "/api/workflow-state/{id}/{action}", tag = "chains", operation_id = "controlWorkflow", params(("id" = String, Path, description = "The chain id"), ("action" = String, Path, description = "pause, resume, cancel, retry or skip")), responses((status = 200, description = "The command sent to the chain's session", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), super::openapi::Errors))]
pub async fn control(
    Scoped(chains): Scoped<Chains>,
    Scoped(control): Scoped<Control>,
    ApiPath((id, action)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    if !["pause", "resume", "cancel"].contains(&action.as_str()) {
        return Err(ApiError::not_found("workflow action"));
    }
    let c = chain(&chains, &id).await?;
    if !is_active(&c) {
        // The shared conflict answer: 409 with the field and why.
        return Err(ServiceError::Conflict(vec![FieldProblem::new(
            "executionId",
            format!(
                "is {}; only an active execution can be told to {action}",
                c.status
            ),
        )])
        .into());
    }
    let command = NewCommand {
        kind: Some(action.clone()),
        step_number: None,
        reason: None,
        payload: Some(json!({"chainId": id})),
    };
    let record = control.push_command(&c.session_id, command).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "success": true,
            "executionId": id,
            "commandId": record["commandId"],
            "message": format!("{action} was sent to the execution's agent; the state changes when it acknowledges"),
        })),
    )
        .into_response())
}
