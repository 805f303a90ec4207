//! Resumable uploads over tus 1.0 (core, creation, expiration, checksum, termination) under
//! `/uploads/tus`: one chunk written at a time per upload, by a task that outlives a broken
//! connection and records the offset reached; unfinished uploads expire.

use super::*;
use crate::failure::code;

/// The tus protocol version spoken.
pub(super) const TUS_VERSION: &str = "1.0.0";

/// tus extensions supported.
pub(super) const TUS_EXTENSIONS: &str = "creation,expiration,checksum,termination";

/// Checksum algorithms accepted in `Upload-Checksum`.
pub(super) const TUS_CHECKSUMS: &str = "sha256,md5";

/// Headers every tus answer carries.
pub(super) fn tus(status: StatusCode) -> axum::http::response::Builder {
    Response::builder()
        .status(status)
        .header("Tus-Resumable", TUS_VERSION)
        .header(header::CACHE_CONTROL, "no-store")
}

/// An error answer of a tus route: the API's error, with `Tus-Resumable`.
pub(super) fn tus_error(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
) -> ApiError {
    let message = message.into();
    // Internal errors are logged with their cause and answered without it, as everywhere.
    let e = if status == StatusCode::INTERNAL_SERVER_ERROR {
        ApiError::internal(message)
    } else {
        ApiError::new(status, code, message)
    };
    tus_flavoured(e)
}

/// Adds `Tus-Resumable` to an error from elsewhere (the database, the quota).
pub(super) fn tus_flavoured(e: ApiError) -> ApiError {
    let mut h = HeaderMap::new();
    h.insert("Tus-Resumable", HeaderValue::from_static(TUS_VERSION));
    e.with_headers(h)
}

/// A 500 of a tus route, logging `e`.
fn tus_internal(e: impl std::fmt::Display) -> ApiError {
    tus_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        code::INTERNAL_ERROR,
        e.to_string(),
    )
}

/// 412 unless the client speaks our tus version.
pub(super) fn check_version(headers: &HeaderMap) -> ApiResult<()> {
    match headers.get("Tus-Resumable").and_then(|v| v.to_str().ok()) {
        Some(TUS_VERSION) => Ok(()),
        _ => {
            let mut h = HeaderMap::new();
            h.insert("Tus-Version", HeaderValue::from_static(TUS_VERSION));
            Err(tus_error(
                StatusCode::PRECONDITION_FAILED,
                code::UNSUPPORTED_TUS_VERSION,
                format!("send Tus-Resumable: {TUS_VERSION}"),
            )
            .with_headers(h))
        }
    }
}

pub(super) fn http_date(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    httpdate::fmt_http_date(at)
}

/// What the server supports (tus discovery).
#[utoipa::path(options, path = "/uploads/tus", tag = "uploads",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 204, description = "`Tus-Version`, `Tus-Extension`, `Tus-Max-Size`, `Tus-Checksum-Algorithm`")))]
pub async fn tus_options(State(app): State<AppState>, _id: Identity) -> ApiResult<Response> {
    tus(StatusCode::NO_CONTENT)
        .header("Tus-Version", TUS_VERSION)
        .header("Tus-Extension", TUS_EXTENSIONS)
        .header("Tus-Max-Size", app.config.media.max_input_size.as_u64())
        .header("Tus-Checksum-Algorithm", TUS_CHECKSUMS)
        .body(Body::empty())
        .map_err(tus_internal)
}

/// `Upload-Metadata`: comma-separated `key base64value` pairs.
pub(super) fn parse_metadata(v: Option<&str>) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for pair in v.unwrap_or("").split(',').filter(|p| !p.trim().is_empty()) {
        let mut it = pair.trim().splitn(2, ' ');
        let key = it.next().unwrap_or_default().to_string();
        let value = match it.next() {
            Some(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| format!("Upload-Metadata `{key}`: {e}"))?,
            None => Vec::new(),
        };
        out.insert(key, String::from_utf8_lossy(&value).into_owned());
    }
    Ok(out)
}

/// Start a resumable upload (tus creation): `Upload-Length` and optional `Upload-Metadata`
/// (`filename`, and the tag fields of `POST /uploads`). 413 before anything is written when
/// it would go over the quota.
#[utoipa::path(post, path = "/uploads/tus", tag = "uploads",
    params(("Upload-Length" = u64, Header, description = "The file's size in bytes (deferred lengths are not supported)"),
        ("Upload-Metadata" = Option<String>, Header, description = "tus metadata: `key base64value` pairs, comma-separated")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 201, description = "`Location` of the upload"), (status = 412, description = "Wrong Tus-Resumable"),
        (status = 413, description = "Over the quota or the size cap")))]
