//! Building the daemon from a configuration: [`Application::build`] opens state and queue,
//! binds the listener (port 0 works, for tests), and [`Application::run_until_stopped`] runs
//! the API, the worker pools and the reconciler until the shutdown token fires.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{self, JwtKeys, ratelimit::LoginLimiter};
use crate::config::{AuthMode, Config};
use crate::db::{Db, users, users::User};
use crate::events::EventBus;
use crate::jobs::pools as workers;
use crate::jobs::{self, JobEnv};
use crate::queue::Queue;

pub use crate::api::state::{App, AppState};

/// What this process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// API, workers and reconciler (the all-in-one daemon).
    Serve,
    /// Workers only, for scale-out.
    Worker,
}

/// A built daemon, ready to run.
pub struct Application {
    /// The bound address (serve only).
    pub addr: Option<SocketAddr>,
    listener: Option<TcpListener>,
    app: Option<AppState>,
    shared: Arc<JobEnv>,
    run_workers: bool,
}

/// The process-wide metrics recorder (installed once, shared by every app in the process).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Opens the database (creating dirs) and applies migrations. The data dir is made private
/// first (see [`private_data_dir`]).
pub async fn open_db(config: &Config) -> anyhow::Result<Db> {
    private_data_dir(&config.data_dir)?;
    let db = Db::connect(&config.effective_database_url()).await?;
    db.migrate().await?;
    private_files(&config.data_dir);
    Ok(db)
}

/// Nothing musicd writes is world-readable: the process umask becomes `027` (as the systemd
/// units set it, so library files stay readable by a media server's group), and the data dir
/// (database, queue, secrets, uploads, staging) is created or set `0700`.
pub fn private_data_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    // SAFETY: umask only swaps the process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o027);
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create data_dir {}: {e}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| anyhow::anyhow!("cannot make data_dir {} private: {e}", dir.display()))?;
    }
    Ok(())
}

/// Sets the files directly in the data dir (the databases with their WAL and shared-memory
/// files, secrets) to `0600`.
pub fn private_files(dir: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                let _ =
                    std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600));
            }
        }
    }
}

async fn ensure_admin(config: &Config, db: &Db) -> anyhow::Result<()> {
    if !config.admin_user.is_empty() {
        if users::credentials(db, &config.admin_user).await?.is_some() {
            tracing::info!(
                user = config.admin_user,
                "admin account exists; MUSICD_ADMIN_PASSWORD is not applied again"
            );
        } else {
            let hash = auth::hash_password(&config.admin_password)?;
            users::create(db, &config.admin_user, &hash, "admin").await?;
            tracing::info!(user = config.admin_user, "created the admin account");
        }
    }
    if config.auth == AuthMode::On && users::count_role(db, "admin").await? == 0 {
        // No admin and none configured: create one with a random password, kept in a private
        // file, so a fresh install is usable without ever having a default password.
        let password = auth::random_token();
        let path = config.data_dir.join(auth::INITIAL_PASSWORD_FILE);
        auth::write_private(&path, &format!("{password}\n"))?;
        let hash = auth::hash_password(&password)?;
        users::create(db, "admin", &hash, "admin").await?;
        tracing::warn!(
            "created the first admin account `admin`; its password is in {} (log in with it, \
             choose your own with PUT /api/v1/auth/password or `musicd user passwd admin`, then \
             delete the file)",
            path.display()
        );
    }
    Ok(())
}

async fn local_user(db: &Db) -> anyhow::Result<User> {
    if let Some((u, _)) = users::credentials(db, "local").await? {
        return Ok(u);
    }
    // `!` is not a PHC string, so this account can never log in with a password.
    users::create(db, "local", "!", "admin").await?;
    Ok(users::credentials(db, "local")
        .await?
        .ok_or_else(|| anyhow::anyhow!("cannot create the local user"))?
        .0)
}

