//! Job kinds and the runner that wraps every job: claim the ledger row with a lease (counting
//! the attempt), keep the lease alive while working, then record the outcome: done, failed
//! (permanent error or attempts used up), or queued again with backoff (transient error).
//! One module per job kind; each gets a [`JobCtx`] and returns a [`JobError`] on failure.

pub mod check_watch;
pub mod download;
pub mod ping;
pub mod track;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::db::Db;
use crate::db::tasks::{self, Claim, Task, status};
use crate::events::EventBus;
use crate::queue::{Pool, Queue, backoff};

/// What a job needs from the process that runs it.
#[derive(Debug)]
pub struct Shared {
    /// Effective configuration.
    pub config: Config,
    /// State database.
    pub db: Db,
    /// Queue, for follow-up jobs and retries.
    pub queue: Queue,
    /// Unique per process: `host-pid-random`.
    pub worker_id: String,
    /// Fired when running jobs must stop and hand their task back (shutdown timeout).
    pub hand_back: CancellationToken,
    /// Where progress and state changes go.
    pub events: Arc<EventBus>,
    /// The sources of audio.
    pub providers: crate::providers::Registry,
    /// Jobs per pool and connections per host, changeable at run time.
    pub limits: Arc<crate::limits::Limits>,
    /// Opens stored provider credentials.
    pub vault: Arc<crate::credentials::Vault>,
    /// Wakes the scheduler after a watch or the watch settings changed.
    pub watch_wake: Arc<tokio::sync::Notify>,
    /// The filtering proxy that programs doing their own networking (yt-dlp) go through.
    pub egress: Arc<crate::egress::Egress>,
}

/// How a job ended well.
#[derive(Debug)]
pub enum Outcome {
    /// Finished.
    Done,
    /// Nothing to do, for this reason (e.g. already in the library).
    Skipped(String),
    /// Children were created and enqueued; the task waits for them.
    AwaitChildren,
    /// The next stage runs in another pool, with these options.
    HandOff {
        /// Pool of the next stage.
        pool: Pool,
        /// Name of the next stage.
        stage: &'static str,
        /// The task's new options (JSON).
        options: String,
    },
}

/// Maps a media pipeline error to a job error, keeping its code and whether to retry.
pub fn pipeline_error(e: musicd_workers::PipelineError) -> JobError {
    if e.code_str() == "cancelled" {
        JobError::Interrupted
    } else if e.transient {
        JobError::Transient {
            code: e.code_str(),
            message: e.message,
            retry_after: e.retry_after,
        }
    } else {
        JobError::permanent(e.code_str(), e.message)
    }
}

/// Records where a job placed its result.
pub async fn record_output(ctx: &JobCtx, path: &str) -> Result<(), JobError> {
    tasks::set_output(&ctx.shared.db, &ctx.task.id, &ctx.shared.worker_id, path).await?;
    Ok(())
}

/// A job's failure, classified for the runner.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Bad input or a definitive upstream answer: fail now.
    #[error("{message}")]
    Permanent {
        /// Stable code, e.g. `unsupported_media_type`.
        code: &'static str,
        /// Human-readable reason.
        message: String,
    },
    /// Network trouble, 429, 5xx: retry later.
    #[error("{message}")]
    Transient {
        /// Stable code, e.g. `upstream_unavailable`.
        code: &'static str,
        /// Human-readable reason.
        message: String,
        /// Upstream's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// The run was interrupted (cancel or shutdown); the runner decides what that means.
    #[error("interrupted")]
    Interrupted,
}

impl JobError {
    /// A permanent failure.
    pub fn permanent(code: &'static str, message: impl Into<String>) -> Self {
        JobError::Permanent {
            code,
            message: message.into(),
        }
    }

    /// A transient failure without `Retry-After`.
    pub fn transient(code: &'static str, message: impl Into<String>) -> Self {
        JobError::Transient {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The stable code (`interrupted` for an interruption).
    pub fn code(&self) -> &'static str {
        match self {
            JobError::Permanent { code, .. } | JobError::Transient { code, .. } => code,
            JobError::Interrupted => "interrupted",
        }
    }
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        JobError::transient("database_error", format!("database: {e}"))
    }
}

/// A running job's view of its task.
#[derive(Debug)]
pub struct JobCtx {
    /// Process-wide handles.
    pub shared: Arc<Shared>,
    /// The claimed ledger row (attempts includes this run).
    pub task: Task,
    /// Fired when the job must stop: its lease was lost or the task cancelled, or shutdown.
    pub stop: CancellationToken,
    /// When this run started (for speed and ETA).
    pub started: Instant,
    last_report: std::sync::Mutex<Option<(Instant, String)>>,
    bytes_done: std::sync::atomic::AtomicU64,
    bytes_total: std::sync::atomic::AtomicU64,
}

/// Least time between two progress reports of one task.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

impl JobCtx {
    /// Records progress: on the ledger row and as a `task.progress` event, at most a few
    /// times a second per task, but always when the stage changes.
    pub async fn progress(&self, stage: &str, fraction: f64) -> Result<(), JobError> {
        self.report(stage, fraction, None).await
    }

