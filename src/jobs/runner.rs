//! The generic runner: take a pool slot, claim the row (the attempt counts), keep the lease
//! while the job runs, record the outcome (done, skipped, children, hand-off, retry with
//! backoff, failure), and push or re-push queue messages; reconcile what the queue lost.

use tracing::Instrument;

use super::*;
use crate::failure::code;

/// Runs one queue message to its end. Errors returned here are only infrastructure errors
/// (the database is unreachable); the lease then lapses and the reconciler re-enqueues.
pub async fn run(shared: Arc<JobEnv>, task_id: String, pool: Pool) -> Result<(), sqlx::Error> {
    // The pool's run-time limit; the queue delivers up to `MAX_POOL` messages at once.
    let _slot = tokio::select! {
        slot = shared.limits.job_slot(pool) => slot,
        _ = shared.hand_back.cancelled() => return Ok(()),
    };
    let lease = shared.config.queue.lease;
    let lease_ms = lease.as_millis() as i64;
    let task = match tasks::claim(&shared.db, &task_id, &shared.worker_id, lease_ms).await? {
        Claim::Claimed(t) => *t,
        Claim::NotDue(ms, pool) => {
            // Delivered early (the SQLite queue schedules in whole seconds): send it again
            // for the rest of the wait rather than dropping it.
            let pool = Pool::parse(&pool).unwrap_or(Pool::Io);
            enqueue(
                &shared.queue,
                pool,
                &task_id,
                Some(Duration::from_millis(ms as u64 + 50)),
            )
            .await;
            return Ok(());
        }
        Claim::NotClaimable | Claim::Missing => {
            tracing::debug!(task_id, "nothing to do for this message");
            return Ok(());
        }
    };
    let kind = task.kind.clone();
    if task.attempts > task.max_attempts {
        let msg = format!(
            "gave up after {} attempts (the worker running it stopped each time)",
            task.attempts - 1
        );
        tracing::warn!(task_id, kind, "{msg}");
        tasks::give_up(&shared.db, &task_id, &msg).await?;
        publish_task(
            &shared.db,
            &shared.events,
            crate::wire::TaskEventKind::Failed,
            &task_id,
        )
        .await;
        notify::task_ended(&shared, &task_id).await;
        metrics::counter!("musicd_jobs_total", "kind" => kind, "outcome" => "failed").increment(1);
        return Ok(());
    }
    tracing::info!(task_id, kind, attempt = task.attempts, "job started");
    let span = tracing::info_span!("job", task_id, kind, attempt = task.attempts);
    // The daemon's own work (deliveries, rescans) is not shown as tasks.
    let internal = tasks::INTERNAL_KINDS.contains(&kind.as_str());
    if !internal {
        shared
            .events
            .publish(
                task.owner_id.as_deref(),
                crate::wire::TaskEventKind::Started.with(task_event(&task)),
            )
            .await;
    }
    let started = Instant::now();
    let stop = CancellationToken::new();
    let lease_keeper = tokio::spawn(keep_lease(shared.clone(), task_id.clone(), stop.clone()));
    let ctx = JobCtx {
        shared: shared.clone(),
        task,
        stop: stop.clone(),
        started,
        last_report: std::sync::Mutex::new(None),
        bytes_done: Default::default(),
        bytes_total: Default::default(),
    };
    let result = tokio::select! {
        r = kind::dispatch(&ctx).instrument(span) => r,
        _ = shared.hand_back.cancelled() => Err(JobError::Interrupted),
    };
    stop.cancel();
    lease_keeper.abort();
    let task = ctx.task;
    let db = &shared.db;
    let outcome = match result {
        Ok(Outcome::Done) => {
            tasks::finish(db, &task_id, &shared.worker_id, status::DONE, None).await?;
            "done"
        }
        Ok(Outcome::Skipped(reason)) => {
            tracing::info!(task_id, kind, "skipped: {reason}");
            tasks::finish(
                db,
                &task_id,
                &shared.worker_id,
                status::SKIPPED,
                Some((code::ALREADY_PRESENT, &reason)),
            )
            .await?;
            "skipped"
        }
        Ok(Outcome::NeedsReview(reason)) => {
            tracing::info!(task_id, kind, "needs review: {reason}");
            tasks::finish(
                db,
                &task_id,
                &shared.worker_id,
                status::NEEDS_REVIEW,
                Some((code::NEEDS_REVIEW, &reason)),
            )
            .await?;
            "needs_review"
        }
        Ok(Outcome::AwaitChildren) => {
            tasks::await_children(db, &task_id, &shared.worker_id, None).await?;
            "awaiting_children"
        }
        Ok(Outcome::HandOff {
            pool,
            stage,
            options,
        }) => {
            if tasks::hand_off(
                db,
                &task_id,
                &shared.worker_id,
                pool.as_str(),
                stage,
                &options,
            )
            .await?
            {
                enqueue(&shared.queue, pool, &task_id, None).await;
            }
            "handed_off"
        }
        Err(JobError::Interrupted) if shared.hand_back.is_cancelled() => {
            tasks::requeue(db, &task_id, &shared.worker_id, None, None, true).await?;
            push_or_log(&shared, &task, None).await;
            "handed_back"
        }
        Err(JobError::Interrupted) => {
            track::clean_staging(&shared.config, &task_id);
            "interrupted"
        }
        Err(JobError::Permanent { code, message }) => {
            tracing::warn!(task_id, kind, code, "job failed: {message}");
            tasks::finish(
                db,
                &task_id,
                &shared.worker_id,
                status::FAILED,
                Some((code, &message)),
            )
            .await?;
            "failed"
        }
        Err(JobError::Transient {
            code,
            message,
            retry_after,
        }) => {
            if task.attempts >= task.max_attempts {
                let message = format!("{message} (gave up after {} attempts)", task.attempts);
                tracing::warn!(task_id, kind, code, "job failed: {message}");
                tasks::finish(
                    db,
                    &task_id,
                    &shared.worker_id,
                    status::FAILED,
                    Some((code, &message)),
                )
                .await?;
                "failed"
            } else {
                let q = &shared.config.queue;
                let wait = backoff::delay(
                    task.attempts as u32,
                    q.backoff_base,
                    q.backoff_max,
                    retry_after,
                );
                tracing::info!(task_id, kind, code, ?wait, "job will retry: {message}");
                let due = crate::db::now_ms() + wait.as_millis() as i64;
                tasks::requeue(
                    db,
                    &task_id,
                    &shared.worker_id,
                    Some(due),
                    Some((code, &message)),
                    false,
                )
                .await?;
                push_or_log(&shared, &task, Some(wait)).await;
                "retry"
            }
        }
    };
    let event = match outcome {
        "done" => Some(crate::wire::TaskEventKind::Completed),
        "skipped" => Some(crate::wire::TaskEventKind::Skipped),
        "needs_review" => Some(crate::wire::TaskEventKind::NeedsReview),
        "failed" => Some(crate::wire::TaskEventKind::Failed),
        "retry" => Some(crate::wire::TaskEventKind::Retrying),
        "handed_back" | "handed_off" => Some(crate::wire::TaskEventKind::Queued),
        "awaiting_children" => Some(crate::wire::TaskEventKind::Progress),
        "interrupted" => Some(crate::wire::TaskEventKind::Cancelled),
        _ => None,
    };
    if let Some(event) = event
        && !internal
    {
        publish_task(&shared.db, &shared.events, event, &task_id).await;
    }
    if matches!(outcome, "done" | "skipped" | "failed" | "needs_review") {
        notify::task_ended(&shared, &task_id).await;
    }
    if matches!(
        outcome,
        "done" | "skipped" | "failed" | "interrupted" | "awaiting_children" | "needs_review"
    ) {
        let parent = if outcome == "awaiting_children" {
            Some(task_id.clone())
        } else {
            task.parent_id.clone()
        };
        // The outcome is recorded; a settle that fails now is left to the reconciler
        // (`settle_unsettled`) instead of failing the run, whose message would be gone.
        if let Some(parent) = parent
            && let Err(e) = settle(&shared, &parent).await
        {
            tracing::warn!(parent, "settle failed; the reconciler will settle it: {e}");
        }
    }
    tracing::info!(
        task_id,
        kind,
        outcome,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "job ended"
    );
    metrics::counter!("musicd_jobs_total", "kind" => kind.clone(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("musicd_job_duration_seconds", "kind" => kind)
        .record(started.elapsed().as_secs_f64());
    Ok(())
}

/// How often a running job looks for a cancel request.
pub(super) const CANCEL_CHECK: Duration = Duration::from_millis(500);

/// Renews the lease every third of its length and looks for a cancel twice a second; stops
/// the job when the task was cancelled or the lease is lost.
pub(super) async fn keep_lease(shared: Arc<JobEnv>, task_id: String, stop: CancellationToken) {
    let lease = shared.config.queue.lease;
    let mut last_renew = Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(CANCEL_CHECK) => {}
        }
        let still_ours = if last_renew.elapsed() >= lease / 3 {
            last_renew = Instant::now();
            tasks::renew_lease(
                &shared.db,
                &task_id,
                &shared.worker_id,
                lease.as_millis() as i64,
            )
            .await
        } else {
            tasks::status_of(&shared.db, &task_id)
                .await
                .map(|s| s.as_deref() == Some(status::RUNNING))
        };
        match still_ours {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(task_id, "task cancelled or lease lost: stopping the job");
                stop.cancel();
                return;
            }
            Err(e) => tracing::warn!(task_id, "cannot check the task: {e}"),
        }
    }
}

