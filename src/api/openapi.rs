//! The OpenAPI document's frame and its completion: every JSON success body is described
//! inside its `{success, data}` envelope, and every operation lists the errors the edge can
//! answer with (`ErrorEnvelope`), so the document says exactly what the server sends.

use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::schema::{ObjectBuilder, Ref, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};

use super::error;

/// The document's frame: info, security schemes and the shared error body.
#[derive(OpenApi)]
#[openapi(
    info(title = "musicd", description = "Self-hosted music download and media-processing daemon"),
    modifiers(&SecurityAddon),
    components(schemas(error::ErrorEnvelope))
)]
pub(super) struct ApiDoc;

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// Wraps JSON success bodies in the envelope and adds the edge's error answers.
pub(super) fn complete(doc: &mut utoipa::openapi::OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            envelope_successes(op);
            add_errors(op);
        }
    }
}

fn envelope_successes(op: &mut Operation) {
    for (status, response) in op.responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        if !status.starts_with('2') {
            continue;
        }
        if let Some(json) = response.content.get_mut("application/json")
            && let Some(data) = json.schema.take()
        {
            json.schema = Some(enveloped(data));
        }
    }
}

fn enveloped(data: RefOr<Schema>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .property("success", ObjectBuilder::new().schema_type(Type::Boolean))
        .required("success")
        .property("data", data)
        .required("data")
        .into()
}

/// Errors any operation may answer with, by what it takes.
fn add_errors(op: &mut Operation) {
    let secured = op
        .security
        .as_ref()
        .is_some_and(|s| !s.is_empty() && s.iter().any(|r| r != &Default::default()));
    let mut errors = vec![
        (
            "400",
            "Invalid request (`validation_error`, naming the field)",
        ),
        ("500", "The server failed (`internal_error`)"),
    ];
    if secured {
        errors.push(("401", "No valid credential (`unauthorized`)"));
        errors.push((
            "403",
            "The credential lacks the role or scope (`forbidden`)",
        ));
    }
    if op.request_body.as_ref().is_some_and(takes_a_body) {
        errors.push(("413", "The body is over the limit (`payload_too_large`)"));
        errors.push((
            "415",
            "Not the body's content type (`unsupported_media_type`)",
        ));
    }
    for (status, description) in errors {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| error_response(description));
    }
}

fn takes_a_body(b: &RequestBody) -> bool {
    !b.content.is_empty()
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                .build(),
        )
        .build()
        .into()
}
