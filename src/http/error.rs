//! The one error response of the HTTP API:
//! `{"error": code, "message": sentence, "details"?: [...], "requestId": id}`, and how every
//! failure below the edge maps to it: the caller's fault is a 4xx, a store that failed or was
//! contended is a 503 with `Retry-After`, corrupt data is a 500.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::context;
use crate::domain::FieldProblem;
use crate::service::ServiceError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after_secs: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn validation(problems: Vec<FieldProblem>) -> Self {
        let message = match problems.first() {
            Some(p) => format!("{}: {}", p.field, p.problem),
            None => "invalid request".to_string(),
        };
        ApiError::new(StatusCode::BAD_REQUEST, "validation_failed", message).with_details(json!(
            problems
                .iter()
                .map(|p| json!({"field": p.field, "problem": p.problem}))
                .collect::<Vec<_>>()
        ))
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} was not found"),
        )
    }

    fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "store unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the store did not take the request; nothing was written, retry shortly",
                )
                .retry_after(1)
            }
            StoreError::Exists => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "the resource already exists",
            ),
            StoreError::Contention(what) => {
                tracing::warn!(what, "store contention; the change was not made");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "contention",
                    "too many concurrent changes of the same resource; nothing was changed, retry shortly",
                )
                .retry_after(1)
            }
            StoreError::Corrupt(reason) => {
                tracing::error!(%reason, "corrupt data in store");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the store holds data this gateway cannot read",
                )
            }
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(problems) => ApiError::validation(problems),
            ServiceError::NotFound(what) => ApiError::not_found(what),
            ServiceError::Exists(what) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("a {what} with this id exists"),
            ),
            ServiceError::Store(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "error": self.code,
            "message": self.message,
            "requestId": context::request_id(),
        });
        if let Some(details) = self.details {
            body["details"] = details;
        }
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}
