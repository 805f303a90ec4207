//! `/events`: Server-Sent Events with `Last-Event-ID` replay, filters, keep-alive and
//! per-user visibility; `/events/ticket` for browsers' `EventSource`, which cannot send headers.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, State};
use axum::http::{HeaderMap, StatusCode, request::Parts};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;

use super::error::{ApiError, ApiResult};
use super::extract::ApiQuery;
use super::with_status;
use crate::api::identity::Identity;
use crate::api::state::AppState;
use crate::auth;
use crate::db::{now_ms, tokens, users};
use crate::events::{Event, EventId, Replay};

/// Lifetime of an event-stream ticket.
const TICKET_TTL_SECS: i64 = 60;
/// How often an open stream re-reads its viewer's account: a demoted user loses admin
/// visibility and a deleted one loses the stream within this.
const RECHECK: Duration = Duration::from_secs(3);

/// Filters for the event stream.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only events of this task and of its children.
    pub task_id: Option<String>,
    /// Comma-separated event types or prefixes (`task.progress,task.completed` or `task.`).
    pub kinds: Option<String>,
    /// A ticket from `POST /events/ticket`, instead of a header (for `EventSource`).
    pub ticket: Option<String>,
    /// Resume after this id (the `Last-Event-ID` header wins when both are sent).
    pub last_event_id: Option<String>,
}

/// Get a single-use ticket, valid for 60 seconds, to open `/events?ticket=…` from a browser.
#[utoipa::path(post, path = "/events/ticket", tag = "events", security(("bearer" = []), ("api_key" = [])),
    responses((status = 201, description = "A ticket")))]
pub async fn ticket(State(app): State<AppState>, id: Identity) -> ApiResult<Response> {
    let t = auth::random_token();
    tokens::insert_ticket(
        &app.db,
        &id.user.id,
        &auth::token_hash(&t),
        now_ms() + TICKET_TTL_SECS * 1000,
    )
    .await?;
    Ok(with_status(
        StatusCode::CREATED,
        serde_json::json!({ "ticket": t, "expires_in": TICKET_TTL_SECS }),
    ))
}

struct Viewer {
    user_id: String,
    admin: bool,
    /// The credential allows admin visibility (an API key needs the `admin` scope).
    admin_scope: bool,
}

impl Viewer {
    fn may_see(&self, e: &Event) -> bool {
        self.admin || e.owner_id.as_deref() == Some(self.user_id.as_str())
    }
}

struct Filter {
    task_id: Option<String>,
    kinds: Vec<String>,
}

impl Filter {
    fn matches(&self, e: &Event) -> bool {
        let task_ok = self
            .task_id
            .as_deref()
            .is_none_or(|t| e.body.task_id() == t || e.body.parent_id() == Some(t));
        let kind = e.body.kind();
        let kind_ok =
            self.kinds.is_empty() || self.kinds.iter().any(|k| kind.starts_with(k.as_str()));
        task_ok && kind_ok
    }
}

fn to_sse(e: &Event) -> SseEvent {
    SseEvent::default()
        .id(e.id.map(|i| i.to_string()).unwrap_or_default())
        .event(e.body.kind())
        .data(e.body.data_json())
}

/// The event stream (`text/event-stream`). Reconnect with `Last-Event-ID` to receive what was
/// missed, in order, once. A `stream.gap` event says some events were older than the replay
/// window: refetch state with `GET /tasks/updates`.
#[utoipa::path(get, path = "/events", tag = "events", params(EventsQuery), security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "text/event-stream")))]
pub async fn stream(
    State(app): State<AppState>,
    mut parts: Parts,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<Response> {
    let viewer = match &q.ticket {
        Some(t) => {
            let user_id = tokens::redeem_ticket(&app.db, &auth::token_hash(t))
                .await?
                .ok_or_else(|| ApiError::unauthorized("invalid or expired ticket"))?;
            let user = users::by_id(&app.db, &user_id)
                .await?
                .ok_or_else(|| ApiError::unauthorized("invalid or expired ticket"))?;
            Viewer {
                admin: user.is_admin(),
                user_id: user.id,
                admin_scope: true,
            }
        }
        None => {
            let id = Identity::from_request_parts(&mut parts, &app).await?;
            Viewer {
                admin: id.is_admin(),
                admin_scope: id.has_scope(auth::Scope::Admin),
                user_id: id.user.id,
            }
        }
    };
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or(q.last_event_id.clone());
    let last = match last {
        Some(s) => Some(
            EventId::parse(&s)
                .ok_or_else(|| ApiError::validation(Some("last_event_id"), "not an event id"))?,
        ),
        None => None,
    };
    let filter = Filter {
        task_id: q.task_id,
        kinds: q
            .kinds
            .map(|k| {
                k.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
    };
    metrics::gauge!("musicd_sse_clients").increment(1.0);
    let s = events_stream(app, viewer, filter, last);
    Ok(Sse::new(s)
        .keep_alive(
            KeepAlive::new()
                .interval(Duration::from_secs(15))
                .text("keep-alive"),
        )
        .into_response())
}

struct ClientGauge;

impl Drop for ClientGauge {
    fn drop(&mut self) {
        metrics::gauge!("musicd_sse_clients").decrement(1.0);
    }
}

fn events_stream(
    app: AppState,
    mut viewer: Viewer,
    filter: Filter,
    last: Option<EventId>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    // Subscribe before replaying, so nothing falls between the two.
    // `seen` is fixed now, not when the body is first polled: events published in between
    // are in `rx` and must not be skipped as already seen.
    let (mut rx, now) = app.events.subscribe_now();
    let start = last.unwrap_or(now);
    async_stream::stream! {
        let _gauge = ClientGauge;
        let mut seen: EventId = start;
        if let Some(after) = last {
            let (events, gap) = match app.events.replay(after).await {
                Replay::Events(e) => (e, false),
                Replay::Gap(e) => (e, true),
            };
            if gap {
                yield Ok(SseEvent::default().event("stream.gap").data(r#"{"type":"stream.gap"}"#));
            }
            for e in events {
                let id = e.id.unwrap_or(seen);
                if id <= seen { continue; }
                seen = id;
                if viewer.may_see(&e) && filter.matches(&e) {
                    yield Ok(to_sse(&e));
                }
            }
        }
        let mut recheck = tokio::time::interval(RECHECK);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let received = tokio::select! {
                _ = app.shutdown.cancelled() => break,
                _ = recheck.tick() => {
                    match users::by_id(&app.db, &viewer.user_id).await {
                        Ok(Some(u)) => viewer.admin = u.is_admin() && viewer.admin_scope,
                        // The account is gone: so is its stream.
                        Ok(None) => break,
                        Err(e) => tracing::warn!("event stream: cannot re-read the account: {e}"),
                    }
                    continue;
                }
                r = rx.recv() => r,
            };
            let batch: Vec<Arc<Event>> = match received {
                Ok(e) => vec![e],
                Err(RecvError::Lagged(_)) => match app.events.replay(seen).await {
                    // Fell behind the live channel: catch up from the replay buffer.
                    Replay::Events(e) | Replay::Gap(e) => e,
                },
                Err(RecvError::Closed) => break,
            };
            for e in batch {
                let id = e.id.unwrap_or(seen);
                if id <= seen { continue; }
                seen = id;
                if viewer.may_see(&e) && filter.matches(&e) {
                    yield Ok(to_sse(&e));
                }
            }
        }
    }
}
