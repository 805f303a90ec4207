//! `/uploads`: files a user already owns, through the same pipeline as downloads. Multipart
//! (`POST /uploads`, one or more files) or resumable with tus 1.0 under `/uploads/tus` (core,
//! creation, expiration, checksum with sha256/md5, termination). Bodies stream to disk in
//! `data/uploads/`; client file names never become paths (they are only a title fallback).

mod tus;
pub use tus::*;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use futures::StreamExt;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::{ok, with_status};
use crate::api::identity::Identity;
use crate::api::state::AppState;
use crate::api::types::{Uploaded, UploadedFile};
use crate::db::library::{self, Upload};
use crate::db::tasks::{self, NewTask};
use crate::failure::code;
use crate::jobs::track::{self, TrackOptions};
use crate::providers::TrackInfo;
use crate::queue::Pool;
use crate::sink::FileSink;

/// Largest value of a form field that is not a file.
const MAX_FIELD_BYTES: usize = 64 * 1024;

/// Most parts (files and fields) in one form.
const MAX_PARTS: usize = 256;

/// Form fields that become tags.
const TAG_FIELDS: &[&str] = &[
    "title",
    "artist",
    "album",
    "album_artist",
    "genre",
    "date",
    "track_number",
];

/// Where unfinished uploads live.
pub fn upload_dir(app: &AppState) -> PathBuf {
    app.config.data_dir.join("uploads")
}

fn upload_path(app: &AppState, id: &str) -> PathBuf {
    upload_dir(app).join(id)
}

fn too_large(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        code::PAYLOAD_TOO_LARGE,
        message,
    )
}

/// Bytes `user` may still add (`None`: no quota).
async fn room(app: &AppState, user: &str) -> ApiResult<Option<u64>> {
    let quota = app.config.uploads.quota.as_u64();
    if quota == 0 {
        return Ok(None);
    }
    let used = library::used_bytes(&app.db, user).await?.max(0) as u64;
    Ok(Some(quota.saturating_sub(used)))
}

/// Refuses `len` more bytes for `user` when over the quota or the size cap.
async fn admit(app: &AppState, user: &str, len: u64) -> ApiResult<()> {
    let max = app.config.media.max_input_size.as_u64();
    if len > max {
        return Err(too_large(format!(
            "{len} bytes is above media.max_input_size ({max} bytes)"
        )));
    }
    if let Some(left) = room(app, user).await?
        && len > left
    {
        return Err(too_large(format!(
            "the upload quota has {left} bytes left; this needs {len}"
        )));
    }
    Ok(())
}

/// The tags a request gave (form fields or tus metadata), and a title fallback from the
/// client's file name (sanitized; never a path).
fn track_info(id: &str, fields: &HashMap<String, String>) -> TrackInfo {
    let get = |k: &str| {
        fields
            .get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    TrackInfo {
        id: id.to_string(),
        url: format!("upload:{id}"),
        title: get("title"),
        artists: get("artist").into_iter().collect(),
        album: get("album"),
        album_artist: get("album_artist"),
        track_number: get("track_number").and_then(|n| n.parse().ok()),
        date: get("date"),
        genres: get("genre").into_iter().collect(),
        ..TrackInfo::default()
    }
}

/// A title from a client's file name: its last component without extension, sanitized.
fn name_title(name: Option<&str>) -> Option<String> {
    let last = name?.rsplit(['/', '\\']).next()?;
    let stem = Path::new(last).file_stem()?.to_string_lossy().to_string();
    let clean = musicd_media::naming::sanitize_component(&stem);
    (clean != "_" && !clean.is_empty()).then_some(clean)
}

/// Makes a `track` task of an uploaded file (moved into the task's staging directory) and
/// queues it on the cpu pool.
async fn submit(
    app: &AppState,
    owner: &str,
    file: &Path,
    id: &str,
    name: Option<&str>,
    fields: &HashMap<String, String>,
) -> ApiResult<tasks::Task> {
    let output = crate::jobs::download::Output {
        format: fields.get("format").cloned(),
        quality: fields.get("quality").cloned(),
        path_template: None,
    };
    let opts = TrackOptions {
        fallback_title: name_title(name),
        ..TrackOptions::new(track_info(id, fields), "upload", &output)
    };
    let new = NewTask {
        pool: Pool::Cpu.as_str().into(),
        owner_id: Some(owner.to_string()),
        source: Some(format!("upload:{}", name_title(name).unwrap_or_default())),
        title: opts.track.title.clone().or_else(|| name_title(name)),
        max_attempts: i64::from(app.config.queue.max_attempts),
        ..crate::jobs::new_task(&opts)
    };
    let task = tasks::insert(&app.db, &new)
        .await?
        .map_err(|e| ApiError::internal(format!("duplicate upload task {e}")))?;
    let dir = track::staging_dir(&app.config, &task.id, true)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let dest = dir.join("source");
    tokio::fs::rename(file, &dest)
        .await
        .map_err(ApiError::internal)?;
    let mut o = opts;
    o.fetched = Some(dest.display().to_string());
    tasks::set_options(
        &app.db,
        &task.id,
        &serde_json::to_string(&o).unwrap_or_default(),
    )
    .await?;
    crate::jobs::announce(&app.shared.queue, &app.shared.events, &task).await;
    Ok(task)
}

/// Upload one or more files (multipart fields named `file`), with optional tag fields
/// (`title`, `artist`, `album`, `album_artist`, `genre`, `date`, `track_number`) and `format`,
/// `quality`. Each file becomes a task; follow them on `/events`.
#[utoipa::path(post, path = "/uploads", tag = "uploads",
    security(("bearer" = []), ("api_key" = [])),
    request_body(content_type = "multipart/form-data", description = "`file` parts and optional tag fields"),
    responses((status = 202, description = "One task per file", body = Uploaded),
        (status = 400, description = "No file"), (status = 413, description = "Over the quota or the size cap")))]
