//! The watch scheduler: tokio-cron-scheduler fires each watch's cron schedule, and a firing
//! only claims the period and enqueues a `check_watch` job; the check runs in the io pool.
//!
//! A watch's `next_check_at` is claimed with compare-and-set (`db::watches::claim_due`), so
//! when several daemons share a database each period is checked once. Every few seconds (and
//! when woken after an edit) the scheduler re-reads the watches: it adds, replaces or removes
//! cron jobs as schedules change, and claims any watch whose `next_check_at` is well past —
//! a tick missed while no daemon ran is checked once, not once per missed tick.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::db::now_ms;
use crate::db::tasks::{NewTask, Task};
use crate::db::watches::{self, Watch};
use crate::jobs::check_watch::CheckOptions;
use crate::jobs::{self, JobEnv};

/// How often the watches are re-read without a wake-up.
const SYNC_EVERY: Duration = Duration::from_secs(5);

/// How late a tick may be before the sync loop claims it itself (beyond the jitter).
const GRACE_MS: i64 = 2_000;

/// Runs the scheduler until `stop` fires.
pub async fn run(shared: Arc<JobEnv>, stop: CancellationToken) {
    let cron = match JobScheduler::new().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("cannot start the watch scheduler: {e}");
            return;
        }
    };
    if let Err(e) = cron.start().await {
        tracing::error!("cannot start the watch scheduler: {e}");
        return;
    }
    let mut jobs: HashMap<String, (Uuid, String)> = HashMap::new();
    loop {
        if let Err(e) = sync(&shared, &cron, &mut jobs).await {
            tracing::warn!("watch scheduler: {e:#}");
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = shared.watch_wake.notified() => {}
            _ = tokio::time::sleep(SYNC_EVERY) => {}
        }
    }
    let mut cron = cron;
    let _ = cron.shutdown().await;
}

/// Brings the cron jobs in line with the enabled watches, and claims overdue ones.
async fn sync(
    shared: &Arc<JobEnv>,
    cron: &JobScheduler,
    jobs: &mut HashMap<String, (Uuid, String)>,
) -> anyhow::Result<()> {
    let settings = shared.limits.watch();
    let rows = if settings.enabled {
        watches::enabled(&shared.db).await?
    } else {
        Vec::new()
    };
    let now = now_ms();
    let mut wanted = HashMap::new();
    for (id, schedule, next) in rows {
        let expr = crate::watch::six_fields(
            &schedule.unwrap_or_else(|| settings.default_schedule.clone()),
        );
        if next.is_none() {
            watches::set_next(&shared.db, &id, crate::watch::next_after(&expr, now)).await?;
        } else if next.is_some_and(|n| n + GRACE_MS + settings.jitter.as_millis() as i64 <= now) {
            claim(shared, &id, "missed").await;
        }
        wanted.insert(id, expr);
    }
    // Drop jobs of watches gone, disabled or rescheduled.
    let stale: Vec<String> = jobs
        .iter()
        .filter(|(id, (_, expr))| wanted.get(*id) != Some(expr))
        .map(|(id, _)| id.clone())
        .collect();
    for id in stale {
        if let Some((uuid, _)) = jobs.remove(&id) {
            let _ = cron.remove(&uuid).await;
        }
    }
    for (id, expr) in wanted {
        if jobs.contains_key(&id) {
            continue;
        }
        let (s, watch_id, schedule) = (shared.clone(), id.clone(), expr.clone());
        let job = Job::new_async(expr.as_str(), move |_, _| {
            let (s, watch_id, schedule) = (s.clone(), watch_id.clone(), schedule.clone());
            Box::pin(async move { fire(s, watch_id, schedule).await })
        });
        match job {
            Ok(job) => match cron.add(job).await {
                Ok(uuid) => {
                    jobs.insert(id, (uuid, expr));
                }
                Err(e) => tracing::warn!(watch_id = id, "cannot schedule: {e}"),
            },
            Err(e) => tracing::warn!(watch_id = id, schedule = expr, "bad schedule: {e}"),
        }
    }
    Ok(())
}

/// A cron tick of `expr`: waits a random jitter (less than half the period), then claims the
/// period.
async fn fire(shared: Arc<JobEnv>, watch_id: String, expr: String) {
    let jitter = shared.limits.watch().jitter;
    if !jitter.is_zero() {
        let now = now_ms();
        let period = crate::watch::next_after(&expr, now).map_or(0, |n| n - now);
        let jitter = jitter.min(Duration::from_millis(period.max(0) as u64 / 2));
        let wait = jitter.mul_f64(rand::random::<f64>());
        tokio::time::sleep(wait).await;
    }
    claim(&shared, &watch_id, "schedule").await;
}

/// Claims the watch's due period (once across processes) and enqueues its check.
async fn claim(shared: &Arc<JobEnv>, watch_id: &str, trigger: &str) {
    let w = match watches::get(&shared.db, watch_id).await {
        Ok(Some(w)) if w.enabled != 0 => w,
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(watch_id, "cannot read the watch: {e}");
            return;
        }
    };
    let Some(due) = w.next_check_at else { return };
    let now = now_ms();
    // A tick may fire a moment before its time; more than a second early is not this one.
    if due > now + 1_000 {
        return;
    }
    let expr = crate::watch::schedule_of(&w, &shared.limits.watch());
    let Some(next) = crate::watch::next_after(&expr, now.max(due)) else {
        return;
    };
    match watches::claim_due(&shared.db, watch_id, due, next).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::warn!(watch_id, "cannot claim the check: {e}");
            return;
        }
    }
    match enqueue_check(shared, &w, trigger, Some(due)).await {
        Ok(Ok(t)) => tracing::info!(watch_id, task_id = t.id, trigger, "watch check queued"),
        Ok(Err(running)) => {
            tracing::info!(
                watch_id,
                running,
                "watch check skipped: one is still running"
            )
        }
        Err(e) => tracing::warn!(watch_id, "cannot queue the check: {e:#}"),
    }
}

/// Creates and queues a check of `w`. `Err(task id)` when a check of it is still active (one
/// check per watch at a time, across processes: the ledger's active key).
pub async fn enqueue_check(
    shared: &JobEnv,
    w: &Watch,
    trigger: &str,
    period: Option<i64>,
) -> anyhow::Result<Result<Task, String>> {
    let job = CheckOptions {
        watch_id: w.id.clone(),
        trigger: trigger.into(),
        period,
    };
    let new = NewTask {
        owner_id: Some(w.owner_id.clone()),
        source: Some(
            w.url
                .clone()
                .unwrap_or_else(|| format!("{}/{}/{}", w.provider, w.kind, w.item_id)),
        ),
        idempotency_key: Some(format!("watch:{}", w.id)),
        max_attempts: shared.config.queue.max_attempts as i64,
        ..jobs::new_task(&job)
    };
    jobs::submit(&shared.db, &shared.queue, &shared.events, &new).await
}
