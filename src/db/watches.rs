//! Watches and what each has seen. The next scheduled check is claimed with a
//! compare-and-set on `next_check_at`, so when several processes share the database each
//! period is checked by exactly one of them.

use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use super::{Db, new_id, now_ms};

/// One watch.
#[derive(Clone, Debug, Serialize, FromRow, ToSchema)]
pub struct Watch {
    /// Stable id.
    pub id: String,
    /// The user it belongs to.
    pub owner_id: String,
    /// The URL it was created with, if any.
    pub url: Option<String>,
    /// Provider name.
    pub provider: String,
    /// `feed`, `playlist` or `artist`.
    pub kind: String,
    /// Id within the provider.
    pub item_id: String,
    /// Title as last seen at the source.
    pub title: Option<String>,
    /// Cron expression; `null` follows the watch config's default.
    pub schedule: Option<String>,
    /// 1 when scheduled checks run.
    #[serde(serialize_with = "as_bool")]
    #[schema(value_type = bool)]
    pub enabled: i64,
    /// 1: the items there at creation were downloaded too.
    #[serde(serialize_with = "as_bool")]
    #[schema(value_type = bool)]
    pub download_existing: i64,
    /// For artists: release types kept (JSON array), `null` keeps all.
    #[serde(serialize_with = "json_text")]
    #[schema(value_type = Option<Vec<String>>)]
    pub release_types: Option<String>,
    /// `keep`, `delete` or `flag`.
    pub on_removed: String,
    /// Output format, or the media default.
    pub format: Option<String>,
    /// Quality preset, or the media default.
    pub quality: Option<String>,
    /// `ETag` of the source's last answer.
    #[serde(skip)]
    pub etag: Option<String>,
    /// `Last-Modified` of the source's last answer.
    #[serde(skip)]
    pub last_modified: Option<String>,
    /// Hash of the item ids in source order at the last check.
    #[serde(skip)]
    pub content_hash: Option<String>,
    /// 1 once the first check recorded what was there.
    #[serde(skip)]
    pub baseline: i64,
    /// Next scheduled check (Unix ms).
    pub next_check_at: Option<i64>,
    /// Last check (Unix ms).
    pub last_check_at: Option<i64>,
    /// Last check's counts (JSON).
    #[serde(serialize_with = "json_text")]
    #[schema(value_type = Option<Object>)]
    pub last_result: Option<String>,
    /// Last check's error, if it failed.
    pub last_error: Option<String>,
    /// Task of the last check.
    pub last_task_id: Option<String>,
    /// The `.m3u8` written for it, relative to the library.
    pub playlist_path: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

fn as_bool<S: serde::Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bool(*v != 0)
}

fn json_text<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    let value = v
        .as_deref()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .unwrap_or(serde_json::Value::Null);
    serde::Serialize::serialize(&value, s)
}

impl Watch {
    /// Release types as a list (empty keeps all).
    pub fn release_types(&self) -> Vec<String> {
        self.release_types
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default()
    }
}

const COLUMNS: &str = "id, owner_id, url, provider, kind, item_id, title, schedule, enabled, \
    download_existing, release_types, on_removed, format, quality, etag, last_modified, \
    content_hash, baseline, next_check_at, last_check_at, last_result, last_error, last_task_id, \
    playlist_path, created_at, updated_at";

/// Inserts `w` (its id and times are set here) and returns the row.
pub async fn insert(db: &Db, w: &Watch) -> Result<Watch, sqlx::Error> {
    let now = now_ms();
    sqlx::query_as::<_, Watch>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO watches (id, owner_id, url, provider, kind, item_id, schedule, enabled,
            download_existing, release_types, on_removed, format, quality, next_check_at,
            created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)
         RETURNING {COLUMNS}"
    )))
    .bind(new_id())
    .bind(&w.owner_id)
    .bind(&w.url)
    .bind(&w.provider)
    .bind(&w.kind)
    .bind(&w.item_id)
    .bind(&w.schedule)
    .bind(w.enabled)
    .bind(w.download_existing)
    .bind(&w.release_types)
    .bind(&w.on_removed)
    .bind(&w.format)
    .bind(&w.quality)
    .bind(w.next_check_at)
    .bind(now)
    .fetch_one(&db.pool)
    .await
}

/// A watch by id.
pub async fn get(db: &Db, id: &str) -> Result<Option<Watch>, sqlx::Error> {
    sqlx::query_as::<_, Watch>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM watches WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&db.pool)
    .await
}