pub async fn multipart(
    State(app): State<AppState>,
    id: Identity,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    // A body that is not multipart is a validation error in the API's own shape.
    let mut form = form.map_err(|e| {
        ApiError::validation(
            None,
            format!("expected a `multipart/form-data` body: {}", e.body_text()),
        )
    })?;
    let user = id.user.id.clone();
    // Refuse what cannot fit before reading a byte, when the length is announced.
    let mut budget = room(&app, &user).await?;
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        && let Some(left) = budget
        && len > left
    {
        return Err(too_large(format!(
            "the upload quota has {left} bytes left; this request has {len}"
        )));
    }
    let dir = upload_dir(&app);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(ApiError::internal)?;
    // Whatever is not handed to a task is removed, also when the client goes away mid-body
    // (the request's future is then dropped).
    let mut partial = Partial(Vec::new());
    let max = app.config.media.max_input_size.as_u64();
    let mut files: Vec<(PathBuf, String, Option<String>)> = Vec::new();
    let mut fields = HashMap::new();
    let mut parts = 0usize;
    let result: ApiResult<()> = async {
        while let Some(mut part) = form
            .next_field()
            .await
            .map_err(|e| ApiError::validation(None, format!("bad multipart body: {e}")))?
        {
            parts += 1;
            if parts > MAX_PARTS {
                return Err(too_large(format!(
                    "the form has more than {MAX_PARTS} parts"
                )));
            }
            let name = part.name().unwrap_or_default().to_string();
            if name != "file" {
                // Read in pieces with a cap: a field is a tag value, not a place for bytes.
                let mut value = Vec::new();
                while let Some(chunk) = part
                    .chunk()
                    .await
                    .map_err(|e| ApiError::validation(Some(&name), e.to_string()))?
                {
                    if value.len() + chunk.len() > MAX_FIELD_BYTES {
                        return Err(too_large(format!(
                            "the form field `{name}` is larger than {MAX_FIELD_BYTES} bytes"
                        ))
                        .with_detail(json!({ "field": name })));
                    }
                    value.extend_from_slice(&chunk);
                }
                let value = String::from_utf8(value).map_err(|_| {
                    ApiError::validation(Some(&name), "the field is not UTF-8 text")
                })?;
                if TAG_FIELDS.contains(&name.as_str()) || name == "format" || name == "quality" {
                    fields.insert(name, value);
                }
                continue;
            }
            let client_name = part.file_name().map(str::to_string);
            let up_id = crate::db::new_id();
            let path = dir.join(&up_id);
            let mut out = FileSink::new(
                tokio::fs::File::create(&path)
                    .await
                    .map_err(ApiError::internal)?
                    .into_std()
                    .await,
            );
            partial.0.push(path.clone());
            files.push((path.clone(), up_id, client_name));
            let mut written = 0u64;
            while let Some(chunk) = part
                .chunk()
                .await
                .map_err(|e| ApiError::validation(None, format!("upload broke: {e}")))?
            {
                written += chunk.len() as u64;
                if written > max {
                    return Err(too_large(format!(
                        "a file is above media.max_input_size ({max} bytes)"
                    )));
                }
                if let Some(left) = budget
                    && written > left
                {
                    return Err(too_large("the upload quota is used up"));
                }
                out.write(&chunk).await.map_err(ApiError::internal)?;
            }
            out.finish().await.map_err(ApiError::internal)?;
            budget = budget.map(|b| b.saturating_sub(written));
        }
        Ok(())
    }
    .await;
    result?;
    if files.is_empty() {
        return Err(ApiError::validation(
            Some("file"),
            "no `file` part in the form",
        ));
    }
    let mut out = Uploaded::default();
    for (path, up_id, name) in &files {
        let task = submit(&app, &user, path, up_id, name.as_deref(), &fields).await?;
        out.tasks.push(UploadedFile {
            task_id: task.id,
            file_name: name.clone(),
        });
    }
    Ok(with_status(StatusCode::ACCEPTED, out))
}

/// Files removed when dropped (an upload's bytes not yet handed to a task).
struct Partial(Vec<PathBuf>);

impl Drop for Partial {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The caller's quota: bytes used (library and unfinished uploads) and the limit.
#[utoipa::path(get, path = "/uploads/quota", tag = "uploads",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "`{used, limit, available}` in bytes; `limit` 0 means none")))]
pub async fn quota(State(app): State<AppState>, id: Identity) -> ApiResult<Response> {
    let used = library::used_bytes(&app.db, &id.user.id).await?.max(0) as u64;
    let limit = app.config.uploads.quota.as_u64();
    Ok(ok(json!({
        "used": used,
        "limit": limit,
        "available": (limit > 0).then(|| limit.saturating_sub(used)),
    })))
}
