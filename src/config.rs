//! Layered configuration: defaults → `config/musicd.toml` (or `--config` / `MUSICD_CONFIG`)
//! → `MUSICD_*` environment → command-line flags. Unknown keys and bad values are errors
//! that name the key; secrets never appear in `Debug` or `config print`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytesize::ByteSize;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Environment variables with the `MUSICD_` prefix that belong to the CLI client or to the
/// loader itself, not to the daemon's configuration.
const NON_CONFIG_ENV: &[&str] = &["CONFIG", "URL", "API_KEY", "LOG"];

/// Top-level keys whose environment values are taken verbatim: figment would otherwise read
/// a password such as `123456789` as a number.
const STRING_ENV: &[&str] = &[
    "JWT_SECRET",
    "CREDENTIALS_SECRET",
    "ADMIN_USER",
    "ADMIN_PASSWORD",
    "DATABASE_URL",
    "REDIS_URL",
    "LOG_LEVEL",
];

/// The whole daemon configuration. Field names are the TOML keys; `MUSICD_<KEY>` (and
/// `MUSICD_<SECTION>__<KEY>` for sections) override them.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// State (SQLite database, queue, generated secrets, staging).
    pub data_dir: PathBuf,
    /// Where verified files are placed.
    pub library_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; empty means `sqlite://<data_dir>/musicd.db`.
    pub database_url: String,
    /// Redis for the queue and event bus; empty means the embedded SQLite queue.
    pub redis_url: String,
    /// HMAC secret for access tokens; empty means generated once into the data dir.
    pub jwt_secret: String,
    /// Secret the credentials key is derived from; empty means generated once into the data dir.
    pub credentials_secret: String,
    /// First admin, created at start-up when both are set and the user does not exist.
    pub admin_user: String,
    /// Password of the first admin.
    pub admin_password: String,
    /// `on` (default) or `off`; `off` is refused unless `listen` is a loopback address.
    pub auth: AuthMode,
    /// Allow fetching from loopback, private and link-local addresses.
    pub fetch_allow_private: bool,
    /// Private addresses allowed anyway (a NAS on the LAN, say), when `fetch_allow_private`
    /// is off.
    pub fetch_allow_ips: Vec<std::net::IpAddr>,
    /// Outbound connections of the native fetcher.
    pub fetch: FetchConfig,
    /// Log output: `human` or `json`.
    pub log_format: LogFormat,
    /// Tracing filter, e.g. `info` or `musicd=debug,info`.
    pub log_level: String,
    /// HTTP edge settings.
    pub http: HttpConfig,
    /// Accounts, tokens and login throttling.
    pub security: SecurityConfig,
    /// Queue backend behaviour and retries.
    pub queue: QueueConfig,
    /// Worker pool sizes.
    pub workers: WorkersConfig,
    /// What the media pipeline produces.
    pub media: MediaConfig,
    /// Per-provider settings.
    pub providers: ProvidersConfig,
    /// Watches and their scheduler (changeable at run time with `PUT /config/watch`).
    pub watch: WatchConfig,
    /// Uploads: quota and how long an unfinished one is kept.
    pub uploads: UploadsConfig,
    /// Where the client verbs (`musicd add`, `musicd tasks`) find the daemon.
    pub client: ClientConfig,
}

/// Where the client verbs find the daemon and which key they send. `--url` / `MUSICD_URL`
/// and `--api-key` / `MUSICD_API_KEY` take precedence.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    /// Daemon URL, e.g. `https://music.example.org`; empty means `http://<listen>`.
    pub url: String,
    /// API key sent as `X-API-Key`. A secret: redacted in `Debug` and `config print`.
    pub api_key: String,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = if self.api_key.is_empty() {
            ""
        } else {
            "<redacted>"
        };
        f.debug_struct("ClientConfig")
            .field("url", &redact_url(&self.url))
            .field("api_key", &key)
            .finish()
    }
}

