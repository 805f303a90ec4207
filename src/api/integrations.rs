//! `/integrations`: the media servers musicd asks to rescan, whether their credentials are
//! stored, and how their last rescan went. Admins only (it names addresses and errors).

use axum::extract::State;
use axum::response::Response;

use super::error::ApiResult;
use super::ok;
use crate::api::identity::Admin;
use crate::api::state::AppState;
use crate::db::webhooks;
use crate::wire::{IntegrationView, RescanResult};

/// Every configured media server with its last rescan.
#[utoipa::path(get, path = "/integrations", tag = "webhooks",
    security(("bearer" = []), ("api_key" = []), ("session" = [])),
    responses((status = 200, description = "Media servers", body = Vec<IntegrationView>),
        (status = 403, description = "Not an admin")))]
pub async fn list(State(app): State<AppState>, _admin: Admin) -> ApiResult<Response> {
    let runs = webhooks::runs(&app.db).await?;
    let stored = crate::db::credentials::list(&app.db).await?;
    let mut out = Vec::new();
    for (name, server) in app.config.integrations.servers() {
        let credentials_set = crate::mediaserver::credentials_of(name)
            .iter()
            .all(|c| stored.iter().any(|s| s.provider == name && s.name == *c));
        out.push(IntegrationView {
            name: name.to_string(),
            url: server.url.clone(),
            credentials_set,
            last_rescan: runs.iter().find(|r| r.name == name).map(|r| RescanResult {
                at: r.at,
                ok: r.ok == 1,
                message: r.message.clone(),
                task_id: r.task_id.clone(),
            }),
        });
    }
    Ok(ok(out))
}
