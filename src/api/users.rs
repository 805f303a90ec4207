//! `/users`: admin management of accounts.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::auth::{hash_blocking, validate_password, validate_username};
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery};
use super::{ok, with_status};
use crate::api::identity::Admin;
use crate::api::state::AppState;
use crate::db::{tokens, users};

/// Paging by page number.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// 1-based page (default 1, at most 1,000,000).
    #[param(maximum = 1000000)]
    pub page: Option<u32>,
    /// Items per page, 1–200 (default 50).
    pub limit: Option<u32>,
}

/// A new account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Login name.
    #[schema(min_length = 3, max_length = 64, pattern = "^[A-Za-z0-9._-]{3,64}$")]
    pub username: String,
    /// 8 to 1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    /// `admin` or `user` (default `user`).
    #[serde(default = "default_role")]
    #[schema(pattern = "^(admin|user)$")]
    pub role: String,
}

fn default_role() -> String {
    "user".into()
}

/// A role change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    /// `admin` or `user`.
    #[schema(pattern = "^(admin|user)$")]
    pub role: String,
}

fn validate_role(role: &str) -> Result<(), ApiError> {
    if role == "admin" || role == "user" {
        Ok(())
    } else {
        Err(ApiError::validation(
            Some("role"),
            "must be `admin` or `user`",
        ))
    }
}

/// List accounts.
#[utoipa::path(get, path = "/users", tag = "users", params(PageQuery), security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of users")))]
pub async fn list(
    State(app): State<AppState>,
    _admin: Admin,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Response> {
    let limit = q.limit.unwrap_or(50).clamp(1, 200) as i64;
    let page = q.page.unwrap_or(1).max(1);
    if page > 1_000_000 {
        return Err(ApiError::validation(Some("page"), "at most 1000000"));
    }
    let page = i64::from(page);
    let items = users::list(&app.db, limit + 1, (page - 1) * limit).await?;
    let has_more = items.len() as i64 > limit;
    let items: Vec<_> = items.into_iter().take(limit as usize).collect();
    Ok(ok(serde_json::json!({
        "items": items,
        "page": page,
        "next_page": if has_more { Some(page + 1) } else { None },
    })))
}

/// Create an account.
#[utoipa::path(post, path = "/users", tag = "users", request_body = NewUser, security(("bearer" = []), ("api_key" = [])),
    responses((status = 201, description = "Created"), (status = 409, description = "Username taken")))]
pub async fn create(
    State(app): State<AppState>,
    _admin: Admin,
    ApiJson(body): ApiJson<NewUser>,
) -> ApiResult<Response> {
    validate_username(&body.username)?;
    validate_password(&body.password)?;
    validate_role(&body.role)?;
    let hash = hash_blocking(body.password).await?;
    let user = users::create(&app.db, &body.username, &hash, &body.role)
        .await?
        .ok_or_else(|| ApiError::conflict("that username is taken"))?;
    Ok(with_status(StatusCode::CREATED, user))
}

async fn ensure_not_last_admin(app: &AppState, id: &str) -> ApiResult<()> {
    let target = users::by_id(&app.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such user"))?;
    if target.is_admin() && users::count_role(&app.db, "admin").await? <= 1 {
        return Err(ApiError::conflict(
            "the last admin cannot be demoted or deleted",
        ));
    }
    Ok(())
}

/// Change an account's role; its sessions are revoked.
#[utoipa::path(put, path = "/users/{id}/role", tag = "users", request_body = RoleChange,
    params(("id" = String, Path, description = "User id")), security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Updated"), (status = 404, description = "No such user")))]
pub async fn set_role(
    State(app): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RoleChange>,
) -> ApiResult<Response> {
    validate_role(&body.role)?;
    if body.role != "admin" {
        ensure_not_last_admin(&app, &id).await?;
    }
    let user = users::set_role(&app.db, &id, &body.role)
        .await?
        .ok_or_else(|| ApiError::not_found("no such user"))?;
    tokens::revoke_user(&app.db, &id).await?;
    app.user_cache.forget_prefix(&format!("{id}/"));
    Ok(ok(user))
}

/// Delete an account with its tokens and keys.
#[utoipa::path(delete, path = "/users/{id}", tag = "users", params(("id" = String, Path, description = "User id")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Deleted"), (status = 404, description = "No such user")))]
pub async fn delete(
    State(app): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    ensure_not_last_admin(&app, &id).await?;
    if !users::delete(&app.db, &id).await? {
        return Err(ApiError::not_found("no such user"));
    }
    app.user_cache.forget_prefix(&format!("{id}/"));
    Ok(ok(serde_json::json!({ "deleted": id })))
}

/// A password set by an admin.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordSet {
    /// 8 to 1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub new_password: String,
}

/// Set an account's password; every login of that account is signed out.
#[utoipa::path(put, path = "/users/{id}/password", tag = "users", request_body = PasswordSet,
    params(("id" = String, Path, description = "User id")), security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Changed"), (status = 404, description = "No such user")))]
pub async fn set_password(
    State(app): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PasswordSet>,
) -> ApiResult<Response> {
    super::auth::validate_new_password(&body.new_password)?;
    let hash = hash_blocking(body.new_password).await?;
    if !users::set_password(&app.db, &id, &hash).await? {
        return Err(ApiError::not_found("no such user"));
    }
    tokens::revoke_user(&app.db, &id).await?;
    app.user_cache.forget_prefix(&format!("{id}/"));
    Ok(ok(serde_json::json!({ "changed": true })))
}
