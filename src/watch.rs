//! Watches: a feed, playlist or artist checked on a schedule. A check first asks cheaply
//! whether anything changed (HTTP validators for feeds, then a hash of the item ids in
//! order), and only then diffs by the provider's stable item identity. New items become
//! `track` children of the check's task; removed ones follow `on_removed`. Every check ends
//! with a `watch.checked` event and a rewritten `.m3u8`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::config::{Config, WatchConfig};
use crate::db::watches::{self, CheckRecord, Watch};
use crate::db::{Db, settings};
use crate::jobs::download::{self, Output};
use crate::jobs::{JobCtx, JobError, Shared};
use crate::providers::{Fetcher, Resolved, TrackInfo, looks_like_feed, podcast};

/// The settings key the watch settings are stored under.
const KEY: &str = "watch";

/// What `on_removed` may say.
pub const ON_REMOVED: &[&str] = &["keep", "delete", "flag"];

/// The stored watch settings, or the configuration's.
pub async fn load_settings(db: &Db, config: &Config) -> Result<WatchConfig, sqlx::Error> {
    Ok(settings::get(db, KEY)
        .await?
        .and_then(|s| serde_json::from_str::<WatchConfig>(&s).ok())
        .filter(|w| w.validate().is_ok())
        .unwrap_or_else(|| config.watch.clone()))
}

/// Stores the watch settings for every process.
pub async fn store_settings(db: &Db, w: &WatchConfig) -> Result<(), sqlx::Error> {
    settings::put(db, KEY, &serde_json::to_string(w).unwrap_or_default()).await
}

/// Parses a cron expression (UTC): five fields (minute precision) or six (seconds first).
pub fn parse_schedule(expr: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(&six_fields(expr))
        .map_err(|e| format!("`{expr}` is not a cron expression: {e}"))
}

/// The six-field form of a schedule (what the scheduler takes).
pub fn six_fields(expr: &str) -> String {
    let expr = expr.trim();
    if expr.split_whitespace().count() == 5 {
        format!("0 {expr}")
    } else {
        expr.to_string()
    }
}

/// The first time after `after_ms` (Unix ms) that `expr` fires, in Unix ms.
pub fn next_after(expr: &str, after_ms: i64) -> Option<i64> {
    let cron = parse_schedule(expr).ok()?;
    // Whole seconds: the occurrence keeps the start's fraction otherwise.
    let at = chrono::DateTime::from_timestamp(after_ms.div_euclid(1000), 0)?;
    cron.find_next_occurrence(&at, false)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// A watch's schedule, or the default.
pub fn schedule_of(w: &Watch, settings: &WatchConfig) -> String {
    w.schedule
        .clone()
        .unwrap_or_else(|| settings.default_schedule.clone())
}

/// One item in a check's report.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ItemSummary {
    /// The provider's identity of the item.
    pub id: String,
    /// Title.
    pub title: Option<String>,
    /// Artists.
    pub artists: Vec<String>,
}

impl From<&TrackInfo> for ItemSummary {
    fn from(t: &TrackInfo) -> Self {
        Self {
            id: t.id.clone(),
            title: t.title.clone(),
            artists: t.artists.clone(),
        }
    }
}

/// What a check found (and, unless a dry run, did).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Report {
    /// The watch.
    pub watch_id: String,
    /// Whether the source changed since the last check.
    pub changed: bool,
    /// The first check, which records what is there (and downloads it only with
    /// `download_existing`).
    pub baseline: bool,
    /// Items new since the last check (to download).
    pub added: Vec<ItemSummary>,
    /// Items the source no longer lists.
    pub removed: Vec<ItemSummary>,
    /// Items at the source now.
    pub total: usize,
    /// Files deleted because their item left the source (`on_removed = delete`).
    pub deleted: usize,
    /// Removed items whose file was kept, and why.
    pub kept: Vec<KeptFile>,
    /// Nothing was changed.
    pub dry_run: bool,
}

/// A removed item whose file `on_removed = delete` did not delete.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct KeptFile {
    /// The provider's identity of the item.
    pub id: String,
    /// Why the file stays.
    pub reason: String,
}