/// Outbound connections. The environment's `HTTP_PROXY`/`HTTPS_PROXY` are never used.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchConfig {
    /// An HTTP proxy for the native fetcher (`http://host:port`); empty: connect directly.
    /// Through a proxy the address guard checks only literal hosts (see README).
    pub proxy: String,
}

/// Uploads (`POST /uploads`, tus under `/uploads/tus`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadsConfig {
    /// Bytes each user may have in the library plus unfinished uploads; 0: no quota.
    pub quota: ByteSize,
    /// An unfinished resumable upload is removed this long after its last chunk.
    #[serde(with = "humantime_serde")]
    pub expiry: Duration,
}

impl Default for UploadsConfig {
    fn default() -> Self {
        Self {
            quota: ByteSize::gib(20),
            expiry: Duration::from_secs(24 * 3600),
        }
    }
}

/// Watches and their scheduler. The same shape is stored by `PUT /config/watch`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WatchConfig {
    /// Scheduled checks run; `false` leaves only checks asked for by hand.
    pub enabled: bool,
    /// Cron expression for watches without their own (UTC; 5 fields, or 6 with seconds).
    pub default_schedule: String,
    /// Checks running at once, per process.
    pub max_concurrent_checks: u32,
    /// Each scheduled check starts after a random delay up to this, so many watches on one
    /// schedule do not hit their sources in the same second.
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String)]
    pub jitter: Duration,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            default_schedule: "0 */6 * * *".into(),
            max_concurrent_checks: 4,
            jitter: Duration::from_secs(30),
        }
    }
}

impl WatchConfig {
    /// Checks every value; the error names the field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        crate::watch::parse_schedule(&self.default_schedule)
            .map_err(|e| ("default_schedule", e))?;
        if self.max_concurrent_checks == 0 || self.max_concurrent_checks as usize > MAX_POOL {
            return Err((
                "max_concurrent_checks",
                format!("must be between 1 and {MAX_POOL}"),
            ));
        }
        if self.jitter > Duration::from_secs(3600) {
            return Err(("jitter", "must be at most 1h".into()));
        }
        Ok(())
    }
}

/// Per-provider settings.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvidersConfig {
    /// The `ytdlp` provider (an external yt-dlp program).
    pub ytdlp: YtdlpConfig,
    /// The `jamendo` provider (Jamendo's public API v3).
    pub jamendo: JamendoConfig,
}

/// The `ytdlp` provider.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct YtdlpConfig {
    /// The yt-dlp program: a name looked up on `PATH`, or a path.
    pub path: PathBuf,
    /// Longest one yt-dlp run may take before it is killed.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// yt-dlp runs (metadata or download) started per minute; 0: no budget.
    pub requests_per_minute: u32,
    /// yt-dlp downloads at once, across the process.
    pub concurrency: u32,
}

impl Default for YtdlpConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("yt-dlp"),
            timeout: Duration::from_secs(30 * 60),
            requests_per_minute: 30,
            concurrency: 2,
        }
    }
}

/// The `jamendo` provider. Its `client_id` is a stored credential
/// (`PUT /credentials/jamendo/client_id`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JamendoConfig {
    /// API base URL.
    pub base_url: String,
    /// Requests per minute to the API (Jamendo allows about 35,000 a month per client id).
    pub requests_per_minute: u32,
    /// Audio downloads from Jamendo at once, across the process.
    pub concurrency: u32,
}

impl Default for JamendoConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.jamendo.com/v3.0".into(),
            requests_per_minute: 60,
            concurrency: 4,
        }
    }
}

