//! `/webhooks`: a user's webhooks and notification targets (ntfy, Gotify, Discord), their
//! test message and their delivery log. A hook hears only its owner's work; system events
//! only an admin's hooks.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery};
use super::{ok, with_status};
use crate::api::identity::Identity;
use crate::api::state::AppState;
use crate::db::webhooks::{self, Hook, HookChange, NewHook};
use crate::jobs::deliver::seal_name;
use crate::notify::{self, sign, targets};
use crate::wire::WebhookView;

/// A new hook.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `http(s)://…` (with `kind`), or an Apprise URL: `ntfy://topic`,
    /// `ntfys://[token@]host/topic`, `gotify(s)://host/token`, `discord://id/token`.
    pub url: String,
    /// `webhook` (the default for http URLs: signed JSON), `ntfy`, `gotify` or `discord`.
    #[serde(default)]
    pub kind: Option<String>,
    /// A label (default: the URL's host).
    #[serde(default)]
    pub name: Option<String>,
    /// Event types to hear (default: one message per request, upload and watch check;
    /// `track.*` for one per track; system events for admins).
    #[serde(default)]
    pub events: Vec<String>,
    /// A webhook's signing secret (`whsec_` + base64 of 24–64 bytes); generated when absent
    /// and shown once.
    #[serde(default)]
    pub secret: Option<String>,
    /// A preset's token (ntfy access token or `user:password`, Gotify application token)
    /// when the URL does not carry it.
    #[serde(default)]
    pub token: Option<String>,
}

/// Changes to a hook; absent fields stay.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    /// A new label.
    #[serde(default)]
    pub name: Option<String>,
    /// A new target of the same kind.
    #[serde(default)]
    pub url: Option<String>,
    /// New event types.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// `true` turns it on again (clearing its failures), `false` off.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// A new signing secret, or a preset's new token.
    #[serde(default)]
    pub secret: Option<String>,
    /// `true`: a new random signing secret, shown in this answer once.
    #[serde(default)]
    pub rotate_secret: bool,
}

/// How many attempts to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// At most this many, newest first (1–500, default 50).
    #[serde(default)]
    pub limit: Option<i64>,
}

fn view(h: &Hook, secret: Option<String>) -> WebhookView {
    WebhookView {
        id: h.id.clone(),
        owner_id: h.owner_id.clone(),
        name: h.name.clone(),
        kind: h.kind.clone(),
        url: h.url.clone(),
        events: h.event_list(),
        has_secret: h.secret.is_some(),
        enabled: h.enabled == 1,
        state: h.state.clone(),
        failures: h.failures,
        disabled_reason: h.disabled_reason.clone(),
        last_error: h.last_error.clone(),
        last_delivery_at: h.last_delivery_at,
        created_at: h.created_at,
        secret,
    }
}

/// The event types, checked: known names, and system events only for admins.
fn check_events(id: &Identity, events: &[String]) -> Result<String, ApiError> {
    let events: Vec<String> = if events.is_empty() {
        notify::DEFAULT_EVENTS
            .iter()
            .map(|e| e.to_string())
            .collect()
    } else {
        events.to_vec()
    };
    for e in &events {
        if notify::SYSTEM_EVENTS.contains(&e.as_str()) {
            if !id.is_admin() {
                return Err(ApiError::forbidden(format!(
                    "only an admin's hooks may hear the system event `{e}`"
                )));
            }
        } else if !notify::USER_EVENTS.contains(&e.as_str()) {
            return Err(ApiError::validation(
                Some("events"),
                format!(
                    "unknown event `{e}`; known: {}, {}",
                    notify::USER_EVENTS.join(", "),
                    notify::SYSTEM_EVENTS.join(", ")
                ),
            ));
        }
    }
    let mut events = events;
    events.sort();
    events.dedup();
    Ok(serde_json::to_string(&events).unwrap_or_default())
}

