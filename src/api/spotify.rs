//! Connecting a Spotify account (Authorization Code with PKCE), which reading playlists needs
//! since February 2026: `POST /providers/spotify/connect` (admin) answers the page to open;
//! Spotify sends the browser back to `GET /providers/spotify/callback` with a code and the
//! single-use `state`, and the daemon keeps the refresh token in the vault. The pending
//! sign-ins live in this process for ten minutes.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult};
use super::extract::ApiQuery;
use super::ok;
use super::providers::Scratch;
use crate::api::identity::Admin;
use crate::api::state::AppState;

/// How long a sign-in may take.
const PENDING_FOR: Duration = Duration::from_secs(600);

struct Pending {
    verifier: String,
    redirect: String,
    at: Instant,
}

static PENDING: LazyLock<Mutex<HashMap<String, Pending>>> = LazyLock::new(Default::default);

/// The page to open.
#[derive(Debug, Serialize, ToSchema)]
pub struct Connect {
    /// Open this in a browser and sign in to Spotify.
    pub authorize_url: String,
    /// Where Spotify sends the browser back: register it in the Spotify app.
    pub redirect_uri: String,
    /// Seconds the sign-in may take.
    pub expires_in: u64,
}

fn random_token(bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// The callback URL Spotify sends the browser back to.
fn redirect_uri(app: &AppState) -> String {
    let configured = &app.config.providers.spotify.redirect_url;
    if !configured.is_empty() {
        return configured.clone();
    }
    let mut addr = app.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{addr}/api/v1/providers/spotify/callback")
}

/// Starts connecting a Spotify account: answers the page to open. The app's `client_id`
/// must be stored first.
#[utoipa::path(post, path = "/providers/spotify/connect", tag = "matching",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The page to open", body = Connect),
        (status = 400, description = "The app's client id is not stored")))]
pub async fn connect(State(app): State<AppState>, _admin: Admin) -> ApiResult<Response> {
    let scratch = Scratch::new(&app)?;
    let client_id = scratch
        .fetch
        .credential("spotify", "client_id")
        .await
        .map_err(|e| ApiError::validation(None, e.to_string()))?;
    let verifier = random_token(48);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let state = random_token(24);
    let redirect = redirect_uri(&app);
    let url = app
        .shared
        .providers
        .spotify()
        .authorize_url(&client_id, &redirect, &state, &challenge);
    {
        let mut pending = PENDING.lock().expect("pending lock");
        pending.retain(|_, p| p.at.elapsed() < PENDING_FOR);
        pending.insert(
            state,
            Pending {
                verifier,
                redirect: redirect.clone(),
                at: Instant::now(),
            },
        );
    }
    Ok(ok(Connect {
        authorize_url: url,
        redirect_uri: redirect,
        expires_in: PENDING_FOR.as_secs(),
    }))
}

/// What Spotify sends the browser back with.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Callback {
    /// The sign-in's code.
    pub code: Option<String>,
    /// The single-use state of `connect`.
    pub state: Option<String>,
    /// Why the sign-in did not happen (`access_denied`).
    pub error: Option<String>,
}

/// Where Spotify sends the browser back: finishes the sign-in started by `connect` (its
/// single-use `state` is the credential) and keeps the refresh token.
#[utoipa::path(get, path = "/providers/spotify/callback", tag = "matching", params(Callback),
    responses((status = 200, description = "Connected (a page saying so)", content_type = "text/plain", body = String),
        (status = 400, description = "Unknown or expired state, or the sign-in was refused")))]
pub async fn callback(
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<Callback>,
) -> ApiResult<Response> {
    let pending = q
        .state
        .as_deref()
        .and_then(|s| PENDING.lock().expect("pending lock").remove(s))
        .filter(|p| p.at.elapsed() < PENDING_FOR)
        .ok_or_else(|| {
            ApiError::validation(Some("state"), "unknown or expired sign-in: start again with POST /api/v1/providers/spotify/connect")
        })?;
    if let Some(e) = q.error {
        return Err(ApiError::validation(
            Some("error"),
            format!("Spotify did not connect: {e}"),
        ));
    }
    let code_ = q
        .code
        .ok_or_else(|| ApiError::validation(Some("code"), "Spotify sent no code"))?;
    let scratch = Scratch::new(&app)?;
    app.shared
        .providers
        .spotify()
        .connect(&code_, &pending.verifier, &pending.redirect, &scratch.fetch)
        .await?;
    tracing::info!("a Spotify account was connected");
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Spotify is connected to musicd. You can close this page.\n",
    )
        .into_response())
}
