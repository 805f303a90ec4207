//! The `[providers.*]` sections: each source's base URL, budget and settings, with their
//! defaults (the same values `config/musicd.toml` documents).

use super::*;

/// Per-provider settings.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvidersConfig {
    /// The `ytdlp` provider (an external yt-dlp program).
    pub ytdlp: YtdlpConfig,
    /// The `jamendo` provider (Jamendo's public API v3).
    pub jamendo: JamendoConfig,
    /// The `spotify` catalog (Spotify Web API).
    pub spotify: SpotifyConfig,
    /// The `deezer` catalog (Deezer's public API).
    pub deezer: DeezerConfig,
    /// The `musicbrainz` catalog (MusicBrainz ws/2 and the Cover Art Archive).
    pub musicbrainz: MusicBrainzConfig,
    /// The `youtube_music` audio source (YouTube Music search).
    pub youtube_music: YoutubeMusicConfig,
    /// How catalog tracks are matched to audio.
    #[serde(rename = "match")]
    pub matching: MatchConfig,
    /// LRCLIB, where lyrics come from (`media.lyrics`).
    pub lrclib: LrclibConfig,
}

impl ProvidersConfig {
    /// Rules serde cannot express: the key at fault and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        const SOURCES: &[&str] = &["youtube_music", "jamendo"];
        if let Some(bad) = self
            .matching
            .sources
            .iter()
            .find(|s| !SOURCES.contains(&s.as_str()))
        {
            return Err((
                "match.sources",
                format!("`{bad}` is not an audio source ({})", SOURCES.join(", ")),
            ));
        }
        if !(0.0..=100.0).contains(&self.matching.min_score) {
            return Err(("match.min_score", "must be between 0 and 100".into()));
        }
        if self.matching.max_downloads == 0 {
            return Err(("match.max_downloads", "must be at least 1".into()));
        }
        if !self.youtube_music.watch_url.contains("{id}") {
            return Err((
                "youtube_music.watch_url",
                "must contain `{id}`, where the video id goes".into(),
            ));
        }
        for (key, url) in [
            ("spotify.base_url", &self.spotify.base_url),
            ("spotify.accounts_url", &self.spotify.accounts_url),
            ("deezer.base_url", &self.deezer.base_url),
            ("musicbrainz.base_url", &self.musicbrainz.base_url),
            ("musicbrainz.cover_art_url", &self.musicbrainz.cover_art_url),
            ("youtube_music.base_url", &self.youtube_music.base_url),
            ("jamendo.base_url", &self.jamendo.base_url),
        ] {
            if !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                return Err((key, "must be an http:// or https:// URL".into()));
            }
        }
        Ok(())
    }
}

/// The `spotify` catalog. Its `client_id` and `client_secret` are stored credentials
/// (`PUT /credentials/spotify/client_id`, `…/client_secret`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpotifyConfig {
    /// Web API base URL.
    pub base_url: String,
    /// Accounts service (tokens) base URL.
    pub accounts_url: String,
    /// Requests per minute to the Web API.
    pub requests_per_minute: u32,
    /// Market (ISO country code) for track relinking; empty: the token's own.
    pub market: String,
    /// Where Spotify sends a signing-in browser back (registered in the Spotify app); empty:
    /// `http://<listen>/api/v1/providers/spotify/callback`, with 127.0.0.1 for an unspecified
    /// address (Spotify refuses `localhost`).
    pub redirect_url: String,
}

impl Default for SpotifyConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.spotify.com/v1".into(),
            accounts_url: "https://accounts.spotify.com".into(),
            requests_per_minute: 120,
            market: String::new(),
            redirect_url: String::new(),
        }
    }
}

/// The `deezer` catalog (no key).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeezerConfig {
    /// API base URL.
    pub base_url: String,
    /// Requests per minute; with a burst of 5 the default keeps within Deezer's documented
    /// 50 requests per 5 seconds.
    pub requests_per_minute: u32,
}

impl Default for DeezerConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.deezer.com".into(),
            requests_per_minute: 540,
        }
    }
}

/// The `musicbrainz` catalog.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MusicBrainzConfig {
    /// Web service base URL (ws/2).
    pub base_url: String,
    /// Cover Art Archive base URL.
    pub cover_art_url: String,
    /// A contact (e-mail or URL) for the User-Agent, as MusicBrainz's rules ask.
    pub contact: String,
    /// Requests per minute (MusicBrainz allows about one a second).
    pub requests_per_minute: u32,
    /// Add MusicBrainz ids to other catalogs' tracks whose ISRC it knows.
    pub enrich: bool,
}

impl Default for MusicBrainzConfig {
    fn default() -> Self {
        Self {
            base_url: "https://musicbrainz.org/ws/2".into(),
            cover_art_url: "https://coverartarchive.org".into(),
            contact: String::new(),
            requests_per_minute: 60,
            enrich: true,
        }
    }
}

/// The `youtube_music` audio source.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct YoutubeMusicConfig {
    /// Base URL of the `youtubei` API (searches go to `<base_url>/youtubei/v1/search`).
    pub base_url: String,
    /// The page yt-dlp downloads a chosen result from; `{id}` is the video id.
    pub watch_url: String,
    /// Searches per minute.
    pub requests_per_minute: u32,
}

impl Default for YoutubeMusicConfig {
    fn default() -> Self {
        Self {
            base_url: "https://music.youtube.com".into(),
            watch_url: "https://music.youtube.com/watch?v={id}".into(),
            requests_per_minute: 60,
        }
    }
}

/// Matching catalog tracks to audio.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchConfig {
    /// Audio sources asked, in order (`youtube_music`, `jamendo`).
    pub sources: Vec<String>,
    /// Least score (0–100) of a candidate downloaded without review.
    pub min_score: f64,
    /// Candidates downloaded in turn when a download's length does not match the catalog's.
    pub max_downloads: u32,
}

impl Default for MatchConfig {
    fn default() -> Self {
        Self {
            sources: vec!["youtube_music".into(), "jamendo".into()],
            min_score: 70.0,
            max_downloads: 3,
        }
    }
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

/// LRCLIB (lrclib.net), the lyrics database; no key needed.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LrclibConfig {
    /// API base URL (`<base_url>/api/get`).
    pub base_url: String,
    /// Longest wait for an answer; lyrics never hold a track up for longer.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for LrclibConfig {
    fn default() -> Self {
        Self {
            base_url: "https://lrclib.net".into(),
            timeout: Duration::from_secs(10),
        }
    }
}