/// Enqueues a task whose row is committed; a failure is logged and left to the reconciler,
/// which enqueues it once the queue is back.
pub async fn enqueue(queue: &Queue, pool: Pool, task_id: &str, delay: Option<Duration>) {
    if let Err(e) = queue.push(pool, task_id, delay).await {
        tracing::warn!(task_id, "enqueue failed, left to the reconciler: {e:#}");
    }
}

/// Enqueues a task on the pool its row names.
pub(super) async fn push_or_log(shared: &JobEnv, task: &Task, delay: Option<Duration>) {
    enqueue(
        &shared.queue,
        Pool::parse(&task.pool).unwrap_or(Pool::Io),
        &task.id,
        delay,
    )
    .await;
}

/// Re-enqueues tasks whose queue message may be lost: runs whose lease lapsed (their worker
/// died) and queued rows untouched for `stale`. Returns how many were re-enqueued.
pub async fn reconcile(db: &Db, queue: &Queue, stale: Duration) -> anyhow::Result<usize> {
    let stale_before = crate::db::now_ms() - stale.as_millis() as i64;
    let mut count = 0;
    for (id, pool) in tasks::orphans(db, stale_before, 1000).await? {
        if tasks::reclaim_for_queue(db, &id, stale_before).await? {
            queue
                .push(Pool::parse(&pool).unwrap_or(Pool::Io), &id, None)
                .await?;
            count += 1;
        }
    }
    if count > 0 {
        tracing::info!(count, "re-enqueued tasks whose queue message was lost");
    }
    Ok(count)
}

/// Releases held children of every parent with room (after a crash between a child's end
/// and the release that should have followed).
pub async fn release_all_held(shared: &JobEnv) -> Result<(), sqlx::Error> {
    for parent in tasks::parents_with_held(&shared.db, 1000).await? {
        release_held(shared, &parent).await?;
    }
    Ok(())
}

/// Settles parents whose children have all ended but whose settle did not happen (it
/// failed after the last child had already been recorded).
pub async fn settle_unsettled(shared: &JobEnv) -> Result<(), sqlx::Error> {
    for parent in tasks::unsettled_parents(&shared.db, 1000).await? {
        tracing::info!(parent, "settling a parent whose children have all ended");
        settle(shared, &parent).await?;
    }
    Ok(())
}

/// Creates a task row and enqueues it (row first, then the message).
pub async fn submit(
    db: &Db,
    queue: &Queue,
    events: &EventBus,
    new: &tasks::NewTask,
) -> anyhow::Result<Result<Task, String>> {
    let created = tasks::insert(db, new).await?;
    if let Ok(task) = &created {
        announce(queue, events, task).await;
    }
    Ok(created)
}