/// Watches of `owner` (every watch when `None`), oldest first, after the keyset `after`.
pub async fn list(
    db: &Db,
    owner: Option<&str>,
    after: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<Watch>, sqlx::Error> {
    let (at, id) = after.unwrap_or((i64::MIN, String::new()));
    let owner_clause = if owner.is_some() {
        "owner_id = $4 AND"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM watches
         WHERE {owner_clause} (created_at > $1 OR (created_at = $1 AND id > $2))
         ORDER BY created_at, id LIMIT $3"
    );
    let mut q = sqlx::query_as::<_, Watch>(sqlx::AssertSqlSafe(sql))
        .bind(at)
        .bind(id)
        .bind(limit);
    if let Some(o) = owner {
        q = q.bind(o.to_string());
    }
    q.fetch_all(&db.pool).await
}

/// Writes the fields `PATCH` may change, and the next check.
pub async fn update(db: &Db, w: &Watch) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE watches SET schedule = $2, enabled = $3, download_existing = $4,
            release_types = $5, on_removed = $6, format = $7, quality = $8, next_check_at = $9,
            updated_at = $10
         WHERE id = $1",
    )
    .bind(&w.id)
    .bind(&w.schedule)
    .bind(w.enabled)
    .bind(w.download_existing)
    .bind(&w.release_types)
    .bind(&w.on_removed)
    .bind(&w.format)
    .bind(&w.quality)
    .bind(w.next_check_at)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Deletes a watch and what it has seen (not its files). Returns whether it existed.
