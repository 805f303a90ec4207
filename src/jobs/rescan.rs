//! `rescan`: asks one media server to rescan (io pool). Requests that end close together share
//! one: the task waits `integrations.rescan_debounce`, and while it waits, it is the server's
//! only rescan (its idempotency key), so a new request's end joins it.

use serde::{Deserialize, Serialize};

use super::*;
use crate::db::webhooks::{self, IntegrationRun};

/// The ledger kind.
pub const KIND: &str = "rescan";

/// A rescan's options.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RescanOptions {
    /// `navidrome`, `jellyfin` or `plex`.
    pub server: String,
}

#[async_trait::async_trait]
impl super::Job for RescanOptions {
    const KIND: &'static str = KIND;
    const POOL: Pool = Pool::Io;

    async fn run(self, ctx: &JobCtx) -> Result<Outcome, JobError> {
        run(ctx, self).await
    }
}

async fn run(ctx: &JobCtx, o: RescanOptions) -> Result<Outcome, JobError> {
    let shared = &ctx.shared;
    let config = &shared.config;
    let Some((name, server)) = config
        .integrations
        .servers()
        .into_iter()
        .find(|(n, _)| *n == o.server)
    else {
        return Ok(Outcome::Skipped(format!("{} is not configured", o.server)));
    };
    let staging = track::staging_dir(config, &ctx.task.id, true)?;
    let fetcher =
        crate::providers::Fetcher::new(shared.env.clone(), staging.clone(), ctx.stop.clone());
    let result = crate::mediaserver::rescan(&fetcher, config, name, server).await;
    let _ = tokio::fs::remove_dir_all(&staging).await;
    let last = matches!(result, Ok(_) | Err(JobError::Permanent { .. }))
        || ctx.task.attempts >= ctx.task.max_attempts;
    if last || result.is_ok() {
        let run = IntegrationRun {
            name: name.to_string(),
            at: crate::db::now_ms(),
            ok: i64::from(result.is_ok()),
            message: match &result {
                Ok(m) => m.clone(),
                Err(e) => e.to_string(),
            },
            task_id: Some(ctx.task.id.clone()),
        };
        webhooks::record_run(&shared.db, &run).await?;
    }
    match result {
        Ok(m) => {
            tracing::info!(server = name, "rescan asked: {m}");
            Ok(Outcome::Done)
        }
        Err(e) => Err(e),
    }
}

/// Queues a rescan of every configured media server, `integrations.rescan_debounce` from now,
/// unless one is already waiting (then this request's files are in its scan).
pub async fn schedule(shared: &JobEnv) {
    let debounce = shared.config.integrations.rescan_debounce;
    for (name, _) in shared.config.integrations.servers() {
        let opts = RescanOptions {
            server: name.to_string(),
        };
        let new = tasks::NewTask {
            idempotency_key: Some(format!("rescan:{name}")),
            title: Some(format!("rescan {name}")),
            run_after: Some(crate::db::now_ms() + debounce.as_millis() as i64),
            max_attempts: 3,
            ..super::new_task(&opts)
        };
        match tasks::insert(&shared.db, &new).await {
            Ok(Ok(task)) => enqueue(&shared.queue, Pool::Io, &task.id, Some(debounce)).await,
            Ok(Err(_)) => tracing::debug!(server = name, "a rescan is already waiting"),
            Err(e) => tracing::warn!(server = name, "cannot queue a rescan: {e}"),
        }
    }
}
