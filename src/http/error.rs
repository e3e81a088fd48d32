//! The one error response of the HTTP API:
//! `{"error": code, "message": sentence, "details"?: [...], "requestId": id}`, and how every
//! failure below the edge maps to it: the caller's fault is a 4xx, a store that failed or was
//! contended is a 503 with `Retry-After`, corrupt data is a 500.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::request_id;
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
    /// Members an answer adds beside the error's own (a lock's holder, an entry's version).
    pub fields: Option<Box<serde_json::Map<String, Value>>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after_secs: None,
            fields: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Adds the members of `fields` (an object) to the answer, beside `error` and `message`.
    pub fn with_fields(mut self, fields: Value) -> Self {
        if let Value::Object(m) = fields {
            self.fields = Some(Box::new(m));
        }
        self
    }

    pub fn validation(problems: Vec<FieldProblem>) -> Self {
        let message = match problems.first() {
            Some(p) => format!("{}: {}", p.field, p.problem),
            None => "invalid request".to_string(),
        };
        ApiError::new(StatusCode::BAD_REQUEST, "validation_failed", message)
            .with_details(problem_list(&problems))
    }

    pub fn not_found(what: &'static str) -> Self {
        ServiceError::NotFound(what).into()
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }
}

fn problem_list(problems: &[FieldProblem]) -> Value {
    json!(problems
        .iter()
        .map(|p| json!({"field": p.field, "problem": p.problem}))
        .collect::<Vec<_>>())
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ServiceError::Store(e).into()
    }
}

/// Codes and sentences are the service error's own ([`ServiceError::code`],
/// [`ServiceError::message`]), shared with the WebSocket's `error` messages; this adds the
/// status, `Retry-After` and the log line.
impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let status = match &e {
            ServiceError::Invalid(problems) => return ApiError::validation(problems.clone()),
            ServiceError::Conflict(problems) => {
                return ApiError::new(StatusCode::CONFLICT, e.code(), e.message())
                    .with_details(problem_list(problems))
            }
            ServiceError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ServiceError::Quota { .. } => StatusCode::TOO_MANY_REQUESTS,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Exists(_) | ServiceError::Store(StoreError::Exists) => {
                StatusCode::CONFLICT
            }
            ServiceError::Store(StoreError::Unavailable(reason)) => {
                tracing::warn!(%reason, "store unavailable");
                StatusCode::SERVICE_UNAVAILABLE
            }
            ServiceError::Store(StoreError::Contention(what)) => {
                tracing::warn!(what, "store contention; the change was not made");
                StatusCode::SERVICE_UNAVAILABLE
            }
            ServiceError::Store(StoreError::Full) => {
                tracing::warn!("memory store full (MEMORY_STORE_MAX_BYTES); refused a write");
                StatusCode::SERVICE_UNAVAILABLE
            }
            ServiceError::Store(StoreError::QueueFull) => StatusCode::TOO_MANY_REQUESTS,
            ServiceError::Store(StoreError::Corrupt(reason)) => {
                tracing::error!(%reason, "corrupt data in store");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let err = ApiError::new(status, e.code(), e.message());
        if e.retryable() {
            err.retry_after(1)
        } else {
            err
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Value::Object(self.fields.map(|f| *f).unwrap_or_default());
        body["error"] = self.code.into();
        body["message"] = self.message.into();
        body["requestId"] = request_id::request_id().into();
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
