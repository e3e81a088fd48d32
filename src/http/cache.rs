//! The cache over HTTP (docs/services.md#cache-with-tags): entries by key in a namespace (`?namespace=`, default
//! `default`; the Python backend's workspace), tag invalidation, atomic increments, compare-and-set by
//! `ifVersion`, stats shared by every instance, and clearing a namespace.

use super::tenant::Scoped;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, value::RawValue, Value};

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::domain::cache::{
    CacheEntry, Incr, IncrBody, InvalidateBody, Put, PutBody, DEFAULT_NAMESPACE,
};
use crate::service::cache::Cache;
use crate::time::{iso_ms, now_ms};

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NamespaceQuery {
    namespace: Option<String>,
}

impl NamespaceQuery {
    fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
    }
}

/// An entry as answered: its value exactly as it was stored, byte for byte.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Shown<'a> {
    namespace: &'a str,
    key: &'a str,
    value: &'a RawValue,
    version: u64,
    tags: &'a [String],
    expires_at: Value,
    ttl_seconds: u64,
}

fn shown(ns: &str, key: &str, e: &CacheEntry) -> Result<Response, ApiError> {
    let value: &RawValue = serde_json::from_str(&e.value)
        .map_err(|_| ApiError::from(crate::store::StoreError::Corrupt("cached value".into())))?;
    Ok(Json(Shown {
        namespace: ns,
        key,
        value,
        version: e.version,
        tags: &e.tags,
        expires_at: iso_ms(e.expires_at_ms),
        ttl_seconds: ((e.expires_at_ms - now_ms()).max(0) as f64 / 1000.0).ceil() as u64,
    })
    .into_response())
}

#[utoipa::path(get, path = "/api/cache/{key}", tag = "services", operation_id = "getCached", params(("key" = String, Path, description = "The cache key"), NamespaceQuery), responses((status = 200, description = "`{namespace, key, value, version, tags, expiresAt, ttlSeconds}`", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), super::openapi::Errors))]
pub async fn get(
    Scoped(cache): Scoped<Cache>,
    ApiPath(key): ApiPath<String>,
    ApiQuery(q): ApiQuery<NamespaceQuery>,
) -> Result<Response, ApiError> {
    match cache.get(q.ns(), &key).await? {
        Some(e) => shown(q.ns(), &key, &e),
        None => Err(ApiError::not_found("cache entry")),
    }
}

#[utoipa::path(put, path = "/api/cache/{key}", tag = "services", operation_id = "putCached", params(("key" = String, Path, description = "The cache key"), NamespaceQuery), request_body = PutBody, responses((status = 200, description = "`{success, namespace, key, version, tags, expiresAt}`", body = Object), (status = 409, description = "`ifVersion` did not match (`version_mismatch`)", body = Object), (status = 413, description = "Past `CACHE_MAX_VALUE_BYTES`", body = Object), super::openapi::Errors))]
pub async fn put(
    Scoped(cache): Scoped<Cache>,
    ApiPath(key): ApiPath<String>,
    ApiQuery(q): ApiQuery<NamespaceQuery>,
    ApiJson(body): ApiJson<PutBody>,
) -> Result<Response, ApiError> {
    Ok(match cache.put(q.ns(), &key, body).await? {
        (
            Put::Stored {
                version,
                expires_at_ms,
            },
            tags,
        ) => Json(json!({
            "success": true, "namespace": q.ns(), "key": key, "version": version,
            "tags": tags, "expiresAt": iso_ms(expires_at_ms),
        }))
        .into_response(),
        (Put::VersionMismatch(current), _) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "version_mismatch",
                format!(
                "the entry is at version {current}, not the ifVersion given; nothing was changed"
            ),
            )
            .with_fields(json!({"currentVersion": current})))
        }
    })
}

#[utoipa::path(delete, path = "/api/cache/{key}", tag = "services", operation_id = "deleteCached", params(("key" = String, Path, description = "The cache key"), NamespaceQuery), responses((status = 200, description = "`{namespace, key, deleted}`", body = Object), super::openapi::Errors))]
pub async fn delete(
    Scoped(cache): Scoped<Cache>,
    ApiPath(key): ApiPath<String>,
    ApiQuery(q): ApiQuery<NamespaceQuery>,
) -> Result<Response, ApiError> {
    let deleted = cache.delete(q.ns(), &key).await?;
    Ok(Json(json!({"namespace": q.ns(), "key": key, "deleted": deleted})).into_response())
}

#[utoipa::path(post, path = "/api/cache/{key}/incr", tag = "services", operation_id = "incrCached", params(("key" = String, Path, description = "The cache key"), NamespaceQuery), request_body = IncrBody, responses((status = 200, description = "`{namespace, key, value, version}`", body = Object), (status = 409, description = "The value is not a counter", body = Object), super::openapi::Errors))]
pub async fn incr(
    Scoped(cache): Scoped<Cache>,
    ApiPath(key): ApiPath<String>,
    ApiQuery(q): ApiQuery<NamespaceQuery>,
    ApiJson(body): ApiJson<IncrBody>,
) -> Result<Response, ApiError> {
    Ok(match cache.incr(q.ns(), &key, body).await? {
        Incr::Value { value, version, expires_at_ms } => Json(json!({
            "namespace": q.ns(), "key": key, "value": value, "version": version, "expiresAt": iso_ms(expires_at_ms),
        }))
        .into_response(),
        Incr::NotInteger => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "not_integer",
                "the entry is not an integer, or the sum would pass 2^53 - 1; nothing was changed",
            ))
        }
    })
}

#[utoipa::path(post, path = "/api/cache/invalidate", tag = "services", operation_id = "invalidateCache", params(NamespaceQuery), request_body = InvalidateBody, responses((status = 200, description = "`{namespace, invalidated}`", body = Object), super::openapi::Errors))]
pub async fn invalidate(
    Scoped(cache): Scoped<Cache>,
    ApiQuery(q): ApiQuery<NamespaceQuery>,
    ApiJson(body): ApiJson<InvalidateBody>,
) -> Result<Response, ApiError> {
    let n = cache.invalidate(q.ns(), body.tags).await?;
    Ok(Json(json!({"namespace": q.ns(), "invalidated": n})).into_response())
}

#[utoipa::path(get, path = "/api/cache/stats", tag = "services", operation_id = "cacheStats", params(NamespaceQuery), responses((status = 200, description = "`{namespace, hits, misses, entries, hitRate}`", body = Object), super::openapi::Errors))]
pub async fn stats(
    Scoped(cache): Scoped<Cache>,
    ApiQuery(q): ApiQuery<NamespaceQuery>,
) -> Result<Response, ApiError> {
    let s = cache.stats(q.ns()).await?;
    let lookups = s.hits + s.misses;
    let rate = if lookups == 0 {
        0.0
    } else {
        s.hits as f64 / lookups as f64
    };
    Ok(Json(json!({"namespace": q.ns(), "hits": s.hits, "misses": s.misses, "keys": s.keys, "hitRate": rate})).into_response())
}

#[utoipa::path(delete, path = "/api/cache", tag = "services", operation_id = "clearCache", params(NamespaceQuery), responses((status = 200, description = "`{namespace, cleared}`", body = Object), super::openapi::Errors))]
pub async fn clear(
    Scoped(cache): Scoped<Cache>,
    ApiQuery(q): ApiQuery<NamespaceQuery>,
) -> Result<Response, ApiError> {
    let n = cache.clear(q.ns()).await?;
    Ok(Json(json!({"namespace": q.ns(), "cleared": n})).into_response())
}
