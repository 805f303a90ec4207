//! `/library`: the indexed tracks, artists and albums; tag edits; and the audio itself with
//! `Range` and `ETag`, also through short-lived signed links for `<audio src>`.

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
use crate::app::AppState;
use crate::auth::Identity;
use crate::db::library::{self, Filter, Track};

/// How long a signed file link works.
const LINK_TTL_MS: i64 = 15 * 60 * 1000;

/// Chunk size when streaming a file.
const CHUNK: usize = 1024 * 1024;

/// Filters and paging of `GET /library/tracks`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
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

/// Tag changes; absent fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagPatch {
    /// Title.
    pub title: Option<String>,
    /// Artists.
    pub artists: Option<Vec<String>>,
    /// Album.
    pub album: Option<String>,
    /// Album artist.
    pub album_artist: Option<String>,
    /// Track number.
    pub track_number: Option<u32>,
    /// Disc number.
    pub disc_number: Option<u32>,
    /// Date (`YYYY` or `YYYY-MM-DD`).
    pub date: Option<String>,
    /// Genres.
    pub genres: Option<Vec<String>>,
}

/// The owner or an admin; 403 otherwise.
fn may_change(id: &Identity, t: &Track) -> ApiResult<()> {
    if id.may_access(t.owner_id.as_deref()) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only the track's owner or an admin may change it",
        ))
    }
}

/// Edit a track's tags. The file's tags are rewritten atomically (a copy is tagged, synced
/// and renamed over it); when the library's path template gives a new path, the file moves.
#[utoipa::path(patch, path = "/library/tracks/{id}", tag = "library", request_body = TagPatch,
    params(("id" = String, Path, description = "Track id")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The track"), (status = 403, description = "Not the owner"),
        (status = 404, description = "No such track"), (status = 409, description = "Another file is at the new path")))]
pub async fn patch_track(
    State(app): State<AppState>,
    id: Identity,
    UrlPath(track_id): UrlPath<String>,
    ApiJson(p): ApiJson<TagPatch>,
) -> ApiResult<Response> {
    let t = track(&app, &track_id).await?;
    may_change(&id, &t)?;
    let library_dir = app
        .config
        .library_dir
        .canonicalize()
        .map_err(ApiError::internal)?;
    let path = PathBuf::from(&t.path);
    // The indexed path itself must be a regular file, not a link to somewhere else.
    let regular = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file());
    if !regular {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "the indexed path is not a regular file (a symbolic link, or gone)",
        ));
    }
    if !path.starts_with(&library_dir) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "the file is outside the library (indexed by a scan); edit it where it lives",
        ));
    }
    let popts = app
        .config
        .media
        .process_options(None, None, None)
        .map_err(ApiError::internal)?;
    let moved = tokio::task::spawn_blocking(move || retag(&path, &library_dir, &p, &popts))
        .await
        .map_err(ApiError::internal)??;
    if moved.as_os_str() != t.path.as_str() {
        library::set_path(&app.db, &t.id, &moved.display().to_string()).await?;
    }
    app.track_cache.forget(&t.id);
    let origin = crate::library::Origin {
        owner: t.owner_id.clone(),
        source_hash: t.source_hash.clone(),
        source_id: t.source_id.clone(),
    };
    let updated = crate::library::index_file(&app.db, &moved, origin)
        .await
        .map_err(ApiError::internal)?;
    Ok(ok(updated))
}

