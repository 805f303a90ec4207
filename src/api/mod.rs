//! The HTTP API under `/api/v1`: the router, the response envelope, and the edge layers
//! (request ids, tracing, metrics, CORS, body limit, timeout). Handlers live in one module
//! per resource.

pub mod auth;
pub mod credentials;
pub mod diagnostics;
pub mod downloads;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod history;
pub mod identity;
pub mod integrations;
pub mod keys;
pub mod library;
pub mod matches;
mod openapi;
pub mod previews;
pub mod providers;
pub mod resolve;
pub mod search;
pub mod serve;
pub mod session;
pub mod settings;
pub mod spotify;
pub mod state;
pub mod tasks;
pub mod types;
pub mod uploads;
pub mod users;
pub mod watch_items;
pub mod watches;
pub mod webhooks;

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::state::AppState;
use crate::failure::code;
use error::ApiError;

/// The success envelope: `{"success": true, "data": …}`.
#[derive(Debug, Serialize)]
pub struct Envelope<T> {
    /// Always `true`.
    pub success: bool,
    /// The payload.
    pub data: T,
}

/// 200 with the success envelope.
pub fn ok<T: Serialize>(data: T) -> Response {
    (
        StatusCode::OK,
        axum::Json(Envelope {
            success: true,
            data,
        }),
    )
        .into_response()
}

/// A status other than 200 with the success envelope.
pub fn with_status<T: Serialize>(status: StatusCode, data: T) -> Response {
    (
        status,
        axum::Json(Envelope {
            success: true,
            data,
        }),
    )
        .into_response()
}

pub use types::Page;

/// Every `/api/v1` route, with its OpenAPI description.
fn v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(auth::status))
        .routes(routes!(auth::change_password))
        .routes(routes!(session::create, session::get, session::delete))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::set_role))
        .routes(routes!(users::set_password))
        .routes(routes!(users::delete))
        .routes(routes!(keys::create, keys::list))
        .routes(routes!(keys::delete))
        .routes(routes!(downloads::create))
        .routes(routes!(tasks::list))
        .routes(routes!(tasks::updates))
        .routes(routes!(tasks::cancel_all))
        .routes(routes!(tasks::get, tasks::delete))
        .routes(routes!(tasks::children))
        .routes(routes!(tasks::cancel))
        .routes(routes!(tasks::retry))
        .routes(routes!(matches::candidates))
        .routes(routes!(matches::pick))
        .routes(routes!(previews::preview))
        .routes(routes!(resolve::resolve))
        .routes(routes!(spotify::connect))
        .routes(routes!(spotify::callback))
        .routes(routes!(history::list))
        .routes(routes!(history::stats))
        .routes(routes!(history::cleanup))
        .routes(routes!(providers::list))
        .routes(routes!(providers::info))
        .routes(routes!(search::search))
        .routes(routes!(settings::get, settings::put))
        .routes(routes!(settings::validate))
        .routes(routes!(credentials::list))
        .merge(
            // Upload bodies are streamed to disk, not held: no body limit.
            OpenApiRouter::new()
                .routes(routes!(uploads::multipart))
                .routes(routes!(uploads::tus_options, uploads::tus_create))
                .routes(routes!(
                    uploads::tus_head,
                    uploads::tus_patch,
                    uploads::tus_delete
                ))
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .routes(routes!(uploads::quota))
        .routes(routes!(library::tracks))
        .routes(routes!(
            library::get_track,
            library::patch_track,
            library::delete_track
        ))
        .routes(routes!(library::file))
        .routes(routes!(library::link))
        .routes(routes!(library::stream))
        .routes(routes!(library::artists))
        .routes(routes!(library::albums))
        .routes(routes!(library::album))
        .routes(routes!(library::cover))
        .routes(routes!(watches::create, watches::list))
        .routes(routes!(watches::check_all))
        .routes(routes!(watches::get, watches::patch, watches::delete))
        .routes(routes!(watches::check))
        .routes(routes!(watch_items::list))
        .routes(routes!(watch_items::patch))
        .routes(routes!(watches::get_config, watches::put_config))
        .routes(routes!(
            credentials::get,
            credentials::put,
            credentials::delete
        ))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::get, webhooks::patch, webhooks::delete))
        .routes(routes!(webhooks::test))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(integrations::list))
        .routes(routes!(diagnostics::ping))
        .routes(routes!(events::stream))
        .routes(routes!(events::ticket))
        .routes(routes!(health::health))
        .routes(routes!(health::deep))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
}