/// What the media pipeline produces, unless a request says otherwise.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// `copy` (keep the source's codec, re-tag only), `mp3`, `opus`, `flac`, `vorbis`, `wav`.
    pub format: String,
    /// `low`, `medium`, `high` or `lossless` (see docs/MEDIA.md for the codec settings).
    pub quality: String,
    /// Library layout; see docs/MEDIA.md for the syntax.
    pub path_template: String,
    /// Measure EBU R128 loudness and write ReplayGain (R128 for Opus) tags.
    pub loudness: bool,
    /// Largest input file accepted (downloads and uploads).
    pub max_input_size: ByteSize,
    /// Longest input accepted, by its decoded duration (checked before transcoding).
    #[serde(with = "humantime_serde")]
    pub max_duration: Duration,
    /// Largest podcast feed read (a larger one fails with `feed_too_large`).
    pub max_feed_size: ByteSize,
    /// Separator between several artists in the artist tag.
    pub artist_separator: String,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            format: "copy".into(),
            quality: "high".into(),
            path_template: musicd_workers::naming::DEFAULT_TEMPLATE.into(),
            loudness: true,
            max_input_size: ByteSize::gib(2),
            max_duration: Duration::from_secs(12 * 3600),
            max_feed_size: ByteSize::mib(20),
            artist_separator: "; ".into(),
        }
    }
}

impl MediaConfig {
    /// Pipeline options from this section, with per-request overrides.
    pub fn process_options(
        &self,
        format: Option<&str>,
        quality: Option<&str>,
        template: Option<&str>,
    ) -> Result<musicd_workers::ProcessOptions, String> {
        use musicd_workers::{EncoderSettings, OutputFormat, PathTemplate, QualityPreset};
        let format = OutputFormat::parse(format.unwrap_or(&self.format))
            .map_err(|e| format!("format: {}", e.message))?;
        let quality = QualityPreset::parse(quality.unwrap_or(&self.quality))
            .map_err(|e| format!("quality: {}", e.message))?;
        let template = PathTemplate::parse(template.unwrap_or(&self.path_template))
            .map_err(|e| format!("path_template: {}", e.message))?;
        let mut opts = musicd_workers::ProcessOptions {
            format,
            settings: EncoderSettings::preset(quality),
            template,
            loudness: self.loudness,
            max_input_bytes: self.max_input_size.as_u64(),
            max_duration_secs: self.max_duration.as_secs_f64(),
            ..Default::default()
        };
        opts.tags.artist_separator = self.artist_separator.clone();
        Ok(opts)
    }
}

/// Whether requests must authenticate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Every route but health and the SSE ticket exchange requires a token or API key.
    On,
    /// No authentication; only allowed on a loopback listener.
    Off,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

/// HTTP edge: limits, timeouts and CORS.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest JSON request body.
    pub body_limit: ByteSize,
    /// Time limit for one request (streams such as SSE are exempt).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Origins allowed by CORS; empty disables CORS headers, `*` allows any origin.
    pub cors_origins: Vec<String>,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Proxies (addresses or CIDRs) whose `X-Forwarded-For` entries are skipped: the client
    /// is the right-most address that is not one of them.
    pub trusted_proxies: Vec<String>,
    /// A connection that has not sent a whole request head within this is closed.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// A request body that sends nothing for this long fails (uploads keep what arrived).
    #[serde(with = "humantime_serde")]
    pub body_idle_timeout: Duration,
}

impl HttpConfig {
    /// `trusted_proxies` parsed; a bare address is a /32 or /128.
    pub fn trusted_proxy_nets(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.trusted_proxies
            .iter()
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("`{s}` is not an address or CIDR"))
            })
            .collect()
    }
}

/// Accounts, tokens and login throttling.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Let anyone create an account with `POST /auth/register`.
    pub allow_registration: bool,
    /// Lifetime of an access token (JWT).
    #[serde(with = "humantime_serde")]
    pub access_token_ttl: Duration,
    /// Lifetime of a refresh token.
    #[serde(with = "humantime_serde")]
    pub refresh_token_ttl: Duration,
    /// Login attempts allowed per client address per minute.
    pub login_per_minute: u32,
    /// Login attempts a client may make in a burst before throttling starts.
    pub login_burst: u32,
}