    /// Records byte progress of a transfer (speed and ETA are derived).
    pub async fn progress_bytes(
        &self,
        stage: &str,
        done: u64,
        total: Option<u64>,
    ) -> Result<(), JobError> {
        let fraction = total
            .filter(|t| *t > 0)
            .map_or(0.0, |t| done as f64 / t as f64);
        self.report(stage, fraction, Some((done, total))).await
    }

    async fn report(
        &self,
        stage: &str,
        fraction: f64,
        bytes: Option<(u64, Option<u64>)>,
    ) -> Result<(), JobError> {
        let fraction = fraction.clamp(0.0, 1.0);
        {
            let mut last = self.last_report.lock().expect("progress lock");
            let stage_changed = last.as_ref().is_none_or(|(_, s)| s != stage);
            let due = last
                .as_ref()
                .is_none_or(|(at, _)| at.elapsed() >= PROGRESS_EVERY);
            if !(stage_changed || due || fraction >= 1.0) {
                return Ok(());
            }
            *last = Some((Instant::now(), stage.to_string()));
        }
        let db_bytes = bytes.map(|(d, t)| (d as i64, t.map(|t| t as i64)));
        tasks::progress(
            &self.shared.db,
            &self.task.id,
            Some(stage),
            fraction,
            db_bytes,
        )
        .await?;
        let mut body = task_body(&self.task);
        body["status"] = "running".into();
        body["stage"] = stage.into();
        body["percent"] = ((fraction * 1000.0).round() / 10.0).into();
        if let Some((done, total)) = bytes {
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            let speed = done as f64 / secs;
            body["bytes_done"] = done.into();
            body["bytes_total"] = total.into();
            body["speed_bps"] = (speed.round() as u64).into();
            body["eta_seconds"] = total
                .filter(|_| speed > 0.0)
                .map(|t| ((t.saturating_sub(done)) as f64 / speed).round() as u64)
                .into();
        }
        self.shared
            .events
            .publish("task.progress", self.task.owner_id.as_deref(), body)
            .await;
        Ok(())
    }

    /// Notes byte progress from a synchronous callback; [`JobCtx::while_reporting`] sends it.
    pub fn report_bytes_sync(&self, done: u64, total: Option<u64>) {
        use std::sync::atomic::Ordering::Relaxed;
        self.bytes_done.store(done, Relaxed);
        self.bytes_total.store(total.unwrap_or(u64::MAX), Relaxed);
    }

    /// Runs `fut`, reporting the byte progress noted by [`JobCtx::report_bytes_sync`].
    pub async fn while_reporting<F: std::future::Future>(&self, stage: &str, fut: F) -> F::Output {
        use std::sync::atomic::Ordering::Relaxed;
        tokio::pin!(fut);
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        loop {
            tokio::select! {
                r = &mut fut => return r,
                _ = tick.tick() => {
                    let done = self.bytes_done.load(Relaxed);
                    let total = self.bytes_total.load(Relaxed);
                    let total = (total != u64::MAX && total != 0).then_some(total);
                    if let Err(e) = self.progress_bytes(stage, done, total).await {
                        tracing::debug!("progress not recorded: {e}");
                    }
                }
            }
        }
    }

    /// The job's options (the ledger's JSON), parsed.
    pub fn options<T: serde::de::DeserializeOwned>(&self) -> Result<T, JobError> {
        serde_json::from_str(&self.task.options)
            .map_err(|e| JobError::permanent("validation_error", format!("task options: {e}")))
    }
}

