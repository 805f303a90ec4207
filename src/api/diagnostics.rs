//! `/diagnostics`: admin tools that exercise the daemon itself.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::error::ApiResult;
use super::extract::ApiJson;
use super::types::Accepted;
use super::with_status;
use crate::api::identity::Admin;
use crate::api::state::AppState;
use crate::db::tasks::NewTask;
use crate::jobs::{self, ping};

/// Enqueue a `ping` job on the io pool: proves the queue round trip end to end.
#[utoipa::path(post, path = "/diagnostics/ping", tag = "diagnostics", request_body = ping::PingOptions,
    security(("bearer" = []), ("api_key" = [])), responses((status = 202, description = "Queued; `task_id` to follow", body = Accepted)))]
pub async fn ping(
    State(app): State<AppState>,
    admin: Admin,
    ApiJson(opts): ApiJson<ping::PingOptions>,
) -> ApiResult<Response> {
    if opts.sleep_ms > 600_000 {
        return Err(crate::api::error::ApiError::validation(
            Some("sleep_ms"),
            "at most 600000 (10 minutes)",
        ));
    }
    let new = NewTask {
        owner_id: Some(admin.0.user.id.clone()),
        max_attempts: app.config.queue.max_attempts as i64,
        ..jobs::new_task(&opts)
    };
    let task = jobs::submit(&app.db, &app.queue, &app.events, &new)
        .await?
        .map_err(|existing| {
            crate::api::error::ApiError::conflict(format!("already queued as {existing}"))
        })?;
    Ok(with_status(
        StatusCode::ACCEPTED,
        Accepted {
            task_id: task.id,
            status: task.status,
        },
    ))
}
