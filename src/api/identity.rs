//! Request extractors: [`Identity`] authenticates a request (access token, API key, or the
//! web app's session cookie with its CSRF token) and checks the API key's scope against the
//! method; [`Admin`] also requires the admin role.

use axum::extract::FromRequestParts;
use axum::http::{Method, header, request::Parts};

use super::state::AppState;
use crate::api::error::ApiError;
use crate::auth::{API_KEY_PREFIX, Scope, token_hash};
use crate::config::AuthMode;
use crate::db::{api_keys, tokens, users, users::User};

/// The user-cache key of one login.
pub fn session_key(user_id: &str, sid: &str) -> String {
    format!("{user_id}/{sid}")
}

/// How a request authenticated.
#[derive(Clone, Debug)]
pub enum Via {
    /// An access token of this login (refresh-token family).
    Token(String),
    /// The web app's session cookie of this login.
    Cookie(String),
    /// An API key with these scopes.
    ApiKey(Vec<Scope>),
    /// Authentication is off (loopback only): the local admin.
    AuthOff,
}

/// The authenticated caller.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The account.
    pub user: User,
    /// The credential used.
    pub via: Via,
}

impl Identity {
    /// Whether the caller may act as admin (admin role, and `admin` scope for API keys).
    pub fn is_admin(&self) -> bool {
        self.user.is_admin() && self.has_scope(Scope::Admin)
    }

    /// Whether the credential carries a scope (`admin` implies `write`, `write` implies `read`).
    pub fn has_scope(&self, want: Scope) -> bool {
        match &self.via {
            Via::ApiKey(scopes) => scopes.iter().any(|s| match want {
                Scope::Read => true,
                Scope::Write => matches!(s, Scope::Write | Scope::Admin),
                Scope::Admin => *s == Scope::Admin,
            }),
            Via::Token(_) | Via::Cookie(_) | Via::AuthOff => true,
        }
    }

    /// The login (refresh-token family) of a token or cookie session.
    pub fn login(&self) -> Option<&str> {
        match &self.via {
            Via::Token(sid) | Via::Cookie(sid) => Some(sid),
            _ => None,
        }
    }

    /// `Ok` when the caller is the owner of something or an admin.
    pub fn may_access(&self, owner_id: Option<&str>) -> bool {
        self.is_admin() || owner_id == Some(self.user.id.as_str())
    }
}

/// What a request presents.
enum Credential {
    ApiKey(String),
    Bearer(String),
    Cookie(String),
}

fn credential(parts: &Parts) -> Option<Credential> {
    if let Some(k) = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(Credential::ApiKey(k.trim().to_string()));
    }
    if let Some(auth) = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, token) = auth.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let token = token.trim().to_string();
        // Prometheus and other tools can only send `Authorization: Bearer`; accept keys there too.
        return Some(if token.starts_with(API_KEY_PREFIX) {
            Credential::ApiKey(token)
        } else {
            Credential::Bearer(token)
        });
    }
    session_cookie(&parts.headers).map(Credential::Cookie)
}

impl FromRequestParts<AppState> for Identity {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        if let Some(id) = parts.extensions.get::<Identity>() {
            return Ok(id.clone());
        }
        if app.config.auth == AuthMode::Off {
            let user = app
                .local_user
                .clone()
                .ok_or_else(|| ApiError::internal("auth is off but no local user exists"))?;
            return Ok(Identity {
                user,
                via: Via::AuthOff,
            });
        }
        let cred = credential(parts).ok_or_else(|| {
            ApiError::unauthorized(
                "authentication required: send `Authorization: Bearer <token>` or `X-API-Key`",
            )
        })?;
        let identity = match cred {
            Credential::ApiKey(secret) => {
                let key = api_keys::authenticate(&app.db, &token_hash(&secret))
                    .await?
                    .ok_or_else(|| ApiError::unauthorized("invalid API key"))?;
                let user = users::by_id(&app.db, &key.user_id)
                    .await?
                    .ok_or_else(|| ApiError::unauthorized("invalid API key"))?;
                let scopes = key.scopes.split(',').filter_map(Scope::parse).collect();
                Identity {
                    user,
                    via: Via::ApiKey(scopes),
                }
            }
            Credential::Bearer(secret) => {
                let (user, sid) = login_of(app, &secret).await?;
                Identity {
                    user,
                    via: Via::Token(sid),
                }
            }
            Credential::Cookie(secret) => {
                let (user, sid) = login_of(app, &secret)
                    .await
                    .map_err(|_| ApiError::unauthorized("your session has ended; sign in again"))?;
                // A browser sends the cookie with requests that other sites make it send;
                // only the web app knows the CSRF token.
                check_csrf(parts, &secret)?;
                Identity {
                    user,
                    via: Via::Cookie(sid),
                }
            }
        };
        let needed = if matches!(parts.method, Method::GET | Method::HEAD) {
            Scope::Read
        } else {
            Scope::Write
        };
        if !identity.has_scope(needed) {
            return Err(ApiError::forbidden(format!(
                "this API key lacks the `{}` scope",
                needed.as_str()
            )));
        }
        parts.extensions.insert(identity.clone());
        Ok(identity)
    }
}

