//! The task ledger: the source of truth for every request and job. Queue messages carry only
//! a task id; a job claims its row with a lease before it works, so a message delivered twice
//! (re-enqueued orphan, start-up reconcile) finds the row taken or finished and does nothing.

mod history;
mod lease;
mod tree;
pub use history::*;
pub use lease::*;
pub use tree::*;

use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use super::{Db, new_id, now_ms};

/// Task states. `queued` and `running` are active; the rest are final.
pub mod status {
    /// Waiting in the queue (possibly until `run_after`).
    pub const QUEUED: &str = "queued";
    /// Claimed by a worker that holds its lease.
    pub const RUNNING: &str = "running";
    /// A parent whose children are being worked on (no worker holds it).
    pub const PROCESSING: &str = "processing";
    /// Finished successfully.
    pub const DONE: &str = "done";
    /// Finished with an error, or out of attempts.
    pub const FAILED: &str = "failed";
    /// Stopped on request.
    pub const CANCELLED: &str = "cancelled";
    /// Nothing to do (already present).
    pub const SKIPPED: &str = "skipped";
    /// Ended without a download: no audio was sure enough; a person picks one.
    pub const NEEDS_REVIEW: &str = "needs_review";
}

/// One row of the ledger.
#[derive(Clone, Debug, Serialize, FromRow, ToSchema)]
pub struct Task {
    /// Stable id.
    pub id: String,
    /// Parent task (an album for its tracks), if any.
    pub parent_id: Option<String>,
    /// The user who asked for it.
    pub owner_id: Option<String>,
    /// Job kind, e.g. `ping`.
    pub kind: String,
    /// Worker pool that runs it: `io` or `cpu`.
    pub pool: String,
    /// `queued`, `running`, `done`, `failed`, `cancelled`, `skipped`.
    pub status: String,
    /// Current pipeline stage, if the job reports one.
    pub stage: Option<String>,
    /// 0.0 to 1.0.
    pub progress: f64,
    /// Bytes transferred so far.
    pub bytes_done: i64,
    /// Bytes expected, when known.
    pub bytes_total: Option<i64>,
    /// Starts so far, including starts after a crash.
    pub attempts: i64,
    /// Starts allowed.
    pub max_attempts: i64,
    /// Last error message.
    pub error: Option<String>,
    /// Stable code of the last error.
    pub error_code: Option<String>,
    /// What was asked for (a URL, a path).
    pub source: Option<String>,
    /// What it is, in words: `Artist – Title` for a track, the album's or playlist's title.
    pub title: Option<String>,
    /// Job options (stored as JSON text, shown as JSON).
    #[serde(serialize_with = "raw_json")]
    #[schema(value_type = Object)]
    pub options: String,
    /// Where the result was placed.
    pub output_path: Option<String>,
    /// Client-supplied or derived key identifying the same request.
    pub idempotency_key: Option<String>,
    /// Worker holding the lease while running.
    pub worker_id: Option<String>,
    /// Lease expiry (Unix ms) while running.
    pub lease_until: Option<i64>,
    /// Earliest start (Unix ms) for a retry.
    pub run_after: Option<i64>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
    /// First start, Unix milliseconds.
    pub started_at: Option<i64>,
    /// End, Unix milliseconds.
    pub finished_at: Option<i64>,
}

fn raw_json<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    use serde::Serialize;
    serde_json::from_str::<serde_json::Value>(text)
        .unwrap_or(serde_json::Value::Null)
        .serialize(s)
}

const COLUMNS: &str = "id, parent_id, owner_id, kind, pool, status, stage, progress, bytes_done, \
    bytes_total, attempts, max_attempts, error, error_code, source, title, options, output_path, \
    idempotency_key, worker_id, lease_until, run_after, created_at, updated_at, started_at, finished_at";

/// What a new ledger row needs.
#[derive(Clone, Debug, Default)]
pub struct NewTask {
    /// Job kind.
    pub kind: String,
    /// `io` or `cpu`.
    pub pool: String,
    /// Requesting user.
    pub owner_id: Option<String>,
    /// Parent task.
    pub parent_id: Option<String>,
    /// What was asked for.
    pub source: Option<String>,
    /// What it is, in words (a track's `Artist – Title`).
    pub title: Option<String>,
    /// Job options (JSON).
    pub options: serde_json::Value,
    /// Identity of the request.
    pub idempotency_key: Option<String>,
    /// Starts allowed.
    pub max_attempts: i64,
    /// Not before this time (Unix ms): a debounced task.
    pub run_after: Option<i64>,
}

