//! Run-time limits: jobs per pool, connections and a request budget per upstream host, and
//! pauses a host asked for with `Retry-After`. `PUT /config` stores new values in the
//! database; every process picks them up within [`REFRESH`], without a restart.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use utoipa::ToSchema;

use crate::config::{Config, MAX_POOL};
use crate::db::{Db, settings};
use crate::queue::Pool;

/// How often a process re-reads the stored limits.
pub const REFRESH: Duration = Duration::from_secs(2);

/// The settings key the limits are stored under.
const KEY: &str = "limits";

/// The limits that can change while the daemon runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuntimeLimits {
    /// Concurrent jobs in the io pool (downloads, resolves), per process.
    pub io_concurrency: usize,
    /// Concurrent jobs in the cpu pool (decode, transcode, tags), per process.
    pub cpu_concurrency: usize,
    /// Concurrent downloads from one upstream host, per process.
    pub per_host_connections: usize,
    /// Requests per minute to one upstream host, per process; 0 = no budget.
    pub per_host_requests_per_minute: u32,
}

impl RuntimeLimits {
    /// The limits the configuration starts with.
    pub fn from_config(config: &Config) -> Self {
        Self {
            io_concurrency: config.workers.io_concurrency,
            cpu_concurrency: config.cpu_concurrency(),
            per_host_connections: config.workers.per_host_connections,
            per_host_requests_per_minute: config.workers.per_host_requests_per_minute,
        }
    }

    /// Checks every value; the error names the field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let range = |name: &'static str, v: usize| {
            if v == 0 || v > MAX_POOL {
                Err((name, format!("must be between 1 and {MAX_POOL}")))
            } else {
                Ok(())
            }
        };
        range("io_concurrency", self.io_concurrency)?;
        range("cpu_concurrency", self.cpu_concurrency)?;
        range("per_host_connections", self.per_host_connections)
    }

    /// The stored limits, or the configuration's when none are stored or they are unreadable.
    pub async fn load(db: &Db, config: &Config) -> Result<Self, sqlx::Error> {
        let stored = settings::get(db, KEY).await?;
        Ok(stored
            .and_then(|s| serde_json::from_str::<Self>(&s).ok())
            .filter(|l| l.validate().is_ok())
            .unwrap_or_else(|| Self::from_config(config)))
    }

    /// Stores the limits for every process.
    pub async fn store(&self, db: &Db) -> Result<(), sqlx::Error> {
        settings::put(db, KEY, &serde_json::to_string(self).unwrap_or_default()).await
    }
}

/// A semaphore whose size can change: growing adds permits, shrinking takes permits back as
/// running holders release them.
#[derive(Debug)]
struct Gate {
    sem: Arc<Semaphore>,
    size: Mutex<usize>,
}

impl Gate {
    fn new(size: usize) -> Self {
        Self {
            sem: Arc::new(Semaphore::new(size)),
            size: Mutex::new(size),
        }
    }

    async fn acquire(&self) -> OwnedSemaphorePermit {
        self.sem
            .clone()
            .acquire_owned()
            .await
            .expect("gates are never closed")
    }

    fn resize(&self, new: usize) {
        let mut size = self.size.lock().expect("gate lock");
        if new > *size {
            self.sem.add_permits(new - *size);
        } else if new < *size {
            let (sem, take) = (self.sem.clone(), (*size - new) as u32);
            tokio::spawn(async move {
                if let Ok(p) = sem.acquire_many_owned(take).await {
                    p.forget();
                }
            });
        }
        *size = new;
    }
}

/// Holds a host connection slot while a download runs.
#[derive(Debug)]
pub struct HostPermit {
    _permit: OwnedSemaphorePermit,
}

/// The limits of one process.
pub struct Limits {
    current: Mutex<RuntimeLimits>,
    watch: Mutex<crate::config::WatchConfig>,
    checks: Gate,
    io: Gate,
    cpu: Gate,
    hosts: Mutex<HashMap<String, Arc<Gate>>>,
    paused: Mutex<HashMap<String, Instant>>,
    rate: RwLock<Option<Arc<DefaultKeyedRateLimiter<String>>>>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

fn rate_limiter(per_minute: u32) -> Option<Arc<DefaultKeyedRateLimiter<String>>> {
    NonZeroU32::new(per_minute).map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n))))
}

impl Limits {
    /// Limits starting at `initial`.
    pub fn new(initial: RuntimeLimits, watch: crate::config::WatchConfig) -> Self {
        Self {
            checks: Gate::new(watch.max_concurrent_checks as usize),
            watch: Mutex::new(watch),
            io: Gate::new(initial.io_concurrency),
            cpu: Gate::new(initial.cpu_concurrency),
            hosts: Mutex::new(HashMap::new()),
            paused: Mutex::new(HashMap::new()),
            rate: RwLock::new(rate_limiter(initial.per_host_requests_per_minute)),
            current: Mutex::new(initial),
        }
    }

    /// The limits in force.
    pub fn current(&self) -> RuntimeLimits {
        self.current.lock().expect("limits lock").clone()
    }

