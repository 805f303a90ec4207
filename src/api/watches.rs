//! `/watches`: feeds, playlists and artists kept in sync on a schedule, their checks (also
//! on demand, or as a dry run), and `/config/watch`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery};
use super::providers::{Scratch, Target, check_release_types, check_target};
use super::{ok, with_status};
use crate::api::identity::{Admin, Identity};
use crate::api::state::AppState;
use crate::config::WatchConfig;
use crate::db::watches::{self, Watch};
use crate::failure::JobError;
use crate::failure::code;
use crate::providers::{Fetcher, looks_like_feed};
use crate::scheduler::enqueue_check;

/// Kinds a watch can follow.
const WATCH_KINDS: &[&str] = &["feed", "playlist", "artist", "url"];

/// A new watch: a `url` (a feed, or a page yt-dlp reads as a playlist), or a provider's
/// kind and id.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWatch {
    /// A feed URL, or a playlist or channel page.
    pub url: Option<String>,
    /// Or a provider …
    pub provider: Option<String>,
    /// … a kind (`feed`, `playlist`, `artist`) …
    pub kind: Option<String>,
    /// … and an id.
    pub id: Option<String>,
    /// Cron expression (UTC; 5 fields, or 6 with seconds); absent follows the default.
    pub schedule: Option<String>,
    /// `false` (default): what is there now is only marked seen; `true`: it downloads too.
    #[serde(default)]
    pub download_existing: bool,
    /// For artists: `album`, `single`, `compilation`, `appears_on`; absent keeps all.
    pub release_types: Option<Vec<String>>,
    /// When the source drops an item: `keep` (default), `delete` the file, or `flag` it.
    pub on_removed: Option<String>,
    /// Output format (default `media.format`).
    pub format: Option<String>,
    /// Quality preset (default `media.quality`).
    pub quality: Option<String>,
    /// Scheduled checks run (default `true`).
    pub enabled: Option<bool>,
}

/// A change to a watch; absent fields keep their value (`schedule: null` returns to the
/// default schedule).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WatchPatch {
    /// Cron expression, or `null` for the default.
    #[serde(default, deserialize_with = "some_value")]
    #[schema(value_type = Option<String>)]
    pub schedule: Option<Option<String>>,
    /// Scheduled checks run.
    pub enabled: Option<bool>,
    /// See [`NewWatch::download_existing`] (only matters before the first check).
    pub download_existing: Option<bool>,
    /// For artists.
    pub release_types: Option<Vec<String>>,
    /// `keep`, `delete` or `flag`.
    pub on_removed: Option<String>,
    /// Output format.
    pub format: Option<String>,
    /// Quality preset.
    pub quality: Option<String>,
}

/// Tells "absent" (`None`) from "null" (`Some(None)`).
fn some_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

fn check_schedule(s: &str) -> Result<(), ApiError> {
    crate::watch::parse_schedule(s)
        .map(|_| ())
        .map_err(|m| ApiError::validation(Some("schedule"), m))
}

fn check_on_removed(s: &str) -> Result<(), ApiError> {
    if crate::watch::ON_REMOVED.contains(&s) {
        Ok(())
    } else {
        Err(ApiError::validation(
            Some("on_removed"),
            format!("`{s}` is not one of keep, delete, flag"),
        ))
    }
}

fn check_output(app: &AppState, format: Option<&str>, quality: Option<&str>) -> ApiResult<()> {
    app.config
        .media
        .process_options(format, quality, None)
        .map(|_| ())
        .map_err(|m| {
            let field = m.split(':').next().unwrap_or("format").to_string();
            ApiError::validation(Some(&field), m)
        })
}

/// Where a URL points: a feed (`podcast`), else a page for yt-dlp.
async fn sniff(app: &AppState, url: &str) -> ApiResult<(&'static str, &'static str)> {
    let staging = app.config.data_dir.join("staging");
    let fetch = Fetcher::new(app.shared.env.clone(), staging, app.shutdown.child_token());
    let doc = fetch
        .document(url, app.config.media.max_feed_size.as_u64(), None, None)
        .await
        .map_err(|e| match e {
            // The caller's URL, not the upstream, is at fault.
            JobError::Permanent {
                code: code @ "blocked_address",
                message,
            }
            | JobError::Transient {
                code: code @ "blocked_address",
                message,
                ..
            } => ApiError::new(StatusCode::BAD_REQUEST, code, message),
            e => e.into(),
        })?;
    Ok(match doc {
        musicd_media::fetch::Document::Body {
            bytes,
            content_type,
            ..
        } if looks_like_feed(&bytes, content_type.as_deref()) => ("podcast", "feed"),
        _ => ("ytdlp", "playlist"),
    })
}