/// Rewrites the tags of `path` and moves it where the template puts it; returns where it is.
fn retag(
    path: &Path,
    library: &Path,
    p: &TagPatch,
    popts: &musicd_workers::ProcessOptions,
) -> ApiResult<PathBuf> {
    use musicd_workers::tags::{GainTags, read_tags, write_tags};
    let mut meta = read_tags(path).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported_media_type",
            e.message,
        )
    })?;
    if let Some(v) = &p.title {
        meta.title = Some(v.clone());
    }
    if let Some(v) = &p.artists {
        meta.artists = v.clone();
    }
    if let Some(v) = &p.album {
        meta.album = Some(v.clone());
    }
    if let Some(v) = &p.album_artist {
        meta.album_artist = Some(v.clone());
    }
    if let Some(v) = p.track_number {
        meta.track_number = Some(v);
    }
    if let Some(v) = p.disc_number {
        meta.disc_number = Some(v);
    }
    if let Some(v) = &p.date {
        meta.date = Some(v.clone());
    }
    if let Some(v) = &p.genres {
        meta.genres = v.clone();
    }
    let dir = path.parent().unwrap_or(library);
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".tmp-{:016x}.{ext}", rand::random::<u64>()));
    let done = (|| -> ApiResult<()> {
        std::fs::copy(path, &tmp).map_err(ApiError::internal)?;
        write_tags(&tmp, &meta, &GainTags::default(), &popts.tags, true)
            .map_err(|e| ApiError::validation(None, e.message))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(ApiError::internal)?;
        std::fs::rename(&tmp, path).map_err(ApiError::internal)
    })();
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done?;
    // Where the template puts it now.
    let rel = popts
        .template
        .render(&meta, &ext)
        .map_err(|e| ApiError::validation(None, e.message))?;
    let dest = musicd_workers::naming::contained_path(library, &rel)
        .map_err(|e| ApiError::validation(None, e.message))?;
    if dest == path {
        return Ok(dest);
    }
    let taken = || {
        ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "another file is already at {}",
                dest.strip_prefix(library).unwrap_or(&dest).display()
            ),
        )
    };
    if let Some(parent) = dest.parent() {
        // A symlinked folder inside the library must not lead the file (or a new folder)
        // out of it: no component below the library may be a link.
        let mut at = library.to_path_buf();
        for part in parent
            .strip_prefix(library)
            .unwrap_or(Path::new(""))
            .components()
        {
            at.push(part);
            if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    format!(
                        "{} is a symbolic link; musicd does not move files through links",
                        at.strip_prefix(library).unwrap_or(&at).display()
                    ),
                ));
            }
        }
        std::fs::create_dir_all(parent).map_err(ApiError::internal)?;
    }
    // Link, then unlink: the link fails if anything appeared at `dest` meanwhile, so a move
    // never replaces a file (a check followed by a rename could).
    match std::fs::hard_link(path, &dest) {
        Ok(()) => std::fs::remove_file(path).map_err(ApiError::internal)?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(taken()),
        Err(e) => return Err(ApiError::internal(e)),
    }
    if let Some(parent) = dest.parent() {
        let _ = std::fs::File::open(parent).and_then(|d| d.sync_all());
    }
    // Leave no empty album folder behind.
    let mut old = path.parent();
    while let Some(d) = old.filter(|d| *d != library && d.starts_with(library)) {
        if std::fs::remove_dir(d).is_err() {
            break;
        }
        old = d.parent();
    }
    Ok(dest)
}

/// Delete a track: its file and its row (the owner, or an admin).
#[utoipa::path(delete, path = "/library/tracks/{id}", tag = "library",
    params(("id" = String, Path, description = "Track id")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Deleted"), (status = 403, description = "Not the owner"),
        (status = 404, description = "No such track")))]
pub async fn delete_track(
    State(app): State<AppState>,
    id: Identity,
    UrlPath(track_id): UrlPath<String>,
) -> ApiResult<Response> {
    let t = track(&app, &track_id).await?;
    may_change(&id, &t)?;
    match tokio::fs::remove_file(&t.path).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ApiError::internal(e)),
    }
    library::delete(&app.db, &t.id).await?;
    app.track_cache.forget(&t.id);
    Ok(ok(json!({ "deleted": t.id })))
}

/// The audio of a track. `Range` (one range) answers 206 with exactly those bytes; `ETag` and
/// `If-None-Match` answer 304; `Content-Type` follows the format.
#[utoipa::path(get, path = "/library/tracks/{id}/file", tag = "library",
    params(("id" = String, Path, description = "Track id")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The file"), (status = 206, description = "The range asked for"),
        (status = 304, description = "Not modified"), (status = 404, description = "No such track"),
        (status = 416, description = "Range not satisfiable")))]