    /// Applies new limits; running jobs keep their slots.
    pub fn apply(&self, new: RuntimeLimits) {
        let mut cur = self.current.lock().expect("limits lock");
        if *cur == new {
            return;
        }
        tracing::info!(?new, "limits changed");
        self.io.resize(new.io_concurrency);
        self.cpu.resize(new.cpu_concurrency);
        if new.per_host_connections != cur.per_host_connections {
            for gate in self.hosts.lock().expect("hosts lock").values() {
                gate.resize(new.per_host_connections);
            }
        }
        if new.per_host_requests_per_minute != cur.per_host_requests_per_minute {
            *self.rate.write().expect("rate lock") = rate_limiter(new.per_host_requests_per_minute);
        }
        *cur = new;
    }

    /// The watch settings in force.
    pub fn watch(&self) -> crate::config::WatchConfig {
        self.watch.lock().expect("watch lock").clone()
    }

    /// Applies new watch settings; running checks keep their slots.
    pub fn apply_watch(&self, new: crate::config::WatchConfig) {
        let mut cur = self.watch.lock().expect("watch lock");
        if *cur == new {
            return;
        }
        tracing::info!(?new, "watch settings changed");
        self.checks.resize(new.max_concurrent_checks as usize);
        *cur = new;
    }

    /// Waits for a watch check slot (`watch.max_concurrent_checks`).
    pub async fn check_slot(&self) -> OwnedSemaphorePermit {
        self.checks.acquire().await
    }

    /// Waits for a job slot in `pool`.
    /// Free job slots of a pool in this process now.
    pub fn free_slots(&self, pool: Pool) -> usize {
        match pool {
            Pool::Io => self.io.sem.available_permits(),
            Pool::Cpu => self.cpu.sem.available_permits(),
        }
    }

    /// Waits for a job slot of `pool`.
    pub async fn job_slot(&self, pool: Pool) -> OwnedSemaphorePermit {
        match pool {
            Pool::Io => self.io.acquire().await,
            Pool::Cpu => self.cpu.acquire().await,
        }
    }

    /// When a host asked us to wait (a `Retry-After` seen by another job), until when.
    pub fn paused_until(&self, host: &str) -> Option<Instant> {
        let paused = self.paused.lock().expect("paused lock");
        paused.get(host).copied().filter(|t| *t > Instant::now())
    }

    /// Hosts and providers (`provider:<name>`) paused now, with the time left.
    pub fn paused(&self) -> Vec<(String, Duration)> {
        let now = Instant::now();
        let paused = self.paused.lock().expect("paused lock");
        paused
            .iter()
            .filter(|(_, t)| **t > now)
            .map(|(k, t)| (k.clone(), *t - now))
            .collect()
    }

    /// Pauses every download from `host` for `wait` (it answered 429 or 503 with
    /// `Retry-After`).
    pub fn pause_host(&self, host: &str, wait: Duration) {
        let until = Instant::now() + wait;
        let mut paused = self.paused.lock().expect("paused lock");
        paused.retain(|_, t| *t > Instant::now());
        let e = paused.entry(host.to_string()).or_insert(until);
        *e = (*e).max(until);
    }

    /// Waits for the host's pause to end, a connection slot and the request budget.
    pub async fn host_permit(&self, host: &str) -> HostPermit {
        while let Some(until) = self.paused_until(host) {
            tokio::time::sleep_until(until.into()).await;
        }
        let gate = {
            let mut hosts = self.hosts.lock().expect("hosts lock");
            let size = self
                .current
                .lock()
                .expect("limits lock")
                .per_host_connections;
            hosts
                .entry(host.to_string())
                .or_insert_with(|| Arc::new(Gate::new(size)))
                .clone()
        };
        let permit = gate.acquire().await;
        let rate = self.rate.read().expect("rate lock").clone();
        if let Some(rate) = rate {
            rate.until_key_ready(&host.to_string()).await;
        }
        HostPermit { _permit: permit }
    }
}

/// Re-reads the stored limits every [`REFRESH`] until `stop` fires.
pub async fn refresh_loop(
    limits: Arc<Limits>,
    db: Db,
    config: Config,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(REFRESH) => {}
        }
        match RuntimeLimits::load(&db, &config).await {
            Ok(l) => limits.apply(l),
            Err(e) => tracing::debug!("cannot read limits: {e}"),
        }
        match crate::db::settings::load_watch(&db, &config).await {
            Ok(w) => limits.apply_watch(w),
            Err(e) => tracing::debug!("cannot read watch settings: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn gate_grows_and_shrinks() {
        let g = Gate::new(1);
        let a = g.acquire().await;
        assert_eq!(g.sem.available_permits(), 0);
        g.resize(3);
        assert_eq!(g.sem.available_permits(), 2);
        g.resize(1);
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(g.sem.available_permits(), 0, "two permits taken back");
        drop(a);
        assert_eq!(g.sem.available_permits(), 1);
    }
}
