//! Distributed locks over HTTP (docs/services.md#distributed-locks): grant (200 with `token` and `fencingToken`, or
//! 409 with the holder), extend and release by the holder's token only (409 otherwise), and
//! the lock as it stands. Tokens are never shown to anyone but the one granted them.

use super::tenant::Scoped;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::waits::Waiter;
use crate::domain::locks::{Acquire, ExtendRequest, LockHolder, LockRequest};
use crate::service::locks::Locks;
use crate::time::iso_ms;

fn shown(name: &str, h: &LockHolder) -> Value {
    json!({
        "name": name,
        "held": true,
        "owner": h.owner,
        "fencingToken": h.fencing_token,
        "expiresAt": iso_ms(h.expires_at_ms),
        "expiresAtMs": h.expires_at_ms,
    })
}

fn not_holder(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "not_holder",
        format!("this token does not hold lock {name} (wrong, released or expired); nothing was changed"),
    )
}

#[utoipa::path(post, path = "/api/locks/{name}", tag = "services", operation_id = "acquireLock", params(("name" = String, Path, description = "The lock name")), request_body = LockRequest, responses((status = 200, description = "`{acquired:true, token, fencingToken, expiresAt, ...}`", body = Object), (status = 409, description = "Held by another (`lock_held`)", body = Object), super::openapi::Errors))]
pub async fn acquire(
    Scoped(locks): Scoped<Locks>,
    waiter: Waiter,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<LockRequest>,
) -> Result<Response, ApiError> {
    let _slot = waiter.park(body.wait_ms.is_some_and(|w| w > 0))?;
    match locks.acquire(&name, body).await? {
        Acquire::Granted(h) => {
            let mut v = shown(&name, &h);
            v["acquired"] = true.into();
            v["token"] = h.token.into();
            Ok(Json(v).into_response())
        }
        Acquire::Held(h) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "lock_held",
            format!("lock {name} is held by {}", h.owner),
        )
        .with_fields(json!({
            "acquired": false,
            "owner": h.owner,
            "expiresAt": iso_ms(h.expires_at_ms),
            "expiresAtMs": h.expires_at_ms,
        }))),
    }
}

#[utoipa::path(post, path = "/api/locks/{name}/extend", tag = "services", operation_id = "extendLock", params(("name" = String, Path, description = "The lock name")), request_body = ExtendRequest, responses((status = 200, description = "The lock with its new expiry", body = Object), (status = 409, description = "Not the holder (`not_holder`)", body = Object), super::openapi::Errors))]
pub async fn extend(
    Scoped(locks): Scoped<Locks>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<ExtendRequest>,
) -> Result<Response, ApiError> {
    let h = locks
        .extend(&name, body)
        .await?
        .ok_or_else(|| not_holder(&name))?;
    let mut v = shown(&name, &h);
    v["extended"] = true.into();
    Ok(Json(v).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TokenQuery {
    token: Option<String>,
}

#[utoipa::path(delete, path = "/api/locks/{name}", tag = "services", operation_id = "releaseLock", params(("name" = String, Path, description = "The lock name"), TokenQuery), responses((status = 200, description = "`{name, released:true}`", body = Object), (status = 409, description = "Not the holder (`not_holder`)", body = Object), super::openapi::Errors))]
pub async fn release(
    Scoped(locks): Scoped<Locks>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<TokenQuery>,
) -> Result<Response, ApiError> {
    let token = q.token.unwrap_or_default();
    if !locks.release(&name, &token).await? {
        return Err(not_holder(&name));
    }
    Ok(Json(json!({"name": name, "released": true})).into_response())
}

#[utoipa::path(get, path = "/api/locks/{name}", tag = "services", operation_id = "getLock", params(("name" = String, Path, description = "The lock name")), responses((status = 200, description = "`{name, held, owner?, fencingToken, expiresAt?}`", body = Object), super::openapi::Errors))]
pub async fn get(
    Scoped(locks): Scoped<Locks>,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (holder, fence) = locks.get(&name).await?;
    Ok(match holder {
        Some(h) => Json(shown(&name, &h)).into_response(),
        None => Json(json!({"name": name, "held": false, "fencingToken": fence})).into_response(),
    })
}
