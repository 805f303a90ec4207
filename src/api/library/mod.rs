//! `/library`: the indexed tracks, artists and albums; tag edits; and the audio itself with
//! `Range` and `ETag`, also through short-lived signed links for `<audio src>`.

mod covers;
mod edit;
mod files;
pub use covers::*;
pub use edit::*;
pub use files::*;

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery};
use super::ok;
use crate::api::identity::Identity;
use crate::api::state::AppState;
use crate::db::library::{self, Filter, Track};

/// Filters and paging of `GET /library/tracks`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TrackQuery {
    /// Words searched in title, artist and album.
    q: Option<String>,
    /// Artist id.
    artist: Option<String>,
    /// Album id.
    album: Option<String>,
    /// Genre.
    genre: Option<String>,
    /// Year.
    year: Option<i64>,
    /// Format (`mp3`, `flac`, …).
    format: Option<String>,
    /// Tracks per page (1–500, default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

fn check_limit(limit: Option<i64>) -> ApiResult<i64> {
    let limit = limit.unwrap_or(100);
    if (1..=500).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::validation(Some("limit"), "between 1 and 500"))
    }
}

/// Tracks in the library, newest first.
#[utoipa::path(get, path = "/library/tracks", tag = "library", params(TrackQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of tracks")))]
pub async fn tracks(
    State(app): State<AppState>,
    _id: Identity,
    ApiQuery(q): ApiQuery<TrackQuery>,
) -> ApiResult<Response> {
    let limit = check_limit(q.limit)?;
    let after = q
        .cursor
        .as_deref()
        .map(super::tasks::parse_cursor)
        .transpose()?;
    let filter = Filter {
        q: q.q,
        artist_id: q.artist,
        album_id: q.album,
        genre: q.genre,
        year: q.year,
        format: q.format,
    };
    let mut items = library::list(&app.db, &filter, after, limit + 1).await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|t| format!("{}_{}", t.added_at, t.id))
    } else {
        None
    };
    Ok(ok(json!({ "items": items, "next_cursor": next_cursor })))
}

async fn track(app: &AppState, id: &str) -> ApiResult<Track> {
    library::get(&app.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no track {id}")))
}

/// One track.
#[utoipa::path(get, path = "/library/tracks/{id}", tag = "library",
    params(("id" = String, Path, description = "Track id")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The track"), (status = 404, description = "No such track")))]
pub async fn get_track(
    State(app): State<AppState>,
    _id: Identity,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<Response> {
    Ok(ok(track(&app, &id).await?))
}

/// Paging of artists and albums.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NameQuery {
    /// Albums of this artist id (`/library/albums` only).
    artist: Option<String>,
    /// Items per page (1–500, default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Artists with tracks in the library, by name.
#[utoipa::path(get, path = "/library/artists", tag = "library", params(NameQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of artists")))]
pub async fn artists(
    State(app): State<AppState>,
    _id: Identity,
    ApiQuery(q): ApiQuery<NameQuery>,
) -> ApiResult<Response> {
    let limit = check_limit(q.limit)?;
    let mut items = library::artists(&app.db, q.cursor.as_deref(), limit + 1).await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|a| a.name.trim().to_lowercase())
    } else {
        None
    };
    Ok(ok(json!({ "items": items, "next_cursor": next_cursor })))
}

/// Albums with tracks in the library, by title.
#[utoipa::path(get, path = "/library/albums", tag = "library", params(NameQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of albums")))]
pub async fn albums(
    State(app): State<AppState>,
    _id: Identity,
    ApiQuery(q): ApiQuery<NameQuery>,
) -> ApiResult<Response> {
    let limit = check_limit(q.limit)?;
    let mut rows =
        library::albums(&app.db, q.artist.as_deref(), q.cursor.as_deref(), limit + 1).await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|(_, k)| k.clone())
    } else {
        None
    };
    let items: Vec<_> = rows.into_iter().map(|(a, _)| a).collect();
    Ok(ok(json!({ "items": items, "next_cursor": next_cursor })))
}

/// One album with its tracks, by disc and track number.
#[utoipa::path(get, path = "/library/albums/{id}", tag = "library",
    params(("id" = String, Path, description = "Album id")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The album and `tracks`"), (status = 404, description = "No such album")))]
pub async fn album(
    State(app): State<AppState>,
    _id: Identity,
    UrlPath(album_id): UrlPath<String>,
) -> ApiResult<Response> {
    let a = library::album(&app.db, &album_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no album {album_id}")))?;
    let tracks = library::album_tracks(&app.db, &album_id).await?;
    let mut v = serde_json::to_value(a).unwrap_or_default();
    v["tracks"] = json!(tracks);
    Ok(ok(v))
}
