//! Job kinds and the runner that wraps every job: claim the ledger row with a lease (counting
//! the attempt), keep the lease alive while working, then record the outcome: done, failed
//! (permanent error or attempts used up), or queued again with backoff (transient error).
//! One module per job kind; each gets a [`JobCtx`] and returns a [`JobError`] on failure.

mod kind;
mod publish;
mod runner;
mod settle;
pub use kind::{Job, KINDS, new_task};
pub use publish::*;
pub use runner::*;
pub use settle::*;

pub use crate::failure::{JobError, pipeline_error};

pub mod catalog;
pub mod check_watch;
pub mod deliver;
pub mod download;
pub mod lyrics;
pub mod notify;
pub mod ping;
pub mod pools;
pub mod rescan;
pub mod track;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::db::tasks::{self, Claim, Task, status};
use crate::events::EventBus;
use crate::failure::{Classify, code};
use crate::queue::{Pool, Queue, backoff};

/// What a job needs from the process that runs it.
#[derive(Debug)]
pub struct JobEnv {
    /// What providers may use too (configuration, database, credentials, limits,
    /// providers, egress); `JobEnv` derefs to it.
    pub env: Arc<crate::providers::Env>,
    /// Queue, for follow-up jobs and retries.
    pub queue: Queue,
    /// Unique per process: `host-pid-random`.
    pub worker_id: String,
    /// Fired when running jobs must stop and hand their task back (shutdown timeout).
    pub hand_back: CancellationToken,
    /// Where progress and state changes go.
    pub events: Arc<EventBus>,
    /// Wakes the scheduler after a watch or the watch settings changed.
    pub watch_wake: Arc<tokio::sync::Notify>,
}

impl std::ops::Deref for JobEnv {
    type Target = crate::providers::Env;

    fn deref(&self) -> &Self::Target {
        &self.env
    }
}

/// How a job ended well.
#[derive(Debug)]
pub enum Outcome {
    /// Finished.
    Done,
    /// Nothing to do, for this reason (e.g. already in the library).
    Skipped(String),
    /// No audio was sure enough (a catalog track): the candidates are in the options; a
    /// person picks one. The message says why.
    NeedsReview(String),
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

/// Records where a job placed its result.
pub async fn record_output(ctx: &JobCtx, path: &str) -> Result<(), JobError> {
    tasks::set_output(&ctx.shared.db, &ctx.task.id, &ctx.shared.worker_id, path).await?;
    Ok(())
}

/// A running job's view of its task.
#[derive(Debug)]
pub struct JobCtx {
    /// Process-wide handles.
    pub shared: Arc<JobEnv>,
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
        let mut body = task_event(&self.task);
        body.status = status::RUNNING.into();
        body.stage = Some(stage.into());
        body.percent = crate::wire::percent(fraction);
        if let Some((done, total)) = bytes {
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            let speed = done as f64 / secs;
            body.bytes_done = done as i64;
            body.bytes_total = total.map(|t| t as i64);
            body.speed_bps = Some(speed.round() as u64);
            body.eta_seconds = total
                .filter(|_| speed > 0.0)
                .map(|t| ((t.saturating_sub(done)) as f64 / speed).round() as u64);
        }
        self.shared
            .events
            .publish(
                self.task.owner_id.as_deref(),
                crate::wire::TaskEventKind::Progress.with(body),
            )
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
            .permanent_while(code::VALIDATION_ERROR, "task options")
    }
}
