//! Usage totals over HTTP: `GET /api/usage?period=day|month&date=&tenantId=&userId=&sessionId=`.

use super::tenant::Scoped;

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::ApiQuery;
use crate::service::usage::Usage;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UsageParams {
    period: Option<String>,
    date: Option<String>,
    tenant_id: Option<String>,
    user_id: Option<String>,
    session_id: Option<String>,
}

#[utoipa::path(get, path = "/api/usage", tag = "services", operation_id = "usage", params(UsageParams), responses((status = 200, description = "Token and cost totals of the period, for the tenant, a user or a session", body = Object), super::openapi::Errors))]
pub async fn get(
    Scoped(usage): Scoped<Usage>,
    ApiQuery(q): ApiQuery<UsageParams>,
) -> Result<Response, ApiError> {
    let query = usage.query(
        q.period.as_deref(),
        q.date.as_deref(),
        q.tenant_id.as_deref(),
        q.user_id.as_deref(),
        q.session_id.as_deref(),
    )?;
    let totals = usage.totals(&query).await?;
    let mut v = totals.render();
    v["period"] = q.period.unwrap_or_else(|| "day".into()).into();
    v["date"] = query.date.into();
    v["tenantId"] = query.tenant.into();
    if let Some(u) = q.user_id {
        v["userId"] = u.into();
    }
    if let Some(s) = q.session_id {
        v["sessionId"] = s.into();
    }
    Ok(Json(v).into_response())
}
