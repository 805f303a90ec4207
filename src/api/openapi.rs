//! The OpenAPI document's frame and its completion: every JSON success body is described
//! inside its `{success, data}` envelope, and every operation lists the errors the edge can
//! answer with (`ErrorEnvelope`), so the document says exactly what the server sends.

use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::schema::{ObjectBuilder, Ref, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, Required, ResponseBuilder};

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
        // The web app's session (`POST /auth/session`); requests that change something
        // also send its `X-CSRF-Token`.
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "musicd_session",
                "The browser session cookie; changes also need the X-CSRF-Token header",
            ))),
        );
    }
}

/// Wraps JSON success bodies in the envelope and adds the edge's error answers.
pub(super) fn complete(doc: &mut utoipa::openapi::OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let tus = path.starts_with("/api/v1/uploads/tus");
        let bodied = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.options,
        ];
        for op in bodied.into_iter().flatten() {
            envelope_successes(op);
            add_errors(op, true);
            if tus && op.operation_id.as_deref() != Some("tus_options") {
                speaks_tus(op, true);
            }
        }
        if let Some(op) = &mut item.head {
            add_errors(op, false);
            if tus {
                speaks_tus(op, false);
            }
        }
    }
}

/// A tus request names the protocol version; another version is refused with 412.
fn speaks_tus(op: &mut Operation, with_body: bool) {
    let header = ParameterBuilder::new()
        .name("Tus-Resumable")
        .parameter_in(ParameterIn::Header)
        .required(Required::True)
        .description(Some("The tus protocol version: `1.0.0`"))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["1.0.0"])),
        ))
        .build();
    op.parameters.get_or_insert_with(Vec::new).push(header);
    op.responses.responses.insert(
        "412".into(),
        error_response("Not tus 1.0.0 (`unsupported_tus_version`)", with_body),
    );
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

/// Errors any operation may answer with, by what it takes; an error documented without a
/// body gets the error envelope (not on `HEAD`, which answers without one).
fn add_errors(op: &mut Operation, with_body: bool) {
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
            .or_insert_with(|| error_response(description, with_body));
    }
    if !with_body {
        return;
    }
    for (status, response) in op.responses.responses.iter_mut() {
        if let RefOr::T(r) = response
            && !status.starts_with(['1', '2', '3'])
            && r.content.is_empty()
        {
            *response = error_response(&r.description, true);
        }
    }
}

fn takes_a_body(b: &RequestBody) -> bool {
    !b.content.is_empty()
}

fn error_response(description: &str, with_body: bool) -> RefOr<utoipa::openapi::Response> {
    if !with_body {
        return ResponseBuilder::new()
            .description(description)
            .build()
            .into();
    }
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