impl Report {
    /// The counts kept as the watch's `last_result` and sent in `watch.checked`.
    pub fn counts(&self) -> serde_json::Value {
        serde_json::json!({
            "changed": self.changed,
            "baseline": self.baseline,
            "added": self.added.len(),
            "removed": self.removed.len(),
            "total": self.total,
            "deleted": self.deleted,
            "kept": self.kept,
        })
    }
}

/// The source as read now.
struct Snapshot {
    title: Option<String>,
    tracks: Vec<TrackInfo>,
    etag: Option<String>,
    last_modified: Option<String>,
    hash: String,
}

/// Reads the source: `None` when it says it has not changed (304, or the same items in
/// the same order as last time).
async fn read_source(
    shared: &Shared,
    w: &Watch,
    fetch: &Fetcher,
) -> Result<Option<Snapshot>, JobError> {
    let first = w.baseline == 0;
    let (resolved, etag, last_modified) = if w.provider == "podcast" {
        let (etag, lm) = if first {
            (None, None)
        } else {
            (w.etag.as_deref(), w.last_modified.as_deref())
        };
        let max = shared.config.media.max_feed_size.as_u64();
        let doc = fetch
            .document(&w.item_id, max, etag, lm)
            .await
            .map_err(|e| podcast::over_cap(e, max))?;
        match doc {
            musicd_workers::fetch::Document::NotModified => return Ok(None),
            musicd_workers::fetch::Document::Body {
                bytes,
                content_type,
                etag,
                last_modified,
            } => {
                if !looks_like_feed(&bytes, content_type.as_deref()) {
                    return Err(JobError::permanent(
                        "invalid_feed",
                        format!("{} is not an RSS or Atom feed", w.item_id),
                    ));
                }
                (podcast::parse(&bytes, &w.item_id)?, etag, last_modified)
            }
        }
    } else {
        let provider = shared.providers.get(&w.provider).ok_or_else(|| {
            JobError::permanent(
                "validation_error",
                format!("unknown provider `{}`", w.provider),
            )
        })?;
        (
            provider.resolve(&w.kind, &w.item_id, fetch).await?,
            None,
            None,
        )
    };
    let (title, tracks) = match resolved {
        Resolved::Track { track } => (track.title.clone(), vec![track]),
        Resolved::Collection { title, tracks, .. } => (title, tracks),
    };
    let mut h = Sha256::new();
    for t in &tracks {
        h.update(t.id.as_bytes());
        h.update(b"\n");
    }
    let hash = hex::encode(h.finalize());
    if !first && w.content_hash.as_deref() == Some(hash.as_str()) {
        return Ok(None);
    }
    Ok(Some(Snapshot {
        title,
        tracks,
        etag,
        last_modified,
        hash,
    }))
}