/// Watch a feed, playlist or artist. The first check runs at once: it records what is there
/// (downloading it only with `download_existing`); later checks download what is new.
#[utoipa::path(post, path = "/watches", tag = "watches", request_body = NewWatch,
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 201, description = "The watch, and `check_task_id` of its first check"),
        (status = 400, description = "Invalid request, naming the field")))]
pub async fn create(
    State(app): State<AppState>,
    id: Identity,
    ApiJson(body): ApiJson<NewWatch>,
) -> ApiResult<Response> {
    if let Some(s) = &body.schedule {
        check_schedule(s)?;
    }
    let on_removed = body.on_removed.clone().unwrap_or_else(|| "keep".into());
    check_on_removed(&on_removed)?;
    check_output(&app, body.format.as_deref(), body.quality.as_deref())?;
    let target = check_target(
        &app,
        body.url.as_deref(),
        body.provider.as_deref(),
        body.kind.as_deref(),
        body.id.as_deref(),
        Some(WATCH_KINDS),
        body.release_types.as_deref(),
    )
    .await?;
    let (provider, kind, item_id) = match target {
        Target::Url(u) => {
            let (p, k) = sniff(&app, u.as_str()).await?;
            (p.to_string(), k.to_string(), u.to_string())
        }
        Target::Item { provider, kind, id } => (provider, kind, id),
    };
    let settings = app.shared.limits.watch();
    let schedule = body
        .schedule
        .clone()
        .unwrap_or_else(|| settings.default_schedule.clone());
    let now = crate::db::now_ms();
    let draft = Watch {
        id: String::new(),
        owner_id: id.user.id.clone(),
        url: body.url.clone(),
        provider,
        kind,
        item_id,
        title: None,
        schedule: body.schedule.clone(),
        enabled: i64::from(body.enabled.unwrap_or(true)),
        download_existing: i64::from(body.download_existing),
        release_types: body
            .release_types
            .as_ref()
            .map(|t| serde_json::to_string(t).unwrap_or_default()),
        on_removed,
        format: body.format.clone(),
        quality: body.quality.clone(),
        etag: None,
        last_modified: None,
        content_hash: None,
        baseline: 0,
        next_check_at: crate::watch::next_after(&schedule, now),
        last_check_at: None,
        last_result: None,
        last_error: None,
        last_task_id: None,
        playlist_path: None,
        created_at: now,
        updated_at: now,
    };
    let w = watches::insert(&app.db, &draft).await?;
    let check = enqueue_check(&app.shared, &w, "created", None)
        .await
        .map_err(ApiError::internal)?
        .ok();
    app.shared.watch_wake.notify_one();
    let mut v = serde_json::to_value(&w).unwrap_or_default();
    v["check_task_id"] = json!(check.map(|t| t.id));
    Ok(with_status(StatusCode::CREATED, v))
}

/// Paging of `GET /watches`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Watches per page (1–500, default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Admins: every user's watches.
    #[serde(default)]
    all: bool,
}

/// The caller's watches with their last and next check, last result and last error.
#[utoipa::path(get, path = "/watches", tag = "watches", params(ListQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of watches")))]
pub async fn list(
    State(app): State<AppState>,
    id: Identity,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Response> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::validation(Some("limit"), "between 1 and 500"));
    }
    let after = q
        .cursor
        .as_deref()
        .map(super::tasks::parse_cursor)
        .transpose()?;
    let owner = (!(q.all && id.is_admin())).then(|| id.user.id.clone());
    let mut items = watches::list(&app.db, owner.as_deref(), after, limit + 1).await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|w| format!("{}_{}", w.created_at, w.id))
    } else {
        None
    };
    Ok(ok(json!({ "items": items, "next_cursor": next_cursor })))
}

/// The watch, if the caller may see it (its owner or an admin); 404 otherwise.
pub(super) async fn owned(app: &AppState, id: &Identity, watch_id: &str) -> ApiResult<Watch> {
    match watches::get(&app.db, watch_id).await? {
        Some(w) if id.may_access(Some(&w.owner_id)) => Ok(w),
        _ => Err(ApiError::not_found(format!("no watch {watch_id}"))),
    }
}

