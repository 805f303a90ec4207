//! The task ledger: the source of truth for every request and job. Queue messages carry only
//! a task id; a job claims its row with a lease before it works, so a message delivered twice
//! (re-enqueued orphan, start-up reconcile) finds the row taken or finished and does nothing.

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
    bytes_total, attempts, max_attempts, error, error_code, source, options, output_path, \
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
    /// Job options (JSON).
    pub options: serde_json::Value,
    /// Identity of the request.
    pub idempotency_key: Option<String>,
    /// Starts allowed.
    pub max_attempts: i64,
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
         options, idempotency_key, active_key, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8, $9, $10, $11, $11)
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
    /// Text search over source, output path and error (case-insensitive substring).
    pub q: Option<String>,
    /// Keyset cursor: tasks created before this `(created_at, id)`.
    pub before: Option<(i64, String)>,
}

/// Tasks newest first, at most `limit`.
pub async fn list(db: &Db, f: &Filter, limit: i64) -> Result<Vec<Task>, sqlx::Error> {
    let mut sql = format!("SELECT {COLUMNS} FROM tasks WHERE 1 = 1");
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
        let (a, b, c) = (p(), p(), p());
        sql += &format!(
            " AND (LOWER(COALESCE(source, '')) LIKE {a} ESCAPE '\\' \
             OR LOWER(COALESCE(output_path, '')) LIKE {b} ESCAPE '\\' \
             OR LOWER(COALESCE(error, '')) LIKE {c} ESCAPE '\\')"
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
        q = q.bind(pattern.clone()).bind(pattern.clone()).bind(pattern);
    }
    if let Some((at, id)) = &f.before {
        q = q.bind(*at).bind(*at).bind(id.clone());
    }
    q.bind(limit).fetch_all(&db.pool).await
}

/// The outcome of trying to claim a task for a run.
#[derive(Debug)]
pub enum Claim {
    /// This worker now holds the task; `attempts` already counts this start.
    Claimed(Box<Task>),
    /// The task is finished, cancelled, or held by a live lease.
    NotClaimable,
    /// The task waits for a retry that is due in this many milliseconds, on this pool.
    NotDue(i64, String),
    /// No such task: the message is stale.
    Missing,
}