/// Runs one queue message to its end. Errors returned here are only infrastructure errors
/// (the database is unreachable); the lease then lapses and the reconciler re-enqueues.
pub async fn run(shared: Arc<Shared>, task_id: String, pool: Pool) -> Result<(), sqlx::Error> {
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
        publish_task(&shared.db, &shared.events, "task.failed", &task_id).await;
        metrics::counter!("musicd_jobs_total", "kind" => kind, "outcome" => "failed").increment(1);
        return Ok(());
    }
    tracing::info!(task_id, kind, attempt = task.attempts, "job started");
    shared
        .events
        .publish("task.started", task.owner_id.as_deref(), task_body(&task))
        .await;
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
        r = dispatch(&ctx) => r,
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
                Some(("already_present", &reason)),
            )
            .await?;
            "skipped"
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
        "done" => Some("task.completed"),
        "skipped" => Some("task.skipped"),
        "failed" => Some("task.failed"),
        "retry" => Some("task.retrying"),
        "handed_back" | "handed_off" => Some("task.queued"),
        "awaiting_children" => Some("task.progress"),
        "interrupted" => Some("task.cancelled"),
        _ => None,
    };
    if let Some(event) = event {
        publish_task(&shared.db, &shared.events, event, &task_id).await;
    }
    if matches!(
        outcome,
        "done" | "skipped" | "failed" | "interrupted" | "awaiting_children"
    ) {
        let parent = if outcome == "awaiting_children" {
            Some(task_id.clone())
        } else {
            task.parent_id.clone()
        };
        if let Some(parent) = parent {
            settle(&shared, &parent).await?;
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

/// Ends a parent whose children have all ended, and tells its watchers. What it leaves
/// behind (a playlist) is written first, so whoever sees it ended finds it.
pub async fn settle(shared: &Shared, parent_id: &str) -> Result<(), sqlx::Error> {
    release_held(shared, parent_id).await?;
    let Some(outcome) = tasks::children_outcome(&shared.db, parent_id).await? else {
        publish_task(&shared.db, &shared.events, "task.progress", parent_id).await;
        return Ok(());
    };
    let kind = match outcome.0 {
        "done" => "task.completed",
        "failed" => "task.failed",
        _ => "task.cancelled",
    };
    if let Some(parent) = tasks::get(&shared.db, parent_id).await?
        && parent.status == tasks::status::PROCESSING
        && let Err(e) = finished_parent(shared, &parent).await
    {
        tracing::warn!(parent_id, "cannot write the playlist: {e:#}");
    }
    if tasks::end_parent(&shared.db, parent_id, outcome).await? {
        publish_task(&shared.db, &shared.events, kind, parent_id).await;
    } else {
        publish_task(&shared.db, &shared.events, "task.progress", parent_id).await;
    }
    Ok(())
}

/// What a parent leaves behind once its children have ended: the `.m3u8` of a playlist or
/// feed, downloaded or watched.
async fn finished_parent(shared: &Shared, parent: &Task) -> anyhow::Result<()> {
    match parent.kind.as_str() {
        download::KIND => download::write_playlist(shared, parent).await,
        check_watch::KIND => {
            let o: check_watch::CheckOptions = serde_json::from_str(&parent.options)?;
            crate::watch::write_playlist(shared, &o.watch_id).await
        }
        _ => Ok(()),
    }
}

/// Queues held children of a parent as room frees in its window.
pub async fn release_held(shared: &Shared, parent_id: &str) -> Result<(), sqlx::Error> {
    let window = shared.config.workers.enqueue_window as i64;
    for (id, pool) in tasks::release_held(&shared.db, parent_id, window).await? {
        enqueue(
            &shared.queue,
            Pool::parse(&pool).unwrap_or(Pool::Io),
            &id,
            None,
        )
        .await;
    }
    Ok(())
}

/// Sends the job to its kind's module.
async fn dispatch(ctx: &JobCtx) -> Result<Outcome, JobError> {
    match ctx.task.kind.as_str() {
        ping::KIND => ping::run(ctx).await.map(|()| Outcome::Done),
        download::KIND => download::run(ctx).await,
        track::KIND => track::run(ctx).await,
        check_watch::KIND => check_watch::run(ctx).await,
        other => Err(JobError::permanent(
            "unknown_kind",
            format!("no job handler for kind `{other}`"),
        )),
    }
}

/// How often a running job looks for a cancel request.
const CANCEL_CHECK: Duration = Duration::from_millis(500);

/// Renews the lease every third of its length and looks for a cancel twice a second; stops
/// the job when the task was cancelled or the lease is lost.
async fn keep_lease(shared: Arc<Shared>, task_id: String, stop: CancellationToken) {
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
async fn push_or_log(shared: &Shared, task: &Task, delay: Option<Duration>) {
    enqueue(
        &shared.queue,
        Pool::parse(&task.pool).unwrap_or(Pool::Io),
        &task.id,
        delay,
    )
    .await;
}

/// Tells watchers a task exists and enqueues it.
pub async fn announce(queue: &Queue, events: &EventBus, task: &Task) {
    events
        .publish("task.created", task.owner_id.as_deref(), task_body(task))
        .await;
    enqueue(
        queue,
        Pool::parse(&task.pool).unwrap_or(Pool::Io),
        &task.id,
        None,
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
pub async fn release_all_held(shared: &Shared) -> Result<(), sqlx::Error> {
    for parent in tasks::parents_with_held(&shared.db, 1000).await? {
        release_held(shared, &parent).await?;
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

/// The body of a task event: what clients need to draw it.
pub fn task_body(t: &Task) -> serde_json::Value {
    // A queued retry that is not due yet is shown as `waiting`, with `waiting_until`.
    let waiting =
        t.status == status::QUEUED && t.run_after.is_some_and(|at| at > crate::db::now_ms());
    serde_json::json!({
        "task_id": t.id,
        "parent_id": t.parent_id,
        "task_kind": t.kind,
        "status": if waiting { "waiting" } else { t.status.as_str() },
        "stage": t.stage,
        "percent": (t.progress * 1000.0).round() / 10.0,
        "bytes_done": t.bytes_done,
        "bytes_total": t.bytes_total,
        "attempts": t.attempts,
        "error": t.error,
        "error_code": t.error_code,
        "output_path": t.output_path,
        "waiting_until": t.run_after,
    })
}

/// Publishes an event about a task, reading its current row; returns the row it read.
pub async fn publish_task(db: &Db, events: &EventBus, kind: &str, task_id: &str) -> Option<Task> {
    match tasks::get(db, task_id).await {
        Ok(Some(t)) => {
            events
                .publish(kind, t.owner_id.as_deref(), task_body(&t))
                .await;
            Some(t)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(task_id, "cannot read task for its event: {e}");
            None
        }
    }
}
