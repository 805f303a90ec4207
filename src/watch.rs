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

use crate::config::WatchConfig;
use crate::db::watches::{self, Watch};
use crate::failure::JobError;
use crate::failure::code;
use crate::providers::{Env, Fetcher, Resolved, TrackInfo, looks_like_feed, podcast};
use crate::wire::WatchCounts;

/// What `on_removed` may say.
pub const ON_REMOVED: &[&str] = &["keep", "delete", "flag"];

pub use crate::config::schedule::{next_after, parse_schedule, six_fields};
pub use crate::db::settings::{load_watch as load_settings, store_watch as store_settings};

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

pub use crate::wire::KeptFile;

impl Report {
    /// The counts kept as the watch's `last_result` and sent in `watch.checked`.
    pub fn counts(&self) -> WatchCounts {
        WatchCounts {
            changed: self.changed,
            baseline: self.baseline,
            added: self.added.len(),
            removed: self.removed.len(),
            total: self.total,
            deleted: self.deleted,
            kept: self.kept.clone(),
        }
    }
}

/// The source as read now.
pub struct Snapshot {
    /// Its title.
    pub title: Option<String>,
    /// Its items, in source order.
    pub tracks: Vec<TrackInfo>,
    /// HTTP validators of a feed.
    pub etag: Option<String>,
    /// HTTP validators of a feed.
    pub last_modified: Option<String>,
    /// SHA-256 of the item ids in order.
    pub hash: String,
}

/// What a check found: the report, and what applying it takes (`None`: unchanged).
pub struct Plan {
    /// What to tell the user.
    pub report: Report,
    /// The change to apply, if the source changed.
    pub change: Option<Change>,
}

/// A changed source: what to download, what is gone, and the new state to record.
pub struct Change {
    /// The source as read now.
    pub snapshot: Snapshot,
    /// New (or returning) items to download, in source order (none on a first check
    /// without `download_existing`).
    pub added: Vec<TrackInfo>,
    /// Items no longer listed.
    pub gone: Vec<String>,
}

/// Reads the source: `None` when it says it has not changed (304, or the same items in
/// the same order as last time), unless `whole` asks for it anyway (failed items are due).
async fn read_source(
    shared: &Env,
    w: &Watch,
    fetch: &Fetcher,
    whole: bool,
) -> Result<Option<Snapshot>, JobError> {
    let first = w.baseline == 0 || whole;
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
            musicd_media::fetch::Document::NotModified => return Ok(None),
            musicd_media::fetch::Document::Body {
                bytes,
                content_type,
                etag,
                last_modified,
            } => {
                if !looks_like_feed(&bytes, content_type.as_deref()) {
                    return Err(JobError::permanent(
                        code::INVALID_FEED,
                        format!("{} is not an RSS or Atom feed", w.item_id),
                    ));
                }
                (podcast::parse(&bytes, &w.item_id)?, etag, last_modified)
            }
        }
    } else {
        let provider = shared.providers.get(&w.provider).ok_or_else(|| {
            JobError::permanent(
                code::VALIDATION_ERROR,
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

/// Reads `w`'s source and diffs it against what the watch has seen: a pure read (it writes
/// nothing), so a dry run is a plan that is not applied (`jobs::check_watch` applies it).
pub async fn plan(env: &Env, w: &Watch, fetch: &Fetcher, dry_run: bool) -> Result<Plan, JobError> {
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
    let retry_after = env.limits.watch().retry_failed_after;
    let known: HashMap<String, watches::Item> = watches::items(&env.db, &w.id)
        .await?
        .into_iter()
        .map(|i| (i.item_id.clone(), i))
        .collect();
    let retries_due = known
        .values()
        .any(|i| i.present == 1 && i.ignored == 0 && retry_due(i, retry_after));
    let Some(snap) = read_source(env, w, fetch, retries_due).await? else {
        return Ok(Plan {
            report,
            change: None,
        });
    };
    report.changed = true;
    report.total = snap.tracks.len();
    let now_ids: HashSet<&str> = snap.tracks.iter().map(|t| t.id.as_str()).collect();
    let mut added: Vec<TrackInfo> = Vec::new();
    let mut seen_now = HashSet::new();
    for t in &snap.tracks {
        // A source may list an item twice; it is downloaded once.
        if !seen_now.insert(t.id.as_str()) {
            continue;
        }
        match known.get(&t.id) {
            None => added.push(t.clone()),
            Some(i) if i.ignored != 0 => {}
            Some(i) if i.present == 0 => added.push(t.clone()),
            // A failed item is tried again once `watch.retry_failed_after` has passed.
            Some(i) if retry_due(i, retry_after) => added.push(t.clone()),
            Some(_) => {}
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
    if baseline && w.download_existing == 0 {
        // The first check records what is there without downloading it.
        added.clear();
    }
    report.added = added.iter().map(ItemSummary::from).collect();
    let gone = removed.iter().map(|i| i.item_id.clone()).collect();
    Ok(Plan {
        report,
        change: Some(Change {
            snapshot: snap,
            added,
            gone,
        }),
    })
}

/// Whether a failed item's task ended longer than `after` ago.
fn retry_due(i: &watches::Item, after: std::time::Duration) -> bool {
    matches!(i.task_status.as_deref(), Some("failed"))
        && i.task_finished_at
            .is_some_and(|at| at + after.as_millis() as i64 <= crate::db::now_ms())
}

/// Rewrites a watch's `.m3u8` from the files of its present items, in source order.
pub async fn write_playlist(shared: &Env, watch_id: &str) -> anyhow::Result<()> {
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
