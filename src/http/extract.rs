//! Extractors whose rejections are [`ApiError`]s, so a malformed body, query or path gets the
//! same JSON error as everything else (axum's own rejections are plain text).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::error::ApiError;
use super::serve::Arrival;
use crate::domain::session::check_session_id;

/// A JSON body, unparsed: the content type must be JSON, and an empty body reads as `{}`
/// (from a browser, only with the JSON content type).
/// Handlers that store what they were sent read it with [`parse_json`] into borrowed views.
pub struct JsonBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            });
        let has_origin = req.headers().contains_key(header::ORIGIN);
        let deadline = req.extensions().get::<Arrival>().map(|a| a.body_deadline);
        let read = Bytes::from_request(req, state);
        let read = match deadline {
            Some(at) => match tokio::time::timeout_at(at, read).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "request_timeout",
                        "the request body did not arrive within HTTP_BODY_TIMEOUT_SECS",
                    ))
                }
            },
            None => read.await,
        };
        let body = read.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is larger than this route accepts",
                )
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", rej.body_text())
            }
        })?;
        // An empty body reads as `{}` for a client that is no browser (`curl -X POST`); a
        // browser (it sends `Origin`) must say JSON, empty or not, so that no page can send
        // one without a CORS preflight.
        let browser = has_origin;
        if body.iter().all(u8::is_ascii_whitespace) && (!browser || is_json == Some(true)) {
            Ok(JsonBody(Bytes::from_static(b"{}")))
        } else if is_json != Some(true) {
            Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with content-type: application/json",
            ))
        } else {
            Ok(JsonBody(body))
        }
    }
}

/// Reads a JSON body into `T` (which may borrow from it), naming the place of any problem.
pub fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let code = if inner.is_syntax() || inner.is_eof() {
            "invalid_json"
        } else {
            "validation_failed"
        };
        let field = if path == "." {
            "body".to_string()
        } else {
            path
        };
        ApiError::new(StatusCode::BAD_REQUEST, code, format!("{field}: {inner}"))
    })?;
    de.end().map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("body: {e}"),
        )
    })?;
    Ok(value)
}

/// A JSON body read into `T`.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let JsonBody(body) = JsonBody::from_request(req, state).await?;
        // Every such body is an object; serde would also read a struct from an array.
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            let code = match serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
                Ok(_) => "validation_failed",
                Err(_) => "invalid_json",
            };
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                code,
                "body: must be a JSON object",
            ));
        }
        parse_json(&body).map(ApiJson)
    }
}

/// A query string.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))
    }
}

/// Path parameters.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))
    }
}

/// Checks a session id taken from the path.
pub fn session_path_id(id: &str) -> Result<(), ApiError> {
    check_session_id(id).map_err(|p| ApiError::validation(vec![p]))
}
