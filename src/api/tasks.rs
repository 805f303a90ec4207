//! `/tasks`: the task ledger as users see it (their own tasks; an admin sees all).

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiError, ApiResult};
use super::extract::ApiQuery;
use super::{Page, ok};
use crate::app::AppState;
use crate::auth::Identity;
use crate::db::tasks;

/// Filters and paging for the task list.
#[derive(Debug, Deserialize, IntoParams)]
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
    pub cursor: Option<String>,
}

fn parse_cursor(c: &str) -> Result<(i64, String), ApiError> {
    let bad = || ApiError::validation(Some("cursor"), "not a cursor from this API");
    let (at, id) = c.split_once('_').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, id.to_string()))
}

/// List tasks, newest first.
#[utoipa::path(get, path = "/tasks", tag = "tasks", params(ListQuery), security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of tasks")))]
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
    let mut items = tasks::list(&app.db, &filter, limit + 1).await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|t| format!("{}_{}", t.created_at, t.id))
    } else {
        None
    };
    Ok(ok(Page { items, next_cursor }))
}

/// One task.
#[utoipa::path(get, path = "/tasks/{id}", tag = "tasks", params(("id" = String, Path, description = "Task id")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The task"), (status = 404, description = "No such task")))]
pub async fn get(
    State(app): State<AppState>,
    id: Identity,
    Path(task_id): Path<String>,
) -> ApiResult<Response> {
    match tasks::get(&app.db, &task_id).await? {
        Some(t) if id.may_access(t.owner_id.as_deref()) => Ok(ok(t)),
        _ => Err(ApiError::not_found("no such task")),
    }
}