/// One watch.
#[utoipa::path(get, path = "/watches/{id}", tag = "watches",
    params(("id" = String, Path, description = "Watch id")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The watch"), (status = 404, description = "No such watch")))]
pub async fn get(
    State(app): State<AppState>,
    id: Identity,
    Path(watch_id): Path<String>,
) -> ApiResult<Response> {
    Ok(ok(owned(&app, &id, &watch_id).await?))
}

/// Change a watch. A new schedule takes effect without a restart.
#[utoipa::path(patch, path = "/watches/{id}", tag = "watches", request_body = WatchPatch,
    params(("id" = String, Path, description = "Watch id")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The watch"), (status = 400, description = "Invalid value, naming the field"),
        (status = 404, description = "No such watch")))]
pub async fn patch(
    State(app): State<AppState>,
    id: Identity,
    Path(watch_id): Path<String>,
    ApiJson(p): ApiJson<WatchPatch>,
) -> ApiResult<Response> {
    let mut w = owned(&app, &id, &watch_id).await?;
    if let Some(s) = &p.schedule {
        if let Some(s) = s {
            check_schedule(s)?;
        }
        w.schedule = s.clone();
    }
    if let Some(o) = &p.on_removed {
        check_on_removed(o)?;
        w.on_removed = o.clone();
    }
    if let Some(t) = &p.release_types {
        check_release_types(t)?;
        w.release_types = Some(serde_json::to_string(t).unwrap_or_default());
    }
    let format = p.format.clone().or(w.format.clone());
    let quality = p.quality.clone().or(w.quality.clone());
    check_output(&app, format.as_deref(), quality.as_deref())?;
    (w.format, w.quality) = (format, quality);
    if let Some(e) = p.enabled {
        w.enabled = i64::from(e);
    }
    if let Some(d) = p.download_existing {
        w.download_existing = i64::from(d);
    }
    let schedule = crate::watch::schedule_of(&w, &app.shared.limits.watch());
    w.next_check_at = crate::watch::next_after(&schedule, crate::db::now_ms());
    watches::update(&app.db, &w).await?;
    app.shared.watch_wake.notify_one();
    Ok(ok(owned(&app, &id, &watch_id).await?))
}

/// Stop watching. Files already in the library stay.
#[utoipa::path(delete, path = "/watches/{id}", tag = "watches",
    params(("id" = String, Path, description = "Watch id")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Deleted"), (status = 404, description = "No such watch")))]
pub async fn delete(
    State(app): State<AppState>,
    id: Identity,
    Path(watch_id): Path<String>,
) -> ApiResult<Response> {
    owned(&app, &id, &watch_id).await?;
    watches::delete(&app.db, &watch_id).await?;
    app.shared.watch_wake.notify_one();
    Ok(ok(json!({ "deleted": watch_id })))
}

/// `?dry_run=true`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CheckQuery {
    /// Report what would be added and removed, changing nothing.
    #[serde(default)]
    dry_run: bool,
}

fn duplicate(task_id: &str) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::CONFLICT,
        code::DUPLICATE_REQUEST,
        format!("a check of this watch is already running as task {task_id}"),
    );
    e.details.push(json!({ "task_id": task_id }));
    e
}

/// Check a watch now: 202 with the check's task id; with `dry_run=true`, 200 with the diff
/// (what would be added and removed) and nothing changed.
#[utoipa::path(post, path = "/watches/{id}/check", tag = "watches", params(("id" = String, Path, description = "Watch id"), CheckQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 202, description = "`{task_id}`"), (status = 200, description = "Dry run: the diff"),
        (status = 404, description = "No such watch"), (status = 409, description = "A check is running (`details[0].task_id`)"),
        (status = 502, description = "Dry run: the source failed")))]
