//! `/auth`: register, login, refresh, logout, me, status.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::extract::ApiJson;
use super::{ok, with_status};
use crate::api::identity::{Identity, Via};
use crate::api::state::{App, AppState};
use crate::auth;
use crate::config::AuthMode;
use crate::db::{now_ms, tokens, users, users::User};

/// Username and password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// 3–64 characters: letters, digits, `.`, `_`, `-`.
    pub username: String,
    /// At least 8 characters.
    pub password: String,
}

/// Tokens for a session.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    /// Send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Exchange at `/auth/refresh` for a new pair; single use.
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
    /// The account.
    pub user: User,
}

/// A refresh token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from login or the last refresh.
    pub refresh_token: String,
}

/// Checks a username's shape.
pub fn validate_username(name: &str) -> Result<(), ApiError> {
    let ok_len = (3..=64).contains(&name.len());
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(ApiError::validation(
            Some("username"),
            "3 to 64 characters: letters, digits, '.', '_' or '-'",
        ))
    }
}

/// Checks a password's length.
pub fn validate_password(pw: &str) -> Result<(), ApiError> {
    if (8..=1024).contains(&pw.len()) {
        Ok(())
    } else {
        Err(ApiError::validation(
            Some("password"),
            "must be 8 to 1024 characters",
        ))
    }
}

/// Hashes off the async threads (Argon2 is deliberately slow).
pub async fn hash_blocking(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

async fn issue_pair(app: &App, user: User, family: Option<String>) -> ApiResult<TokenPair> {
    let sec = &app.config.security;
    let family = family.unwrap_or_else(crate::db::new_id);
    let access = app.jwt.issue(
        &user.id,
        &user.role,
        &family,
        sec.access_token_ttl.as_secs(),
    )?;
    let refresh = new_refresh_token(app, &user.id, &family, sec.refresh_token_ttl).await?;
    Ok(TokenPair {
        access_token: access,
        token_type: "Bearer",
        expires_in: sec.access_token_ttl.as_secs(),
        refresh_token: refresh,
        refresh_expires_in: sec.refresh_token_ttl.as_secs(),
        user,
    })
}

/// The account of a username and password, throttled per client address; the throttle's
/// headers go on the answer.
pub async fn check_password(
    app: &App,
    headers: &HeaderMap,
    peer: SocketAddr,
    body: Credentials,
) -> ApiResult<(User, HeaderMap)> {
    let limit_headers = app.login_limiter.check(client_ip(app, headers, peer))?;
    let found = users::credentials(&app.db, &body.username).await?;
    let (user, hash) = match found {
        Some((u, h)) => (Some(u), h),
        None => (None, auth::dummy_hash().to_string()),
    };
    let password = body.password;
    let verified = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .map_err(ApiError::internal)?;
    match (user, verified) {
        (Some(u), true) => Ok((u, limit_headers)),
        _ => Err(ApiError::unauthorized("wrong username or password").with_headers(limit_headers)),
    }
}

/// Starts a login: a new refresh-token family whose refresh token is never handed out, so
/// the family lives until `ttl` or a sign-out. The web app's session cookie belongs to one.
pub async fn start_login(app: &App, user: &User, ttl: std::time::Duration) -> ApiResult<String> {
    let family = crate::db::new_id();
    new_refresh_token(app, &user.id, &family, ttl).await?;
    Ok(family)
}

/// Stores a new refresh token of a login (family), valid for `ttl`; the token.
async fn new_refresh_token(
    app: &App,
    user_id: &str,
    family: &str,
    ttl: std::time::Duration,
) -> ApiResult<String> {
    let token = auth::random_token();
    let expires_at = now_ms() + ttl.as_millis() as i64;
    tokens::insert(
        &app.db,
        user_id,
        family,
        &auth::token_hash(&token),
        expires_at,
    )
    .await?;
    Ok(token)
}

/// The address login throttling counts against. Behind proxies (`http.trust_forwarded_for`)
/// it is the right-most `X-Forwarded-For` entry that is not a trusted proxy: entries to its
/// left were written by the client and prove nothing.
fn client_ip(app: &App, headers: &HeaderMap, peer: SocketAddr) -> IpAddr {
    if !app.config.http.trust_forwarded_for {
        return peer.ip();
    }
    let trusted = app.config.http.trusted_proxy_nets().unwrap_or_default();
    let chain: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().parse::<IpAddr>())
        .collect::<Result<_, _>>()
        // A malformed chain cannot be trusted at all.
        .unwrap_or_default();
    rightmost_untrusted(&chain, &trusted).unwrap_or(peer.ip())
}