/// Queue backend behaviour and retries.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Prefix for queue names, so several deployments can share one Redis.
    pub prefix: String,
    /// How often an idle worker looks for new work.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Worker heartbeat; a worker silent for three of these is presumed dead.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// Attempts per job (each start counts, including starts after a crash).
    pub max_attempts: u32,
    /// First retry delay; doubled per attempt, with jitter.
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    /// Largest retry delay.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// How long a running job's claim on its task lasts without renewal.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// On shutdown, how long running jobs may take to finish before they are handed back.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

/// The most concurrent jobs a pool (or connections a host) may be given.
pub const MAX_POOL: usize = 64;

/// Worker pool sizes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkersConfig {
    /// Run worker pools in `serve` (false: an API-only process; `musicd worker` always runs them).
    pub enabled: bool,
    /// Concurrent jobs in the io pool (resolve, fetch, watch checks, webhooks).
    pub io_concurrency: usize,
    /// Concurrent jobs in the cpu pool (decode, transcode, loudness, tags); 0 = the cores.
    pub cpu_concurrency: usize,
    /// Concurrent downloads from one upstream host, per process.
    pub per_host_connections: usize,
    /// Requests per minute to one upstream host, per process; 0 = no budget.
    pub per_host_requests_per_minute: u32,
    /// Children of one request queued at once; the rest wait in the ledger.
    pub enqueue_window: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7171".parse().expect("valid default"),
            data_dir: PathBuf::from("./data"),
            library_dir: PathBuf::from("./library"),
            database_url: String::new(),
            redis_url: String::new(),
            jwt_secret: String::new(),
            credentials_secret: String::new(),
            admin_user: String::new(),
            admin_password: String::new(),
            auth: AuthMode::On,
            fetch_allow_private: false,
            fetch_allow_ips: Vec::new(),
            fetch: FetchConfig::default(),
            log_format: LogFormat::Human,
            log_level: "info".into(),
            http: HttpConfig::default(),
            security: SecurityConfig::default(),
            queue: QueueConfig::default(),
            workers: WorkersConfig::default(),
            media: MediaConfig::default(),
            providers: ProvidersConfig::default(),
            watch: WatchConfig::default(),
            uploads: UploadsConfig::default(),
            client: ClientConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit: ByteSize::mib(1),
            request_timeout: Duration::from_secs(30),
            cors_origins: Vec::new(),
            trust_forwarded_for: false,
            trusted_proxies: Vec::new(),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            body_idle_timeout: Duration::from_secs(60),
        }
    }
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            allow_registration: false,
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            login_per_minute: 10,
            login_burst: 5,
        }
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            prefix: "musicd".into(),
            poll_interval: Duration::from_millis(100),
            heartbeat_interval: Duration::from_secs(5),
            max_attempts: 5,
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(600),
            lease: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

impl Default for WorkersConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            io_concurrency: 8,
            cpu_concurrency: 0,
            per_host_connections: 4,
            per_host_requests_per_minute: 0,
            enqueue_window: 256,
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers in charge.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    /// `--listen`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// `--data-dir`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `--library-dir`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub library_dir: Option<PathBuf>,
    /// `--database-url`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// `--redis-url`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
}

