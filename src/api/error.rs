//! The HTTP edge's one error type: a status, a stable machine-readable code, a message and
//! optional details, rendered as the JSON error envelope. Unexpected errors are logged with
//! their cause chain and answered with a plain 500.

use crate::failure::code;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// An error answered to the client.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code (`validation_error`, `not_found`, …).
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Structured details (e.g. the field at fault).
    pub details: Vec<Value>,
    /// Extra response headers (e.g. `Retry-After`); boxed to keep results small.
    pub headers: Option<Box<HeaderMap>>,
}

/// The error body, for the OpenAPI document.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Structured details.
    pub details: Vec<Value>,
}

/// The error envelope, for the OpenAPI document.
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// Always `false`.
    pub success: bool,
    /// What went wrong.
    pub error: ErrorBody,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
            headers: None,
        }
    }

    /// 400 `validation_error`, naming the field when known.
    pub fn validation(field: Option<&str>, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            code::VALIDATION_ERROR,
            message.clone(),
        );
        if let Some(f) = field {
            e.details.push(json!({ "field": f, "message": message }));
        }
        e
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        Self::new(StatusCode::UNAUTHORIZED, code::UNAUTHORIZED, message).with_headers(headers)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code::FORBIDDEN, message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code::NOT_FOUND, message)
    }

    /// 409 `conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code::CONFLICT, message)
    }

    /// 500 `internal_error`: logs the cause chain, tells the client nothing more.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {err:#}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code::INTERNAL_ERROR,
            "internal error; see the server log",
        )
    }

    /// Adds response headers.
    pub fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.headers
            .get_or_insert_with(Default::default)
            .extend(headers);
        self
    }

    /// Adds a detail object.
    pub fn with_detail(mut self, detail: Value) -> Self {
        self.details.push(detail);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "success": false,
            "error": { "code": self.code, "message": self.message, "details": self.details },
        });
        let mut res = (self.status, axum::Json(body)).into_response();
        if let Some(h) = self.headers {
            res.headers_mut().extend(*h);
        }
        res
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => ApiError::not_found("not found"),
            other => ApiError::internal(anyhow::Error::from(other)),
        }
    }
}

/// A provider's or fetch's failure answered directly (not as a task): 502 with its code, or
/// 503 `shutting_down` when the daemon is stopping.
impl From<crate::auth::ratelimit::Throttled> for ApiError {
    fn from(t: crate::auth::ratelimit::Throttled) -> Self {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            code::RATE_LIMITED,
            format!("too many login attempts; try again in {} s", t.secs),
        )
        .with_headers(t.headers)
    }
}

impl From<crate::jobs::JobError> for ApiError {
    fn from(e: crate::jobs::JobError) -> Self {
        use crate::failure::JobError;
        match e {
            JobError::Permanent { code, message } | JobError::Transient { code, message, .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, code, message)
            }
            JobError::Interrupted => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                code::SHUTTING_DOWN,
                "the daemon is shutting down",
            ),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::internal(e)
    }
}

/// Handlers return this.
pub type ApiResult<T> = Result<T, ApiError>;
