//! Spotify's tokens: the app's own (client credentials) for the catalog, and a connected
//! account's (Authorization Code with PKCE, its refresh token in the vault) for playlists.

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;

use super::{LABEL, SCOPES, SETUP, Spotify, Token, Who};
use crate::failure::{JobError, code};
use crate::providers::{Fetcher, parse_json};

/// A token endpoint's answer.
#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: u64,
    #[serde(default)]
    refresh_token: Option<String>,
}

impl Spotify {
    /// The page a user opens to connect their account.
    pub fn authorize_url(
        &self,
        client_id: &str,
        redirect: &str,
        state: &str,
        challenge: &str,
    ) -> String {
        let mut u = url::Url::parse(&format!("{}/authorize", self.accounts)).unwrap_or_else(|_| {
            url::Url::parse("https://accounts.spotify.com/authorize").expect("static URL")
        });
        u.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("scope", SCOPES)
            .append_pair("code_challenge_method", "S256")
            .append_pair("code_challenge", challenge)
            .append_pair("redirect_uri", redirect)
            .append_pair("state", state);
        u.to_string()
    }

    /// Exchanges a sign-in's code for tokens and keeps the refresh token in the vault.
    pub async fn connect(
        &self,
        code_: &str,
        verifier: &str,
        redirect: &str,
        fetch: &Fetcher,
    ) -> Result<(), JobError> {
        let client_id = fetch.credential("spotify", "client_id").await?;
        let form = form(&[
            ("grant_type", "authorization_code"),
            ("code", code_),
            ("redirect_uri", redirect),
            ("client_id", &client_id),
            ("code_verifier", verifier),
        ]);
        let t = self.token_call(form, None, fetch).await?;
        let refresh = t.refresh_token.clone().ok_or_else(|| {
            JobError::permanent(code::UPSTREAM_ERROR, "Spotify gave no refresh token")
        })?;
        fetch
            .env
            .vault
            .set(&fetch.env.db, "spotify", "refresh_token", &refresh)
            .await
            .map_err(|e| JobError::permanent(code::INTERNAL_ERROR, e.to_string()))?;
        *self.user.lock().expect("token lock") = Some(Token {
            value: t.access_token,
            until: Instant::now() + Duration::from_secs(t.expires_in.saturating_sub(30)),
        });
        Ok(())
    }

    /// POSTs a form to the token endpoint.
    async fn token_call(
        &self,
        form: String,
        basic: Option<String>,
        fetch: &Fetcher,
    ) -> Result<TokenAnswer, JobError> {
        let mut headers = Vec::new();
        if let Some(b) = basic {
            headers.push(("Authorization".to_string(), format!("Basic {b}")));
        }
        let req = musicd_media::request::Request {
            method: Some(reqwest::Method::POST),
            url: format!("{}/api/token", self.accounts),
            headers,
            body: Some((
                "application/x-www-form-urlencoded".into(),
                form.into_bytes(),
            )),
            follow: false,
        };
        let a = fetch.api("spotify", LABEL, req, 64 * 1024).await?;
        if a.status == 200 {
            return parse_json(LABEL, &a.bytes);
        }
        let v: Value = serde_json::from_slice(&a.bytes).unwrap_or_default();
        let err = v["error"].as_str().unwrap_or_default();
        let desc = v["error_description"].as_str().unwrap_or_default();
        Err(match err {
            "invalid_client" | "unauthorized_client" => JobError::permanent(
                code::CREDENTIALS_REJECTED,
                format!("Spotify rejected the app's credentials ({desc}); {SETUP}"),
            ),
            "invalid_grant" => JobError::permanent(
                code::CREDENTIALS_REJECTED,
                format!(
                    "the Spotify sign-in has expired or was revoked ({desc}); an admin connects again with POST /api/v1/providers/spotify/connect"
                ),
            ),
            _ => JobError::permanent(
                code::UPSTREAM_ERROR,
                format!(
                    "Spotify's token endpoint answered HTTP {}: {err} {desc}",
                    a.status
                ),
            ),
        })
    }

    /// A live token for `who`, asked for when there is none (or `fresh` is set).
    pub(super) async fn token(
        &self,
        who: Who,
        fresh: bool,
        fetch: &Fetcher,
    ) -> Result<String, JobError> {
        let slot = match who {
            Who::App => &self.app,
            Who::User => &self.user,
        };
        if !fresh
            && let Some(t) = slot.lock().expect("token lock").as_ref()
            && t.until > Instant::now()
        {
            return Ok(t.value.clone());
        }
        let client_id = fetch.credential("spotify", "client_id").await?;
        let t = match who {
            Who::App => {
                let secret = fetch.credential("spotify", "client_secret").await?;
                let basic = base64::engine::general_purpose::STANDARD
                    .encode(format!("{client_id}:{secret}"));
                self.token_call(
                    form(&[("grant_type", "client_credentials")]),
                    Some(basic),
                    fetch,
                )
                .await?
            }
            Who::User => {
                let refresh = match fetch
                    .env
                    .vault
                    .get(&fetch.env.db, "spotify", "refresh_token")
                    .await
                {
                    Ok(Some(r)) => r,
                    _ => {
                        return Err(JobError::permanent(
                            code::CREDENTIALS_MISSING,
                            "reading a Spotify playlist needs a signed-in account since February 2026: \
                             an admin connects one with POST /api/v1/providers/spotify/connect",
                        ));
                    }
                };
                let t = self
                    .token_call(
                        form(&[
                            ("grant_type", "refresh_token"),
                            ("refresh_token", &refresh),
                            ("client_id", &client_id),
                        ]),
                        None,
                        fetch,
                    )
                    .await?;
                // A PKCE refresh token may be single-use: keep the new one.
                if let Some(new) = t.refresh_token.as_deref().filter(|n| *n != refresh) {
                    let _ = fetch
                        .env
                        .vault
                        .set(&fetch.env.db, "spotify", "refresh_token", new)
                        .await;
                }
                t
            }
        };
        let value = t.access_token.clone();
        *slot.lock().expect("token lock") = Some(Token {
            value: t.access_token,
            until: Instant::now() + Duration::from_secs(t.expires_in.saturating_sub(30)),
        });
        Ok(value)
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}
