//! Permission prompts over HTTP (docs/permissions.md): the requests that wait (`GET
//! /api/permissions?status=pending`), one of them, deciding one (`POST
//! /api/permissions/:id/decision`: 200 for the decision that settled it, 409 with the request
//! as it was settled for any after), and the rules (`GET`, and `PUT` for an admin). The decider
//! is the credentials' user, never a field of the body.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery, JsonBody};
use super::tenant::Scoped;
use crate::app::AppState;
use crate::credentials::Principal;
use crate::domain::permissions::{Decision, Status};
use crate::service::permissions::Permissions;

/// The path every permission route starts with (the auth middleware hands these the
/// principal: the decider).
pub const PREFIX: &str = "/api/permissions";
/// Requests one listing shows at most.
pub const MAX_LIST: usize = 1000;
/// Longest request id a path may name.
const MAX_ID_CHARS: usize = 100;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/permissions", tag = "agents", operation_id = "listPermissions", params(ListQuery), responses((status = 200, description = "`{count, permissions}`, newest first", body = Object), super::openapi::Errors))]
pub async fn list(
    Scoped(permissions): Scoped<Permissions>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = match q.status.as_deref() {
        None | Some("") | Some("any") => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "status: must be pending, allowed, denied, expired, abandoned or any",
            )
        })?),
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIST).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("limit: must be between 1 and {MAX_LIST}"),
        ));
    }
    let found = permissions.list(status, limit).await?;
    Ok(Json(json!({ "permissions": found })))
}

fn check_id(id: &str) -> Result<(), ApiError> {
    crate::domain::check_id("id", id, MAX_ID_CHARS).map_err(|p| ApiError::validation(vec![p]))
}

#[utoipa::path(get, path = "/api/permissions/{id}", tag = "agents", operation_id = "getPermission", params(("id" = String, Path, description = "The request id")), responses((status = 200, description = "The permission request", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), super::openapi::Errors))]
pub async fn get(
    Scoped(permissions): Scoped<Permissions>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    check_id(&id)?;
    Ok(Json(permissions.get(&id).await?))
}

#[utoipa::path(post, path = "/api/permissions/{id}/decision", tag = "agents", operation_id = "decidePermission", params(("id" = String, Path, description = "The request id")), request_body(content = Object, description = "`{behavior:\"allow\"|\"deny\", message?, updatedInput?}`"), responses((status = 200, description = "The request, settled by this decision", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), (status = 409, description = "Settled already (`already_decided`, with who won)", body = Object), super::openapi::Errors))]
pub async fn decide(
    State(app): State<AppState>,
    Scoped(permissions): Scoped<Permissions>,
    principal: Option<Extension<Arc<Principal>>>,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    check_id(&id)?;
    let body: Value = super::extract::parse_json(&body)?;
    let decision = Decision::parse(&body).map_err(ApiError::validation)?;
    let decider = decider(principal.as_deref().map(|p| &**p));
    let (request, won) = permissions
        .decide(&id, decision, &decider, app.instance_id())
        .await?;
    if won {
        return Ok(Json(request).into_response());
    }
    let status = request["status"].as_str().unwrap_or_default().to_string();
    let by = request["decision"]["decidedBy"]
        .as_str()
        .unwrap_or("its deadline");
    let message = match status.as_str() {
        "expired" => "nobody decided it in time: the request expired".to_string(),
        "abandoned" => "its agent stopped waiting: the request was abandoned".to_string(),
        _ => format!("the request was {status} first, by {by}; nothing was changed"),
    };
    Err(
        ApiError::new(StatusCode::CONFLICT, "already_settled", message)
            .with_fields(json!({ "permission": request })),
    )
}

/// Who decides: the credentials' user, or `anonymous` on a gateway without credentials
/// (which answers only loopback and allowed hosts).
pub fn decider(principal: Option<&Principal>) -> String {
    principal.map_or_else(|| "anonymous".to_string(), |p| p.subject.to_string())
}

#[utoipa::path(get, path = "/api/permission-rules", tag = "agents", operation_id = "permissionRules", responses((status = 200, description = "The rules as last set", body = Object), super::openapi::Errors))]
pub async fn rules(Scoped(permissions): Scoped<Permissions>) -> Result<Json<Value>, ApiError> {
    let rules = permissions.rules().await?;
    Ok(Json(crate::domain::permission_rules::rules_json(&rules)))
}

#[utoipa::path(put, path = "/api/permission-rules", tag = "agents", operation_id = "setPermissionRules", request_body(content = Object, description = "`{rules:[{tool, match?, behavior}]}`"), responses((status = 200, description = "The rules, stored", body = Object), super::openapi::Errors))]
pub async fn set_rules(
    Scoped(permissions): Scoped<Permissions>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let body: Value = super::extract::parse_json(&body)?;
    Ok(Json(permissions.set_rules(&body).await?))
}
