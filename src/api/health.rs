//! Health, readiness and metrics.

use std::path::Path;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiResult;
use super::{ok, with_status};
use crate::api::identity::Admin;
use crate::api::state::AppState;
use crate::queue::Pool;

/// Below this many free bytes a data or library filesystem is unhealthy.
const MIN_FREE_BYTES: u64 = 100 * 1024 * 1024;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, description = "Alive")))]
pub async fn health(State(app): State<AppState>) -> Response {
    ok(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": app.started.elapsed().as_secs(),
    }))
}

fn disk(path: &Path) -> serde_json::Value {
    match fs2::available_space(path) {
        Ok(free) => json!({ "ok": free >= MIN_FREE_BYTES, "free_bytes": free }),
        Err(e) => json!({ "ok": false, "error": e.to_string() }),
    }
}

/// Database, queue and disk space (503 when any is unhealthy), and each provider's status.
/// Admins only (it names paths, backends and errors).
#[utoipa::path(get, path = "/health/deep", tag = "operations", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Healthy"), (status = 403, description = "Not an admin"),
        (status = 503, description = "Unhealthy")))]
pub async fn deep(State(app): State<AppState>, _admin: Admin) -> ApiResult<Response> {
    let database = match app.db.ping().await {
        Ok(()) => json!({ "ok": true, "backend": format!("{:?}", app.db.backend).to_lowercase() }),
        Err(e) => json!({ "ok": false, "error": e.to_string() }),
    };
    let queue = match app.queue.ping().await {
        Ok(()) => {
            let io = app.queue.depth(&app.config, Pool::Io).await.unwrap_or(0);
            let cpu = app.queue.depth(&app.config, Pool::Cpu).await.unwrap_or(0);
            json!({ "ok": true, "backend": app.queue.backend_name(), "depth": { "io": io, "cpu": cpu } })
        }
        Err(e) => {
            json!({ "ok": false, "backend": app.queue.backend_name(), "error": format!("{e:#}") })
        }
    };
    let data_disk = disk(&app.config.data_dir);
    let library_disk = disk(&app.config.library_dir);
    let healthy = [&database, &queue, &data_disk, &library_disk]
        .iter()
        .all(|c| c["ok"] == json!(true));
    // Providers are reported, not judged: a missing yt-dlp does not make the daemon unhealthy.
    let fetcher = crate::providers::Fetcher::new(
        app.shared.env.clone(),
        app.config.data_dir.join("staging"),
        app.shutdown.child_token(),
    );
    let mut providers = serde_json::Map::new();
    for p in app.shared.providers.all() {
        let status = p.status(&fetcher).await;
        providers.insert(
            p.info().name.to_string(),
            json!({ "ok": status.is_ok(), "problem": status.err() }),
        );
    }
    let body = json!({
        "status": if healthy { "ok" } else { "unhealthy" },
        "checks": { "database": database, "queue": queue, "data_dir": data_disk, "library_dir": library_disk },
        "providers": providers,
    });
    Ok(if healthy {
        ok(body)
    } else {
        with_status(StatusCode::SERVICE_UNAVAILABLE, body)
    })
}

/// Liveness for orchestrators (also at `/healthz`).
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: database and queue answer (also at `/readyz`).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready"), (status = 503, description = "Not ready")))]
pub async fn readyz(State(app): State<AppState>) -> Response {
    let db = app.db.ping().await.is_ok();
    let queue = app.queue.ping().await.is_ok();
    if db && queue {
        (StatusCode::OK, "ready").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: database={db} queue={queue}"),
        )
            .into_response()
    }
}

/// Prometheus metrics: HTTP requests, jobs by kind and outcome, queue depth, tasks by status.
/// Admins only: scrape with an API key that has the `admin` scope.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "Prometheus text format"), (status = 403, description = "Not an admin")))]
pub async fn metrics(State(app): State<AppState>, _admin: Admin) -> ApiResult<Response> {
    for pool in [Pool::Io, Pool::Cpu] {
        if let Ok(depth) = app.queue.depth(&app.config, pool).await {
            metrics::gauge!("musicd_queue_depth", "pool" => pool.as_str()).set(depth as f64);
        }
    }
    for (status, n) in crate::db::tasks::count_by_status(&app.db).await? {
        metrics::gauge!("musicd_tasks", "status" => status).set(n as f64);
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response())
}