/// A target written as a private address is refused now, with the way to allow it; a name
/// is checked by the address guard at each delivery.
fn check_address(app: &AppState, url: &str) -> Result<(), ApiError> {
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let c = &app.config;
    match musicd_media::fetch::literal_address(&host) {
        Some(ip) if musicd_media::fetch::refuses(ip, c.fetch_allow_private, &c.fetch_allow_ips) => {
            Err(ApiError::validation(
                Some("url"),
                format!(
                    "{host} is a private or loopback address; allow it with fetch_allow_ips (or fetch_allow_private)"
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// The caller's hook, or 404 (another user's hook is not shown to exist).
async fn own(app: &AppState, id: &Identity, hook_id: &str) -> Result<Hook, ApiError> {
    match webhooks::get(&app.db, hook_id).await? {
        Some(h) if h.owner_id == id.user.id => Ok(h),
        _ => Err(ApiError::not_found("no such webhook")),
    }
}

/// Add a webhook or a notification target. A webhook's signing secret is in this answer only.
#[utoipa::path(post, path = "/webhooks", tag = "webhooks", request_body = NewWebhook,
    security(("bearer" = []), ("api_key" = []), ("session" = [])),
    responses((status = 201, description = "Created", body = WebhookView),
        (status = 403, description = "A system event asked by someone not an admin")))]
pub async fn create(
    State(app): State<AppState>,
    id: Identity,
    ApiJson(body): ApiJson<NewWebhook>,
) -> ApiResult<Response> {
    let target = targets::parse(
        body.kind.as_deref(),
        &body.url,
        body.token.as_deref(),
        &app.config.notify,
    )
    .map_err(|m| ApiError::validation(Some("url"), m))?;
    check_address(&app, &target.url)?;
    let events = check_events(&id, &body.events)?;
    let (secret, shown) = if target.kind == "webhook" {
        let s = body.secret.clone().unwrap_or_else(sign::new_secret);
        sign::key_of(&s).map_err(|m| ApiError::validation(Some("secret"), m))?;
        (Some(s.clone()), Some(s))
    } else {
        if body.secret.is_some() {
            return Err(ApiError::validation(
                Some("secret"),
                "only a webhook has a signing secret; a preset's token goes in `token`",
            ));
        }
        (target.secret.clone(), None)
    };
    let name = body
        .name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| {
            url::Url::parse(&target.url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| target.kind.to_string())
        });
    if name.chars().count() > 100 {
        return Err(ApiError::validation(Some("name"), "at most 100 characters"));
    }
    // The secret is sealed under the hook's id, so the id is made first.
    let hook_id = crate::db::new_id();
    let sealed = secret.as_ref().map(|s| {
        let (p, n) = seal_name(&hook_id);
        app.shared.vault.seal(p, &n, s)
    });
    let hook = webhooks::create(
        &app.db,
        &NewHook {
            id: &hook_id,
            owner_id: &id.user.id,
            name: &name,
            kind: target.kind,
            url: &target.url,
            events: &events,
            secret: sealed.as_deref(),
        },
    )
    .await?;
    Ok(with_status(StatusCode::CREATED, view(&hook, shown)))
}

/// The caller's hooks.
#[utoipa::path(get, path = "/webhooks", tag = "webhooks",
    security(("bearer" = []), ("api_key" = []), ("session" = [])),
    responses((status = 200, description = "Hooks", body = Vec<WebhookView>)))]
pub async fn list(State(app): State<AppState>, id: Identity) -> ApiResult<Response> {
    let hooks = webhooks::list(&app.db, &id.user.id).await?;
    Ok(ok(hooks.iter().map(|h| view(h, None)).collect::<Vec<_>>()))
}

/// One of the caller's hooks.
#[utoipa::path(get, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "Hook id")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])),
    responses((status = 200, description = "The hook", body = WebhookView), (status = 404, description = "No such hook")))]
pub async fn get(
    State(app): State<AppState>,
    id: Identity,
    Path(hook_id): Path<String>,
) -> ApiResult<Response> {
    let h = own(&app, &id, &hook_id).await?;
    Ok(ok(view(&h, None)))
}

/// Change a hook: name, target, events, secret; `enabled: true` turns a disabled hook on.
#[utoipa::path(patch, path = "/webhooks/{id}", tag = "webhooks", request_body = WebhookPatch,
    params(("id" = String, Path, description = "Hook id")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])),
    responses((status = 200, description = "The hook", body = WebhookView), (status = 404, description = "No such hook")))]
