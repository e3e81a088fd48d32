//! Distributed locks over HTTP (PROTOCOL §1): grant (200 with `token` and `fencingToken`, or
//! 409 with the holder), extend and release by the holder's token only (409 otherwise), and
//! the lock as it stands. Tokens are never shown to anyone but the one granted them.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
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

fn not_holder(name: &str) -> Response {
    (
        StatusCode::CONFLICT,
        Json(json!({
            "error": "not_holder",
            "message": format!("this token does not hold lock {name} (wrong, released or expired); nothing was changed"),
        })),
    )
        .into_response()
}

pub async fn acquire(
    State(locks): State<Arc<Locks>>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<LockRequest>,
) -> Result<Response, ApiError> {
    Ok(match locks.acquire(&name, body).await? {
        Acquire::Granted(h) => {
            let mut v = shown(&name, &h);
            v["acquired"] = true.into();
            v["token"] = h.token.into();
            Json(v).into_response()
        }
        Acquire::Held(h) => (
            StatusCode::CONFLICT,
            Json(json!({
                "acquired": false,
                "error": "lock_held",
                "message": format!("lock {name} is held by {}", h.owner),
                "owner": h.owner,
                "expiresAt": iso_ms(h.expires_at_ms),
                "expiresAtMs": h.expires_at_ms,
            })),
        )
            .into_response(),
    })
}

pub async fn extend(
    State(locks): State<Arc<Locks>>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<ExtendRequest>,
) -> Result<Response, ApiError> {
    Ok(match locks.extend(&name, body).await? {
        Some(h) => {
            let mut v = shown(&name, &h);
            v["extended"] = true.into();
            Json(v).into_response()
        }
        None => not_holder(&name),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenQuery {
    token: Option<String>,
}

pub async fn release(
    State(locks): State<Arc<Locks>>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<TokenQuery>,
) -> Result<Response, ApiError> {
    let token = q.token.unwrap_or_default();
    Ok(if locks.release(&name, &token).await? {
        Json(json!({"name": name, "released": true})).into_response()
    } else {
        not_holder(&name)
    })
}

pub async fn get(
    State(locks): State<Arc<Locks>>,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (holder, fence) = locks.get(&name).await?;
    Ok(match holder {
        Some(h) => Json(shown(&name, &h)).into_response(),
        None => Json(json!({"name": name, "held": false, "fencingToken": fence})).into_response(),
    })
}