/// Kinds of the daemon's own work (webhook deliveries, media-server rescans): kept out of
/// task lists, updates and events, and pruned once old.
pub const INTERNAL_KINDS: &[&str] = &["deliver", "rescan"];

/// `AND kind NOT IN (…)` over [`INTERNAL_KINDS`].
fn not_internal() -> String {
    let kinds: Vec<String> = INTERNAL_KINDS.iter().map(|k| format!("'{k}'")).collect();
    format!(" AND kind NOT IN ({})", kinds.join(", "))
}

/// Inserts a `queued` row. When `idempotency_key` is set and an active task holds it, returns
/// `Err(existing id)` instead.
pub async fn insert(db: &Db, new: &NewTask) -> Result<Result<Task, String>, sqlx::Error> {
    let now = now_ms();
    let active_key = new
        .idempotency_key
        .as_ref()
        .map(|k| format!("{}:{k}", new.owner_id.as_deref().unwrap_or("-")));
    let row = sqlx::query_as::<_, Task>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO tasks (id, parent_id, owner_id, kind, pool, status, max_attempts, source, \
         options, idempotency_key, active_key, created_at, updated_at, title, run_after)
         VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8, $9, $10, $11, $11, $12, $13)
         ON CONFLICT (active_key) DO NOTHING RETURNING {COLUMNS}"
    )))
    .bind(new_id())
    .bind(&new.parent_id)
    .bind(&new.owner_id)
    .bind(&new.kind)
    .bind(&new.pool)
    .bind(new.max_attempts)
    .bind(&new.source)
    .bind(new.options.to_string())
    .bind(&new.idempotency_key)
    .bind(&active_key)
    .bind(now)
    .bind(&new.title)
    .bind(new.run_after)
    .fetch_optional(&db.pool)
    .await?;
    match row {
        Some(t) => Ok(Ok(t)),
        None => {
            let existing: String = sqlx::query_scalar("SELECT id FROM tasks WHERE active_key = $1")
                .bind(&active_key)
                .fetch_one(&db.pool)
                .await?;
            Ok(Err(existing))
        }
    }
}

/// Loads a task.
pub async fn get(db: &Db, id: &str) -> Result<Option<Task>, sqlx::Error> {
    sqlx::query_as::<_, Task>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tasks WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&db.pool)
    .await
}

/// Filters for [`list`].
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only this owner's tasks (`None` for an admin's view of all).
    pub owner_id: Option<String>,
    /// Only this status.
    pub status: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only `queued` and `running`.
    pub active_only: bool,
    /// Only top-level tasks (no parent).
    pub top_level: bool,
    /// Only finished tasks (history).
    pub finished_only: bool,
    /// Text search over title, source, output path and error (case-insensitive substring).
    pub q: Option<String>,
    /// Keyset cursor: tasks created before this `(created_at, id)`.
    pub before: Option<(i64, String)>,
}

