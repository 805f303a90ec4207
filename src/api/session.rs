//! `/auth/session`: the web app's sign-in. A browser gets an `HttpOnly`, `SameSite=Strict`
//! cookie (`Secure` behind TLS) instead of tokens it would have to keep in script reach, and
//! a CSRF token that every state-changing request repeats in `X-CSRF-Token`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{Credentials, check_password, start_login};
use super::error::{ApiError, ApiResult};
use super::extract::ApiJson;
use super::identity::{Identity, SESSION_COOKIE, Via, csrf_token, session_cookie};
use super::ok;
use crate::api::state::{App, AppState};
use crate::db::{tokens, users::User};

/// A signed-in browser's session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    /// The account.
    pub user: User,
    /// Repeat in `X-CSRF-Token` on every request that changes something.
    pub csrf_token: String,
    /// Seconds until the session ends.
    pub expires_in: u64,
}

/// Whether the browser reached us over TLS: only then may the cookie say `Secure`. musicd
/// speaks plain HTTP; TLS ends at a reverse proxy, which says so in `X-Forwarded-Proto`
/// (believed only with `http.trust_forwarded_for`).
fn over_tls(app: &App, headers: &HeaderMap) -> bool {
    app.config.http.trust_forwarded_for
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

fn cookie(app: &App, headers: &HeaderMap, value: &str, max_age: u64) -> HeaderValue {
    let secure = if over_tls(app, headers) {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("cookie characters are plain ASCII")
}

/// Sign in from a browser: sets the session cookie and answers the CSRF token. Throttled
/// per client address, like `/auth/login`.
#[utoipa::path(post, path = "/auth/session", tag = "auth", request_body = Credentials,
    responses((status = 200, description = "Signed in; the cookie is set", body = SessionInfo),
        (status = 401, description = "Wrong credentials"), (status = 429, description = "Too many attempts")))]
pub async fn create(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<Response> {
    let (user, limit_headers) = check_password(&app, &headers, peer, body).await?;
    let ttl = app.config.security.refresh_token_ttl;
    let sid = start_login(&app, &user, ttl).await?;
    let value = app
        .jwt
        .issue(&user.id, &user.role, &sid, ttl.as_secs())
        .map_err(ApiError::internal)?;
    let info = SessionInfo {
        user,
        csrf_token: csrf_token(&value),
        expires_in: ttl.as_secs(),
    };
    let mut res = (limit_headers, ok(info)).into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        cookie(&app, &headers, &value, ttl.as_secs()),
    );
    Ok(res)
}

/// The browser's session: its account and CSRF token (what the web app reads after a
/// reload). 401 without a live session cookie; with authentication off, the local account.
#[utoipa::path(get, path = "/auth/session", tag = "auth",
    security(("session" = []), ("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The session", body = SessionInfo), (status = 401, description = "Not signed in")))]
pub async fn get(
    State(app): State<AppState>,
    id: Identity,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let value = match (&id.via, session_cookie(&headers)) {
        (Via::Cookie(_), Some(v)) => v,
        // Authentication is off (loopback only): the page works as the local account.
        (Via::AuthOff, _) => {
            return Ok(ok(SessionInfo {
                user: id.user,
                csrf_token: String::new(),
                expires_in: 0,
            }));
        }
        _ => return Err(ApiError::unauthorized("no browser session: sign in")),
    };
    let left = app
        .jwt
        .verify(&value)
        .map(|c| c.exp.saturating_sub(jsonwebtoken::get_current_timestamp()))
        .unwrap_or(0);
    Ok(ok(SessionInfo {
        user: id.user,
        csrf_token: csrf_token(&value),
        expires_in: left,
    }))
}

/// Sign out the browser: its login ends and the cookie is cleared.
#[utoipa::path(delete, path = "/auth/session", tag = "auth",
    security(("session" = []), ("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Signed out")))]
pub async fn delete(
    State(app): State<AppState>,
    id: Identity,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Via::Cookie(sid) = &id.via {
        tokens::revoke_family(&app.db, sid).await?;
        app.user_cache
            .forget(&super::identity::session_key(&id.user.id, sid));
    }
    let mut res = ok(serde_json::json!({ "signed_out": true }));
    res.headers_mut()
        .insert(header::SET_COOKIE, cookie(&app, &headers, "", 0));
    Ok(res)
}
