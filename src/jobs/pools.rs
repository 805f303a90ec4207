//! The worker pools: one apalis worker per pool, each with its own concurrency, under one
//! monitor. Shutdown stops fetching, lets running jobs finish for `queue.shutdown_timeout`,
//! then hands the rest back to the queue.

use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use tokio_util::sync::CancellationToken;

use crate::jobs::{self, JobEnv};
use crate::queue::{Pool, Queue};

/// A process-unique worker id: host, pid and a random suffix.
pub fn new_worker_id() -> String {
    let host = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "host".into());
    let suffix: u32 = rand::random();
    format!("{host}-{}-{:08x}", std::process::id(), suffix)
}

macro_rules! register_pool {
    ($monitor:expr, $storage:expr, $shared:expr, $pool:expr, $concurrency:expr) => {{
        let shared = $shared.clone();
        let storage = $storage.clone();
        let poll = shared.config.queue.poll_interval;
        let name = format!("{}-{}", shared.worker_id, $pool.as_str());
        let concurrency = $concurrency;
        let pool = $pool;
        $monitor.register(move |_restarts| {
            let shared = shared.clone();
            WorkerBuilder::new(name.clone())
                .backend(storage.clone().poll_with_interval(poll))
                .concurrency(concurrency)
                .parallelize(tokio::spawn)
                .build(move |msg: crate::queue::JobMsg| {
                    let shared = shared.clone();
                    async move {
                        jobs::run(shared, msg.task_id, pool)
                            .await
                            .map_err(|e| Box::new(e) as BoxDynError)
                    }
                })
        })
    }};
}

/// Runs both pools until `shutdown` fires, then drains as described in the module docs.
pub async fn run(shared: Arc<JobEnv>, shutdown: CancellationToken) -> anyhow::Result<()> {
    // The queue may deliver up to the ceiling; `jobs::run` holds each job to the pool's
    // run-time limit, so `PUT /config` can raise or lower it without a restart.
    let limits = shared.limits.current();
    let (io, cpu) = (limits.io_concurrency, limits.cpu_concurrency);
    let ceiling = crate::config::MAX_POOL;
    tracing::info!(
        worker_id = shared.worker_id,
        backend = shared.queue.backend_name(),
        io,
        cpu,
        "workers starting"
    );
    let monitor = Monitor::new().should_restart(|_ctx, err| {
        tracing::warn!("worker stopped with an error, restarting: {err}");
        true
    });
    let monitor = match &shared.queue {
        Queue::Sqlite {
            io: s_io,
            cpu: s_cpu,
            ..
        } => {
            let m = register_pool!(monitor, s_io, shared, Pool::Io, ceiling);
            register_pool!(m, s_cpu, shared, Pool::Cpu, ceiling)
        }
        Queue::Redis {
            io: s_io,
            cpu: s_cpu,
            ..
        } => {
            let m = register_pool!(monitor, s_io, shared, Pool::Io, ceiling);
            register_pool!(m, s_cpu, shared, Pool::Cpu, ceiling)
        }
    };
    let timeout = shared.config.queue.shutdown_timeout;
    let hand_back = shared.hand_back.clone();
    let signal = async move {
        shutdown.cancelled().await;
        tracing::info!(
            ?timeout,
            "workers draining: no new jobs; running jobs may finish"
        );
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            tracing::info!("shutdown timeout: handing unfinished jobs back to the queue");
            hand_back.cancel();
        });
        Ok(())
    };
    // A last resort if a job ignores the hand-back.
    let monitor = monitor.with_terminator(async move {
        tokio::time::sleep(timeout + Duration::from_secs(10)).await;
    });
    monitor
        .run_with_signal(signal)
        .await
        .map_err(|e| anyhow::anyhow!("workers: {e}"))?;
    tracing::info!("workers stopped");
    Ok(())
}

/// Re-enqueues lost work every `every` until `shutdown` fires.
pub async fn reconcile_loop(shared: Arc<JobEnv>, shutdown: CancellationToken, runs_workers: bool) {
    let every = shared.config.queue.lease / 2;
    let stale = Duration::from_secs(600).max(shared.config.queue.lease * 4);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = jobs::reconcile(&shared.db, &shared.queue, stale).await {
            tracing::warn!("reconcile failed: {e:#}");
        }
        if let Err(e) = jobs::release_all_held(&shared).await {
            tracing::warn!("releasing held children failed: {e}");
        }
        if let Err(e) = jobs::settle_unsettled(&shared).await {
            tracing::warn!("settling parents failed: {e}");
        }
        // Deliveries and rescans that ended a day ago: their attempts are in the webhook log.
        let day_ago = crate::db::now_ms() - 86_400_000;
        if let Err(e) = crate::db::tasks::prune_internal(&shared.db, day_ago).await {
            tracing::warn!("pruning finished deliveries failed: {e}");
        }
        if runs_workers && let Err(e) = rescue(&shared).await {
            tracing::warn!("rescuing waiting tasks failed: {e}");
        }
    }
}

/// Runs, past the queue, due tasks that waited longer than `queue.rescue_after` while this
/// process's pool had room: the queue should have delivered them. We saw the embedded queue's
/// worker stop fetching for good (apalis parks a worker whose heartbeat never finishes), which
/// left a 120-track request waiting forever. The claim keeps a task to one run, so the
/// message the queue still holds is harmless when it arrives.
async fn rescue(shared: &Arc<JobEnv>) -> Result<(), sqlx::Error> {
    let after = shared.config.queue.rescue_after.as_millis() as i64;
    for pool in [Pool::Io, Pool::Cpu] {
        let room = shared.limits.free_slots(pool).min(64);
        if room == 0 {
            continue;
        }
        let before = crate::db::now_ms() - after;
        let ids =
            crate::db::tasks::waiting_since(&shared.db, pool.as_str(), before, room as i64).await?;
        if !ids.is_empty() {
            tracing::warn!(
                pool = pool.as_str(),
                count = ids.len(),
                "tasks waited past queue.rescue_after with room in the pool: running them directly"
            );
        }
        for id in ids {
            let shared = shared.clone();
            tokio::spawn(async move {
                if let Err(e) = jobs::run(shared, id.clone(), pool).await {
                    tracing::warn!(task_id = id, "rescued task not run: {e}");
                }
            });
        }
    }
    Ok(())
}
