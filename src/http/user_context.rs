//! User context over HTTP (the Redis context service's routes): read (the defaults until a write), change
//! atomically, clear.

use super::tenant::Scoped;

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use crate::domain::user_context::ContextUpdate;
use crate::service::user_context::UserContexts;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WhoQuery {
    user_id: Option<String>,
    tenant_id: Option<String>,
}

#[utoipa::path(get, path = "/api/context", tag = "services", operation_id = "getUserContext", params(WhoQuery), responses((status = 200, description = "The user's context", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), super::openapi::Errors))]
pub async fn get(
    Scoped(c): Scoped<UserContexts>,
    ApiQuery(q): ApiQuery<WhoQuery>,
) -> Result<Response, ApiError> {
    let ctx = c.get(q.user_id.as_deref(), q.tenant_id.as_deref()).await?;
    Ok(Json(json!({"success": true, "context": ctx.render()})).into_response())
}

#[utoipa::path(post, path = "/api/context", tag = "services", operation_id = "updateUserContext", request_body = ContextUpdate, responses((status = 200, description = "The context as it now stands", body = Object), super::openapi::Errors))]
pub async fn update(
    Scoped(c): Scoped<UserContexts>,
    ApiJson(body): ApiJson<ContextUpdate>,
) -> Result<Response, ApiError> {
    let ctx = c.update(body).await?;
    Ok(Json(json!({"success": true, "context": ctx.render()})).into_response())
}

#[utoipa::path(delete, path = "/api/context", tag = "services", operation_id = "deleteUserContext", params(WhoQuery), responses((status = 200, description = "`{success, deleted}`", body = Object), super::openapi::Errors))]
pub async fn delete(
    Scoped(c): Scoped<UserContexts>,
    ApiQuery(q): ApiQuery<WhoQuery>,
) -> Result<Response, ApiError> {
    let deleted = c
        .delete(q.user_id.as_deref(), q.tenant_id.as_deref())
        .await?;
    Ok(Json(json!({"success": true, "deleted": deleted})).into_response())
}
