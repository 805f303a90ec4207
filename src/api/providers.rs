//! `/providers`: the sources musicd can download from, and what one of them knows about an
//! item before anything is downloaded.

use axum::extract::{Path, State};
use axum::response::Response;

use super::error::{ApiError, ApiResult};
use super::extract::ApiQuery;
use super::ok;
use crate::api::identity::Identity;
use crate::api::state::AppState;
use crate::failure::JobError;
use crate::failure::code;
use crate::links::Link;
use crate::providers::{Fetcher, URL_ID_PROVIDERS, parse_user_url};

/// Every provider with the kinds it resolves.
#[utoipa::path(get, path = "/providers", tag = "discovery", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The providers")))]
pub async fn list(State(app): State<AppState>, _id: Identity) -> ApiResult<Response> {
    let staging = app.config.data_dir.join("staging");
    let fetcher = Fetcher::new(app.shared.env.clone(), staging, app.shutdown.child_token());
    let mut items = Vec::new();
    for p in app.shared.providers.all() {
        let info = p.info();
        let status = p.status(&fetcher).await;
        let paused_until = app
            .shared
            .limits
            .paused_until(&crate::providers::provider_key(info.name))
            .map(|until| {
                let left = until.saturating_duration_since(std::time::Instant::now());
                crate::db::now_ms() + left.as_millis() as i64
            });
        items.push(serde_json::json!({
            "name": info.name,
            "kinds": info.kinds,
            "description": info.description,
            "available": status.is_ok(),
            "problem": status.err(),
            "limits": p.limits(),
            "paused_until": paused_until,
        }));
    }
    Ok(ok(serde_json::json!({ "items": items })))
}

/// Paging and filtering of an artist's releases.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InfoQuery {
    /// For an artist: keep these release types (comma-separated: `album`, `single`,
    /// `compilation`, `appears_on`).
    release_types: Option<String>,
    /// For an artist: releases per page (1–200, default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// For an artist: the `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Metadata of an item as the provider resolves it: a feed, album or playlist with its
/// tracks, a track; an artist with its releases (filtered and paginated) where the provider
/// lists releases. For `http` and `podcast` the id is the URL, percent-encoded.
#[utoipa::path(get, path = "/providers/{provider}/{kind}/{id}", tag = "discovery",
    params(("provider" = String, Path, description = "Provider name"), ("kind" = String, Path, description = "Kind, e.g. `feed`"),
        ("id" = String, Path, description = "Id within the provider (a URL for http and podcast)"), InfoQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The resolved item"), (status = 404, description = "No such provider"),
        (status = 502, description = "The upstream failed")))]
pub async fn info(
    State(app): State<AppState>,
    _id: Identity,
    Path((provider, kind, item)): Path<(String, String, String)>,
    ApiQuery(q): ApiQuery<InfoQuery>,
) -> ApiResult<Response> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::validation(Some("limit"), "between 1 and 200"));
    }
    let offset: usize = match &q.cursor {
        Some(c) => c
            .parse()
            .map_err(|_| ApiError::validation(Some("cursor"), "not a cursor from this API"))?,
        None => 0,
    };
    let types: Vec<String> = q
        .release_types
        .iter()
        .flat_map(|t| t.split(','))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    check_release_types(&types)?;
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
    let scratch = Scratch::new(&app)?;
    let fetcher = &scratch.fetch;
    let discography = if kind == "artist" {
        p.discography(&item, fetcher).await
    } else {
        None
    };
    let answer = match discography {
        Some(d) => d.map(|d| {
            let kept: Vec<_> = d
                .releases
                .into_iter()
                .filter(|r| types.is_empty() || types.contains(&r.release_type))
                .collect();
            let total = kept.len();
            let items: Vec<_> = kept.into_iter().skip(offset).take(limit as usize).collect();
            let next = offset + items.len();
            serde_json::json!({
                "kind": "artist",
                "name": d.name,
                "releases": {
                    "items": items,
                    "total": total,
                    "next_cursor": (next < total).then(|| next.to_string()),
                },
            })
        }),
        None => p
            .resolve(&kind, &item, fetcher)
            .await
            .map(|r| serde_json::to_value(r).unwrap_or_default()),
    };
    drop(scratch);
    match answer {
        Ok(r) => Ok(ok(r)),
        Err(JobError::Permanent {
            code: code::VALIDATION_ERROR,
            message,
        }) => Err(ApiError::validation(Some("id"), message)),
        Err(e) => Err(e.into()),
    }
}