pub async fn file(
    State(app): State<AppState>,
    _id: Identity,
    UrlPath(track_id): UrlPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let t = streamed(&app, &track_id).await?;
    serve(&t, &headers).await
}

/// A track about to be streamed: players send many range requests in a row.
async fn streamed(app: &AppState, id: &str) -> ApiResult<Track> {
    if let Some(t) = app.track_cache.get(id) {
        return Ok(t);
    }
    let t = track(app, id).await?;
    app.track_cache.put(id, t.clone());
    Ok(t)
}

/// A link to the audio that works without headers (for `<audio src>`), for 15 minutes.
#[utoipa::path(post, path = "/library/tracks/{id}/link", tag = "library",
    params(("id" = String, Path, description = "Track id")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "`{url, expires_at}`: a path under this server"),
        (status = 404, description = "No such track")))]
pub async fn link(
    State(app): State<AppState>,
    _id: Identity,
    UrlPath(track_id): UrlPath<String>,
) -> ApiResult<Response> {
    let t = track(&app, &track_id).await?;
    let expires = crate::db::now_ms() + LINK_TTL_MS;
    let sig = sign(&app.link_key, &t.id, expires);
    Ok(ok(json!({
        "url": format!("/api/v1/library/stream/{}?expires={expires}&signature={sig}", t.id),
        "expires_at": expires,
    })))
}

/// The MAC of a link to `id` valid until `expires`.
fn link_mac(key: &[u8], id: &str, expires: i64) -> Hmac<sha2::Sha256> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    mac.update(format!("{id}\n{expires}").as_bytes());
    mac
}

/// The signature of a link to `id` valid until `expires`.
fn sign(key: &[u8], id: &str, expires: i64) -> String {
    hex::encode(link_mac(key, id, expires).finalize().into_bytes())
}

/// A signed link's query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LinkQuery {
    /// Unix ms after which the link no longer works.
    expires: i64,
    /// From `POST /library/tracks/{id}/link`.
    signature: String,
}

/// The audio through a signed link (no other credentials), as `GET /library/tracks/{id}/file`.
#[utoipa::path(get, path = "/library/stream/{id}", tag = "library",
    params(("id" = String, Path, description = "Track id"), LinkQuery),
    responses((status = 200, description = "The file"), (status = 206, description = "The range asked for"),
        (status = 401, description = "Missing, wrong or expired signature")))]
pub async fn stream(
    State(app): State<AppState>,
    UrlPath(track_id): UrlPath<String>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let q = raw
        .as_deref()
        .and_then(|r| serde_urlencoded::from_str::<LinkQuery>(r).ok())
        .ok_or_else(|| ApiError::unauthorized("a signed link is needed"))?;
    // Compared in constant time.
    let good = hex::decode(&q.signature).is_ok_and(|s| {
        link_mac(&app.link_key, &track_id, q.expires)
            .verify_slice(&s)
            .is_ok()
    });
    if !good || q.expires < crate::db::now_ms() {
        return Err(ApiError::unauthorized(
            "the link is not valid or has expired",
        ));
    }
    let t = streamed(&app, &track_id).await?;
    serve(&t, &headers).await
}