/// Tasks newest first, at most `limit`.
pub async fn list(db: &Db, f: &Filter, limit: i64) -> Result<Vec<Task>, sqlx::Error> {
    let mut sql = format!("SELECT {COLUMNS} FROM tasks WHERE 1 = 1{}", not_internal());
    let mut n = 0;
    let mut p = || {
        n += 1;
        format!("${n}")
    };
    if f.owner_id.is_some() {
        sql += &format!(" AND owner_id = {}", p());
    }
    if f.status.is_some() {
        sql += &format!(" AND status = {}", p());
    }
    if f.kind.is_some() {
        sql += &format!(" AND kind = {}", p());
    }
    if f.active_only {
        sql += " AND status IN ('queued', 'running', 'processing')";
    }
    if f.top_level {
        sql += " AND parent_id IS NULL";
    }
    if f.finished_only {
        sql += " AND status NOT IN ('queued', 'running', 'processing')";
    }
    if f.q.is_some() {
        let (a, b, c, d) = (p(), p(), p(), p());
        sql += &format!(
            " AND (LOWER(COALESCE(source, '')) LIKE {a} ESCAPE '\\' \
             OR LOWER(COALESCE(output_path, '')) LIKE {b} ESCAPE '\\' \
             OR LOWER(COALESCE(error, '')) LIKE {c} ESCAPE '\\' \
             OR LOWER(COALESCE(title, '')) LIKE {d} ESCAPE '\\')"
        );
    }
    if f.before.is_some() {
        let (a, b, c) = (p(), p(), p());
        sql += &format!(" AND (created_at < {a} OR (created_at = {b} AND id < {c}))");
    }
    sql += &format!(" ORDER BY created_at DESC, id DESC LIMIT {}", p());
    let mut q = sqlx::query_as::<_, Task>(sqlx::AssertSqlSafe(sql));
    if let Some(o) = &f.owner_id {
        q = q.bind(o.clone());
    }
    if let Some(s) = &f.status {
        q = q.bind(s.clone());
    }
    if let Some(k) = &f.kind {
        q = q.bind(k.clone());
    }
    if let Some(text) = &f.q {
        let pattern = format!("%{}%", like_escape(&text.to_lowercase()));
        q = q
            .bind(pattern.clone())
            .bind(pattern.clone())
            .bind(pattern.clone())
            .bind(pattern);
    }
    if let Some((at, id)) = &f.before {
        q = q.bind(*at).bind(*at).bind(id.clone());
    }
    q.bind(limit).fetch_all(&db.pool).await
}

/// Number of tasks per status (for metrics and health).
pub async fn count_by_status(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT status, COUNT(*) FROM tasks GROUP BY status")
        .fetch_all(&db.pool)
        .await
}

/// Sets the result path (and finishes as `done` or `skipped`) of a run this worker holds.
pub async fn set_output(db: &Db, id: &str, worker_id: &str, path: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tasks SET output_path = $3 WHERE id = $1 AND worker_id = $2")
        .bind(id)
        .bind(worker_id)
        .bind(path)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Deletes a finished task (and its children). `false` when it is missing or still active.
pub async fn delete_finished(db: &Db, id: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "DELETE FROM tasks WHERE id = $1 AND status NOT IN ('queued', 'running', 'processing')
            AND NOT EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id = $1
                AND c.status IN ('queued', 'running', 'processing'))",
    )
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Tasks changed after `since` (Unix ms), oldest change first.
pub async fn updated_since(
    db: &Db,
    owner_id: Option<&str>,
    since: i64,
    limit: i64,
) -> Result<Vec<Task>, sqlx::Error> {
    let owner_clause = if owner_id.is_some() {
        "AND owner_id = $3"
    } else {
        ""
    };
    let q = sqlx::query_as::<_, Task>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tasks WHERE updated_at > $1 {owner_clause}{} ORDER BY updated_at, id LIMIT $2",
        not_internal()
    )))
    .bind(since)
    .bind(limit);
    match owner_id {
        Some(o) => q.bind(o.to_string()).fetch_all(&db.pool).await,
        None => q.fetch_all(&db.pool).await,
    }
}

/// Deletes internal tasks (see [`INTERNAL_KINDS`]) that ended before `before` (Unix ms).
pub async fn prune_internal(db: &Db, before: i64) -> Result<u64, sqlx::Error> {
    let kinds: Vec<String> = INTERNAL_KINDS.iter().map(|k| format!("'{k}'")).collect();
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM tasks WHERE kind IN ({}) AND finished_at < $1
            AND status NOT IN ('queued', 'running', 'processing')",
        kinds.join(", ")
    )))
    .bind(before)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected())
}

/// The current status of a task (for prompt cancellation checks).
pub async fn status_of(db: &Db, id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT status FROM tasks WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await
}

/// Replaces a task's options.
pub async fn set_options(db: &Db, id: &str, options: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tasks SET options = $2 WHERE id = $1")
        .bind(id)
        .bind(options)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Names what a task is, in words (a release's title once it is resolved).
pub async fn set_title(db: &Db, id: &str, title: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tasks SET title = $2 WHERE id = $1")
        .bind(id)
        .bind(title)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Escapes `\`, `%` and `_` for a `LIKE … ESCAPE '\'` pattern.
pub(crate) fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
