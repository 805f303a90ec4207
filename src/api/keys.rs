//! `/api-keys`: keys for scripts, shown once at creation and stored hashed.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::extract::ApiJson;
use super::{ok, with_status};
use crate::api::identity::Identity;
use crate::api::state::AppState;
use crate::auth::{self, Scope};
use crate::db::api_keys;

/// A new key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// A label, 1–100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Any of `read`, `write`, `admin` (default `["read"]`).
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// Create a key for the caller. The key is in this response only.
#[utoipa::path(post, path = "/api-keys", tag = "api-keys", request_body = NewKey, security(("bearer" = []), ("api_key" = [])),
    responses((status = 201, description = "The key, shown once")))]
pub async fn create(
    State(app): State<AppState>,
    id: Identity,
    ApiJson(body): ApiJson<NewKey>,
) -> ApiResult<Response> {
    let name = body.name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(ApiError::validation(
            Some("name"),
            "must be 1 to 100 characters",
        ));
    }
    let mut scopes = Vec::new();
    for s in if body.scopes.is_empty() {
        vec!["read".to_string()]
    } else {
        body.scopes
    } {
        let scope = Scope::parse(&s)
            .ok_or_else(|| ApiError::validation(Some("scopes"), format!("unknown scope `{s}`")))?;
        if !id.has_scope(scope) || (scope == Scope::Admin && !id.is_admin()) {
            return Err(ApiError::forbidden(format!(
                "you cannot grant the `{s}` scope"
            )));
        }
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    let scopes = scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let (key, prefix) = auth::new_api_key();
    let stored = api_keys::create(
        &app.db,
        &id.user.id,
        name,
        &prefix,
        &auth::token_hash(&key),
        &scopes,
    )
    .await?;
    Ok(with_status(
        StatusCode::CREATED,
        serde_json::json!({ "key": key, "api_key": stored }),
    ))
}

/// The caller's keys (without the keys themselves).
#[utoipa::path(get, path = "/api-keys", tag = "api-keys", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Keys")))]
pub async fn list(State(app): State<AppState>, id: Identity) -> ApiResult<Response> {
    Ok(ok(api_keys::list(&app.db, &id.user.id).await?))
}

/// Revoke one of the caller's keys.
#[utoipa::path(delete, path = "/api-keys/{id}", tag = "api-keys", params(("id" = String, Path, description = "Key id")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Deleted"), (status = 404, description = "No such key")))]
pub async fn delete(
    State(app): State<AppState>,
    id: Identity,
    Path(key_id): Path<String>,
) -> ApiResult<Response> {
    if !api_keys::delete(&app.db, &id.user.id, &key_id).await? {
        return Err(ApiError::not_found("no such API key"));
    }
    Ok(ok(serde_json::json!({ "deleted": key_id })))
}
