//! Errors. Stores say *who* failed ([`StoreError`]); the HTTP edge turns every failure into
//! one JSON shape ([`ApiError`]) with a stable code, so clients never see HTML or an empty body.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::http::context;

/// A store operation that did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backing store did not answer or refused; nothing was written. Worth retrying.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The thing to create already exists.
    #[error("already exists")]
    Conflict,
    /// The store holds data this version cannot read (a bug or foreign writes).
    #[error("corrupt data in store: {0}")]
    Corrupt(String),
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// The one error response of the HTTP API:
/// `{"error": code, "message": sentence, "details"?: [...], "requestId": id}`.
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
}

/// One invalid field of a request, reported in `details`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub problem: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        FieldProblem {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "store unavailable");
                let mut err = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the store did not take the request; nothing was written, retry shortly",
                );
                err.retry_after_secs = Some(1);
                err
            }
            StoreError::Conflict => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "the resource already exists",
            ),
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
