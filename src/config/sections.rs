//! The sections of the configuration (`[http]`, `[media]`, `[queue]`, …), each with its
//! defaults: the same values `config/musicd.toml` documents.

use super::*;

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
    /// An item whose download failed is tried again by the first check this long after.
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String)]
    pub retry_failed_after: Duration,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            default_schedule: "0 */6 * * *".into(),
            max_concurrent_checks: 4,
            jitter: Duration::from_secs(30),
            retry_failed_after: Duration::from_secs(24 * 3600),
        }
    }
}

impl WatchConfig {
    /// Checks every value; the error names the field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        super::schedule::parse_schedule(&self.default_schedule)
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
    /// Lyrics from LRCLIB: `off`, `plain` (the lyrics tag) or `synced` (also an `.lrc` file
    /// beside the track, when LRCLIB has timed lyrics).
    pub lyrics: String,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            format: "copy".into(),
            quality: "high".into(),
            path_template: musicd_media::naming::DEFAULT_TEMPLATE.into(),
            loudness: true,
            max_input_size: ByteSize::gib(2),
            max_duration: Duration::from_secs(12 * 3600),
            max_feed_size: ByteSize::mib(20),
            artist_separator: "; ".into(),
            lyrics: "synced".into(),
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
    ) -> Result<musicd_media::ProcessOptions, String> {
        use musicd_media::{EncoderSettings, OutputFormat, PathTemplate, QualityPreset};
        let format = OutputFormat::parse(format.unwrap_or(&self.format))
            .map_err(|e| format!("format: {}", e.message))?;
        let quality = QualityPreset::parse(quality.unwrap_or(&self.quality))
            .map_err(|e| format!("quality: {}", e.message))?;
        let template = PathTemplate::parse(template.unwrap_or(&self.path_template))
            .map_err(|e| format!("path_template: {}", e.message))?;
        let mut opts = musicd_media::ProcessOptions {
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
    /// A due task that waited this long while this process's pool had room is run directly,
    /// past the queue (a safety net for a queue worker that stopped fetching).
    #[serde(with = "humantime_serde")]
    pub rescue_after: Duration,
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
            rescue_after: Duration::from_secs(30),
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
