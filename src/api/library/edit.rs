//! Changing library tracks: tag edits (the file rewritten atomically and moved where the
//! template puts it, never through a link or over another file) and deletion, by the owner
//! or an admin.

use super::*;
use crate::failure::code;

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
pub(super) fn may_change(id: &Identity, t: &Track) -> ApiResult<()> {
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
            code::CONFLICT,
            "the indexed path is not a regular file (a symbolic link, or gone)",
        ));
    }
    if !path.starts_with(&library_dir) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            code::CONFLICT,
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
pub(super) fn retag(
    path: &Path,
    library: &Path,
    p: &TagPatch,
    popts: &musicd_media::ProcessOptions,
) -> ApiResult<PathBuf> {
    use musicd_media::tags::{GainTags, read_tags, write_tags};
    let mut meta = read_tags(path).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            code::UNSUPPORTED_MEDIA_TYPE,
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
    let dest = musicd_media::naming::contained_path(library, &rel)
        .map_err(|e| ApiError::validation(None, e.message))?;
    if dest == path {
        return Ok(dest);
    }
    let taken = || {
        ApiError::new(
            StatusCode::CONFLICT,
            code::CONFLICT,
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
                    code::CONFLICT,
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
    // Its lyrics file goes with it.
    let _ = tokio::fs::remove_file(std::path::Path::new(&t.path).with_extension("lrc")).await;
    library::delete(&app.db, &t.id).await?;
    app.track_cache.forget(&t.id);
    Ok(ok(json!({ "deleted": t.id })))
}