/// Claims a task: `queued` and due, or `running` with an expired lease (its worker died).
/// Counts the attempt in the same statement, so a crash still counts.
pub async fn claim(
    db: &Db,
    id: &str,
    worker_id: &str,
    lease_ms: i64,
) -> Result<Claim, sqlx::Error> {
    let now = now_ms();
    let row = sqlx::query_as::<_, Task>(sqlx::AssertSqlSafe(format!(
        "UPDATE tasks SET status = 'running', attempts = attempts + 1, worker_id = $2,
            lease_until = $3, started_at = COALESCE(started_at, $4), updated_at = $4, run_after = NULL
         WHERE id = $1 AND (
            (status = 'queued' AND (run_after IS NULL OR run_after <= $4))
            OR (status = 'running' AND (lease_until IS NULL OR lease_until < $4)))
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(worker_id)
    .bind(now + lease_ms)
    .bind(now)
    .fetch_optional(&db.pool)
    .await?;
    match row {
        Some(t) => Ok(Claim::Claimed(Box::new(t))),
        None => {
            let row: Option<(String, Option<i64>, String)> =
                sqlx::query_as("SELECT status, run_after, pool FROM tasks WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&db.pool)
                    .await?;
            Ok(match row {
                None => Claim::Missing,
                Some((s, Some(due), pool)) if s == status::QUEUED && due > now => {
                    Claim::NotDue(due - now, pool)
                }
                Some(_) => Claim::NotClaimable,
            })
        }
    }
}

/// Extends the lease of a running task this worker holds; `false` when it no longer holds it
/// (cancelled, or taken over after the lease lapsed).
pub async fn renew_lease(
    db: &Db,
    id: &str,
    worker_id: &str,
    lease_ms: i64,
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let r = sqlx::query(
        "UPDATE tasks SET lease_until = $3 WHERE id = $1 AND worker_id = $2 AND status = 'running'",
    )
    .bind(id)
    .bind(worker_id)
    .bind(now + lease_ms)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Ends a run this worker holds with a final status.
pub async fn finish(
    db: &Db,
    id: &str,
    worker_id: &str,
    status: &str,
    error: Option<(&str, &str)>,
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let (code, message) = error.unzip();
    let r = sqlx::query(
        "UPDATE tasks SET status = $3, error_code = $4, error = $5, lease_until = NULL,
            active_key = NULL, finished_at = $6, updated_at = $6,
            progress = CASE WHEN $3 = 'done' THEN 1.0 ELSE progress END
         WHERE id = $1 AND worker_id = $2 AND status = 'running'",
    )
    .bind(id)
    .bind(worker_id)
    .bind(status)
    .bind(code)
    .bind(message)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Fails a task that has used all its attempts, whoever held it.
pub async fn give_up(db: &Db, id: &str, message: &str) -> Result<(), sqlx::Error> {
    let now = now_ms();
    sqlx::query(
        "UPDATE tasks SET status = 'failed', error_code = 'attempts_exhausted', error = $2,
            lease_until = NULL, active_key = NULL, finished_at = $3, updated_at = $3
         WHERE id = $1 AND status IN ('queued', 'running')",
    )
    .bind(id)
    .bind(message)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Puts a run this worker holds back in the queue, due at `run_after` (Unix ms). With
/// `refund`, the attempt does not count (a graceful shutdown handed it back).
pub async fn requeue(
    db: &Db,
    id: &str,
    worker_id: &str,
    run_after: Option<i64>,
    error: Option<(&str, &str)>,
    refund: bool,
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let (code, message) = error.unzip();
    let r = sqlx::query(
        "UPDATE tasks SET status = 'queued', worker_id = NULL, lease_until = NULL, run_after = $3,
            stage = CASE WHEN $3 IS NULL THEN stage ELSE 'waiting' END, error_code = COALESCE($4, error_code), error = COALESCE($5, error),
            attempts = attempts - $6, updated_at = $7
         WHERE id = $1 AND worker_id = $2 AND status = 'running'",
    )
    .bind(id)
    .bind(worker_id)
    .bind(run_after)
    .bind(code)
    .bind(message)
    .bind(i64::from(refund))
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Reports progress of a running task.
pub async fn progress(
    db: &Db,
    id: &str,
    stage: Option<&str>,
    progress: f64,
    bytes: Option<(i64, Option<i64>)>,
) -> Result<(), sqlx::Error> {
    let (done, total) = bytes.map_or((None, None), |(d, t)| (Some(d), t));
    sqlx::query(
        "UPDATE tasks SET stage = COALESCE($2, stage), progress = $3,
            bytes_done = COALESCE($4, bytes_done), bytes_total = COALESCE($5, bytes_total),
            updated_at = $6
         WHERE id = $1 AND status = 'running'",
    )
    .bind(id)
    .bind(stage)
    .bind(progress)
    .bind(done)
    .bind(total)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Tasks whose queue message may be lost: `running` with a lapsed lease (the worker died),
/// and `queued` rows untouched since `stale_before` (Unix ms) and due.
pub async fn orphans(
    db: &Db,
    stale_before: i64,
    limit: i64,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let now = now_ms();
    sqlx::query_as(
        "SELECT id, pool FROM tasks
         WHERE (status = 'running' AND lease_until < $1)
            OR (status = 'queued' AND held = 0 AND updated_at < $2
                AND (run_after IS NULL OR run_after <= $1))
         ORDER BY created_at LIMIT $3",
    )
    .bind(now)
    .bind(stale_before)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

/// Takes an orphan for re-enqueueing: a lapsed run goes back to `queued`, a stale queued row
/// is touched. Only one of several concurrent reconcilers wins.
pub async fn reclaim_for_queue(db: &Db, id: &str, stale_before: i64) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let r = sqlx::query(
        "UPDATE tasks SET status = 'queued', worker_id = NULL, lease_until = NULL, updated_at = $2
         WHERE id = $1 AND ((status = 'running' AND lease_until < $2)
            OR (status = 'queued' AND held = 0 AND updated_at < $3))",
    )
    .bind(id)
    .bind(now)
    .bind(stale_before)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Number of tasks per status (for metrics and health).
pub async fn count_by_status(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT status, COUNT(*) FROM tasks GROUP BY status")
        .fetch_all(&db.pool)
        .await
}

/// Counts of a parent's children by status.
pub async fn child_counts(db: &Db, parent_id: &str) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT status, COUNT(*) FROM tasks WHERE parent_id = $1 GROUP BY status")
        .bind(parent_id)
        .fetch_all(&db.pool)
        .await
}

/// A parent's children in creation order.
pub async fn children(
    db: &Db,
    parent_id: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<Task>, sqlx::Error> {
    sqlx::query_as::<_, Task>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tasks WHERE parent_id = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3"
    )))
    .bind(parent_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await
}

/// Marks a parent as waiting on its children (no lease: no worker holds it).
pub async fn await_children(
    db: &Db,
    id: &str,
    worker_id: &str,
    source_title: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let r = sqlx::query(
        "UPDATE tasks SET status = 'processing', stage = 'children', lease_until = NULL,
            worker_id = NULL, error = NULL, error_code = NULL, output_path = COALESCE($3, output_path),
            updated_at = $4
         WHERE id = $1 AND worker_id = $2 AND status = 'running'",
    )
    .bind(id)
    .bind(worker_id)
    .bind(source_title)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Hands a running task to another pool: queued again at once, attempt refunded (the next
/// stage counts its own), with new options.
pub async fn hand_off(
    db: &Db,
    id: &str,
    worker_id: &str,
    pool: &str,
    stage: &str,
    options: &str,
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let r = sqlx::query(
        "UPDATE tasks SET status = 'queued', pool = $3, stage = $4, options = $5, worker_id = NULL,
            lease_until = NULL, attempts = attempts - 1, updated_at = $6
         WHERE id = $1 AND worker_id = $2 AND status = 'running'",
    )
    .bind(id)
    .bind(worker_id)
    .bind(pool)
    .bind(stage)
    .bind(options)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() > 0)
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

/// How a parent that waits on children ends, once none is active any more: its status and
/// error message (`None` while a child is still active).
pub async fn children_outcome(
    db: &Db,
    parent_id: &str,
) -> Result<Option<(&'static str, Option<String>)>, sqlx::Error> {
    let counts = child_counts(db, parent_id).await?;
    let n = |s: &str| {
        counts
            .iter()
            .filter(|(k, _)| k == s)
            .map(|(_, c)| *c)
            .sum::<i64>()
    };
    let active = n(status::QUEUED) + n(status::RUNNING) + n("processing");
    if active > 0 {
        return Ok(None);
    }
    let (done, skipped, failed, cancelled) = (
        n(status::DONE),
        n(status::SKIPPED),
        n(status::FAILED),
        n(status::CANCELLED),
    );
    let total = done + skipped + failed + cancelled;
    Ok(Some(if total == 0 || (failed == 0 && cancelled == 0) {
        (status::DONE, None)
    } else if done + skipped > 0 {
        (
            status::DONE,
            Some(format!("{failed} of {total} failed, {cancelled} cancelled")),
        )
    } else if failed > 0 {
        (status::FAILED, Some(format!("all {failed} failed")))
    } else {
        (status::CANCELLED, None)
    }))
}

/// Ends a parent that waits on children with `outcome` (from [`children_outcome`]); false when
/// it had ended already (another process settled it).
pub async fn end_parent(
    db: &Db,
    parent_id: &str,
    (st, msg): (&str, Option<String>),
) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let r = sqlx::query(
        "UPDATE tasks SET status = $2, error = $3, error_code = $4, active_key = NULL, progress = 1.0,
            finished_at = $5, updated_at = $5
         WHERE id = $1 AND status = 'processing'",
    )
    .bind(parent_id)
    .bind(st)
    .bind(&msg)
    .bind(msg.as_ref().map(|_| "children_failed"))
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Cancels a task and its active children. Returns the ids that changed.
pub async fn cancel(db: &Db, id: &str) -> Result<Vec<String>, sqlx::Error> {
    let now = now_ms();
    sqlx::query_scalar(
        "UPDATE tasks SET status = 'cancelled', lease_until = NULL, active_key = NULL,
            finished_at = $2, updated_at = $2
         WHERE (id = $1 OR parent_id = $1) AND status IN ('queued', 'running', 'processing')
         RETURNING id",
    )
    .bind(id)
    .bind(now)
    .fetch_all(&db.pool)
    .await
}

/// Puts a task's failed children (or the task itself, without children) back in the queue,
/// with `extra` more attempts; the parent waits on them again. Returns `(id, pool)` to enqueue.
pub async fn retry_failed(
    db: &Db,
    id: &str,
    extra: i64,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let now = now_ms();
    let children: Vec<(String, String)> = sqlx::query_as(
        "UPDATE tasks SET status = 'queued', error = NULL, error_code = NULL, finished_at = NULL,
            max_attempts = attempts + $2, run_after = NULL, updated_at = $3, held = 0
         WHERE parent_id = $1 AND status = 'failed' RETURNING id, pool",
    )
    .bind(id)
    .bind(extra)
    .bind(now)
    .fetch_all(&db.pool)
    .await?;
    if !children.is_empty() {
        sqlx::query(
            "UPDATE tasks SET status = 'processing', error = NULL, error_code = NULL,
                finished_at = NULL, updated_at = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(&db.pool)
        .await?;
        return Ok(children);
    }
    sqlx::query_as(
        "UPDATE tasks SET status = 'queued', error = NULL, error_code = NULL, finished_at = NULL,
            max_attempts = attempts + $2, run_after = NULL, updated_at = $3
         WHERE id = $1 AND status = 'failed'
            AND NOT EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id = $1)
         RETURNING id, pool",
    )
    .bind(id)
    .bind(extra)
    .bind(now)
    .fetch_all(&db.pool)
    .await
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
        "SELECT {COLUMNS} FROM tasks WHERE updated_at > $1 {owner_clause} ORDER BY updated_at, id LIMIT $2"
    )))
    .bind(since)
    .bind(limit);
    match owner_id {
        Some(o) => q.bind(o.to_string()).fetch_all(&db.pool).await,
        None => q.fetch_all(&db.pool).await,
    }
}

/// The current status of a task (for prompt cancellation checks).
pub async fn status_of(db: &Db, id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT status FROM tasks WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await
}

/// Inserts many children of a parent in one transaction.
/// Children past the first `window` are held: queueable only once released.
pub async fn insert_children(
    db: &Db,
    parent: &Task,
    children: &[NewTask],
    window: usize,
) -> Result<Vec<Task>, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let mut out = Vec::with_capacity(children.len());
    for (i, c) in children.iter().enumerate() {
        let now = now_ms() + i as i64 / 1000;
        let t = sqlx::query_as::<_, Task>(sqlx::AssertSqlSafe(format!(
            "INSERT INTO tasks (id, parent_id, owner_id, kind, pool, status, stage, max_attempts, source,
                options, idempotency_key, held, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8, $9, $10, $12, $11, $11) RETURNING {COLUMNS}"
        )))
        .bind(new_id())
        .bind(&parent.id)
        .bind(&parent.owner_id)
        .bind(&c.kind)
        .bind(&c.pool)
        .bind(if c.pool == "cpu" { "process" } else { "fetch" })
        .bind(c.max_attempts)
        .bind(&c.source)
        .bind(c.options.to_string())
        .bind(&c.idempotency_key)
        .bind(now)
        .bind(i64::from(i >= window))
        .fetch_one(&mut *tx)
        .await?;
        out.push(t);
    }
    tx.commit().await?;
    Ok(out)
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

/// Counts for `GET /history/stats`.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Stats {
    /// Top-level requests by status.
    pub requests: std::collections::BTreeMap<String, i64>,
    /// Tracks (children and single tracks) by status.
    pub tracks: std::collections::BTreeMap<String, i64>,
    /// Bytes fetched by finished tracks.
    pub bytes_downloaded: i64,
    /// Tracks finished in the last 24 hours.
    pub tracks_last_24h: i64,
}

/// History statistics for one owner (or everyone).
pub async fn stats(db: &Db, owner_id: Option<&str>) -> Result<Stats, sqlx::Error> {
    let owner = if owner_id.is_some() {
        "AND owner_id = $2"
    } else {
        "AND $2 IS NULL"
    };
    let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT CASE WHEN kind = 'download' THEN 'request' ELSE 'track' END, status, COUNT(*),
            COALESCE(SUM(bytes_done), 0),
            COALESCE(SUM(CASE WHEN finished_at > $1 THEN 1 ELSE 0 END), 0)
         FROM tasks WHERE kind IN ('download', 'track') {owner} GROUP BY 1, 2"
    )))
    .bind(now_ms() - 86_400_000)
    .bind(owner_id)
    .fetch_all(&db.pool)
    .await?;
    let mut s = Stats::default();
    for (what, st, n, bytes, recent) in rows {
        if what == "request" {
            s.requests.insert(st, n);
        } else {
            if st == status::DONE {
                s.bytes_downloaded += bytes;
            }
            if matches!(st.as_str(), "done" | "failed" | "skipped" | "cancelled") {
                s.tracks_last_24h += recent;
            }
            s.tracks.insert(st, n);
        }
    }
    Ok(s)
}

/// Deletes finished top-level tasks (with their children) that ended before `before` (Unix
/// ms). Returns how many requests were removed.
pub async fn cleanup(db: &Db, owner_id: Option<&str>, before: i64) -> Result<u64, sqlx::Error> {
    let owner = if owner_id.is_some() {
        "AND owner_id = $2"
    } else {
        "AND $2 IS NULL"
    };
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM tasks WHERE parent_id IS NULL AND finished_at < $1 {owner}
            AND status NOT IN ('queued', 'running', 'processing')
            AND NOT EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id = tasks.id
                AND c.status IN ('queued', 'running', 'processing'))"
    )))
    .bind(before)
    .bind(owner_id)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected())
}