/// Checks `w`. With `ctx` (the check's job) new items become its children and everything is
/// recorded; without, it is a dry run that only reports.
pub async fn check(
    shared: &std::sync::Arc<Shared>,
    w: &Watch,
    fetch: &Fetcher,
    ctx: Option<&JobCtx>,
) -> Result<Report, JobError> {
    let dry_run = ctx.is_none();
    let baseline = w.baseline == 0;
    let mut report = Report {
        watch_id: w.id.clone(),
        changed: false,
        baseline,
        added: Vec::new(),
        removed: Vec::new(),
        total: 0,
        deleted: 0,
        kept: Vec::new(),
        dry_run,
    };
    let Some(snap) = read_source(shared, w, fetch).await? else {
        if let Some(ctx) = ctx {
            let counts = report.counts();
            watches::record_check(
                &shared.db,
                &w.id,
                &CheckRecord {
                    result: counts.to_string(),
                    task_id: Some(ctx.task.id.clone()),
                    ..CheckRecord::default()
                },
            )
            .await?;
            announce(shared, w, &ctx.task.id, counts).await;
        }
        return Ok(report);
    };
    report.changed = true;
    report.total = snap.tracks.len();
    let known: HashMap<String, watches::Item> = watches::items(&shared.db, &w.id)
        .await?
        .into_iter()
        .map(|i| (i.item_id.clone(), i))
        .collect();
    let now_ids: HashSet<&str> = snap.tracks.iter().map(|t| t.id.as_str()).collect();
    let mut added: Vec<&TrackInfo> = Vec::new();
    let mut seen_now = HashSet::new();
    for t in &snap.tracks {
        // A source may list an item twice; it is downloaded once.
        if !seen_now.insert(t.id.as_str()) {
            continue;
        }
        if known.get(&t.id).is_none_or(|i| i.present == 0) {
            added.push(t);
        }
    }
    let removed: Vec<&watches::Item> = known
        .values()
        .filter(|i| i.present == 1 && !now_ids.contains(i.item_id.as_str()))
        .collect();
    report.removed = removed
        .iter()
        .map(|i| {
            serde_json::from_str::<TrackInfo>(&i.track)
                .map(|t| ItemSummary::from(&t))
                .unwrap_or(ItemSummary {
                    id: i.item_id.clone(),
                    title: None,
                    artists: Vec::new(),
                })
        })
        .collect();
    let download_now = !baseline || w.download_existing != 0;
    if download_now {
        report.added = added.iter().map(|t| ItemSummary::from(*t)).collect();
    }
    let Some(ctx) = ctx else {
        return Ok(report);
    };

    // New items become children of this check, in source order.
    let mut task_of: HashMap<String, String> = HashMap::new();
    if download_now && !added.is_empty() {
        let output = Output {
            format: w.format.clone(),
            quality: w.quality.clone(),
            path_template: None,
        };
        let tracks: Vec<TrackInfo> = added.iter().map(|t| (*t).clone()).collect();
        let created = download::fan_out(ctx, &w.provider, tracks, &output, None).await?;
        for (t, task) in added.iter().zip(&created) {
            task_of.insert(t.id.clone(), task.id.clone());
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
    let gone: Vec<String> = removed.iter().map(|i| i.item_id.clone()).collect();
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
            result: counts.to_string(),
            task_id: Some(ctx.task.id.clone()),
            playlist_path: Some(playlist.display().to_string()),
        },
    )
    .await?;
    if let Err(e) = write_playlist(shared, &w.id).await {
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
    shared: &Shared,
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
async fn announce(shared: &Shared, w: &Watch, task_id: &str, counts: serde_json::Value) {
    let mut body = counts;
    body["watch_id"] = serde_json::json!(w.id);
    body["task_id"] = serde_json::json!(task_id);
    shared
        .events
        .publish("watch.checked", Some(&w.owner_id), body)
        .await;
}

/// Sends `watch.checked` with the error of a failed check.
pub async fn announce_error(shared: &Shared, w: &Watch, task_id: &str, error: &JobError) {
    let body = serde_json::json!({
        "watch_id": w.id,
        "task_id": task_id,
        "error": error.to_string(),
    });
    shared
        .events
        .publish("watch.checked", Some(&w.owner_id), body)
        .await;
}

/// Rewrites a watch's `.m3u8` from the files of its present items, in source order.
pub async fn write_playlist(shared: &Shared, watch_id: &str) -> anyhow::Result<()> {
    let Some(w) = watches::get(&shared.db, watch_id).await? else {
        return Ok(());
    };
    let Some(rel) = w.playlist_path.clone() else {
        return Ok(());
    };
    let entries: Vec<(TrackInfo, PathBuf)> = watches::playlist(&shared.db, watch_id)
        .await?
        .into_iter()
        .filter_map(|(track, file)| Some((serde_json::from_str(&track).ok()?, PathBuf::from(file))))
        .collect();
    let library = shared.config.library_dir.clone();
    tokio::task::spawn_blocking(move || {
        crate::playlist::write(&library, std::path::Path::new(&rel), &entries)
    })
    .await??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_take_five_or_six_fields() {
        assert!(parse_schedule("*/5 * * * *").is_ok());
        assert!(parse_schedule("*/2 * * * * *").is_ok());
        assert!(parse_schedule("every day").is_err());
        assert!(parse_schedule("61 * * * *").is_err());
        let t = next_after("0 */6 * * *", 0).unwrap();
        assert_eq!(t, 6 * 3600 * 1000);
        assert_eq!(next_after("*/2 * * * * *", 1000), Some(2000));
        assert_eq!(next_after("*/2 * * * * *", 2467), Some(4000));
    }
}
