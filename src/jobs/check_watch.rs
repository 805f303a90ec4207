//! `check_watch`: one check of a watch (io pool, at most `watch.max_concurrent_checks` per
//! process). New items become its `track` children; see [`crate::watch`].

use serde::{Deserialize, Serialize};

use super::{JobCtx, JobError, Outcome, track};
use crate::db::watches;
use crate::providers::Fetcher;

/// The ledger kind.
pub const KIND: &str = "check_watch";

/// What the check's task carries.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckOptions {
    /// The watch.
    pub watch_id: String,
    /// `created`, `schedule`, `missed` (a tick passed while no daemon ran) or `manual`.
    pub trigger: String,
    /// The scheduled time this check is for (Unix ms), when scheduled.
    pub period: Option<i64>,
}

/// Runs the check.
pub async fn run(ctx: &JobCtx) -> Result<Outcome, JobError> {
    let o: CheckOptions = ctx.options()?;
    let shared = &ctx.shared;
    let _slot = tokio::select! {
        s = shared.limits.check_slot() => s,
        _ = ctx.stop.cancelled() => return Err(JobError::Interrupted),
    };
    let w = watches::get(&shared.db, &o.watch_id)
        .await?
        .ok_or_else(|| JobError::permanent("not_found", "the watch was deleted"))?;
    ctx.progress("checking", 0.0).await?;
    let staging = track::staging_dir(&shared.config, &ctx.task.id, true)?;
    let mut fetch = Fetcher::new(shared.clone(), staging.clone(), ctx.stop.clone());
    fetch.release_types = w.release_types();
    let result = crate::watch::check(shared, &w, &fetch, Some(ctx)).await;
    let _ = tokio::fs::remove_dir_all(&staging).await;
    match result {
        Ok(report) if report.added.is_empty() => Ok(Outcome::Done),
        Ok(_) => Ok(Outcome::AwaitChildren),
        Err(JobError::Interrupted) => Err(JobError::Interrupted),
        Err(e) => {
            watches::record_error(&shared.db, &w.id, &ctx.task.id, &e.to_string()).await?;
            crate::watch::announce_error(shared, &w, &ctx.task.id, &e).await;
            Err(e)
        }
    }
}