pub async fn tus_create(
    State(app): State<AppState>,
    id: Identity,
    headers: HeaderMap,
) -> ApiResult<Response> {
    check_version(&headers)?;
    let result: ApiResult<Response> = async {
        let len: u64 = headers
            .get("Upload-Length")
            .and_then(|v| v.to_str().ok()?.trim().parse().ok())
            .ok_or_else(|| {
                ApiError::validation(
                    Some("Upload-Length"),
                    "Upload-Length (a byte count) is required; deferred lengths are not supported",
                )
            })?;
        let meta = parse_metadata(headers.get("Upload-Metadata").and_then(|v| v.to_str().ok()))
            .map_err(|m| ApiError::validation(Some("Upload-Metadata"), m))?;
        admit(&app, &id.user.id, len).await?;
        let expires = crate::db::now_ms() + app.config.uploads.expiry.as_millis() as i64;
        let up = library::create_upload(
            &app.db,
            &id.user.id,
            len as i64,
            &serde_json::to_string(&meta).unwrap_or_default(),
            expires,
        )
        .await?;
        tokio::fs::create_dir_all(upload_dir(&app))
            .await
            .map_err(ApiError::internal)?;
        tokio::fs::File::create(upload_path(&app, &up.id))
            .await
            .map_err(ApiError::internal)?;
        tus(StatusCode::CREATED)
            .header(header::LOCATION, format!("/api/v1/uploads/tus/{}", up.id))
            .header("Upload-Offset", 0)
            .header("Upload-Expires", http_date(expires))
            .body(Body::empty())
            .map_err(ApiError::internal)
    }
    .await;
    result.map_err(tus_flavoured)
}

/// The caller's live upload, or 404 (someone else's, finished and gone, or expired).
pub(super) async fn live(app: &AppState, id: &Identity, upload_id: &str) -> ApiResult<Upload> {
    match library::upload(&app.db, upload_id).await {
        Ok(Some(u))
            if u.owner_id == id.user.id
                && (u.task_id.is_some() || u.expires_at >= crate::db::now_ms()) =>
        {
            Ok(u)
        }
        Ok(_) => Err(tus_error(
            StatusCode::NOT_FOUND,
            code::NOT_FOUND,
            format!("no upload {upload_id} (it may have expired)"),
        )),
        Err(e) => Err(tus_internal(e)),
    }
}

/// Where an upload stands: `Upload-Offset` (resume from here) and `Upload-Length`.
#[utoipa::path(head, path = "/uploads/tus/{id}", tag = "uploads",
    params(("id" = String, Path, description = "Upload id")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "`Upload-Offset`, `Upload-Length`, `Upload-Expires`; `Musicd-Task-Id` once complete"),
        (status = 404, description = "No such upload")))]
pub async fn tus_head(
    State(app): State<AppState>,
    id: Identity,
    UrlPath(upload_id): UrlPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    // A chunk being written ends first, so the offset is where the next one starts.
    let (_writing, u) = locked(&app, &id, &upload_id, &headers).await?;
    let mut b = tus(StatusCode::OK)
        .header("Upload-Offset", u.upload_offset)
        .header("Upload-Length", u.length)
        .header("Upload-Expires", http_date(u.expires_at));
    if let Some(t) = &u.task_id {
        b = b.header("Musicd-Task-Id", t);
    }
    b.body(Body::empty()).map_err(tus_internal)
}

/// Checks the tus version, takes the upload's writer lock and returns the caller's live upload.
pub(super) async fn locked(
    app: &AppState,
    id: &Identity,
    upload_id: &str,
    headers: &HeaderMap,
) -> ApiResult<(tokio::sync::OwnedMutexGuard<()>, Upload)> {
    check_version(headers)?;
    let guard = writer_lock(upload_id).lock_owned().await;
    Ok((guard, live(app, id, upload_id).await?))
}

/// One upload written at a time (per process): chunks of the same upload queue here.
pub(super) static WRITING: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Default::default);

pub(super) fn writer_lock(id: &str) -> Arc<tokio::sync::Mutex<()>> {
    let mut m = WRITING.lock().expect("upload locks");
    m.retain(|_, l| Arc::strong_count(l) > 1);
    m.entry(id.to_string()).or_default().clone()
}