/// The account and login of an access token (or of the session cookie, which carries one).
async fn login_of(app: &AppState, secret: &str) -> Result<(User, String), ApiError> {
    let claims = app
        .jwt
        .verify(secret)
        .ok_or_else(|| ApiError::unauthorized("invalid or expired token"))?;
    // Cached per login for 2 s: a logout or a revocation forgets the entry here, and
    // other processes see it within that time.
    let key = session_key(&claims.sub, &claims.sid);
    if let Some(u) = app.user_cache.get(&key) {
        return Ok((u, claims.sid));
    }
    if !tokens::session_live(&app.db, &claims.sub, &claims.sid).await? {
        return Err(ApiError::unauthorized(
            "this login was signed out or revoked; log in again",
        ));
    }
    let u = users::by_id(&app.db, &claims.sub)
        .await?
        .ok_or_else(|| ApiError::unauthorized("invalid or expired token"))?;
    app.user_cache.put(&key, u.clone());
    Ok((u, claims.sid))
}

/// The name of the web app's session cookie.
pub const SESSION_COOKIE: &str = "musicd_session";

/// The header that carries the CSRF token of a cookie session.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The session cookie's value, if the request carries one.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|v| !v.is_empty())
}

/// The CSRF token of a session: a hash of the cookie, which another site cannot read.
pub fn csrf_token(cookie: &str) -> String {
    token_hash(&format!("csrf:{cookie}"))
}

/// Requests that change something, made with the session cookie, must come from the web
/// app: the same origin (when the browser says) and the session's CSRF token in a header.
fn check_csrf(parts: &Parts, cookie: &str) -> Result<(), ApiError> {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let refused = |why: &str| {
        ApiError::forbidden(format!(
            "{why}: a request made with the session cookie must come from the web app"
        ))
        .with_detail(serde_json::json!({ "reason": "csrf" }))
    };
    if let Some(origin) = parts.headers.get(header::ORIGIN) {
        // The host the browser asked for: `Host`, or what a reverse proxy that rewrote it
        // says in `X-Forwarded-Host`.
        let hosts: Vec<&str> = [header::HOST.as_str(), "x-forwarded-host"]
            .iter()
            .filter_map(|h| parts.headers.get(*h)?.to_str().ok())
            .collect();
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| url::Url::parse(o).ok())
            .map(|u| match u.port() {
                Some(p) => format!("{}:{p}", u.host_str().unwrap_or("")),
                None => u.host_str().unwrap_or("").to_string(),
            });
        if !origin_host.is_some_and(|o| hosts.iter().any(|h| h.eq_ignore_ascii_case(&o))) {
            return Err(refused("cross-origin request refused"));
        }
    }
    let sent = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let want = csrf_token(cookie);
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        sent.as_bytes(),
        want.as_bytes(),
    )) {
        return Err(refused("missing or wrong CSRF token"));
    }
    Ok(())
}

/// An authenticated admin.
#[derive(Clone, Debug)]
pub struct Admin(pub Identity);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let id = Identity::from_request_parts(parts, app).await?;
        if !id.user.is_admin() {
            return Err(ApiError::forbidden("admin role required"));
        }
        if !id.has_scope(Scope::Admin) {
            return Err(ApiError::forbidden("this API key lacks the `admin` scope"));
        }
        Ok(Admin(id))
    }
}
