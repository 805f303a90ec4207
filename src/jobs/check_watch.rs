//! `check_watch`: one check of a watch (io pool, at most `watch.max_concurrent_checks` per
//! process). New items become its `track` children; see [`crate::watch`].

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::download::{self, Output};
use super::{JobCtx, JobEnv, JobError, Outcome, track};
use crate::db::watches::{self, CheckRecord, Watch};
use crate::failure::code;
use crate::providers::Fetcher;
use crate::watch::{KeptFile, Plan, Report};
use crate::wire::{EventBody, WatchChecked, WatchCounts};

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

#[async_trait::async_trait]
impl super::Job for CheckOptions {
    const KIND: &'static str = KIND;
    const POOL: crate::queue::Pool = crate::queue::Pool::Io;

    async fn run(self, ctx: &JobCtx) -> Result<super::Outcome, JobError> {
        run(ctx, self).await
    }
}

/// Runs the check.
async fn run(ctx: &JobCtx, o: CheckOptions) -> Result<Outcome, JobError> {
    let shared = &ctx.shared;
    let _slot = tokio::select! {
        s = shared.limits.check_slot() => s,
        _ = ctx.stop.cancelled() => return Err(JobError::Interrupted),
    };
    let w = watches::get(&shared.db, &o.watch_id)
        .await?
        .ok_or_else(|| JobError::permanent(code::NOT_FOUND, "the watch was deleted"))?;
    ctx.progress("checking", 0.0).await?;
    let staging = track::staging_dir(&shared.config, &ctx.task.id, true)?;
    let mut fetch = Fetcher::new(shared.env.clone(), staging.clone(), ctx.stop.clone());
    fetch.release_types = w.release_types();
    let result = async {
        let plan = crate::watch::plan(&shared.env, &w, &fetch, false).await?;
        apply(ctx, &w, plan).await
    }
    .await;
    let _ = tokio::fs::remove_dir_all(&staging).await;
    match result {
        Ok(report) if report.added.is_empty() => Ok(Outcome::Done),
        Ok(_) => Ok(Outcome::AwaitChildren),
        Err(JobError::Interrupted) => Err(JobError::Interrupted),
        Err(e) => {
            watches::record_error(&shared.db, &w.id, &ctx.task.id, &e.to_string()).await?;
            announce_error(shared, &w, &ctx.task.id, &e).await;
            Err(e)
        }
    }
}

/// Applies a check's plan: new items become children of this check (in source order), gone
/// ones follow `on_removed`, and the watch records what it has now seen; then its playlist is
/// rewritten and `watch.checked` sent.
async fn apply(ctx: &JobCtx, w: &Watch, plan: Plan) -> Result<Report, JobError> {
    let shared = &ctx.shared;
    let Plan { mut report, change } = plan;
    let Some(change) = change else {
        let counts = report.counts();
        watches::record_check(
            &shared.db,
            &w.id,
            &CheckRecord {
                result: serde_json::to_string(&counts).unwrap_or_default(),
                task_id: Some(ctx.task.id.clone()),
                ..CheckRecord::default()
            },
        )
        .await?;
        announce(shared, w, &ctx.task.id, counts).await;
        return Ok(report);
    };
    let snap = change.snapshot;
    let mut task_of: HashMap<String, String> = HashMap::new();
    if !change.added.is_empty() {
        let output = Output {
            format: w.format.clone(),
            quality: w.quality.clone(),
            path_template: None,
        };
        let ids: Vec<String> = change.added.iter().map(|t| t.id.clone()).collect();
        let created = download::fan_out(ctx, &w.provider, change.added, &output, None).await?;
        for (id, task) in ids.into_iter().zip(&created) {
            task_of.insert(id, task.id.clone());
        }
    }
    let mut current = Vec::with_capacity(snap.tracks.len());
    let mut listed = HashSet::new();
    for t in &snap.tracks {
        if listed.insert(t.id.as_str()) {
            current.push((
                t.id.clone(),
                serde_json::to_string(t).unwrap_or_default(),
                task_of.get(&t.id).cloned(),
            ));
        }
    }
    let gone = change.gone;
    if w.on_removed == "delete" && !gone.is_empty() {
        remove_gone(shared, w, &gone, &mut report).await?;
    }
    watches::apply_diff(&shared.db, &w.id, &current, &gone).await?;
    let title = snap.title.clone().filter(|t| !t.trim().is_empty());
    let playlist = crate::playlist::relative_path(title.as_deref().unwrap_or(&w.item_id));
    let counts = report.counts();
    watches::record_check(
        &shared.db,
        &w.id,
        &CheckRecord {
            etag: snap.etag,
            last_modified: snap.last_modified,
            content_hash: Some(snap.hash),
            title,
            result: serde_json::to_string(&counts).unwrap_or_default(),
            task_id: Some(ctx.task.id.clone()),
            playlist_path: Some(playlist.display().to_string()),
        },
    )
    .await?;
    if let Err(e) = crate::watch::write_playlist(&shared.env, &w.id).await {
        tracing::warn!(watch_id = w.id, "cannot write the playlist: {e:#}");
    }
    announce(shared, w, &ctx.task.id, counts).await;
    Ok(report)
}