pub async fn patch(
    State(app): State<AppState>,
    id: Identity,
    Path(hook_id): Path<String>,
    ApiJson(body): ApiJson<WebhookPatch>,
) -> ApiResult<Response> {
    let h = own(&app, &id, &hook_id).await?;
    let mut change = HookChange {
        name: body
            .name
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty()),
        enabled: body.enabled,
        ..HookChange::default()
    };
    let mut new_secret = body.secret.clone();
    if let Some(url) = &body.url {
        let t = targets::parse(Some(&h.kind), url, None, &app.config.notify)
            .map_err(|m| ApiError::validation(Some("url"), m))?;
        check_address(&app, &t.url)?;
        change.url = Some(t.url);
        if t.secret.is_some() && h.kind != "webhook" {
            new_secret = t.secret;
        }
    }
    if let Some(events) = &body.events {
        change.events = Some(check_events(&id, events)?);
    }
    let mut shown = None;
    if body.rotate_secret {
        if h.kind != "webhook" {
            return Err(ApiError::validation(
                Some("rotate_secret"),
                "only a webhook has a signing secret",
            ));
        }
        new_secret = Some(sign::new_secret());
        shown = new_secret.clone();
    }
    if let Some(s) = &new_secret {
        if h.kind == "webhook" {
            sign::key_of(s).map_err(|m| ApiError::validation(Some("secret"), m))?;
        }
        let (p, n) = seal_name(&h.id);
        change.secret = Some(app.shared.vault.seal(p, &n, s));
    }
    let h = webhooks::update(&app.db, &h.id, &change)
        .await?
        .ok_or_else(|| ApiError::not_found("no such webhook"))?;
    Ok(ok(view(&h, shown)))
}

/// Delete a hook; messages still queued for it are dropped.
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "Hook id")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])),
    responses((status = 200, description = "Deleted"), (status = 404, description = "No such hook")))]
pub async fn delete(
    State(app): State<AppState>,
    id: Identity,
    Path(hook_id): Path<String>,
) -> ApiResult<Response> {
    let h = own(&app, &id, &hook_id).await?;
    webhooks::delete(&app.db, &h.id).await?;
    Ok(ok(serde_json::json!({ "deleted": h.id })))
}

/// Send a test message (`webhook.test`) now; its attempts show in the deliveries.
#[utoipa::path(post, path = "/webhooks/{id}/test", tag = "webhooks", params(("id" = String, Path, description = "Hook id")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])),
    responses((status = 202, description = "Queued: the delivery's task id"), (status = 404, description = "No such hook")))]
pub async fn test(
    State(app): State<AppState>,
    id: Identity,
    Path(hook_id): Path<String>,
) -> ApiResult<Response> {
    let h = own(&app, &id, &hook_id).await?;
    let data = serde_json::json!({
        "title": "musicd test message",
        "message": format!("Sent by {} from POST /webhooks/{}/test", id.user.username, h.id),
        "ok": true,
    });
    let task = crate::jobs::notify::queue_delivery(&app.shared, &h, notify::TEST, data)
        .await
        .map_err(|e| ApiError::internal(format!("{e:#}")))?;
    Ok(with_status(
        StatusCode::ACCEPTED,
        serde_json::json!({ "task_id": task.id }),
    ))
}

/// A hook's recent delivery attempts, newest first: event, status code, latency, outcome.
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "Hook id"), DeliveriesQuery),
    security(("bearer" = []), ("api_key" = []), ("session" = [])),
    responses((status = 200, description = "Attempts", body = Vec<webhooks::Attempt>), (status = 404, description = "No such hook")))]
pub async fn deliveries(
    State(app): State<AppState>,
    id: Identity,
    Path(hook_id): Path<String>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> ApiResult<Response> {
    let h = own(&app, &id, &hook_id).await?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::validation(Some("limit"), "must be 1 to 500"));
    }
    Ok(ok(webhooks::attempts(&app.db, &h.id, limit).await?))
}
