//! `/tasks`: the task ledger as users see it (their own tasks; an admin sees all).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiError, ApiResult};
use super::extract::ApiQuery;
use super::ok;
use super::types::{Page, TaskView, Updates};
use crate::api::identity::Identity;
use crate::api::state::AppState;
use crate::db::tasks;
use crate::failure::code;
use crate::jobs;
use crate::queue::Pool;

/// Filters and paging for the task list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this status.
    pub status: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only queued and running tasks.
    #[serde(default)]
    pub active_only: bool,
    /// Items per page, 1–200 (default 50).
    pub limit: Option<u32>,
    /// From a previous page's `next_cursor`.
    #[param(pattern = "^[0-9]{1,18}_.+$")]
    pub cursor: Option<String>,
}

/// Cuts a newest-first page fetched with `limit + 1` rows; the cursor names the last item.
pub(crate) fn keyset_page(mut items: Vec<tasks::Task>, limit: i64) -> Page<TaskView> {
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|t| format!("{}_{}", t.created_at, t.id))
    } else {
        None
    };
    let items = items.into_iter().map(TaskView::from).collect();
    Page { items, next_cursor }
}

pub(crate) fn parse_cursor(c: &str) -> Result<(i64, String), ApiError> {
    let bad = || ApiError::validation(Some("cursor"), "not a cursor from this API");
    let (at, id) = c.split_once('_').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, id.to_string()))
}

/// List tasks, newest first.
#[utoipa::path(get, path = "/tasks", tag = "tasks", params(ListQuery), security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of tasks", body = Page<TaskView>)))]
pub async fn list(
    State(app): State<AppState>,
    id: Identity,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Response> {
    let limit = q.limit.unwrap_or(50).clamp(1, 200) as i64;
    let filter = tasks::Filter {
        owner_id: (!id.is_admin()).then(|| id.user.id.clone()),
        status: q.status,
        kind: q.kind,
        active_only: q.active_only,
        top_level: false,
        finished_only: false,
        q: None,
        before: q.cursor.as_deref().map(parse_cursor).transpose()?,
    };
    let items = tasks::list(&app.db, &filter, limit + 1).await?;
    Ok(ok(keyset_page(items, limit)))
}

/// One task.
#[utoipa::path(get, path = "/tasks/{id}", tag = "tasks", params(("id" = String, Path, description = "Task id")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The task", body = TaskView), (status = 404, description = "No such task")))]
pub async fn get(
    State(app): State<AppState>,
    id: Identity,
    Path(task_id): Path<String>,
) -> ApiResult<Response> {
    Ok(ok(TaskView::from(visible(&app, &id, &task_id).await?)))
}

/// Loads a task the caller may see, or 404.
pub(super) async fn visible(
    app: &AppState,
    id: &Identity,
    task_id: &str,
) -> ApiResult<tasks::Task> {
    match tasks::get(&app.db, task_id).await? {
        Some(t) if id.may_access(t.owner_id.as_deref()) => Ok(t),
        _ => Err(ApiError::not_found("no such task")),
    }
}

/// Paging for a task's children.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChildrenQuery {
    /// Items per page, 1–500 (default 100).
    pub limit: Option<u32>,
    /// From a previous page's `next_cursor`.
    #[param(pattern = "^[0-9]{1,18}$")]
    pub cursor: Option<String>,
}

/// A task's children (the tracks of a request), in source order.
#[utoipa::path(get, path = "/tasks/{id}/children", tag = "tasks", params(("id" = String, Path, description = "Task id"), ChildrenQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of child tasks", body = Page<TaskView>), (status = 404, description = "No such task")))]
pub async fn children(
    State(app): State<AppState>,
    id: Identity,
    Path(task_id): Path<String>,
    ApiQuery(q): ApiQuery<ChildrenQuery>,
) -> ApiResult<Response> {
    visible(&app, &id, &task_id).await?;
    let limit = i64::from(q.limit.unwrap_or(100).clamp(1, 500));
    let offset: i64 = match q.cursor.as_deref() {
        Some(c) => c
            .parse()
            .map_err(|_| ApiError::validation(Some("cursor"), "not a cursor from this API"))?,
        None => 0,
    };
    let mut items = tasks::children(&app.db, &task_id, limit + 1, offset).await?;
    let next_cursor = (items.len() as i64 > limit).then(|| (offset + limit).to_string());
    items.truncate(limit as usize);
    let items = items.into_iter().map(TaskView::from).collect();
    Ok(ok(Page { items, next_cursor }))
}

/// Polling instead of events.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UpdatesQuery {
    /// Unix milliseconds: tasks changed after this (pass the previous answer's `next_since`).
    pub since: i64,
    /// Items per answer, 1–1000 (default 500).
    pub limit: Option<u32>,
}

