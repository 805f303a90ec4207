//! Request extractors: [`Identity`] authenticates a request (access token or API key) and
//! checks the API key's scope against the method; [`Admin`] also requires the admin role.

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
            Via::Token(_) | Via::AuthOff => true,
        }
    }

    /// `Ok` when the caller is the owner of something or an admin.
    pub fn may_access(&self, owner_id: Option<&str>) -> bool {
        self.is_admin() || owner_id == Some(self.user.id.as_str())
    }
}

fn credential(parts: &Parts) -> Option<(bool, String)> {
    if let Some(k) = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some((true, k.trim().to_string()));
    }
    let auth = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    // Prometheus and other tools can only send `Authorization: Bearer`; accept keys there too.
    Some((token.starts_with(API_KEY_PREFIX), token.to_string()))
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
        let (is_key, secret) = credential(parts).ok_or_else(|| {
            ApiError::unauthorized(
                "authentication required: send `Authorization: Bearer <token>` or `X-API-Key`",
            )
        })?;
        let identity = if is_key {
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
        } else {
            let claims = app
                .jwt
                .verify(&secret)
                .ok_or_else(|| ApiError::unauthorized("invalid or expired token"))?;
            // Cached per login for 2 s: a logout or a revocation forgets the entry here, and
            // other processes see it within that time.
            let key = session_key(&claims.sub, &claims.sid);
            let user = match app.user_cache.get(&key) {
                Some(u) => u,
                None => {
                    let invalid = || ApiError::unauthorized("invalid or expired token");
                    if !tokens::session_live(&app.db, &claims.sub, &claims.sid).await? {
                        return Err(ApiError::unauthorized(
                            "this login was signed out or revoked; log in again",
                        ));
                    }
                    let u = users::by_id(&app.db, &claims.sub)
                        .await?
                        .ok_or_else(invalid)?;
                    app.user_cache.put(&key, u.clone());
                    u
                }
            };
            Identity {
                user,
                via: Via::Token(claims.sid),
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
