//! Parents and children: inserting a request's children, counting and listing them,
//! settling the parent, cancel and retry of a tree, and the bounded enqueue window (held
//! children released as others end).

use super::*;

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
    let (done, skipped, failed, cancelled, review) = (
        n(status::DONE),
        n(status::SKIPPED),
        n(status::FAILED),
        n(status::CANCELLED),
        n(status::NEEDS_REVIEW),
    );
    let total = done + skipped + failed + cancelled + review;
    let review_note = if review > 0 {
        format!(", {review} need review")
    } else {
        String::new()
    };
    Ok(Some(
        if total == 0 || (failed == 0 && cancelled == 0 && review == 0) {
            (status::DONE, None)
        } else if done + skipped > 0 {
            (
                status::DONE,
                Some(format!(
                    "{failed} of {total} failed, {cancelled} cancelled{review_note}"
                )),
            )
        } else if failed > 0 {
            (
                status::FAILED,
                Some(format!("all {failed} failed{review_note}")),
            )
        } else if review > 0 {
            (
                status::NEEDS_REVIEW,
                Some(format!("{review} of {total} need review")),
            )
        } else {
            (status::CANCELLED, None)
        },
    ))
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

/// Runs a track that ended `needs_review` or `failed` again with new `options` (a person's
/// choice of audio), with `extra` more attempts; its parent waits on it again. Returns
/// `(id, pool)` to enqueue, or `None` when the task is not in such a state.
pub async fn reopen(
    db: &Db,
    id: &str,
    options: &str,
    extra: i64,
) -> Result<Option<(String, String)>, sqlx::Error> {
    let now = now_ms();
    let row: Option<(String, String, Option<String>)> = sqlx::query_as(
        "UPDATE tasks SET status = 'queued', pool = 'io', stage = 'fetch', options = $2,
            error = NULL, error_code = NULL, finished_at = NULL, progress = 0,
            max_attempts = attempts + $3, run_after = NULL, updated_at = $4, held = 0
         WHERE id = $1 AND status IN ('needs_review', 'failed')
         RETURNING id, pool, parent_id",
    )
    .bind(id)
    .bind(options)
    .bind(extra)
    .bind(now)
    .fetch_optional(&db.pool)
    .await?;
    let Some((id, pool, parent)) = row else {
        return Ok(None);
    };
    if let Some(parent) = parent {
        sqlx::query(
            "UPDATE tasks SET status = 'processing', error = NULL, error_code = NULL,
                finished_at = NULL, updated_at = $2 WHERE id = $1",
        )
        .bind(parent)
        .bind(now)
        .execute(&db.pool)
        .await?;
    }
    Ok(Some((id, pool)))
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
                options, idempotency_key, held, created_at, updated_at, title)
             VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8, $9, $10, $12, $11, $11, $13) RETURNING {COLUMNS}"
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
        .bind(&c.title)
        .fetch_one(&mut *tx)
        .await?;
        out.push(t);
    }
    tx.commit().await?;
    Ok(out)
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
///
/// Counting the room and releasing are one statement, so two children ending at once (or a
/// child and the reconciler) cannot both take the last free place: on SQLite a write
/// statement runs alone; on PostgreSQL the parent's row lock orders the releases and each
/// counts after the one before it committed.
pub async fn release_held(
    db: &Db,
    parent_id: &str,
    window: i64,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    const RELEASE: &str = "UPDATE tasks SET held = 0, updated_at = $2 WHERE id IN (
        SELECT id FROM tasks WHERE parent_id = $1 AND held = 1 AND status = 'queued'
        ORDER BY created_at, id
        LIMIT (SELECT CASE WHEN $3 - COUNT(*) > 0 THEN $3 - COUNT(*) ELSE 0 END
               FROM tasks WHERE parent_id = $1 AND held = 0
                   AND status IN ('queued', 'running')))
        RETURNING id, pool";
    let mut tx = db.pool.begin().await?;
    if db.backend == super::super::Backend::Postgres {
        sqlx::query("SELECT id FROM tasks WHERE id = $1 FOR UPDATE")
            .bind(parent_id)
            .execute(&mut *tx)
            .await?;
    }
    let released: Vec<(String, String)> = sqlx::query_as(RELEASE)
        .bind(parent_id)
        .bind(now_ms())
        .bind(window)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(released)
}

/// Parents still `processing` whose children have all ended: a settle that failed (the
/// database was busy) left them, and the reconciler settles them.
pub async fn unsettled_parents(db: &Db, limit: i64) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT p.id FROM tasks p WHERE p.status = 'processing' AND NOT EXISTS (
            SELECT 1 FROM tasks c WHERE c.parent_id = p.id
                AND c.status IN ('queued', 'running', 'processing'))
         LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&db.pool)
    .await
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