/// Tasks changed since a time, oldest change first, for clients that poll.
#[utoipa::path(get, path = "/tasks/updates", tag = "tasks", params(UpdatesQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Changed tasks and the next `since`", body = Updates)))]
pub async fn updates(
    State(app): State<AppState>,
    id: Identity,
    ApiQuery(q): ApiQuery<UpdatesQuery>,
) -> ApiResult<Response> {
    let limit = i64::from(q.limit.unwrap_or(500).clamp(1, 1000));
    let owner = (!id.is_admin()).then(|| id.user.id.clone());
    let items = tasks::updated_since(&app.db, owner.as_deref(), q.since, limit).await?;
    let next_since = items.last().map_or(q.since, |t| t.updated_at);
    let items = items.into_iter().map(TaskView::from).collect();
    Ok(ok(Updates { items, next_since }))
}

/// Publishes `task.cancelled` for each cancelled task and settles parents.
async fn after_cancel(app: &AppState, ids: &[String]) -> ApiResult<()> {
    let shared = &app.shared;
    let mut parents = Vec::new();
    for t in ids {
        let task = jobs::publish_task(
            &app.db,
            &shared.events,
            crate::wire::TaskEventKind::Cancelled,
            t,
        )
        .await;
        if let Some(p) = task.and_then(|t| t.parent_id)
            && !ids.contains(&p)
            && !parents.contains(&p)
        {
            parents.push(p);
        }
    }
    for p in parents {
        jobs::settle(shared, &p).await?;
    }
    Ok(())
}

/// Cancel a task and its queued and running children; running downloads stop within a
/// second and their temporary files are removed.
#[utoipa::path(post, path = "/tasks/{id}/cancel", tag = "tasks", params(("id" = String, Path, description = "Task id")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "`{cancelled}`: how many tasks stopped"), (status = 404, description = "No such task"),
        (status = 409, description = "The task has already ended")))]
pub async fn cancel(
    State(app): State<AppState>,
    id: Identity,
    Path(task_id): Path<String>,
) -> ApiResult<Response> {
    visible(&app, &id, &task_id).await?;
    let ids = tasks::cancel(&app.db, &task_id).await?;
    if ids.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            code::NOT_ACTIVE,
            "the task has already ended",
        ));
    }
    after_cancel(&app, &ids).await?;
    Ok(ok(serde_json::json!({ "cancelled": ids.len() })))
}

/// Cancel every active request of the caller (every user's, for an admin).
#[utoipa::path(post, path = "/tasks/cancel-all", tag = "tasks", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "`{cancelled}`")))]
pub async fn cancel_all(State(app): State<AppState>, id: Identity) -> ApiResult<Response> {
    let owner = (!id.is_admin()).then(|| id.user.id.clone());
    let mut all = Vec::new();
    for root in tasks::active_roots(&app.db, owner.as_deref()).await? {
        all.extend(tasks::cancel(&app.db, &root).await?);
    }
    after_cancel(&app, &all).await?;
    Ok(ok(serde_json::json!({ "cancelled": all.len() })))
}

/// Retry a request's failed children under the same parent (or a failed task without
/// children). Each keeps its attempt count; it gets the configured number of new attempts.
#[utoipa::path(post, path = "/tasks/{id}/retry", tag = "tasks", params(("id" = String, Path, description = "Task id")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "`{retried}`"), (status = 404, description = "No such task"),
        (status = 409, description = "Nothing failed")))]
pub async fn retry(
    State(app): State<AppState>,
    id: Identity,
    Path(task_id): Path<String>,
) -> ApiResult<Response> {
    let task = visible(&app, &id, &task_id).await?;
    if matches!(task.status.as_str(), "queued" | "running") {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            code::NOT_FINISHED,
            "the task is still running; retry it once it has ended",
        ));
    }
    let extra = i64::from(app.config.queue.max_attempts);
    let again = tasks::retry_failed(&app.db, &task_id, extra).await?;
    if again.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            code::NOTHING_TO_RETRY,
            "no failed task to retry",
        ));
    }
    let shared = &app.shared;
    for (t, pool) in &again {
        jobs::publish_task(
            &app.db,
            &shared.events,
            crate::wire::TaskEventKind::Queued,
            t,
        )
        .await;
        jobs::enqueue(
            &shared.queue,
            Pool::parse(pool).unwrap_or(Pool::Io),
            t,
            None,
        )
        .await;
    }
    if again.iter().all(|(t, _)| *t != task_id) {
        jobs::publish_task(
            &app.db,
            &shared.events,
            crate::wire::TaskEventKind::Progress,
            &task_id,
        )
        .await;
    }
    Ok(ok(serde_json::json!({ "retried": again.len() })))
}

/// Delete a finished task (and its children) from history. Files in the library stay.
#[utoipa::path(delete, path = "/tasks/{id}", tag = "tasks", params(("id" = String, Path, description = "Task id")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such task"),
        (status = 409, description = "Still active: cancel it first")))]
pub async fn delete(
    State(app): State<AppState>,
    id: Identity,
    Path(task_id): Path<String>,
) -> ApiResult<Response> {
    visible(&app, &id, &task_id).await?;
    if !tasks::delete_finished(&app.db, &task_id).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            code::STILL_ACTIVE,
            "the task (or one of its children) is still active: cancel it first",
        ));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
