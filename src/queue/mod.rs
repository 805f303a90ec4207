//! The job queue: apalis over its SQLite storage (a file beside the state database, the
//! embedded default) or over Redis (`MUSICD_REDIS_URL`, for scale-out). Two named queues,
//! `io` and `cpu`, each consumed by its own worker pool. Messages carry only a task id.

pub mod backoff;

use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_redis::{ConnectionManager, RedisStorage};
use apalis_sqlite::{SqlitePool, SqliteStorage};
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// The two worker pools.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pool {
    /// Network-bound work: resolve, fetch, watch checks, webhooks.
    Io,
    /// CPU-bound work: decode, transcode, loudness, tags, placement.
    Cpu,
}

impl Pool {
    /// The name used in the ledger and queue names.
    pub fn as_str(self) -> &'static str {
        match self {
            Pool::Io => "io",
            Pool::Cpu => "cpu",
        }
    }

    /// Parses a ledger value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "io" => Some(Pool::Io),
            "cpu" => Some(Pool::Cpu),
            _ => None,
        }
    }
}

/// A queue message: which task to run. Everything else lives in the ledger.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobMsg {
    /// The ledger row to run.
    pub task_id: String,
}

/// A connection to the queue backend, cheap to clone.
#[derive(Clone)]
pub enum Queue {
    /// The embedded SQLite storage.
    Sqlite {
        /// Storage of the io queue.
        io: SqliteStorage<JobMsg>,
        /// Storage of the cpu queue.
        cpu: SqliteStorage<JobMsg>,
        /// Pool of the queue file.
        pool: SqlitePool,
    },
    /// Redis storage.
    Redis {
        /// Storage of the io queue.
        io: RedisStorage<JobMsg>,
        /// Storage of the cpu queue.
        cpu: RedisStorage<JobMsg>,
        /// Connection for direct queries (health, depth).
        conn: ConnectionManager,
    },
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.backend_name())
    }
}

/// The apalis queue name of a pool.
pub fn queue_name(config: &Config, pool: Pool) -> String {
    format!("{}:{}", config.queue.prefix, pool.as_str())
}

impl Queue {
    /// Opens the backend the configuration names.
    pub async fn connect(config: &Config) -> anyhow::Result<Self> {
        if config.redis_url.is_empty() {
            std::fs::create_dir_all(&config.data_dir)?;
            let options = apalis_sqlite::SqliteConnectOptions::new()
                .filename(config.data_dir.join("queue.db"))
                .create_if_missing(true)
                .busy_timeout(Duration::from_secs(10));
            // Both pools' fetchers, heartbeats and lock/ack writes share these connections,
            // with our pushes. A heartbeat that cannot get one fails within 5 s and apalis
            // restarts the worker; a heartbeat that never finishes would park it for good.
            let pool = apalis_sqlite::SqlitePoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options)
                .await?;
            SqliteStorage::setup(&pool)
                .await
                .map_err(|e| anyhow::anyhow!("cannot prepare the queue database: {e}"))?;
            let storage = |p: Pool| SqliteStorage::new(&pool).with_config(sqlite_config(config, p));
            Ok(Queue::Sqlite {
                io: storage(Pool::Io),
                cpu: storage(Pool::Cpu),
                pool,
            })
        } else {
            let conn = apalis_redis::connect(config.redis_url.as_str())
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot connect to Redis at {}: {e}",
                        crate::config::redact_url(&config.redis_url)
                    )
                })?;
            let storage =
                |p: Pool| RedisStorage::new(conn.clone()).with_config(redis_config(config, p));
            Ok(Queue::Redis {
                io: storage(Pool::Io),
                cpu: storage(Pool::Cpu),
                conn,
            })
        }
    }

    /// `sqlite` or `redis`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Queue::Sqlite { .. } => "sqlite",
            Queue::Redis { .. } => "redis",
        }
    }

    /// Enqueues a task id on a pool, optionally delayed.
    pub async fn push(
        &self,
        pool: Pool,
        task_id: &str,
        delay: Option<Duration>,
    ) -> anyhow::Result<()> {
        let msg = JobMsg {
            task_id: task_id.to_string(),
        };
        let mut builder = TaskBuilder::new(msg);
        if let Some(d) = delay {
            // Both storages schedule in whole seconds: round up so the job is never early.
            let due = std::time::SystemTime::now() + d;
            let secs = due
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |t| t.as_secs_f64())
                .ceil() as u64;
            builder = builder.run_at_timestamp(secs);
        }
        // Retries are the ledger's business (see `jobs`), so the queue delivers once.
        let task = builder.max_attempts(1).build();
        match self {
            Queue::Sqlite { io, cpu, .. } => {
                let mut s = if pool == Pool::Io {
                    io.clone()
                } else {
                    cpu.clone()
                };
                s.push_task(task)
                    .await
                    .map_err(|e| anyhow::anyhow!("enqueue: {e}"))?;
            }
            Queue::Redis { io, cpu, .. } => {
                let mut s = if pool == Pool::Io {
                    io.clone()
                } else {
                    cpu.clone()
                };
                s.push_task(task)
                    .await
                    .map_err(|e| anyhow::anyhow!("enqueue: {e}"))?;
            }
        }
        metrics::counter!("musicd_jobs_enqueued_total", "pool" => pool.as_str()).increment(1);
        Ok(())
    }

    /// A round trip to the backend, for health checks.
    pub async fn ping(&self) -> anyhow::Result<()> {
        match self {
            Queue::Sqlite { pool, .. } => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
            Queue::Redis { conn, .. } => {
                let mut c = conn.clone();
                let _: String = redis::cmd("PING").query_async(&mut c).await?;
            }
        }
        Ok(())
    }

    /// Jobs waiting (pending or scheduled) in a pool's queue.
    pub async fn depth(&self, config: &Config, pool: Pool) -> anyhow::Result<u64> {
        let name = queue_name(config, pool);
        match self {
            Queue::Sqlite { pool: db, .. } => {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM Jobs WHERE job_type = ?1 AND status = 'Pending'",
                )
                .bind(&name)
                .fetch_one(db)
                .await?;
                Ok(n as u64)
            }
            Queue::Redis { conn, .. } => {
                let cfg = redis_config(config, pool);
                let mut c = conn.clone();
                let active: u64 = redis::cmd("LLEN")
                    .arg(cfg.active_jobs_list())
                    .query_async(&mut c)
                    .await?;
                let scheduled: u64 = redis::cmd("ZCARD")
                    .arg(cfg.scheduled_jobs_set())
                    .query_async(&mut c)
                    .await?;
                Ok(active + scheduled)
            }
        }
    }
}

/// apalis-sqlite settings for a pool.
pub fn sqlite_config(config: &Config, pool: Pool) -> apalis_sqlite::Config {
    apalis_sqlite::Config::default()
        .queue(queue_name(config, pool))
        .heartbeat_interval(config.queue.heartbeat_interval)
        .missed_heartbeats(3)
        .batch_size(1)
}

/// apalis-redis settings for a pool.
pub fn redis_config(config: &Config, pool: Pool) -> apalis_redis::Config {
    apalis_redis::Config::default()
        .queue(queue_name(config, pool))
        .heartbeat_interval(config.queue.heartbeat_interval)
        .missed_heartbeats(3)
        .batch_size(1)
}