/// Release types an artist's releases can be filtered by.
pub const RELEASE_TYPES: &[&str] = &["album", "single", "compilation", "appears_on"];

/// Refuses a release type that is not one of [`RELEASE_TYPES`], naming the field.
pub fn check_release_types(types: &[String]) -> Result<(), ApiError> {
    match types.iter().find(|t| !RELEASE_TYPES.contains(&t.as_str())) {
        Some(bad) => Err(ApiError::validation(
            Some("release_types"),
            format!("`{bad}` is not one of {}", RELEASE_TYPES.join(", ")),
        )),
        None => Ok(()),
    }
}

/// A fetcher for provider work done inside a request, staging in a directory of its own that
/// is removed when this is dropped.
pub struct Scratch {
    /// The fetcher.
    pub fetch: Fetcher,
}

impl Scratch {
    /// A fresh staging directory under the data dir.
    pub fn new(app: &AppState) -> Result<Self, ApiError> {
        let staging = app
            .config
            .data_dir
            .join("staging")
            .join(format!("api-{}", crate::db::new_id()));
        std::fs::create_dir_all(&staging).map_err(ApiError::internal)?;
        Ok(Self {
            fetch: Fetcher::new(app.shared.env.clone(), staging, app.shutdown.child_token()),
        })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.fetch.staging);
    }
}

/// What a request names: a URL, or a provider's kind and id.
pub enum Target {
    /// A checked `http(s)` URL.
    Url(url::Url),
    /// A provider item; for URL-based providers the id is a checked URL.
    Item {
        /// Provider name.
        provider: String,
        /// One of its kinds.
        kind: String,
        /// Id within it.
        id: String,
    },
}

/// Providers whose artists can be filtered by release type.
const RELEASE_TYPE_PROVIDERS: &[&str] = &["spotify", "deezer", "musicbrainz", "jamendo"];

/// Checks that a request names either a `url` (any link: routed to its provider by
/// [`crate::links::route`], short links followed) or a `provider` with `kind` and `id`; that
/// the kind is the provider's (and among `only`, when given); that the provider is set up;
/// and that `release_types`, when given, can be honoured. Errors name the field.
pub async fn check_target(
    app: &AppState,
    url: Option<&str>,
    provider: Option<&str>,
    kind: Option<&str>,
    id: Option<&str>,
    only: Option<&[&str]>,
    release_types: Option<&[String]>,
) -> Result<Target, ApiError> {
    let target = match (url, provider) {
        (Some(_), Some(_)) => {
            return Err(ApiError::validation(
                Some("url"),
                "give either `url` or `provider`/`kind`/`id`, not both",
            ));
        }
        (Some(raw), None) => {
            let link =
                crate::links::route(raw).map_err(|m| ApiError::validation(Some("url"), m))?;
            let link = match link {
                Link::Short { provider, url } => follow_short(app, provider, &url).await?,
                other => other,
            };
            match link {
                Link::Item { provider, kind, id } => {
                    item(app, "url", provider, Some(kind), Some(&id), only)?
                }
                Link::Web(u) => Target::Url(u),
                Link::Short { url, .. } => {
                    return Err(ApiError::validation(
                        Some("url"),
                        format!("the short link {url} leads nowhere musicd knows"),
                    ));
                }
            }
        }
        (None, Some(p)) => item(app, "provider", p, kind, id, only)?,
        (None, None) => {
            return Err(ApiError::validation(
                Some("url"),
                "`url` (or `provider`, `kind` and `id`) is required",
            ));
        }
    };
    if let Target::Item { provider, kind, .. } = &target {
        let field = if url.is_some() { "url" } else { "provider" };
        let p = app.shared.providers.get(provider).ok_or_else(|| {
            ApiError::validation(Some(field), format!("unknown provider `{provider}`"))
        })?;
        let scratch = Scratch::new(app)?;
        if let Err(why) = p.status(&scratch.fetch).await {
            return Err(ApiError::validation(
                Some(field),
                format!("this is a {provider} {kind}, but {provider} is not set up: {why}"),
            ));
        }
    }
    if let Some(types) = release_types.filter(|t| !t.is_empty()) {
        check_release_types(types)?;
        let fits = matches!(&target, Target::Item { provider, kind, .. }
            if kind == "artist" && RELEASE_TYPE_PROVIDERS.contains(&provider.as_str()));
        if !fits {
            let what = match &target {
                Target::Item { provider, kind, .. } => format!("a {provider} {kind}"),
                Target::Url(_) => "a web page or feed".to_string(),
            };
            return Err(ApiError::validation(
                Some("release_types"),
                format!(
                    "`release_types` applies to an artist of {}; this is {what}",
                    RELEASE_TYPE_PROVIDERS.join(", ")
                ),
            ));
        }
    }
    Ok(target)
}

