//! The runner's seams on a task row: claim (the attempt counts when it starts), lease
//! renewal, progress, the outcome, requeue with a delay, hand-off between pools, and the
//! rows a reconciler takes back.

use super::*;

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

/// Due, released tasks of `pool` that have waited in the queue since before `before` (Unix
/// ms), oldest first.
pub async fn waiting_since(
    db: &Db,
    pool: &str,
    before: i64,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM tasks
         WHERE status = 'queued' AND held = 0 AND pool = $1 AND updated_at < $2
            AND (run_after IS NULL OR run_after <= $3)
         ORDER BY created_at LIMIT $4",
    )
    .bind(pool)
    .bind(before)
    .bind(now_ms())
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