/// `on_removed = delete`: removes the files that this watch's own tasks placed for items
/// the source dropped, with their index rows. A file the watch only found already in the
/// library (`skipped`), or that another download, watch or user still has, is kept, and the
/// report says why.
async fn remove_gone(
    shared: &JobEnv,
    w: &Watch,
    gone: &[String],
    report: &mut Report,
) -> Result<(), JobError> {
    for (item, status, path) in watches::removed_files(&shared.db, &w.id, gone).await? {
        let Some(path) = path else { continue };
        let reason = if status != "done" {
            Some("this watch did not place the file (it was already in the library)".into())
        } else {
            watches::still_used(&shared.db, &path, &w.id, &w.owner_id).await?
        };
        if let Some(reason) = reason {
            report.kept.push(KeptFile { id: item, reason });
            continue;
        }
        if remove_from_library(&shared.config.library_dir, &path) {
            if let Some(t) = crate::db::library::by_path(&shared.db, &path).await? {
                crate::db::library::delete(&shared.db, &t.id).await?;
            }
            report.deleted += 1;
        }
    }
    Ok(())
}

/// Removes a file of a removed item if it is a regular file inside the library (a symlink is
/// never followed out of it); whether it is gone now.
fn remove_from_library(library: &std::path::Path, file: &str) -> bool {
    let path = PathBuf::from(file);
    let regular = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file());
    let inside = match (path.canonicalize(), library.canonicalize()) {
        (Ok(p), Ok(l)) => p.starts_with(l),
        _ => false,
    };
    if !(regular && inside) {
        return !path.exists();
    }
    match std::fs::remove_file(&path) {
        Ok(()) => {
            tracing::info!(file, "removed: the watched source no longer lists it");
            true
        }
        Err(e) => {
            tracing::warn!(file, "cannot remove: {e}");
            false
        }
    }
}

/// Sends `watch.checked` to the watch's owner.
async fn announce(shared: &JobEnv, w: &Watch, task_id: &str, counts: WatchCounts) {
    let body = WatchChecked {
        watch_id: w.id.clone(),
        task_id: task_id.to_string(),
        counts: Some(counts),
        error: None,
    };
    shared
        .events
        .publish(Some(&w.owner_id), EventBody::WatchChecked(body))
        .await;
}

/// Sends `watch.checked` with the error of a failed check.
async fn announce_error(shared: &JobEnv, w: &Watch, task_id: &str, error: &JobError) {
    let body = WatchChecked {
        watch_id: w.id.clone(),
        task_id: task_id.to_string(),
        counts: None,
        error: Some(error.to_string()),
    };
    shared
        .events
        .publish(Some(&w.owner_id), EventBody::WatchChecked(body))
        .await;
}