/// Ids of active top-level tasks of one owner (or everyone), for cancel-all.
pub async fn active_roots(db: &Db, owner_id: Option<&str>) -> Result<Vec<String>, sqlx::Error> {
    let owner = if owner_id.is_some() {
        "AND owner_id = $1"
    } else {
        "AND $1 IS NULL"
    };
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM tasks WHERE parent_id IS NULL
            AND status IN ('queued', 'running', 'processing') {owner}"
    )))
    .bind(owner_id)
    .fetch_all(&db.pool)
    .await
}

/// Releases up to `window` minus the active, released children of a parent: held children
/// become queueable, oldest first. Returns `(id, pool)` of those released, to enqueue.
pub async fn release_held(
    db: &Db,
    parent_id: &str,
    window: i64,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let active: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM tasks WHERE parent_id = $1 AND held = 0
            AND status IN ('queued', 'running')",
    )
    .bind(parent_id)
    .fetch_one(&db.pool)
    .await?;
    let room = window - active;
    if room <= 0 {
        return Ok(Vec::new());
    }
    let ids: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, pool FROM tasks WHERE parent_id = $1 AND held = 1 AND status = 'queued'
         ORDER BY created_at, id LIMIT $2",
    )
    .bind(parent_id)
    .bind(room)
    .fetch_all(&db.pool)
    .await?;
    let mut released = Vec::with_capacity(ids.len());
    for (id, pool) in ids {
        // Compare-and-set: of two processes releasing at once, one wins each row.
        let r =
            sqlx::query("UPDATE tasks SET held = 0, updated_at = $2 WHERE id = $1 AND held = 1")
                .bind(&id)
                .bind(now_ms())
                .execute(&db.pool)
                .await?;
        if r.rows_affected() > 0 {
            released.push((id, pool));
        }
    }
    Ok(released)
}

/// Parents that have held children and room to release more (for the reconciler).
pub async fn parents_with_held(db: &Db, limit: i64) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT parent_id FROM tasks WHERE held = 1 AND status = 'queued'
            AND parent_id IS NOT NULL LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}