/// The OpenAPI document of the v1 API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = OpenApiRouter::<AppState>::with_openapi(openapi::ApiDoc::openapi())
        .nest("/api/v1", v1())
        .split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    openapi::complete(&mut doc);
    doc
}

/// Builds the whole router with its layers.
pub fn router(app: AppState) -> Router {
    let (api, _) = OpenApiRouter::<AppState>::with_openapi(openapi::ApiDoc::openapi())
        .nest("/api/v1", v1())
        .split_for_parts();
    let doc = openapi();
    let config = &app.config;
    let request_id = HeaderName::from_static("x-request-id");
    let mut router = api
        .route("/healthz", axum::routing::get(health::healthz))
        .route("/readyz", axum::routing::get(health::readyz))
        .merge(utoipa_swagger_ui::SwaggerUi::new("/api/v1/docs").url("/api/v1/openapi.json", doc))
        .merge(crate::web::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(
            config.http.body_limit.as_u64() as usize,
        ))
        .layer(middleware::from_fn_with_state(app.clone(), request_timeout))
        .layer(middleware::from_fn_with_state(
            config.http.body_idle_timeout,
            serve::body_idle_timeout,
        ))
        .layer(middleware::from_fn_with_state(app.clone(), record_metrics));
    if let Some(cors) = cors(&config.http.cors_origins) {
        router = router.layer(cors);
    }
    router
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("http", method = %req.method(), uri = %req.uri().path(), request_id = id)
            }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(middleware::from_fn(crate::web::security_headers))
        .with_state(app)
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
                Method::HEAD,
                Method::OPTIONS,
            ])
            .allow_headers([
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
                axum::http::header::RANGE,
                axum::http::header::IF_NONE_MATCH,
                HeaderName::from_static("x-api-key"),
                HeaderName::from_static("last-event-id"),
                // tus clients (Uppy, tus-js-client) in a browser.
                HeaderName::from_static("tus-resumable"),
                HeaderName::from_static("upload-length"),
                HeaderName::from_static("upload-metadata"),
                HeaderName::from_static("upload-offset"),
                HeaderName::from_static("upload-checksum"),
                HeaderName::from_static("x-requested-with"),
            ])
            .expose_headers([
                axum::http::header::LOCATION,
                axum::http::header::ETAG,
                axum::http::header::CONTENT_RANGE,
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("tus-resumable"),
                HeaderName::from_static("tus-version"),
                HeaderName::from_static("tus-extension"),
                HeaderName::from_static("tus-max-size"),
                HeaderName::from_static("tus-checksum-algorithm"),
                HeaderName::from_static("upload-offset"),
                HeaderName::from_static("upload-length"),
                HeaderName::from_static("upload-expires"),
                HeaderName::from_static("musicd-task-id"),
            ])
            .max_age(Duration::from_secs(3600)),
    )
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        code::METHOD_NOT_ALLOWED,
        "method not allowed on this route",
    )
}

/// `http.request_timeout` for every request but uploads, whose handlers read bodies of any
/// size and length of time (they stop on their own when the client goes away).
async fn request_timeout(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/api/v1/uploads") {
        return next.run(req).await;
    }
    match tokio::time::timeout(app.config.http.request_timeout, next.run(req)).await {
        Ok(res) => res,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            code::TIMEOUT,
            "the request took longer than http.request_timeout",
        )
        .into_response(),
    }
}

async fn record_metrics(State(_app): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let start = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("musicd_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("musicd_http_request_duration_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    res
}
