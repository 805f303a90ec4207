//! What every request handler has: the process's state for the HTTP edge, built by
//! [`crate::app::Application::build`].

use std::sync::Arc;
use std::time::Instant;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::{JwtKeys, ratelimit::LoginLimiter};
use crate::config::Config;
use crate::db::{Db, users::User};
use crate::events::EventBus;
use crate::jobs::JobEnv;
use crate::queue::Queue;

/// Everything a request handler needs.
#[derive(Debug)]
pub struct App {
    /// Effective configuration.
    pub config: Config,
    /// The address the API listens on (the real port when `listen` asked for port 0).
    pub listen: std::net::SocketAddr,
    /// State database.
    pub db: Db,
    /// Job queue.
    pub queue: Queue,
    /// Access-token keys.
    pub jwt: JwtKeys,
    /// Login throttling.
    pub login_limiter: LoginLimiter,
    /// Prometheus exposition.
    pub metrics: PrometheusHandle,
    /// Process start, for uptime.
    pub started: Instant,
    /// The account requests act as when auth is off.
    pub local_user: Option<User>,
    /// Progress and state-change events.
    pub events: Arc<EventBus>,
    /// Fired when the process shuts down (ends event streams).
    pub shutdown: CancellationToken,
    /// What jobs share: providers, limits, the queue (for enqueueing from handlers).
    pub shared: Arc<JobEnv>,
    /// Signs short-lived library file links (derived from the token secret).
    pub link_key: [u8; 32],
    /// Accounts of bearer tokens, for 2 s (forgotten here when an admin changes one).
    pub user_cache: crate::cache::TtlCache<crate::db::users::User>,
    /// Tracks being streamed, for 2 s (forgotten here when one is edited or deleted).
    pub track_cache: crate::cache::TtlCache<crate::db::library::Track>,
}

/// Shared handle given to handlers.
pub type AppState = Arc<App>;
