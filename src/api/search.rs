//! `GET /search`: one query across every provider that can search, merged and paged. Each
//! item carries the provider, kind and id that `POST /downloads` accepts unchanged.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiError, ApiResult};
use super::extract::ApiQuery;
use super::ok;
use crate::api::identity::Identity;
use crate::api::state::AppState;
use crate::failure::JobError;
use crate::providers::Fetcher;

/// What to search for.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// The text to find.
    #[param(min_length = 1, max_length = 200)]
    pub q: String,
    /// `track` (default), `album`, `artist` or `playlist`.
    #[serde(rename = "type")]
    #[param(pattern = "^(track|album|artist|playlist)$")]
    pub kind: Option<String>,
    /// Only this provider.
    pub provider: Option<String>,
    /// Items per provider and page, 1–50 (default 20).
    pub limit: Option<u32>,
    /// Page number from 0 (pass the previous answer's `next_page`).
    pub page: Option<u32>,
}

/// Search every provider that can (or one), merged in turn: the first item of each, then
/// the second of each, and so on. A provider that fails is reported in `errors`, not fatal.
#[utoipa::path(get, path = "/search", tag = "discovery", params(SearchQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, description = "`{items, next_page, errors}`"), (status = 400, description = "Invalid query")))]
pub async fn search(
    State(app): State<AppState>,
    _id: Identity,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> ApiResult<Response> {
    let text = q.q.trim();
    if text.is_empty() || text.len() > 200 {
        return Err(ApiError::validation(Some("q"), "1–200 characters"));
    }
    let kind = q.kind.as_deref().unwrap_or("track");
    if !matches!(kind, "track" | "album" | "artist" | "playlist") {
        return Err(ApiError::validation(
            Some("type"),
            "one of track, album, artist, playlist",
        ));
    }
    let limit = q.limit.unwrap_or(20).clamp(1, 50);
    let page = q.page.unwrap_or(0).min(1000);
    let providers = &app.shared.providers;
    let chosen: Vec<_> = match &q.provider {
        Some(p) => vec![providers.get(p).ok_or_else(|| {
            ApiError::validation(Some("provider"), format!("unknown provider `{p}`"))
        })?],
        None => providers.all(),
    };
    let staging = app
        .config
        .data_dir
        .join("staging")
        .join(format!("search-{}", crate::db::new_id()));
    std::fs::create_dir_all(&staging).map_err(ApiError::internal)?;
    let fetcher = Fetcher::new(
        app.shared.env.clone(),
        staging.clone(),
        app.shutdown.child_token(),
    );
    let mut lists = Vec::new();
    let mut errors = Vec::new();
    let mut more = false;
    for p in chosen {
        let name = p.info().name;
        match p.search(text, kind, limit, page * limit, &fetcher).await {
            None => {}
            Some(Ok(items)) => {
                more |= items.len() as u32 == limit;
                lists.push(items);
            }
            Some(Err(
                JobError::Permanent { code, message } | JobError::Transient { code, message, .. },
            )) => {
                errors.push(
                    serde_json::json!({ "provider": name, "code": code, "message": message }),
                );
            }
            Some(Err(JobError::Interrupted)) => {}
        }
    }
    let _ = std::fs::remove_dir_all(&staging);
    let mut items = Vec::new();
    let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
    let mut iters: Vec<_> = lists.into_iter().map(Vec::into_iter).collect();
    for _ in 0..longest {
        for it in &mut iters {
            if let Some(item) = it.next() {
                items.push(item);
            }
        }
    }
    Ok(ok(serde_json::json!({
        "items": items,
        "next_page": more.then_some(page + 1),
        "errors": errors,
    })))
}