/// A configuration that could not be loaded; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads every layer. `file` is `--config`; without it `MUSICD_CONFIG`, then
    /// `config/musicd.toml` when that file exists.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("MUSICD_CONFIG").map(PathBuf::from));
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError(format!(
                        "config file {} does not exist",
                        path.display()
                    )));
                }
                fig = fig.merge(Toml::file_exact(path));
            }
            None => {
                let default_path = Path::new("config/musicd.toml");
                if default_path.is_file() {
                    fig = fig.merge(Toml::file_exact(default_path));
                }
            }
        }
        let verbatim: std::collections::BTreeMap<String, String> = STRING_ENV
            .iter()
            .filter_map(|k| {
                std::env::var(format!("MUSICD_{k}"))
                    .ok()
                    .map(|v| (k.to_ascii_lowercase(), v))
            })
            .collect();
        fig = fig
            .merge(
                Env::prefixed("MUSICD_")
                    .filter(|k| {
                        !NON_CONFIG_ENV
                            .iter()
                            .chain(STRING_ENV)
                            .any(|n| k.as_str().eq_ignore_ascii_case(n))
                    })
                    .split("__"),
            )
            .merge(Serialized::defaults(verbatim))
            .merge(Serialized::defaults(overrides));
        let config: Config = fig.extract().map_err(|e| {
            ConfigError(
                e.into_iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the rules serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key: &str, msg: &str| Err(ConfigError(format!("`{key}`: {msg}")));
        if self.auth == AuthMode::Off && !self.listen.ip().is_loopback() {
            return err(
                "auth",
                "`off` is only allowed when `listen` is a loopback address",
            );
        }
        if !(self.database_url.is_empty()
            || self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return err("database_url", "must start with sqlite: or postgres://");
        }
        if !(self.redis_url.is_empty()
            || self.redis_url.starts_with("redis://")
            || self.redis_url.starts_with("rediss://"))
        {
            return err("redis_url", "must start with redis:// or rediss://");
        }
        if !self.jwt_secret.is_empty() && self.jwt_secret.len() < 32 {
            return err("jwt_secret", "must be at least 32 characters");
        }
        if !self.credentials_secret.is_empty() && self.credentials_secret.len() < 32 {
            return err("credentials_secret", "must be at least 32 characters");
        }
        if self.admin_user.is_empty() != self.admin_password.is_empty() {
            return err(
                "admin_user",
                "admin_user and admin_password must be set together",
            );
        }
        if !self.admin_password.is_empty() && self.admin_password.len() < 8 {
            return err("admin_password", "must be at least 8 characters");
        }
        if let Err((key, msg)) = self.watch.validate() {
            return err(&format!("watch.{key}"), &msg);
        }
        if self.queue.max_attempts == 0 {
            return err("queue.max_attempts", "must be at least 1");
        }
        if self.queue.prefix.is_empty()
            || !self
                .queue
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return err("queue.prefix", "must be letters, digits, '-' or '_'");
        }
        if self.queue.poll_interval.is_zero() || self.queue.heartbeat_interval.is_zero() {
            return err("queue.poll_interval", "intervals must be above zero");
        }
        if self.queue.lease < Duration::from_secs(3) {
            return err("queue.lease", "must be at least 3s");
        }
        if self.workers.io_concurrency == 0 || self.workers.io_concurrency > MAX_POOL {
            return err("workers.io_concurrency", "must be between 1 and 64");
        }
        if self.workers.cpu_concurrency > MAX_POOL {
            return err("workers.cpu_concurrency", "must be at most 64");
        }
        if self.workers.per_host_connections == 0 || self.workers.per_host_connections > MAX_POOL {
            return err("workers.per_host_connections", "must be between 1 and 64");
        }
        if self.workers.enqueue_window == 0 {
            return err("workers.enqueue_window", "must be at least 1");
        }
        if self.security.login_per_minute == 0 || self.security.login_burst == 0 {
            return err("security.login_per_minute", "must be at least 1");
        }
        if let Err(e) = self.http.trusted_proxy_nets() {
            return err("http.trusted_proxies", &e);
        }
        if self.http.max_connections == 0 {
            return err("http.max_connections", "must be at least 1");
        }
        if self.http.header_read_timeout.is_zero() || self.http.body_idle_timeout.is_zero() {
            return err("http.header_read_timeout", "timeouts must be above zero");
        }
        if self.media.max_duration.is_zero() {
            return err("media.max_duration", "must be above zero");
        }
        if !self.fetch.proxy.is_empty()
            && !url::Url::parse(&self.fetch.proxy)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        {
            return err(
                "fetch.proxy",
                "must be an http:// or https:// URL with a host",
            );
        }
        if let Err(e) = self.media.process_options(None, None, None) {
            return Err(ConfigError(format!("`media.{e}`")));
        }
        if !self.log_format_is_valid() {
            return err("log_level", "is not a valid tracing filter");
        }
        Ok(())
    }

    fn log_format_is_valid(&self) -> bool {
        tracing_subscriber::EnvFilter::try_new(&self.log_level).is_ok()
    }

    /// The database URL in effect: the configured one, or SQLite in the data dir.
    pub fn effective_database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("musicd.db").display()
            )
        } else {
            self.database_url.clone()
        }
    }

    /// Workers in the cpu pool: the configured number, or the cores.
    pub fn cpu_concurrency(&self) -> usize {
        if self.workers.cpu_concurrency > 0 {
            self.workers.cpu_concurrency
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        }
    }

    /// The configuration as TOML with secrets replaced by `<redacted>`.
    pub fn to_redacted_toml(&self) -> String {
        let mut copy = self.clone();
        for secret in [
            &mut copy.jwt_secret,
            &mut copy.credentials_secret,
            &mut copy.admin_password,
            &mut copy.client.api_key,
        ] {
            if !secret.is_empty() {
                *secret = "<redacted>".into();
            }
        }
        copy.database_url = redact_url(&copy.database_url);
        copy.redis_url = redact_url(&copy.redis_url);
        copy.client.url = redact_url(&copy.client.url);
        copy.fetch.proxy = redact_url(&copy.fetch.proxy);
        toml::to_string_pretty(&copy).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

/// Replaces the password in `scheme://user:password@host` with `<redacted>`.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        _ => raw.to_string(),
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_redacted_toml())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_secrets() {
        let c = Config {
            jwt_secret: "x".repeat(40),
            admin_password: "hunter2hunter2".into(),
            redis_url: "redis://:pw@127.0.0.1:6379".into(),
            client: ClientConfig {
                url: String::new(),
                api_key: "mk_client-key-secret".into(),
            },
            ..Config::default()
        };
        let out = c.to_redacted_toml();
        assert!(!out.contains("client-key-secret"));
        assert!(!format!("{:?}", c.client).contains("client-key-secret"));
        assert!(!out.contains("hunter2"));
        assert!(!out.contains(&"x".repeat(40)));
        assert!(!out.contains(":pw@"));
        assert!(out.contains("<redacted>"));
    }

    #[test]
    fn shipped_file_documents_every_default() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/musicd.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let from_file: Config = toml::from_str(&text).expect("config/musicd.toml parses");
        assert_eq!(
            from_file.to_redacted_toml(),
            Config::default().to_redacted_toml(),
            "config/musicd.toml must list exactly the defaults"
        );
        let keys: toml::Table = toml::from_str(&Config::default().to_redacted_toml()).unwrap();
        check_section(&text, "", &keys);
    }

    /// Every key of `table` is written out in `text` under its `[section]` header.
    fn check_section(text: &str, prefix: &str, table: &toml::Table) {
        for (k, v) in table {
            let name = format!("{prefix}{k}");
            match v {
                toml::Value::Table(t) if t.values().all(toml::Value::is_table) => {
                    check_section(text, &format!("{name}."), t);
                }
                toml::Value::Table(t) => {
                    assert!(
                        text.contains(&format!("[{name}]")),
                        "section {name} missing"
                    );
                    for sub in t.keys() {
                        assert!(
                            text.contains(&format!("\n{sub} = ")),
                            "{name}.{sub} missing"
                        );
                    }
                }
                _ => assert!(text.contains(&format!("\n{k} = ")), "{name} missing"),
            }
        }
    }

    #[test]
    fn auth_off_requires_loopback() {
        let c = Config {
            auth: AuthMode::Off,
            listen: "0.0.0.0:7171".parse().unwrap(),
            ..Config::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("`auth`"), "{e}");
    }
}