impl Application {
    /// Opens state and queue, and for [`Role::Serve`] binds the listener.
    pub async fn build(config: Config, role: Role) -> anyhow::Result<Self> {
        config.validate()?;
        std::fs::create_dir_all(&config.library_dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create library_dir {}: {e}",
                config.library_dir.display()
            )
        })?;
        let db = open_db(&config).await?;
        let queue = Queue::connect(&config).await?;
        private_files(&config.data_dir);
        let metrics = metrics_handle();
        let events = if config.redis_url.is_empty() {
            EventBus::local()
        } else {
            EventBus::redis(&config.redis_url, &config.queue.prefix).await?
        };
        let limits = Arc::new(crate::limits::Limits::new(
            crate::limits::RuntimeLimits::load(&db, &config).await?,
            crate::watch::load_settings(&db, &config).await?,
        ));
        let vault = Arc::new(crate::credentials::Vault::load(&config)?);
        let env = Arc::new(crate::providers::Env {
            vault,
            limits,
            config: config.clone(),
            db: db.clone(),
            providers: crate::providers::Registry::new(&config),
            egress: crate::egress::Egress::start(crate::egress::Rules {
                allow_private: config.fetch_allow_private,
                allow_ips: config.fetch_allow_ips.clone(),
                upstream: crate::egress::UpstreamProxy::parse(&config.fetch.proxy),
            })
            .await
            .map_err(|e| anyhow::anyhow!("cannot start the egress proxy on loopback: {e}"))?,
        });
        let shared = Arc::new(JobEnv {
            env,
            events: events.clone(),
            queue: queue.clone(),
            worker_id: workers::new_worker_id(),
            hand_back: CancellationToken::new(),
            watch_wake: Arc::new(tokio::sync::Notify::new()),
        });
        if role == Role::Worker {
            return Ok(Self {
                addr: None,
                listener: None,
                app: None,
                shared,
                run_workers: true,
            });
        }
        ensure_admin(&config, &db).await?;
        let local_user = match config.auth {
            AuthMode::Off => {
                tracing::warn!(listen = %config.listen, "authentication is OFF (loopback listener only)");
                Some(local_user(&db).await?)
            }
            AuthMode::On => None,
        };
        let secret = if config.jwt_secret.is_empty() {
            auth::load_or_create_secret(&config.data_dir)?
        } else {
            config.jwt_secret.clone()
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        let addr = listener.local_addr()?;
        let app = Arc::new(App {
            jwt: JwtKeys::new(&secret),
            login_limiter: LoginLimiter::new(
                config.security.login_per_minute,
                config.security.login_burst,
            ),
            metrics,
            started: Instant::now(),
            local_user,
            events,
            shutdown: CancellationToken::new(),
            listen: addr,
            config,
            db,
            queue,
            shared: shared.clone(),
            link_key: {
                use sha2::Digest;
                let mut h = sha2::Sha256::new();
                h.update(b"musicd library links\0");
                h.update(secret.as_bytes());
                h.finalize().into()
            },
            user_cache: crate::cache::TtlCache::new(Duration::from_secs(2)),
            track_cache: crate::cache::TtlCache::new(Duration::from_secs(2)),
        });
        // Start-up reconcile: every queued row and every run whose lease lapsed is enqueued
        // again. Duplicates are harmless: a job claims its row before it works.
        jobs::reconcile(&app.db, &app.queue, Duration::ZERO).await?;
        Ok(Self {
            addr: Some(addr),
            listener: Some(listener),
            run_workers: app.config.workers.enabled,
            app: Some(app),
            shared,
        })
    }

    /// What jobs run with: with it a job runs directly (`jobs::run`), without the pools or
    /// the queue consumer, as the job-level tests do.
    pub fn job_env(&self) -> Arc<JobEnv> {
        self.shared.clone()
    }

    /// Runs until `shutdown` fires: stops accepting requests, lets running jobs finish within
    /// `queue.shutdown_timeout`, hands the rest back, then returns.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        // Every background loop is tracked: none is left detached, and shutdown waits for
        // them (each stops on the shutdown token).
        let background = TaskTracker::new();
        let workers = self
            .run_workers
            .then(|| tokio::spawn(workers::run(self.shared.clone(), shutdown.clone())));
        background.spawn(crate::limits::refresh_loop(
            self.shared.limits.clone(),
            self.shared.db.clone(),
            self.shared.config.clone(),
            shutdown.clone(),
        ));
        let reconciler = tokio::spawn(workers::reconcile_loop(
            self.shared.clone(),
            shutdown.clone(),
            self.run_workers,
        ));
        if let (Some(listener), Some(app)) = (self.listener, self.app) {
            // The scheduler runs beside the API (`serve`), never in a `musicd worker`.
            background.spawn(crate::scheduler::run(self.shared.clone(), shutdown.clone()));
            background.spawn(crate::monitor::run(self.shared.clone(), shutdown.clone()));
            let limiter_app = app.clone();
            let stop = shutdown.clone();
            background.spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(60)) => limiter_app.login_limiter.cleanup(),
                    }
                }
            });
            background.spawn(app.events.clone().tail(app.shutdown.clone()));
            background.spawn(crate::api::uploads::sweep_loop(
                app.clone(),
                shutdown.clone(),
            ));
            let app_stop = app.shutdown.clone();
            let outer = shutdown.clone();
            background.spawn(async move {
                outer.cancelled().await;
                app_stop.cancel();
            });
            tracing::info!(addr = %listener.local_addr()?, "listening");
            let http = app.config.http.clone();
            let router = crate::api::router(app);
            crate::api::serve::serve(listener, router, &http, shutdown.clone()).await?;
            tracing::info!("HTTP server stopped");
        }
        if let Some(workers) = workers {
            workers.await??;
        }
        reconciler.abort();
        background.close();
        if tokio::time::timeout(Duration::from_secs(5), background.wait())
            .await
            .is_err()
        {
            tracing::warn!("background tasks still running 5 s after shutdown; leaving them");
        }
        Ok(())
    }
}
