//! `GET /resolve?url=`: what a link is, without downloading: its provider, kind and id, title,
//! cover and tracks (title, artists, album, length, ISRC, and whether each is already in the
//! library). An artist answers with its releases instead of every track.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiResult;
use super::extract::ApiQuery;
use super::ok;
use super::providers::{Scratch, Target, check_target};
use crate::api::identity::Identity;
use crate::api::state::AppState;
use crate::providers::{Release, Resolved, TrackInfo};

/// The link to look at.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ResolveQuery {
    /// Any link: Spotify, Deezer, MusicBrainz, Jamendo, a feed, a page, a file.
    #[param(max_length = 4096)]
    pub url: String,
}

/// What a link is.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkInfo {
    /// The provider it goes to (`spotify`, `deezer`, `podcast`, `http`, `ytdlp`, …).
    pub provider: String,
    /// Its kind (`track`, `album`, `playlist`, `artist`, `feed`, `url`).
    pub kind: String,
    /// Its id within the provider (a URL for web links).
    pub id: String,
    /// Its title, when known before downloading.
    pub title: Option<String>,
    /// Its cover (the first track's).
    pub cover_url: Option<String>,
    /// Its tracks in order.
    pub tracks: Vec<LinkTrack>,
    /// An artist's releases, newest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub releases: Vec<Release>,
}

/// One track of a link.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkTrack {
    /// Its id within the provider.
    pub id: String,
    /// Title.
    pub title: Option<String>,
    /// Artists.
    pub artists: Vec<String>,
    /// Album.
    pub album: Option<String>,
    /// Length in milliseconds.
    pub duration_ms: Option<u64>,
    /// ISRC.
    pub isrc: Option<String>,
    /// Whether the library already holds it (same ISRC or catalog id).
    pub in_library: bool,
    /// Why it cannot be had, when the catalog says so.
    pub unavailable: Option<String>,
}

/// What a link is, without downloading anything.
#[utoipa::path(get, path = "/resolve", tag = "downloads", params(ResolveQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "What the link is", body = LinkInfo),
        (status = 502, description = "The upstream failed")))]
pub async fn resolve(
    State(app): State<AppState>,
    _id: Identity,
    ApiQuery(q): ApiQuery<ResolveQuery>,
) -> ApiResult<Response> {
    let target = check_target(&app, Some(&q.url), None, None, None, None, None).await?;
    let scratch = Scratch::new(&app)?;
    let (provider, kind, id) = match target {
        Target::Item { provider, kind, id } => (provider, kind, id),
        Target::Url(u) => {
            // A feed is read; anything else (a file, a page) is known only when downloaded.
            let podcast = app.shared.providers.get("podcast");
            let feed = match podcast {
                Some(p) => p.resolve("feed", u.as_str(), &scratch.fetch).await.ok(),
                None => None,
            };
            let Some(feed) = feed else {
                return Ok(ok(LinkInfo {
                    provider: "http".into(),
                    kind: "url".into(),
                    id: u.to_string(),
                    title: crate::providers::url_stem(u.as_str()),
                    cover_url: None,
                    tracks: Vec::new(),
                    releases: Vec::new(),
                }));
            };
            return Ok(ok(describe(&app, "podcast", "feed", u.as_str(), feed).await));
        }
    };
    let p =
        app.shared.providers.get(&provider).ok_or_else(|| {
            super::error::ApiError::not_found(format!("no provider `{provider}`"))
        })?;
    if kind == "artist"
        && let Some(d) = p.discography(&id, &scratch.fetch).await
    {
        let d = d?;
        return Ok(ok(LinkInfo {
            provider,
            kind,
            id,
            title: d.name,
            cover_url: d.releases.first().and_then(|r| r.image_url.clone()),
            tracks: Vec::new(),
            releases: d.releases,
        }));
    }
    let resolved = p.resolve(&kind, &id, &scratch.fetch).await?;
    Ok(ok(describe(&app, &provider, &kind, &id, resolved).await))
}

async fn describe(app: &AppState, provider: &str, kind: &str, id: &str, r: Resolved) -> LinkInfo {
    let (title, tracks) = match r {
        Resolved::Track { track } => (track.title.clone(), vec![track]),
        Resolved::Collection { title, tracks, .. } => (title, tracks),
    };
    let mut out = Vec::with_capacity(tracks.len());
    for t in &tracks {
        out.push(LinkTrack {
            in_library: in_library(app, provider, t).await,
            id: t.id.clone(),
            title: t.title.clone(),
            artists: t.artists.clone(),
            album: t.album.clone(),
            duration_ms: t.duration_ms,
            isrc: t.isrc.clone(),
            unavailable: t.unavailable.clone(),
        });
    }
    LinkInfo {
        provider: provider.into(),
        kind: kind.into(),
        id: id.into(),
        title,
        cover_url: tracks.iter().find_map(|t| t.cover_url.clone()),
        tracks: out,
        releases: Vec::new(),
    }
}

/// Whether the library holds a file of this track (by catalog id or ISRC).
async fn in_library(app: &AppState, provider: &str, t: &TrackInfo) -> bool {
    let source_id = format!("{provider}:{}", t.id);
    matches!(
        crate::db::library::find_same(&app.db, None, Some(&source_id), t.isrc.as_deref()).await,
        Ok(Some(found)) if std::path::Path::new(&found.path).is_file()
    )
}
