//! `/config`: the effective configuration (secrets redacted) and the limits that change at
//! run time without a restart.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::extract::ApiJson;
use super::ok;
use crate::api::identity::Admin;
use crate::api::state::AppState;
use crate::limits::RuntimeLimits;

/// A change to the run-time limits; absent fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsPatch {
    /// Concurrent downloads and resolves per process (the io pool).
    pub io_concurrency: Option<usize>,
    /// Concurrent decode/transcode jobs per process (the cpu pool).
    pub cpu_concurrency: Option<usize>,
    /// Concurrent downloads from one host, per process.
    pub per_host_connections: Option<usize>,
    /// Requests per minute to one host, per process; 0 = no budget.
    pub per_host_requests_per_minute: Option<u32>,
}

/// The body of `PUT /config`: only the `workers` limits can change at run time.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigUpdate {
    /// Limits to change.
    pub workers: LimitsPatch,
}

fn merged(app: &AppState, body: ConfigUpdate) -> Result<RuntimeLimits, ApiError> {
    let mut l = app.shared.limits.current();
    let w = body.workers;
    l.io_concurrency = w.io_concurrency.unwrap_or(l.io_concurrency);
    l.cpu_concurrency = w.cpu_concurrency.unwrap_or(l.cpu_concurrency);
    l.per_host_connections = w.per_host_connections.unwrap_or(l.per_host_connections);
    l.per_host_requests_per_minute = w
        .per_host_requests_per_minute
        .unwrap_or(l.per_host_requests_per_minute);
    l.validate()
        .map_err(|(field, m)| ApiError::validation(Some(&format!("workers.{field}")), m))?;
    Ok(l)
}

fn view(app: &AppState) -> serde_json::Value {
    let config: serde_json::Value = toml::from_str::<toml::Value>(&app.config.to_redacted_toml())
        .ok()
        .and_then(|v| serde_json::to_value(v).ok())
        .unwrap_or_default();
    serde_json::json!({ "config": config, "runtime": { "workers": app.shared.limits.current() } })
}

/// The effective configuration (secrets redacted) and the run-time limits in force.
#[utoipa::path(get, path = "/config", tag = "settings", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "`{config, runtime}`"), (status = 403, description = "Not an admin")))]
pub async fn get(State(app): State<AppState>, _admin: Admin) -> ApiResult<Response> {
    Ok(ok(view(&app)))
}

/// Change the run-time limits. Every process sharing the database applies them within a
/// few seconds; running jobs keep their slots.
#[utoipa::path(put, path = "/config", tag = "settings", request_body = ConfigUpdate,
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "`{config, runtime}`"), (status = 400, description = "Invalid value, naming the field"),
        (status = 403, description = "Not an admin")))]
pub async fn put(
    State(app): State<AppState>,
    _admin: Admin,
    ApiJson(body): ApiJson<ConfigUpdate>,
) -> ApiResult<Response> {
    let limits = merged(&app, body)?;
    limits.store(&app.db).await?;
    app.shared.limits.apply(limits);
    Ok(ok(view(&app)))
}

/// Check a `PUT /config` body without applying it.
#[utoipa::path(post, path = "/config/validate", tag = "settings", request_body = ConfigUpdate,
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "`{valid: true, runtime}`"), (status = 400, description = "Invalid value, naming the field")))]
pub async fn validate(
    State(app): State<AppState>,
    _admin: Admin,
    ApiJson(body): ApiJson<ConfigUpdate>,
) -> ApiResult<Response> {
    let limits = merged(&app, body)?;
    Ok(ok(
        serde_json::json!({ "valid": true, "runtime": { "workers": limits } }),
    ))
}
