//! Body and query extractors whose rejections are the API's error envelope: bad JSON, a
//! missing field or a wrong type is a 400 `validation_error` naming the field; a body over
//! the limit is a 413; a non-JSON content type is a 415.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::failure::code;

/// A JSON body parsed once at the edge.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

fn path_of<E>(e: &serde_path_to_error::Error<E>) -> Option<String> {
    let p = e.path().to_string();
    (p != "." && !p.is_empty()).then_some(p)
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let ct = ct
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                ct == "application/json" || ct.ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code::UNSUPPORTED_MEDIA_TYPE,
                "expected `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| match e {
            BytesRejection::FailedToBufferBody(_)
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    code::PAYLOAD_TOO_LARGE,
                    "request body too large",
                )
            }
            other => ApiError::validation(None, format!("cannot read body: {other}")),
        })?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize(de) {
            Ok(v) => Ok(ApiJson(v)),
            Err(e) => {
                let field = path_of(&e);
                let inner = e.inner();
                let message = if inner.is_syntax() || inner.is_eof() {
                    format!("invalid JSON: {inner}")
                } else {
                    match &field {
                        Some(f) => format!("`{f}`: {inner}"),
                        None => inner.to_string(),
                    }
                };
                // serde names a missing field only in its message; put it in the details too.
                let field = field.or_else(|| missing_field(&inner.to_string()));
                Err(ApiError::validation(field.as_deref(), message))
            }
        }
    }
}

fn missing_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// Query parameters parsed once at the edge.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let field = path_of(&e).or_else(|| missing_field(&e.inner().to_string()));
                ApiError::validation(field.as_deref(), format!("query: {}", e.inner()))
            })
    }
}
