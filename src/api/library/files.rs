//! Serving library files: `Range` and `ETag` handling, reading ahead in 1 MiB chunks, and
//! short-lived signed links for `<audio src>`.

use super::*;

/// How long a signed file link works.
pub(super) const LINK_TTL_MS: i64 = 15 * 60 * 1000;

/// Chunk size when streaming a file.
pub(super) const CHUNK: usize = 1024 * 1024;

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
pub(super) async fn streamed(app: &AppState, id: &str) -> ApiResult<Track> {
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
pub(super) fn link_mac(key: &[u8], id: &str, expires: i64) -> Hmac<sha2::Sha256> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    mac.update(format!("{id}\n{expires}").as_bytes());
    mac
}

/// The signature of a link to `id` valid until `expires`.
pub(super) fn sign(key: &[u8], id: &str, expires: i64) -> String {
    hex::encode(link_mac(key, id, expires).finalize().into_bytes())
}

/// A signed link's query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkQuery {
    /// Unix ms after which the link no longer works.
    pub(super) expires: i64,
    /// From `POST /library/tracks/{id}/link`.
    pub(super) signature: String,
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
pub(super) fn file_body(mut f: std::fs::File, start: u64, len: u64) -> Body {
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
pub(super) fn read_up_to(f: &mut std::fs::File, n: u64) -> std::io::Result<axum::body::Bytes> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(n as usize);
    f.take(n).read_to_end(&mut buf)?;
    Ok(buf.into())
}

pub(super) fn content_type(format: &str) -> &'static str {
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
pub(super) fn parse_range(h: Option<&HeaderValue>, size: u64) -> Result<Option<(u64, u64)>, ()> {
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
pub(super) async fn serve(t: &Track, headers: &HeaderMap) -> ApiResult<Response> {
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
