//! `/credentials` (admin): provider secrets such as API keys and client ids. Stored sealed
//! (see `crate::credentials`), answered masked, never in full.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::extract::ApiJson;
use super::ok;
use crate::api::identity::Admin;
use crate::api::state::AppState;
use crate::credentials::mask;
use crate::db::credentials;

/// A credential's new value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetCredential {
    /// The secret (1–4096 characters). Stored encrypted; never returned.
    #[schema(min_length = 1, max_length = 4096)]
    pub value: String,
}

fn check_names(provider: &str, name: &str) -> Result<(), ApiError> {
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c))
    };
    if !ok(provider) {
        return Err(ApiError::validation(
            Some("provider"),
            "1–64 of a-z, 0-9, `_`, `-`, `.`",
        ));
    }
    if !ok(name) {
        return Err(ApiError::validation(
            Some("name"),
            "1–64 of a-z, 0-9, `_`, `-`, `.`",
        ));
    }
    Ok(())
}

/// Every stored credential, masked.
#[utoipa::path(get, path = "/credentials", tag = "settings", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The credentials, masked"), (status = 403, description = "Not an admin")))]
pub async fn list(State(app): State<AppState>, _admin: Admin) -> ApiResult<Response> {
    Ok(ok(
        serde_json::json!({ "items": credentials::list(&app.db).await? }),
    ))
}

/// One credential, masked.
#[utoipa::path(get, path = "/credentials/{provider}/{name}", tag = "settings",
    params(("provider" = String, Path, description = "Provider"), ("name" = String, Path, description = "Credential name, e.g. `client_id`")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The credential, masked"), (status = 404, description = "Not set"),
        (status = 403, description = "Not an admin")))]
pub async fn get(
    State(app): State<AppState>,
    _admin: Admin,
    Path((provider, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    match credentials::get(&app.db, &provider, &name).await? {
        Some(c) => Ok(ok(c)),
        None => Err(ApiError::not_found("no such credential")),
    }
}

/// Set a credential (replacing any old value). Answers masked.
#[utoipa::path(put, path = "/credentials/{provider}/{name}", tag = "settings", request_body = SetCredential,
    params(("provider" = String, Path, description = "Provider"), ("name" = String, Path, description = "Credential name")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Stored, masked"), (status = 400, description = "Invalid"),
        (status = 403, description = "Not an admin")))]
pub async fn put(
    State(app): State<AppState>,
    Admin(id): Admin,
    Path((provider, name)): Path<(String, String)>,
    ApiJson(body): ApiJson<SetCredential>,
) -> ApiResult<Response> {
    check_names(&provider, &name)?;
    let value = body.value.trim();
    if value.is_empty() || value.len() > 4096 {
        return Err(ApiError::validation(Some("value"), "1–4096 characters"));
    }
    let sealed = app.shared.vault.seal(&provider, &name, value);
    credentials::put(
        &app.db,
        &provider,
        &name,
        &sealed,
        &mask(value),
        &id.user.username,
    )
    .await?;
    tracing::info!(provider, name, by = id.user.username, "credential set");
    let stored = credentials::get(&app.db, &provider, &name)
        .await?
        .ok_or_else(|| ApiError::internal("credential vanished after write"))?;
    Ok(ok(stored))
}

/// Remove a credential.
#[utoipa::path(delete, path = "/credentials/{provider}/{name}", tag = "settings",
    params(("provider" = String, Path, description = "Provider"), ("name" = String, Path, description = "Credential name")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 204, description = "Removed"), (status = 404, description = "Not set"),
        (status = 403, description = "Not an admin")))]
pub async fn delete(
    State(app): State<AppState>,
    _admin: Admin,
    Path((provider, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    if credentials::delete(&app.db, &provider, &name).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found("no such credential"))
    }
}
