//! `/history`: finished requests, searchable, with statistics and cleanup of old entries.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery};
use super::ok;
use crate::api::identity::Identity;
use crate::api::state::AppState;
use crate::db::{now_ms, tasks};

/// Filters and paging for history.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Text to find in the title (`Artist – Title`), the source URL, the output path or the
    /// error; a search looks at tracks too, not only top-level requests.
    pub q: Option<String>,
    /// Only this final status (`done`, `failed`, `cancelled`, `skipped`).
    pub status: Option<String>,
    /// Only this kind (`download`, `track`, `import`).
    pub kind: Option<String>,
    /// Tracks too, not only top-level requests.
    #[serde(default)]
    pub include_children: bool,
    /// Items per page, 1–200 (default 50).
    pub limit: Option<u32>,
    /// From a previous page's `next_cursor`.
    #[param(pattern = "^[0-9]{1,18}_.+$")]
    pub cursor: Option<String>,
}

/// Finished tasks, newest first.
#[utoipa::path(get, path = "/history", tag = "history", params(HistoryQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of finished tasks", body = crate::api::types::Page<crate::api::types::TaskView>)))]
pub async fn list(
    State(app): State<AppState>,
    id: Identity,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Response> {
    let limit = i64::from(q.limit.unwrap_or(50).clamp(1, 200));
    let text = q.q.filter(|s| !s.trim().is_empty());
    let filter = tasks::Filter {
        owner_id: (!id.is_admin()).then(|| id.user.id.clone()),
        status: q.status,
        kind: q.kind,
        active_only: false,
        top_level: !q.include_children && text.is_none(),
        finished_only: true,
        q: text,
        before: q
            .cursor
            .as_deref()
            .map(super::tasks::parse_cursor)
            .transpose()?,
    };
    let items = tasks::list(&app.db, &filter, limit + 1).await?;
    Ok(ok(super::tasks::keyset_page(items, limit)))
}

/// Counts of requests and tracks by status, bytes downloaded, tracks in the last day.
#[utoipa::path(get, path = "/history/stats", tag = "history", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Statistics", body = tasks::Stats)))]
pub async fn stats(State(app): State<AppState>, id: Identity) -> ApiResult<Response> {
    let owner = (!id.is_admin()).then(|| id.user.id.clone());
    Ok(ok(tasks::stats(&app.db, owner.as_deref()).await?))
}

/// What to clean up.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CleanupRequest {
    /// Remove finished requests that ended more than this many days ago (0 = all finished).
    #[schema(maximum = 36500)]
    pub days_old: u32,
}

/// Remove old finished requests (and their tracks) from history. Files in the library stay.
#[utoipa::path(post, path = "/history/cleanup", tag = "history", request_body = CleanupRequest,
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "`{deleted}`")))]
pub async fn cleanup(
    State(app): State<AppState>,
    id: Identity,
    ApiJson(body): ApiJson<CleanupRequest>,
) -> ApiResult<Response> {
    if body.days_old > 36_500 {
        return Err(ApiError::validation(Some("days_old"), "at most 36500"));
    }
    let before = now_ms() - i64::from(body.days_old) * 86_400_000 + 1;
    let owner = (!id.is_admin()).then(|| id.user.id.clone());
    let deleted = tasks::cleanup(&app.db, owner.as_deref(), before).await?;
    Ok(ok(serde_json::json!({ "deleted": deleted })))
}