pub async fn delete(db: &Db, id: &str) -> Result<bool, sqlx::Error> {
    sqlx::query("DELETE FROM watch_items WHERE watch_id = $1")
        .bind(id)
        .execute(&db.pool)
        .await?;
    let r = sqlx::query("DELETE FROM watches WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Every enabled watch: id, schedule (`None`: the default) and next check.
pub async fn enabled(db: &Db) -> Result<Vec<(String, Option<String>, Option<i64>)>, sqlx::Error> {
    sqlx::query_as("SELECT id, schedule, next_check_at FROM watches WHERE enabled = 1")
        .fetch_all(&db.pool)
        .await
}

/// Sets when the next check is due.
pub async fn set_next(db: &Db, id: &str, next: Option<i64>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE watches SET next_check_at = $2 WHERE id = $1")
        .bind(id)
        .bind(next)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Claims the check that was due at `due` (the watch's `next_check_at`, at or before `now`)
/// by moving `next_check_at` to `next`. Only one process wins a given period.
pub async fn claim_due(db: &Db, id: &str, due: i64, next: i64) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE watches SET next_check_at = $3
         WHERE id = $1 AND enabled = 1 AND next_check_at = $2",
    )
    .bind(id)
    .bind(due)
    .bind(next)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// What a finished check records on its watch.
#[derive(Debug, Default)]
pub struct CheckRecord {
    /// The source's `ETag`.
    pub etag: Option<String>,
    /// The source's `Last-Modified`.
    pub last_modified: Option<String>,
    /// Hash of the item ids in order.
    pub content_hash: Option<String>,
    /// The source's title.
    pub title: Option<String>,
    /// Counts (JSON).
    pub result: String,
    /// The check's task.
    pub task_id: Option<String>,
    /// The `.m3u8`, relative to the library.
    pub playlist_path: Option<String>,
}

/// Records a successful check (and that the baseline exists).
pub async fn record_check(db: &Db, id: &str, r: &CheckRecord) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE watches SET etag = COALESCE($2, etag), last_modified = COALESCE($3, last_modified),
            content_hash = COALESCE($4, content_hash), title = COALESCE($5, title),
            last_result = $6, last_error = NULL, last_task_id = COALESCE($7, last_task_id),
            playlist_path = COALESCE($8, playlist_path), baseline = 1, last_check_at = $9,
            updated_at = $9
         WHERE id = $1",
    )
    .bind(id)
    .bind(&r.etag)
    .bind(&r.last_modified)
    .bind(&r.content_hash)
    .bind(&r.title)
    .bind(&r.result)
    .bind(&r.task_id)
    .bind(&r.playlist_path)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Records a failed check.
pub async fn record_error(
    db: &Db,
    id: &str,
    task_id: &str,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE watches SET last_error = $2, last_task_id = $3, last_check_at = $4, updated_at = $4
         WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(task_id)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// One item a watch has seen.
#[derive(Clone, Debug, FromRow)]
pub struct Item {
    /// The provider's stable identity.
    pub item_id: String,
    /// Position in the source at the last check.
    pub position: i64,
    /// 1 while the source still lists it.
    pub present: i64,
    /// The track (JSON `TrackInfo`).
    pub track: String,
    /// The task that downloaded it, if any.
    pub task_id: Option<String>,
    /// 1 when a person chose not to download it.
    pub ignored: i64,
    /// Its task's status, if it has one.
    pub task_status: Option<String>,
    /// When its task ended (Unix ms).
    pub task_finished_at: Option<i64>,
}

impl Item {
    /// Where the item stands: `ignored`, `seen` (never asked for), `downloaded`, `failed`,
    /// `needs_review`, `cancelled` or `downloading`.
    pub fn state(&self) -> &str {
        if self.ignored != 0 {
            return "ignored";
        }
        match self.task_status.as_deref() {
            None => "seen",
            Some("done" | "skipped") => "downloaded",
            Some(s @ ("failed" | "needs_review" | "cancelled")) => s,
            Some(_) => "downloading",
        }
    }
}

/// Every item a watch has seen, present or not, with its task's status.
pub async fn items(db: &Db, watch_id: &str) -> Result<Vec<Item>, sqlx::Error> {
    sqlx::query_as(
        "SELECT i.item_id, i.position, i.present, i.track, i.task_id, i.ignored,
            t.status AS task_status, t.finished_at AS task_finished_at
         FROM watch_items i LEFT JOIN tasks t ON t.id = i.task_id
         WHERE i.watch_id = $1 ORDER BY i.present DESC, i.position, i.item_id",
    )
    .bind(watch_id)
    .fetch_all(&db.pool)
    .await
}

/// Marks an item ignored (or not); false when the watch has no such item.
pub async fn set_ignored(
    db: &Db,
    watch_id: &str,
    item_id: &str,
    ignored: bool,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("UPDATE watch_items SET ignored = $3 WHERE watch_id = $1 AND item_id = $2")
        .bind(watch_id)
        .bind(item_id)
        .bind(i64::from(ignored))
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Records the source's items in order (new ones inserted with their task, known ones moved
/// and marked present) and marks `removed` as gone, in one transaction.
pub async fn apply_diff(
    db: &Db,
    watch_id: &str,
    current: &[(String, String, Option<String>)],
    removed: &[String],
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let mut tx = db.pool.begin().await?;
    for (pos, (item_id, track, task_id)) in current.iter().enumerate() {
        sqlx::query(
            "INSERT INTO watch_items (watch_id, item_id, position, present, track, task_id, first_seen)
             VALUES ($1, $2, $3, 1, $4, $5, $6)
             ON CONFLICT (watch_id, item_id) DO UPDATE SET position = $3, present = 1,
                track = $4, task_id = COALESCE($5, watch_items.task_id), removed_at = NULL",
        )
        .bind(watch_id)
        .bind(item_id)
        .bind(pos as i64)
        .bind(track)
        .bind(task_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    for item_id in removed {
        sqlx::query(
            "UPDATE watch_items SET present = 0, removed_at = $3 WHERE watch_id = $1 AND item_id = $2",
        )
        .bind(watch_id)
        .bind(item_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// The library files of a watch's present items, in source order: (track JSON, file path).
pub async fn playlist(db: &Db, watch_id: &str) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT i.track, t.output_path FROM watch_items i JOIN tasks t ON t.id = i.task_id
         WHERE i.watch_id = $1 AND i.present = 1 AND t.output_path IS NOT NULL
           AND t.status IN ('done', 'skipped')
         ORDER BY i.position",
    )
    .bind(watch_id)
    .fetch_all(&db.pool)
    .await
}

/// A removed item's task: (item id, task status, output path).
pub type RemovedFile = (String, String, Option<String>);

/// The tasks of removed items (for `on_removed = delete`): each with its status, so only
/// files the watch's own task placed (`done`, not `skipped`) are deleted.
pub async fn removed_files(
    db: &Db,
    watch_id: &str,
    items: &[String],
) -> Result<Vec<RemovedFile>, sqlx::Error> {
    let mut out = Vec::new();
    for item in items {
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT t.status, t.output_path FROM watch_items i JOIN tasks t ON t.id = i.task_id
             WHERE i.watch_id = $1 AND i.item_id = $2",
        )
        .bind(watch_id)
        .bind(item)
        .fetch_optional(&db.pool)
        .await?;
        if let Some((status, path)) = row {
            out.push((item.clone(), status, path));
        }
    }
    Ok(out)
}

/// Why a file must stay although a watch no longer lists it: another task than `task_id`
/// (a download, another watch's item) still records it, or another user's index row owns it.
pub async fn still_used(
    db: &Db,
    path: &str,
    watch_id: &str,
    owner_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let others: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM tasks t
         WHERE t.output_path = $1 AND t.status IN ('done', 'skipped')
           AND t.id NOT IN (SELECT i.task_id FROM watch_items i
                            WHERE i.watch_id = $2 AND i.task_id IS NOT NULL)",
    )
    .bind(path)
    .bind(watch_id)
    .fetch_one(&db.pool)
    .await?;
    if others > 0 {
        return Ok(Some(
            "another download or watch also has this file".to_string(),
        ));
    }
    let owner: Option<Option<String>> =
        sqlx::query_scalar("SELECT owner_id FROM tracks WHERE path = $1")
            .bind(path)
            .fetch_optional(&db.pool)
            .await?;
    match owner.flatten() {
        Some(o) if o != owner_id => Ok(Some("the file belongs to another user".to_string())),
        _ => Ok(None),
    }
}

/// Forgets the next check of watches on the default schedule (after the default changed);
/// the scheduler computes it again.
pub async fn reset_default_next(db: &Db) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE watches SET next_check_at = NULL WHERE schedule IS NULL")
        .execute(&db.pool)
        .await?;
    Ok(())
}
