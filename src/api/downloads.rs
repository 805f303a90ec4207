//! `POST /downloads`: a request becomes a `download` task at once (202); a job resolves it
//! and fans out one `track` task per track.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::extract::ApiJson;
use super::providers::{Target, check_target};
use super::types::Accepted;
use super::with_status;
use crate::api::identity::Identity;
use crate::api::state::AppState;
use crate::db::tasks::NewTask;
use crate::failure::code;
use crate::jobs::{self, download::DownloadOptions};

/// Checks a request and returns the identity of what it asks for.
async fn validate(app: &AppState, o: &mut DownloadOptions) -> Result<String, ApiError> {
    let target = match check_target(
        app,
        o.url.as_deref(),
        o.provider.as_deref(),
        o.kind.as_deref(),
        o.id.as_deref(),
        None,
        o.release_types.as_deref(),
    )
    .await?
    {
        Target::Url(u) => {
            o.url = Some(u.to_string());
            u.to_string()
        }
        Target::Item { provider, kind, id } => {
            let target = format!("{provider}:{kind}:{id}");
            // A link routed to a provider runs as that provider's item.
            o.url = None;
            o.provider = Some(provider);
            o.kind = Some(kind);
            o.id = Some(id);
            target
        }
    };
    app.config
        .media
        .process_options(
            o.format.as_deref(),
            o.quality.as_deref(),
            o.path_template.as_deref(),
        )
        .map_err(|m| {
            let field = m.split(':').next().unwrap_or("format").to_string();
            ApiError::validation(Some(&field), m)
        })?;
    if o.tracks.as_ref().is_some_and(|t| t.is_empty()) {
        return Err(ApiError::validation(
            Some("tracks"),
            "choose at least one track, or leave `tracks` out to take all",
        ));
    }
    let media = &app.config.media;
    let chosen = o.tracks.as_ref().map(|t| t.join(",")).unwrap_or_default();
    let types = o
        .release_types
        .as_ref()
        .map(|t| t.join(","))
        .unwrap_or_default();
    Ok(format!(
        "download:{target}|{types}|{chosen}|{}|{}|{}",
        o.format.as_deref().unwrap_or(&media.format),
        o.quality.as_deref().unwrap_or(&media.quality),
        o.path_template.as_deref().unwrap_or(&media.path_template),
    ))
}

/// Request a download: a URL (a podcast feed or a direct audio file), or a provider's
/// kind and id. Answers at once with the task id; follow it on `/events?task_id=…`.
#[utoipa::path(post, path = "/downloads", tag = "downloads", request_body = DownloadOptions,
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 202, description = "Accepted: the task that records the request", body = Accepted),
        (status = 400, description = "Invalid request"),
        (status = 409, description = "The same request is already active (`details[0].task_id`)")))]
pub async fn create(
    State(app): State<AppState>,
    id: Identity,
    ApiJson(mut body): ApiJson<DownloadOptions>,
) -> ApiResult<Response> {
    let asked = body.url.clone();
    let key = validate(&app, &mut body).await?;
    // The link as given, or the item it named.
    let source = asked.or_else(|| body.id.clone());
    let new = NewTask {
        owner_id: Some(id.user.id.clone()),
        source,
        idempotency_key: Some(key),
        max_attempts: i64::from(app.config.queue.max_attempts),
        ..jobs::new_task(&body)
    };
    let shared = &app.shared;
    match jobs::submit(&app.db, &shared.queue, &shared.events, &new)
        .await
        .map_err(ApiError::internal)?
    {
        Ok(task) => Ok(with_status(
            StatusCode::ACCEPTED,
            Accepted {
                task_id: task.id,
                status: task.status,
            },
        )),
        Err(existing) => {
            let mut e = ApiError::new(
                StatusCode::CONFLICT,
                code::DUPLICATE_REQUEST,
                format!("the same request is already active as task {existing}"),
            );
            e.details.push(json!({ "task_id": existing }));
            Err(e)
        }
    }
}