/// The right-most address of `chain` that is not in `trusted`.
fn rightmost_untrusted(chain: &[IpAddr], trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    chain
        .iter()
        .rev()
        .find(|ip| !trusted.iter().any(|n| n.contains(*ip)))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let chain = [ip("6.6.6.6"), ip("203.0.113.7"), ip("10.1.2.3")];
        assert_eq!(
            rightmost_untrusted(&chain, &trusted),
            Some(ip("203.0.113.7"))
        );
        assert_eq!(rightmost_untrusted(&chain, &[]), Some(ip("10.1.2.3")));
        assert_eq!(rightmost_untrusted(&[ip("10.0.0.1")], &trusted), None);
    }
}

/// Create an account (only when `security.allow_registration` is on).
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = Credentials,
    responses((status = 201, description = "Account created"), (status = 403, description = "Registration is off")))]
pub async fn register(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<Response> {
    if !app.config.security.allow_registration || app.config.auth == AuthMode::Off {
        return Err(ApiError::forbidden("registration is disabled"));
    }
    validate_username(&body.username)?;
    validate_password(&body.password)?;
    let hash = hash_blocking(body.password).await?;
    let user = users::create(&app.db, &body.username, &hash, "user")
        .await?
        .ok_or_else(|| ApiError::conflict("that username is taken"))?;
    Ok(with_status(StatusCode::CREATED, user))
}

/// Exchange a username and password for tokens. Throttled per client address.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = Credentials,
    responses((status = 200, description = "Tokens", body = TokenPair), (status = 401, description = "Wrong credentials"),
        (status = 429, description = "Too many attempts")))]
pub async fn login(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<Response> {
    let (user, limit_headers) = check_password(&app, &headers, peer, body).await?;
    let pair = issue_pair(&app, user, None).await?;
    Ok((limit_headers, ok(pair)).into_response())
}

/// Exchange a refresh token for a new pair. Each refresh token works once; presenting a used
/// one revokes every token of that login.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, description = "New tokens", body = TokenPair), (status = 401, description = "Invalid, expired or reused")))]
pub async fn refresh(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> ApiResult<Response> {
    match tokens::redeem(&app.db, &auth::token_hash(&body.refresh_token)).await? {
        tokens::Redeemed::Valid { user_id, family } => {
            let user = users::by_id(&app.db, &user_id)
                .await?
                .ok_or_else(|| ApiError::unauthorized("invalid refresh token"))?;
            Ok(ok(issue_pair(&app, user, Some(family)).await?))
        }
        tokens::Redeemed::Reused => {
            tracing::warn!("refresh token reuse: the whole token family was revoked");
            Err(ApiError::unauthorized(
                "refresh token was already used; every session of this login has been revoked",
            ))
        }
        tokens::Redeemed::Invalid => {
            Err(ApiError::unauthorized("invalid or expired refresh token"))
        }
    }
}

/// Sign out one of the caller's logins: the given refresh token's (with its rotations), and
/// the login of the access token the request carries, whose tokens stop working at once.
/// A refresh token of another account is refused.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body = RefreshRequest,
    security(("bearer" = []), ("api_key" = [])), responses((status = 200, description = "Logged out"),
        (status = 403, description = "The refresh token is another account's")))]