/// A provider item named by a request or a routed link; `field` is where it came from.
fn item(
    app: &AppState,
    field: &str,
    p: &str,
    kind: Option<&str>,
    id: Option<&str>,
    only: Option<&[&str]>,
) -> Result<Target, ApiError> {
    let provider = app
        .shared
        .providers
        .get(p)
        .ok_or_else(|| ApiError::validation(Some(field), format!("unknown provider `{p}`")))?;
    let kinds = provider.info().kinds;
    let kind = kind.ok_or_else(|| ApiError::validation(Some("kind"), "`kind` is required"))?;
    if !kinds.contains(&kind) || only.is_some_and(|o| !o.contains(&kind)) {
        let want = only.map_or(String::new(), |o| format!(" (here: {})", o.join(", ")));
        let field = if field == "url" { "url" } else { "kind" };
        return Err(ApiError::validation(
            Some(field),
            format!(
                "this is a {p} {kind}; provider `{p}` has kinds {}{want}",
                kinds.join(", ")
            ),
        ));
    }
    let id = id
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| ApiError::validation(Some("id"), "`id` is required"))?;
    let id = if URL_ID_PROVIDERS.contains(&p) {
        parse_user_url(id)
            .map_err(|m| ApiError::validation(Some("id"), format!("{p} ids are URLs: {m}")))?
            .to_string()
    } else {
        id.to_string()
    };
    Ok(Target::Item {
        provider: p.to_string(),
        kind: kind.to_string(),
        id,
    })
}

/// Follows a provider's short link (a few redirects at most, through the address guard) to
/// the item it names.
async fn follow_short(app: &AppState, provider: &str, url: &url::Url) -> Result<Link, ApiError> {
    let scratch = Scratch::new(app)?;
    let mut at = url.clone();
    for _ in 0..4 {
        let req = musicd_media::request::Request {
            url: at.to_string(),
            follow: false,
            ..Default::default()
        };
        let a = scratch
            .fetch
            .api(provider, "a short link", req, 256 * 1024)
            .await
            .map_err(ApiError::from)?;
        let next = match a.location.as_deref() {
            Some(loc) => at.join(loc).ok(),
            // Some short links answer with a page that names the target.
            None => find_link(&String::from_utf8_lossy(&a.bytes)),
        };
        let Some(next) = next else { break };
        match crate::links::route(next.as_str()) {
            Ok(Link::Item { .. }) => return Ok(crate::links::route(next.as_str()).expect("routed")),
            Ok(Link::Short { .. }) => at = next,
            _ => break,
        }
    }
    Err(ApiError::validation(
        Some("url"),
        format!(
            "the {provider} short link {url} did not lead to a track, album, playlist or artist"
        ),
    ))
}

/// The first Spotify or Deezer item link in a page.
fn find_link(page: &str) -> Option<url::Url> {
    for marker in ["https://open.spotify.com/", "https://www.deezer.com/"] {
        if let Some(i) = page.find(marker) {
            let rest = &page[i..];
            let end = rest
                .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>'))
                .unwrap_or(rest.len());
            if let Ok(u) = url::Url::parse(&rest[..end]) {
                return Some(u);
            }
        }
    }
    None
}
