//! Layered configuration: defaults → `config/musicd.toml` (or `--config` / `MUSICD_CONFIG`)
//! → `MUSICD_*` environment → command-line flags. Unknown keys and bad values are errors
//! that name the key; secrets never appear in `Debug` or `config print`.

mod notify;
mod providers;
pub mod schedule;
mod sections;
pub use notify::*;
pub use providers::*;
pub use sections::*;

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
    /// Webhooks and push notifications: retries, links, system checks.
    pub notify: NotifyConfig,
    /// Media servers asked to rescan after files are placed.
    pub integrations: IntegrationsConfig,
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
            notify: NotifyConfig::default(),
            integrations: IntegrationsConfig::default(),
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
        if !["off", "plain", "synced"].contains(&self.media.lyrics.as_str()) {
            return err("media.lyrics", "must be `off`, `plain` or `synced`");
        }
        if let Err((key, msg)) = self.notify.validate() {
            return err(&format!("notify.{key}"), &msg);
        }
        if let Err((key, msg)) = self.integrations.validate() {
            return err(&format!("integrations.{key}"), &msg);
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
        if let Err((key, msg)) = self.providers.validate() {
            return err(&format!("providers.{key}"), &msg);
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
                    for (sub, value) in t {
                        if let toml::Value::Table(inner) = value {
                            // A subsection (`[integrations.plex]`) of a section with keys.
                            let mut one = toml::Table::new();
                            one.insert(sub.clone(), toml::Value::Table(inner.clone()));
                            check_section(text, &format!("{name}."), &one);
                            continue;
                        }
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
