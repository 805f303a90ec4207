//! `/providers`: the sources musicd can download from, and what one of them knows about an
//! item before anything is downloaded.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::error::{ApiError, ApiResult};
use super::ok;
use crate::app::AppState;
use crate::auth::Identity;
use crate::jobs::JobError;
use crate::providers::Fetcher;

/// Every provider with the kinds it resolves.
#[utoipa::path(get, path = "/providers", tag = "discovery", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The providers")))]
pub async fn list(State(app): State<AppState>, _id: Identity) -> ApiResult<Response> {
    let staging = app.config.data_dir.join("staging");
    let fetcher = Fetcher::new(app.shared.clone(), staging, app.shutdown.child_token());
    let mut items = Vec::new();
    for p in app.shared.providers.all() {
        let info = p.info();
        let status = p.status(&fetcher).await;
        items.push(serde_json::json!({
            "name": info.name,
            "kinds": info.kinds,
            "description": info.description,
            "available": status.is_ok(),
            "problem": status.err(),
        }));
    }
    Ok(ok(serde_json::json!({ "items": items })))
}

/// Metadata of an item (a feed with its episodes, a track) as the provider resolves it.
/// For `http` and `podcast` the id is the URL, percent-encoded.
#[utoipa::path(get, path = "/providers/{provider}/{kind}/{id}", tag = "discovery",
    params(("provider" = String, Path, description = "Provider name"), ("kind" = String, Path, description = "Kind, e.g. `feed`"),
        ("id" = String, Path, description = "Id within the provider (a URL for http and podcast)")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The resolved item"), (status = 404, description = "No such provider"),
        (status = 502, description = "The upstream failed")))]
pub async fn info(
    State(app): State<AppState>,
    _id: Identity,
    Path((provider, kind, item)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let p = app
        .shared
        .providers
        .get(&provider)
        .ok_or_else(|| ApiError::not_found(format!("no provider `{provider}`")))?;
    if !p.info().kinds.contains(&kind.as_str()) {
        return Err(ApiError::validation(
            Some("kind"),
            format!(
                "provider `{provider}` has kinds {}",
                p.info().kinds.join(", ")
            ),
        ));
    }
    let staging = app
        .config
        .data_dir
        .join("staging")
        .join(format!("api-{}", crate::db::new_id()));
    std::fs::create_dir_all(&staging).map_err(ApiError::internal)?;
    let fetcher = Fetcher::new(
        app.shared.clone(),
        staging.clone(),
        app.shutdown.child_token(),
    );
    let resolved = p.resolve(&kind, &item, &fetcher).await;
    let _ = std::fs::remove_dir_all(&staging);
    match resolved {
        Ok(r) => Ok(ok(r)),
        Err(JobError::Permanent {
            code: "validation_error",
            message,
        }) => Err(ApiError::validation(Some("id"), message)),
        Err(JobError::Permanent { code, message } | JobError::Transient { code, message, .. }) => {
            Err(ApiError::new(StatusCode::BAD_GATEWAY, code, message))
        }
        Err(JobError::Interrupted) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the daemon is shutting down",
        )),
    }
}