pub async fn logout(
    State(app): State<AppState>,
    id: Identity,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> ApiResult<Response> {
    let hash = auth::token_hash(&body.refresh_token);
    let family = tokens::family_of(&app.db, &hash, &id.user.id).await?;
    if family.is_none() && tokens::is_known(&app.db, &hash).await? {
        return Err(ApiError::forbidden(
            "that refresh token belongs to another account",
        ));
    }
    let mut ended = Vec::new();
    ended.extend(family);
    if let Some(sid) = id.login() {
        ended.push(sid.to_string());
    }
    ended.sort();
    ended.dedup();
    for f in &ended {
        tokens::revoke_family(&app.db, f).await?;
        app.user_cache
            .forget(&crate::api::identity::session_key(&id.user.id, f));
    }
    Ok(ok(serde_json::json!({ "logged_out": true })))
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The password now.
    pub current_password: String,
    /// 8 to 1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub new_password: String,
}

/// Change one's own password. Every other login of the account is signed out; this one
/// stays. For the first `admin`, the initial password's file is deleted.
#[utoipa::path(put, path = "/auth/password", tag = "auth", request_body = PasswordChange,
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Changed"), (status = 400, description = "The new password is not acceptable"),
        (status = 401, description = "The current password is wrong")))]
pub async fn change_password(
    State(app): State<AppState>,
    id: Identity,
    ApiJson(body): ApiJson<PasswordChange>,
) -> ApiResult<Response> {
    if matches!(id.via, Via::AuthOff) {
        return Err(ApiError::forbidden(
            "authentication is off: the local account has no password",
        ));
    }
    let (_, hash) = users::credentials(&app.db, &id.user.username)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the account no longer exists"))?;
    let current = body.current_password;
    let verified = tokio::task::spawn_blocking(move || auth::verify_password(&current, &hash))
        .await
        .map_err(ApiError::internal)?;
    if !verified {
        return Err(ApiError::unauthorized("the current password is wrong")
            .with_detail(serde_json::json!({ "field": "current_password" })));
    }
    validate_new_password(&body.new_password)?;
    let hash = hash_blocking(body.new_password).await?;
    users::set_password(&app.db, &id.user.id, &hash).await?;
    match id.login() {
        Some(sid) => tokens::revoke_user_except(&app.db, &id.user.id, sid).await?,
        None => tokens::revoke_user(&app.db, &id.user.id).await?,
    }
    app.user_cache.forget_prefix(&format!("{}/", id.user.id));
    if id.user.username == "admin" {
        // The initial password no longer works: its file goes, and the sign-in page stops
        // pointing at it.
        let _ = tokio::fs::remove_file(app.config.data_dir.join(auth::INITIAL_PASSWORD_FILE)).await;
    }
    Ok(ok(serde_json::json!({ "changed": true })))
}

/// The rules for a new password: those of account creation, under the field name
/// `new_password`.
pub fn validate_new_password(pw: &str) -> Result<(), ApiError> {
    validate_password(pw)
        .map_err(|_| ApiError::validation(Some("new_password"), "must be 8 to 1024 characters"))
}

/// The caller's account.
#[utoipa::path(get, path = "/auth/me", tag = "auth", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The account")))]
pub async fn me(id: Identity) -> ApiResult<Response> {
    let via = match &id.via {
        Via::Token(_) => "token".to_string(),
        Via::Cookie(_) => "session".to_string(),
        Via::ApiKey(scopes) => format!(
            "api_key:{}",
            scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(",")
        ),
        Via::AuthOff => "auth_off".to_string(),
    };
    Ok(ok(serde_json::json!({ "user": id.user, "auth": via })))
}

/// Whether auth is on and registration open, and on a first start where the initial
/// password was written: what a login page needs before it logs in.
#[utoipa::path(get, path = "/auth/status", tag = "auth", responses((status = 200, description = "Auth settings")))]
pub async fn status(State(app): State<AppState>) -> ApiResult<Response> {
    let mut body = serde_json::json!({
        "auth": app.config.auth == AuthMode::On,
        "registration": app.config.security.allow_registration && app.config.auth == AuthMode::On,
    });
    // On a first start, where the initial password is (never the password), until the
    // file is deleted: what the sign-in page tells a new user.
    let first = app.config.data_dir.join(crate::auth::INITIAL_PASSWORD_FILE);
    if app.config.auth == AuthMode::On && tokio::fs::try_exists(&first).await.unwrap_or(false) {
        body["initial_admin"] = "admin".into();
        body["initial_password_file"] = first.display().to_string().into();
    }
    Ok(ok(body))
}
