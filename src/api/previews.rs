//! `GET /tasks/{id}/candidates/{index}/preview`: the audio of one candidate of a track
//! waiting for review, so a person can hear it before picking. It is fetched once, by the
//! same source and through the same address guard as a download, kept under
//! `data/previews/<task>/` until the track is picked, and served with `Range` (seeking works).

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;

use super::error::{ApiError, ApiResult};
use crate::api::identity::Identity;
use crate::api::state::AppState;
use crate::providers::{Fetcher, TrackInfo};

/// Where a task's previews are kept.
pub fn preview_dir(app: &AppState, task_id: &str) -> std::path::PathBuf {
    app.config.data_dir.join("previews").join(task_id)
}

/// Hear a candidate: its audio, fetched on first use. 404 for an index out of range.
#[utoipa::path(get, path = "/tasks/{id}/candidates/{index}/preview", tag = "matching",
    params(("id" = String, Path, description = "Task id of a track"),
        ("index" = usize, Path, description = "The candidate's `index`")),
    security(("session" = []), ("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The audio"), (status = 206, description = "The range asked for"),
        (status = 404, description = "No such task or candidate"), (status = 502, description = "The source failed")))]
pub async fn preview(
    State(app): State<AppState>,
    id: Identity,
    Path((task_id, index)): Path<(String, String)>,
    req: Request,
) -> ApiResult<Response> {
    let index: usize = index
        .parse()
        .map_err(|_| ApiError::validation(Some("index"), "a candidate's `index`: 0, 1, …"))?;
    let (task, opts) = super::matches::track_of(&app, &id, &task_id).await?;
    let c = opts
        .candidates
        .get(index)
        .ok_or_else(|| ApiError::not_found(format!("candidate {index} of {task_id}")))?;
    let dir = preview_dir(&app, &task.id);
    let kept = find(&dir, index).await;
    let path = match kept {
        Some(p) => p,
        None => fetch(&app, &dir, index, c).await?,
    };
    let res = tower_http::services::ServeFile::new(&path)
        .oneshot(req)
        .await
        .map_err(ApiError::internal)?;
    Ok(res.into_response())
}

/// The kept preview of a candidate, whatever its extension.
async fn find(dir: &std::path::Path, index: usize) -> Option<std::path::PathBuf> {
    let mut rd = tokio::fs::read_dir(dir).await.ok()?;
    let prefix = format!("{index}.");
    while let Ok(Some(e)) = rd.next_entry().await {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            return Some(e.path());
        }
    }
    None
}

async fn fetch(
    app: &AppState,
    dir: &std::path::Path,
    index: usize,
    c: &crate::providers::Candidate,
) -> ApiResult<std::path::PathBuf> {
    let staging = dir.join(format!("fetching-{index}-{}", crate::db::new_id()));
    tokio::fs::create_dir_all(&staging)
        .await
        .map_err(ApiError::internal)?;
    let cancel = app.shutdown.child_token();
    let track = TrackInfo {
        id: c.id.clone(),
        url: c.url.clone(),
        ..TrackInfo::default()
    };
    // A link a person gave is yt-dlp's, as when it is picked.
    let source = if c.source == "url" {
        "ytdlp"
    } else {
        &c.source
    };
    let env = &app.shared.env;
    let fetcher = Fetcher::new(env.clone(), staging.clone(), cancel.clone());
    let got = crate::jobs::track::fetch_audio(
        env,
        source,
        &track,
        &staging,
        &fetcher,
        &|_, _| {},
        &cancel,
    )
    .await
    .map_err(ApiError::from);
    let result = match got {
        Ok(file) => {
            let ext = file
                .extension()
                .and_then(|e| e.to_str())
                .filter(|e| e.len() <= 5)
                .unwrap_or("audio")
                .to_string();
            let dest = dir.join(format!("{index}.{ext}"));
            tokio::fs::rename(&file, &dest)
                .await
                .map(|_| dest)
                .map_err(ApiError::internal)
        }
        Err(e) => Err(e),
    };
    let _ = tokio::fs::remove_dir_all(&staging).await;
    result
}
