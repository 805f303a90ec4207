//! Review of catalog tracks that found no sure match: `GET /tasks/{id}/candidates` lists what
//! the search found, ranked, with scores and reasons; `POST /tasks/{id}/match` picks one (or
//! gives a link) and runs the track again. The choice is remembered for the catalog track, so
//! the owner's later downloads and watch checks of it use the same recording.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::extract::ApiJson;
use super::ok;
use crate::api::identity::Identity;
use crate::api::state::AppState;
use crate::db::tasks;
use crate::failure::code;
use crate::jobs::{self, track::TrackOptions};
use crate::links::Link;
use crate::providers::{Candidate, TrackInfo};
use crate::queue::Pool;

/// A track's candidates.
#[derive(Debug, Serialize, ToSchema)]
pub struct Candidates {
    /// The task.
    pub task_id: String,
    /// Its status (`needs_review` while waiting for a pick).
    pub status: String,
    /// What the catalog says the track is.
    pub track: TrackInfo,
    /// What the search found, best first; `index` is what `POST …/match` takes.
    pub candidates: Vec<RankedCandidate>,
    /// The searches made.
    pub queries: Vec<String>,
    /// The audio downloaded, once matched.
    pub matched: Option<Candidate>,
}

/// A candidate with its place in the list.
#[derive(Debug, Serialize, ToSchema)]
pub struct RankedCandidate {
    /// Its place (0 is the best).
    pub index: usize,
    /// The candidate, its score and reasons.
    #[serde(flatten)]
    pub candidate: Candidate,
}

/// A pick: one of the listed candidates, or a link to any page or file.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pick {
    /// The `index` of a listed candidate.
    pub candidate: Option<usize>,
    /// Or a link (a YouTube page, an audio file…).
    #[schema(max_length = 4096)]
    pub url: Option<String>,
}

pub(super) async fn track_of(
    app: &AppState,
    id: &Identity,
    task_id: &str,
) -> ApiResult<(tasks::Task, TrackOptions)> {
    let task = super::tasks::visible(app, id, task_id).await?;
    if task.kind != jobs::track::KIND {
        return Err(ApiError::validation(None, "only a track has candidates"));
    }
    let opts: TrackOptions = serde_json::from_str(&task.options).map_err(ApiError::internal)?;
    Ok((task, opts))
}

/// The candidates a catalog track's search found, ranked, with scores and reasons.
#[utoipa::path(get, path = "/tasks/{id}/candidates", tag = "matching",
    params(("id" = String, Path, description = "Task id of a track")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The ranked candidates", body = Candidates),
        (status = 404, description = "No such task")))]
pub async fn candidates(
    State(app): State<AppState>,
    id: Identity,
    Path(task_id): Path<String>,
) -> ApiResult<Response> {
    let (task, opts) = track_of(&app, &id, &task_id).await?;
    Ok(ok(Candidates {
        task_id: task.id,
        status: task.status,
        track: opts.track,
        candidates: opts
            .candidates
            .into_iter()
            .enumerate()
            .map(|(index, candidate)| RankedCandidate { index, candidate })
            .collect(),
        queries: opts.queries,
        matched: opts.matched,
    }))
}

/// Picks the audio of a track that needs review (or failed to match): a listed candidate or
/// any link. The track runs again with it, and the pick is remembered for this catalog track.
#[utoipa::path(post, path = "/tasks/{id}/match", tag = "matching", request_body = Pick,
    params(("id" = String, Path, description = "Task id of a track")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "`{task_id, status}`: queued again"),
        (status = 404, description = "No such task"),
        (status = 409, description = "The track is not waiting for a pick")))]
pub async fn pick(
    State(app): State<AppState>,
    id: Identity,
    Path(task_id): Path<String>,
    ApiJson(body): ApiJson<Pick>,
) -> ApiResult<Response> {
    let (task, mut opts) = track_of(&app, &id, &task_id).await?;
    if !matches!(task.status.as_str(), "needs_review" | "failed") {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            code::CONFLICT,
            format!(
                "the track is {}; only a track that needs review or failed takes a pick",
                task.status
            ),
        ));
    }
    let chosen = match (body.candidate, body.url.as_deref()) {
        (Some(n), None) => opts.candidates.get(n).cloned().ok_or_else(|| {
            ApiError::validation(
                Some("candidate"),
                format!(
                    "there are {} candidates (0 to {})",
                    opts.candidates.len(),
                    opts.candidates.len().saturating_sub(1)
                ),
            )
        })?,
        (None, Some(raw)) => {
            let url =
                match crate::links::route(raw).map_err(|m| ApiError::validation(Some("url"), m))? {
                    Link::Web(u) => u.to_string(),
                    Link::Item {
                        provider: "ytdlp",
                        id,
                        ..
                    } => id,
                    _ => {
                        return Err(ApiError::validation(
                            Some("url"),
                            "give a page or file with the audio (a catalog link names no audio)",
                        ));
                    }
                };
            Candidate {
                source: "url".into(),
                id: url.clone(),
                url: url.clone(),
                title: url,
                reasons: vec![format!("chosen by {}", id.user.username)],
                ..Candidate::default()
            }
        }
        _ => {
            return Err(ApiError::validation(
                Some("candidate"),
                "give either `candidate` (an index) or `url`",
            ));
        }
    };
    if let Some(owner) = &task.owner_id {
        let json = serde_json::to_string(&chosen).map_err(ApiError::internal)?;
        let key = jobs::catalog::catalog_key(&opts);
        crate::db::matches::set(&app.db, owner, &key, &json).await?;
    }
    opts.chosen = Some(chosen);
    opts.fetched = None;
    // The previews heard for this pick are not needed any more.
    let _ = tokio::fs::remove_dir_all(super::previews::preview_dir(&app, &task_id)).await;
    let json = serde_json::to_string(&opts).map_err(ApiError::internal)?;
    let extra = i64::from(app.config.queue.max_attempts);
    let Some((tid, pool)) = tasks::reopen(&app.db, &task_id, &json, extra).await? else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            code::CONFLICT,
            "the track changed meanwhile",
        ));
    };
    let shared = &app.shared;
    jobs::publish_task(
        &app.db,
        &shared.events,
        crate::wire::TaskEventKind::Queued,
        &tid,
    )
    .await;
    if let Some(parent) = &task.parent_id {
        jobs::publish_task(
            &app.db,
            &shared.events,
            crate::wire::TaskEventKind::Progress,
            parent,
        )
        .await;
    }
    jobs::enqueue(
        &shared.queue,
        Pool::parse(&pool).unwrap_or(Pool::Io),
        &tid,
        None,
    )
    .await;
    Ok(ok(
        serde_json::json!({ "task_id": tid, "status": "queued" }),
    ))
}
