//! Album covers for the web app: the front cover embedded in the album's first track that
//! has one (musicd embeds the catalog's cover when it tags a file).

use super::*;

/// The cover of an album: JPEG or PNG bytes, 404 when none of its files carries one.
#[utoipa::path(get, path = "/library/albums/{id}/cover", tag = "library",
    params(("id" = String, Path, description = "Album id")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The image"), (status = 404, description = "No such album, or no cover")))]
pub async fn cover(
    State(app): State<AppState>,
    _id: Identity,
    UrlPath(album_id): UrlPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let tracks = library::album_tracks(&app.db, &album_id).await?;
    // A few files at most: albums tagged by musicd carry the cover in every track.
    for t in tracks.into_iter().take(4) {
        let etag = format!("\"{}\"", t.content_hash);
        if headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == etag)
        {
            return Ok(StatusCode::NOT_MODIFIED.into_response());
        }
        let path = t.path.clone();
        let meta =
            tokio::task::spawn_blocking(move || musicd_media::tags::read_tags(Path::new(&path)))
                .await
                .map_err(ApiError::internal)?;
        let Some(image) = meta.ok().and_then(|m| m.cover) else {
            continue;
        };
        let mime = if image.starts_with(b"\x89PNG") {
            "image/png"
        } else if image.starts_with(&[0xFF, 0xD8]) {
            "image/jpeg"
        } else {
            continue;
        };
        let mut res = ([(header::CONTENT_TYPE, mime)], image).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=3600"),
        );
        if let Ok(v) = HeaderValue::from_str(&etag) {
            h.insert(header::ETAG, v);
        }
        return Ok(res);
    }
    Err(ApiError::not_found(format!(
        "album {album_id} has no cover"
    )))
}
