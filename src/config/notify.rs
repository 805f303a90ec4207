//! The `[notify]` section (webhook and notification delivery) and `[integrations]` (media
//! servers asked to rescan), with their defaults.

use super::*;

/// How webhooks and push notifications are delivered.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// The web app's address as people reach it (`https://music.example.com`); messages link
    /// to the task there. Empty: messages carry no link.
    pub public_url: String,
    /// Attempts per delivery, the first included.
    pub max_attempts: u32,
    /// First wait before a retry; it doubles per attempt (with jitter) up to `backoff_max`.
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    /// Longest wait between two attempts.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Deliveries that fail in a row (each after all its attempts) before the hook is
    /// disabled.
    pub disable_after: u32,
    /// Longest wait for a receiver's answer.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Where `discord://` targets post (Discord's API origin).
    pub discord_url: String,
    /// The ntfy server of an `ntfy://topic` target that names no host.
    pub ntfy_url: String,
    /// How often health, disk space and provider pauses are looked at for system events.
    #[serde(with = "humantime_serde")]
    pub system_check_interval: Duration,
    /// Free space under which `disk.low` is sent (data or library directory).
    pub disk_low: ByteSize,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            public_url: String::new(),
            max_attempts: 10,
            backoff_base: Duration::from_secs(30),
            backoff_max: Duration::from_secs(2 * 3600),
            disable_after: 5,
            timeout: Duration::from_secs(15),
            discord_url: "https://discord.com".into(),
            ntfy_url: "https://ntfy.sh".into(),
            system_check_interval: Duration::from_secs(60),
            disk_low: ByteSize::gib(2),
        }
    }
}

impl NotifyConfig {
    /// Rules serde cannot express: the key at fault and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.max_attempts == 0 || self.max_attempts > 50 {
            return Err(("max_attempts", "must be 1 to 50".into()));
        }
        if self.disable_after == 0 {
            return Err(("disable_after", "must be at least 1".into()));
        }
        if self.backoff_base.is_zero() || self.backoff_max < self.backoff_base {
            return Err((
                "backoff_base",
                "must be more than 0 and at most backoff_max".into(),
            ));
        }
        if self.system_check_interval < Duration::from_secs(1) {
            return Err(("system_check_interval", "must be at least 1s".into()));
        }
        for (key, url) in [
            ("public_url", &self.public_url),
            ("discord_url", &self.discord_url),
            ("ntfy_url", &self.ntfy_url),
        ] {
            if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
                return Err((key, "must be an http:// or https:// URL".into()));
            }
        }
        Ok(())
    }
}

/// Media servers told to rescan after a request's files are placed. Each is on when its
/// `url` is set; its secret is a stored credential (see each section).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntegrationsConfig {
    /// Wait after a request ends before the rescan; requests ending meanwhile share it.
    #[serde(with = "humantime_serde")]
    pub rescan_debounce: Duration,
    /// Navidrome or any Subsonic server: `startScan`. Credentials `navidrome/username` and
    /// `navidrome/password`.
    pub navidrome: MediaServerConfig,
    /// Jellyfin: `POST /Library/Refresh`. Credential `jellyfin/api_key`.
    pub jellyfin: MediaServerConfig,
    /// Plex: the refresh of the section holding the library. Credential `plex/token`.
    pub plex: MediaServerConfig,
}

impl Default for IntegrationsConfig {
    fn default() -> Self {
        Self {
            rescan_debounce: Duration::from_secs(10),
            navidrome: MediaServerConfig::default(),
            jellyfin: MediaServerConfig::default(),
            plex: MediaServerConfig::default(),
        }
    }
}

impl IntegrationsConfig {
    /// The servers with a URL, by name.
    pub fn servers(&self) -> Vec<(&'static str, &MediaServerConfig)> {
        [
            ("navidrome", &self.navidrome),
            ("jellyfin", &self.jellyfin),
            ("plex", &self.plex),
        ]
        .into_iter()
        .filter(|(_, s)| !s.url.is_empty())
        .collect()
    }

    /// Rules serde cannot express: the key at fault and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (key, s) in [
            ("navidrome.url", &self.navidrome),
            ("jellyfin.url", &self.jellyfin),
            ("plex.url", &self.plex),
        ] {
            if !(s.url.is_empty() || s.url.starts_with("http://") || s.url.starts_with("https://"))
            {
                return Err((key, "must be an http:// or https:// URL".into()));
            }
        }
        Ok(())
    }
}

/// One media server.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaServerConfig {
    /// Its address (`http://navidrome:4533`); empty turns it off.
    pub url: String,
    /// The library folder as that server sees it, when it differs from `library_dir` (a
    /// container's mount point). Plex refreshes the section holding it; Jellyfin is told
    /// this path changed.
    pub library_path: String,
}