/// A running checksum of one chunk.
pub(super) enum Check {
    Sha256(sha2::Sha256, Vec<u8>),
    Md5(md5::Md5, Vec<u8>),
}

impl Check {
    pub(super) fn parse(v: &str) -> Result<Self, String> {
        use sha2::Digest;
        let (algo, b64) = v
            .trim()
            .split_once(' ')
            .ok_or("Upload-Checksum is `<algorithm> <base64>`")?;
        let want = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| format!("Upload-Checksum: {e}"))?;
        match algo.to_ascii_lowercase().as_str() {
            "sha256" | "sha-256" => Ok(Check::Sha256(sha2::Sha256::new(), want)),
            "md5" => Ok(Check::Md5(md5::Md5::new(), want)),
            other => Err(format!(
                "checksum algorithm `{other}` is not supported ({TUS_CHECKSUMS})"
            )),
        }
    }

    pub(super) fn update(&mut self, data: &[u8]) {
        use sha2::Digest;
        match self {
            Check::Sha256(h, _) => h.update(data),
            Check::Md5(h, _) => h.update(data),
        }
    }

    pub(super) fn matches(self) -> bool {
        use sha2::Digest;
        match self {
            Check::Sha256(h, want) => h.finalize()[..] == want[..],
            Check::Md5(h, want) => h.finalize()[..] == want[..],
        }
    }
}

/// Append a chunk at `Upload-Offset` (which must be where the upload stands). What arrives
/// before a connection breaks is kept; resume from `HEAD`'s offset. With `Upload-Checksum` a
/// chunk that does not match is discarded (460). The last chunk queues the processing task
/// (`Musicd-Task-Id`).
#[utoipa::path(patch, path = "/uploads/tus/{id}", tag = "uploads",
    params(("id" = String, Path, description = "Upload id")),
    security(("bearer" = []), ("api_key" = [])),
    request_body(content_type = "application/offset+octet-stream", description = "The bytes from `Upload-Offset`"),
    responses((status = 204, description = "`Upload-Offset` after the chunk"), (status = 409, description = "Wrong offset"),
        (status = 413, description = "Beyond Upload-Length"), (status = 415, description = "Wrong Content-Type"),
        (status = 460, description = "Checksum mismatch")))]
pub async fn tus_patch(
    State(app): State<AppState>,
    id: Identity,
    UrlPath(upload_id): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    check_version(&headers)?;
    if headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        != Some("application/offset+octet-stream")
    {
        return Err(tus_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/offset+octet-stream",
        ));
    }
    // The chunk is written by a task of its own: when the client's connection breaks, the
    // request's future is dropped, but what arrived must still be recorded.
    let (guard, u) = locked(&app, &id, &upload_id, &headers).await?;
    let task = tokio::spawn(async move {
        let _writing = guard;
        write_chunk(app, u, headers, body).await
    });
    task.await.map_err(tus_internal)?
}