/// `len` bytes of `f` from `start`, read by a blocking thread in large chunks a little ahead
/// of the socket (tokio's file reads would each hop to the blocking pool).
fn file_body(mut f: std::fs::File, start: u64, len: u64) -> Body {
    use std::io::Seek;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<axum::body::Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = f.seek(std::io::SeekFrom::Start(start)) {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        let mut left = len;
        while left > 0 {
            match read_up_to(&mut f, left.min(CHUNK as u64)) {
                Ok(buf) if buf.is_empty() => break,
                Ok(buf) => {
                    left -= buf.len() as u64;
                    if tx.blocking_send(Ok(buf)).is_err() {
                        return; // the client went away
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    let mut rx = rx;
    Body::from_stream(async_stream::stream! {
        while let Some(chunk) = rx.recv().await {
            yield chunk;
        }
    })
}

/// Up to `n` bytes from `f`'s position (fewer only at the end of the file), read straight into
/// a buffer of that size (no zeroing first).
fn read_up_to(f: &mut std::fs::File, n: u64) -> std::io::Result<axum::body::Bytes> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(n as usize);
    f.take(n).read_to_end(&mut buf)?;
    Ok(buf.into())
}

fn content_type(format: &str) -> &'static str {
    match format {
        "mp3" => "audio/mpeg",
        "flac" => "audio/flac",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "m4a" | "mp4" | "aac" => "audio/mp4",
        "wav" => "audio/wav",
        "aif" | "aiff" => "audio/aiff",
        "webm" | "mka" => "audio/webm",
        _ => "application/octet-stream",
    }
}

/// One byte range of a `Range: bytes=…` header against `size`: `Ok(None)` serves the whole
/// file (no header, or several ranges), `Err` is 416.
fn parse_range(h: Option<&HeaderValue>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = h.and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size.saturating_sub(1))
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            b.parse::<u64>()
                .map_err(|_| ())?
                .min(size.saturating_sub(1))
        };
        (start, end)
    };
    if size == 0 || start >= size || end < start {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// Streams a track's file with `Range`, `ETag` and `If-None-Match`.
async fn serve(t: &Track, headers: &HeaderMap) -> ApiResult<Response> {
    // Open, stat and (for a range of at most one chunk, what players mostly ask) read in one
    // trip to the blocking pool.
    let path = t.path.clone();
    let range_header = headers.get(header::RANGE).cloned();
    let opened = tokio::task::spawn_blocking(move || {
        use std::io::Seek;
        let mut f = std::fs::File::open(&path)?;
        let meta = f.metadata()?;
        let range = parse_range(range_header.as_ref(), meta.len());
        let small = match range {
            Ok(Some((start, end))) if end - start < CHUNK as u64 => {
                let want = end - start + 1;
                f.seek(std::io::SeekFrom::Start(start))?;
                let buf = read_up_to(&mut f, want)?;
                if buf.len() as u64 != want {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                Some(buf)
            }
            _ => None,
        };
        Ok::<_, std::io::Error>((f, meta, range, small))
    })
    .await
    .map_err(ApiError::internal)?;
    let (f, meta, range, small) = match opened {
        Ok(x) => x,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::not_found(
                "the file is gone from disk (a scan will forget it)",
            ));
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    let size = meta.len();
    let mtime = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let etag = format!("\"{size:x}-{mtime:x}\"");
    let ct = content_type(&t.format);
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim() == etag || e.trim() == "*"))
    {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, etag),
                (header::ACCEPT_RANGES, "bytes".into()),
            ],
        )
            .into_response());
    }
    let range = match range {
        Ok(r) => r,
        Err(()) => {
            return Ok((
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{size}"))],
            )
                .into_response());
        }
    };
    let (status, start, len) = match range {
        Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e - s + 1),
        None => (StatusCode::OK, 0, size),
    };
    let body = match small {
        Some(bytes) => Body::from(bytes),
        None => file_body(f, start, len),
    };
    let mut resp = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, ct)
        .header(header::CONTENT_LENGTH, len)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, "private, max-age=0");
    if status == StatusCode::PARTIAL_CONTENT {
        resp = resp.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", start + len - 1),
        );
    }
    resp.body(body).map_err(ApiError::internal)
}

/// Paging of artists and albums.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct NameQuery {
    /// Albums of this artist id (`/library/albums` only).
    artist: Option<String>,
    /// Items per page (1–500, default 100).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
        parse_range(Some(&HeaderValue::from_str(s).unwrap()), size)
    }

    #[test]
    fn ranges() {
        assert_eq!(r("bytes=1000-1999", 5000), Ok(Some((1000, 1999))));
        assert_eq!(r("bytes=4000-", 5000), Ok(Some((4000, 4999))));
        assert_eq!(r("bytes=-500", 5000), Ok(Some((4500, 4999))));
        assert_eq!(r("bytes=0-99999", 5000), Ok(Some((0, 4999))));
        assert_eq!(r("bytes=5000-", 5000), Err(()));
        assert_eq!(r("bytes=0-1,5-6", 5000), Ok(None));
        assert_eq!(r("bytes=x-", 5000), Err(()));
    }
}