pub async fn check(
    State(app): State<AppState>,
    id: Identity,
    Path(watch_id): Path<String>,
    ApiQuery(q): ApiQuery<CheckQuery>,
) -> ApiResult<Response> {
    let w = owned(&app, &id, &watch_id).await?;
    if q.dry_run {
        let mut scratch = Scratch::new(&app)?;
        scratch.fetch.release_types = w.release_types();
        let report = crate::watch::plan(&app.shared.env, &w, &scratch.fetch, true)
            .await
            .map(|p| p.report);
        return match report {
            Ok(r) => Ok(ok(r)),
            Err(e) => Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                code::UPSTREAM_ERROR,
                e.to_string(),
            )),
        };
    }
    match enqueue_check(&app.shared, &w, "manual", None)
        .await
        .map_err(ApiError::internal)?
    {
        Ok(t) => Ok(with_status(
            StatusCode::ACCEPTED,
            json!({ "task_id": t.id, "status": t.status }),
        )),
        Err(running) => Err(duplicate(&running)),
    }
}

/// Check all of the caller's watches now (every watch, for an admin).
#[utoipa::path(post, path = "/watches/check", tag = "watches",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 202, description = "`{queued: [{watch_id, task_id}], running: [{watch_id, task_id}]}`")))]
pub async fn check_all(State(app): State<AppState>, id: Identity) -> ApiResult<Response> {
    let owner = (!id.is_admin()).then(|| id.user.id.clone());
    let (mut queued, mut running) = (Vec::new(), Vec::new());
    let mut after = None;
    loop {
        let page = watches::list(&app.db, owner.as_deref(), after.clone(), 500).await?;
        for w in &page {
            match enqueue_check(&app.shared, w, "manual", None)
                .await
                .map_err(ApiError::internal)?
            {
                Ok(t) => queued.push(json!({ "watch_id": w.id, "task_id": t.id })),
                Err(t) => running.push(json!({ "watch_id": w.id, "task_id": t })),
            }
        }
        match page.last() {
            Some(w) if page.len() == 500 => after = Some((w.created_at, w.id.clone())),
            _ => break,
        }
    }
    Ok(with_status(
        StatusCode::ACCEPTED,
        json!({ "queued": queued, "running": running }),
    ))
}

/// The watch settings in force.
#[utoipa::path(get, path = "/config/watch", tag = "settings", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The watch settings", body = WatchConfig), (status = 403, description = "Not an admin")))]
pub async fn get_config(State(app): State<AppState>, _admin: Admin) -> ApiResult<Response> {
    Ok(ok(app.shared.limits.watch()))
}

/// A change to the watch settings; absent fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WatchConfigPatch {
    /// Scheduled checks run.
    pub enabled: Option<bool>,
    /// Cron expression for watches without their own.
    pub default_schedule: Option<String>,
    /// Checks at once, per process.
    #[schema(minimum = 1, maximum = 64)]
    pub max_concurrent_checks: Option<u32>,
    /// Random delay before a scheduled check (`30s`, `2m`).
    pub jitter: Option<String>,
    /// How long after a failed download a check tries the item again (`24h`).
    pub retry_failed_after: Option<String>,
}

/// Change the watch settings. Every process applies them within a few seconds.
#[utoipa::path(put, path = "/config/watch", tag = "settings", request_body = WatchConfigPatch,
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The watch settings", body = WatchConfig),
        (status = 400, description = "Invalid value, naming the field"), (status = 403, description = "Not an admin")))]
pub async fn put_config(
    State(app): State<AppState>,
    _admin: Admin,
    ApiJson(p): ApiJson<WatchConfigPatch>,
) -> ApiResult<Response> {
    let mut w = app.shared.limits.watch();
    w.enabled = p.enabled.unwrap_or(w.enabled);
    w.default_schedule = p.default_schedule.unwrap_or(w.default_schedule);
    w.max_concurrent_checks = p.max_concurrent_checks.unwrap_or(w.max_concurrent_checks);
    if let Some(j) = &p.jitter {
        w.jitter = humantime::parse_duration(j)
            .map_err(|e| ApiError::validation(Some("jitter"), format!("`{j}`: {e}")))?;
    }
    if let Some(r) = &p.retry_failed_after {
        w.retry_failed_after = humantime::parse_duration(r)
            .map_err(|e| ApiError::validation(Some("retry_failed_after"), format!("`{r}`: {e}")))?;
    }
    w.validate()
        .map_err(|(field, m)| ApiError::validation(Some(field), m))?;
    let default_changed = w.default_schedule != app.shared.limits.watch().default_schedule;
    crate::watch::store_settings(&app.db, &w).await?;
    if default_changed {
        watches::reset_default_next(&app.db).await?;
    }
    app.shared.limits.apply_watch(w.clone());
    app.shared.watch_wake.notify_one();
    Ok(ok(w))
}