/// Appends one PATCH body to an upload (the caller holds its writer lock).
pub(super) async fn write_chunk(
    app: AppState,
    u: Upload,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let upload_id = u.id.clone();
    let offset: Option<i64> = headers
        .get("Upload-Offset")
        .and_then(|v| v.to_str().ok()?.trim().parse().ok());
    if offset != Some(u.upload_offset) || u.task_id.is_some() {
        return Err(tus_error(
            StatusCode::CONFLICT,
            code::CONFLICT,
            format!(
                "Upload-Offset must be {} (ask HEAD for where the upload stands)",
                u.upload_offset
            ),
        ));
    }
    let mut check = match headers.get("Upload-Checksum").and_then(|v| v.to_str().ok()) {
        Some(v) => match Check::parse(v) {
            Ok(c) => Some(c),
            Err(m) => {
                return Err(tus_error(
                    StatusCode::BAD_REQUEST,
                    code::VALIDATION_ERROR,
                    m,
                ));
            }
        },
        None => None,
    };
    let path = upload_path(&app, &upload_id);
    // Whatever was written past the recorded offset by a broken earlier chunk goes.
    let file = reopen_at(path.clone(), u.upload_offset as u64)
        .await
        .map_err(tus_internal)?;
    let mut out = FileSink::new(file);
    let room = (u.length - u.upload_offset) as u64;
    let mut got = 0u64;
    let mut stream = body.into_data_stream();
    let mut broke = None;
    let mut over = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => {
                if got + c.len() as u64 > room {
                    over = true;
                    break;
                }
                if let Some(ch) = &mut check {
                    ch.update(&c);
                }
                let n = c.len() as u64;
                if let Err(e) = out.write(&c).await {
                    broke = Some(e.to_string());
                    break;
                }
                got += n;
            }
            Err(e) => {
                broke = Some(e.to_string());
                break;
            }
        }
    }
    let flushed = out.finish().await;
    let bad = over || check.is_some_and(|c| broke.is_some() || !c.matches());
    if bad || flushed.is_err() {
        // Nothing of this chunk counts.
        let _ = reopen_at(path.clone(), u.upload_offset as u64).await;
        return Err(if over {
            tus_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                code::PAYLOAD_TOO_LARGE,
                format!("the chunk goes past Upload-Length ({})", u.length),
            )
        } else if let Err(e) = flushed {
            tus_internal(e)
        } else {
            tus_error(
                StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST),
                code::CHECKSUM_MISMATCH,
                "the chunk does not match Upload-Checksum; send it again",
            )
        });
    }
    // A broken connection keeps what arrived: the client resumes from HEAD's offset.
    let new_offset = u.upload_offset + got as i64;
    let expires = crate::db::now_ms() + app.config.uploads.expiry.as_millis() as i64;
    match library::advance_upload(&app.db, &u.id, u.upload_offset, new_offset, expires).await {
        Ok(true) => {}
        Ok(false) => {
            return Err(tus_error(
                StatusCode::CONFLICT,
                code::CONFLICT,
                "the upload moved on meanwhile",
            ));
        }
        Err(e) => return Err(tus_internal(e)),
    }
    if let Some(e) = broke {
        tracing::info!(
            upload_id,
            offset = new_offset,
            "upload chunk broke off: {e}"
        );
    }
    let mut b = tus(StatusCode::NO_CONTENT)
        .header("Upload-Offset", new_offset)
        .header("Upload-Expires", http_date(expires));
    if new_offset == u.length {
        let fields: HashMap<String, String> = serde_json::from_str(&u.metadata).unwrap_or_default();
        let name = fields
            .get("filename")
            .or_else(|| fields.get("name"))
            .cloned();
        match submit(&app, &u.owner_id, &path, &u.id, name.as_deref(), &fields).await {
            Ok(task) => {
                let _ = library::finish_upload(&app.db, &u.id, &task.id).await;
                b = b.header("Musicd-Task-Id", task.id);
            }
            Err(e) => return Err(tus_flavoured(e)),
        }
    }
    b.body(Body::empty()).map_err(tus_internal)
}

/// An upload's file cut back to `offset` and positioned there for writing.
pub(super) async fn reopen_at(path: PathBuf, offset: u64) -> std::io::Result<std::fs::File> {
    tokio::task::spawn_blocking(move || {
        let mut f = std::fs::OpenOptions::new().write(true).open(&path)?;
        f.set_len(offset)?;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(offset))?;
        Ok(f)
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Abandon an upload (tus termination): its bytes and its record go.
#[utoipa::path(delete, path = "/uploads/tus/{id}", tag = "uploads",
    params(("id" = String, Path, description = "Upload id")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 204, description = "Removed"), (status = 404, description = "No such upload")))]
pub async fn tus_delete(
    State(app): State<AppState>,
    id: Identity,
    UrlPath(upload_id): UrlPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (_writing, u) = locked(&app, &id, &upload_id, &headers).await?;
    let _ = tokio::fs::remove_file(upload_path(&app, &u.id)).await;
    library::delete_upload(&app.db, &u.id)
        .await
        .map_err(tus_internal)?;
    tus(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .map_err(tus_internal)
}

/// Removes unfinished uploads past their expiry (and their bytes), until `stop`.
pub async fn sweep_loop(app: AppState, stop: tokio_util::sync::CancellationToken) {
    let every = (app.config.uploads.expiry / 2).clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(60),
    );
    loop {
        match library::expired_uploads(&app.db, crate::db::now_ms()).await {
            Ok(ids) => {
                for id in ids {
                    let lock = writer_lock(&id);
                    let _writing = lock.lock().await;
                    let _ = tokio::fs::remove_file(upload_path(&app, &id)).await;
                    if let Err(e) = library::delete_upload(&app.db, &id).await {
                        tracing::warn!(upload_id = id, "cannot remove an expired upload: {e}");
                    } else {
                        tracing::info!(upload_id = id, "expired upload removed");
                    }
                }
            }
            Err(e) => tracing::warn!("cannot look for expired uploads: {e}"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
