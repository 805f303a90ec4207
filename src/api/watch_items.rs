//! A watch's items: `GET /watches/{id}/items` lists everything the watch has seen with where
//! it stands (seen, downloading, downloaded, failed, needs_review, ignored), and
//! `PATCH /watches/{id}/items/{item}` ignores an item (later checks pass it over) or takes
//! it back.

use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::extract::ApiJson;
use super::ok;
use crate::api::identity::Identity;
use crate::api::state::AppState;
use crate::db::watches;
use crate::providers::TrackInfo;

/// One item of a watch.
#[derive(Debug, Serialize, ToSchema)]
pub struct WatchItem {
    /// The provider's id of the item.
    pub item_id: String,
    /// Its place in the source at the last check.
    pub position: i64,
    /// Whether the source still lists it.
    pub present: bool,
    /// `seen`, `downloading`, `downloaded`, `failed`, `needs_review`, `cancelled` or `ignored`.
    pub state: String,
    /// The task that downloaded it, or tried to.
    pub task_id: Option<String>,
    /// The track as the source describes it.
    pub track: TrackInfo,
}

/// A watch's items.
#[derive(Debug, Serialize, ToSchema)]
pub struct WatchItems {
    /// Present items first, in source order, then the ones the source dropped.
    pub items: Vec<WatchItem>,
}

/// Every item the watch has seen, present ones first in source order.
#[utoipa::path(get, path = "/watches/{id}/items", tag = "watches",
    params(("id" = String, Path, description = "Watch id")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "The items", body = WatchItems), (status = 404, description = "No such watch")))]
pub async fn list(
    State(app): State<AppState>,
    id: Identity,
    Path(watch_id): Path<String>,
) -> ApiResult<Response> {
    let w = super::watches::owned(&app, &id, &watch_id).await?;
    let items: Vec<WatchItem> = watches::items(&app.db, &w.id)
        .await?
        .into_iter()
        .map(|i| WatchItem {
            state: i.state().to_string(),
            present: i.present != 0,
            track: serde_json::from_str(&i.track).unwrap_or_default(),
            item_id: i.item_id,
            position: i.position,
            task_id: i.task_id,
        })
        .collect();
    Ok(ok(WatchItems { items }))
}

/// What to change of an item.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemPatch {
    /// `true`: later checks pass it over; `false`: take it back (the next check downloads it
    /// if it was never downloaded).
    pub ignored: bool,
}

/// Ignore an item of a watch, or take it back.
#[utoipa::path(patch, path = "/watches/{id}/items/{item}", tag = "watches", request_body = ItemPatch,
    params(("id" = String, Path, description = "Watch id"), ("item" = String, Path, description = "Item id")),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "`{item_id, ignored}`"), (status = 404, description = "No such watch or item")))]
pub async fn patch(
    State(app): State<AppState>,
    id: Identity,
    Path((watch_id, item)): Path<(String, String)>,
    ApiJson(body): ApiJson<ItemPatch>,
) -> ApiResult<Response> {
    let w = super::watches::owned(&app, &id, &watch_id).await?;
    if !watches::set_ignored(&app.db, &w.id, &item, body.ignored).await? {
        return Err(ApiError::not_found("the watch has no such item"));
    }
    Ok(ok(
        serde_json::json!({ "item_id": item, "ignored": body.ignored }),
    ))
}
