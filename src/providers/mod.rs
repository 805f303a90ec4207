//! Providers: where audio comes from. A [`Provider`] resolves a URL, or a (kind, id), into
//! metadata and fetchable audio. The registry holds them in the order they are asked.

pub mod deezer;
mod fetcher;
pub mod http;
pub mod jamendo;
pub mod lrclib;
pub mod musicbrainz;
pub mod podcast;
mod registry;
pub mod spotify;
pub mod youtube_music;
pub mod ytdlp;
pub use fetcher::*;
pub use registry::*;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::failure::JobError;
use crate::failure::{Classify, code};

/// Metadata of one track as a provider knows it (before the file's own tags).
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct TrackInfo {
    /// Stable identity within the provider (a GUID, a URL).
    pub id: String,
    /// Where the audio is.
    pub url: String,
    /// Track title.
    pub title: Option<String>,
    /// Artists.
    #[serde(default)]
    pub artists: Vec<String>,
    /// Album (or feed) title.
    pub album: Option<String>,
    /// Album artist.
    pub album_artist: Option<String>,
    /// Position in the album or feed.
    pub track_number: Option<u32>,
    /// Number of tracks.
    pub track_total: Option<u32>,
    /// Release date (`YYYY-MM-DD` or `YYYY`).
    pub date: Option<String>,
    /// Genres.
    #[serde(default)]
    pub genres: Vec<String>,
    /// Comment (an episode's summary).
    pub comment: Option<String>,
    /// Cover image URL.
    pub cover_url: Option<String>,
    /// Length in milliseconds, as the catalog states it (what matching compares).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// ISRC, as the catalog states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isrc: Option<String>,
    /// Disc number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disc_number: Option<u32>,
    /// Number of discs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disc_total: Option<u32>,
    /// Whether the catalog marks it explicit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explicit: Option<bool>,
    /// Record label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// MusicBrainz ids, where known.
    #[serde(default, skip_serializing_if = "MbIds::is_empty")]
    pub musicbrainz: MbIds,
    /// Why the catalog lists it but it cannot be had (a local file, not available in the
    /// market, removed): the track fails with `unavailable` and this reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

/// MusicBrainz ids of a track.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MbIds {
    /// Recording id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<String>,
    /// Release id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Release group id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_group: Option<String>,
    /// First artist's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artist: Option<String>,
    /// Release track id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<String>,
}

impl MbIds {
    /// True when no id is known.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl TrackInfo {
    /// The track in words: `Artist, Artist – Title`, or the title, or its id.
    pub fn label(&self) -> String {
        match (self.title.as_deref(), self.artists.is_empty()) {
            (Some(t), false) => format!("{} – {t}", self.artists.join(", ")),
            (Some(t), true) => t.to_string(),
            (None, _) => self.id.clone(),
        }
    }

    /// Fills what this lacks from `other` (the same track from a fuller answer).
    pub fn fill_from(&mut self, other: &TrackInfo) {
        macro_rules! fill {
            ($($f:ident),*) => {$(
                if self.$f.is_none() {
                    self.$f = other.$f.clone();
                }
            )*};
        }
        fill!(
            title,
            album,
            album_artist,
            track_number,
            track_total,
            date,
            comment,
            cover_url,
            duration_ms,
            isrc,
            disc_number,
            disc_total,
            explicit,
            label
        );
        if self.artists.is_empty() {
            self.artists = other.artists.clone();
        }
        if self.genres.is_empty() {
            self.genres = other.genres.clone();
        }
        if self.musicbrainz.is_empty() {
            self.musicbrainz = other.musicbrainz.clone();
        }
    }

    /// The tags the pipeline writes for this track from `provider` (before the file's own
    /// tags fill the gaps), with the identity that makes a second download a skip.
    pub fn meta(&self, provider: &str) -> musicd_media::TrackMeta {
        musicd_media::TrackMeta {
            title: self.title.clone(),
            artists: self.artists.clone(),
            album: self.album.clone(),
            album_artist: self.album_artist.clone(),
            track_number: self.track_number,
            track_total: self.track_total,
            date: self.date.clone(),
            genres: self.genres.clone(),
            comment: self.comment.clone(),
            source_url: Some(self.url.clone()).filter(|u| !u.is_empty()),
            source_id: Some(format!("{provider}:{}", self.id)),
            disc_number: self.disc_number,
            disc_total: self.disc_total,
            isrc: self.isrc.clone(),
            label: self.label.clone(),
            musicbrainz_recording_id: self.musicbrainz.recording.clone(),
            musicbrainz_release_id: self.musicbrainz.release.clone(),
            musicbrainz_release_group_id: self.musicbrainz.release_group.clone(),
            musicbrainz_artist_id: self.musicbrainz.artist.clone(),
            musicbrainz_track_id: self.musicbrainz.track.clone(),
            ..Default::default()
        }
    }
}

/// What a URL or id resolved to.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
// One value per resolve, moved once: boxing the track would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Resolved {
    /// One track.
    Track {
        /// The track.
        track: TrackInfo,
    },
    /// A feed, playlist or album: a list of tracks in source order.
    Collection {
        /// `feed`, `playlist` or `album`.
        collection: String,
        /// Its title.
        title: Option<String>,
        /// Its tracks.
        tracks: Vec<TrackInfo>,
    },
}

impl Discography {
    /// The artist as one collection: the releases of the `wanted` types (all when empty),
    /// newest first, each release's tracks read by `tracks` in turn.
    pub async fn collect<F, Fut>(
        self,
        wanted: &[String],
        mut tracks: F,
    ) -> Result<Resolved, JobError>
    where
        F: FnMut(String) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<TrackInfo>, JobError>>,
    {
        let mut all = Vec::new();
        for r in self
            .releases
            .into_iter()
            .filter(|r| wanted.is_empty() || wanted.contains(&r.release_type))
        {
            all.extend(tracks(r.id).await?);
        }
        Ok(Resolved::Collection {
            collection: "artist".into(),
            title: self.name,
            tracks: all,
        })
    }
}

/// What a provider can do, for `GET /providers`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ProviderInfo {
    /// Name used in requests.
    pub name: &'static str,
    /// Kinds it resolves.
    pub kinds: &'static [&'static str],
    /// What it is for.
    pub description: &'static str,
}

/// One search result: what `POST /downloads` accepts as provider, kind and id.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchItem {
    /// Provider name.
    pub provider: String,
    /// `track`, `album`, `artist` or `playlist`.
    pub kind: String,
    /// Id within the provider.
    pub id: String,
    /// Title (or name, for an artist).
    pub title: String,
    /// Artist, when the item has one.
    pub artist: Option<String>,
    /// Release date, when known.
    pub date: Option<String>,
    /// Image URL.
    pub image_url: Option<String>,
}

/// What a provider allows, declared by the provider (from its configuration).
#[derive(Clone, Copy, Debug, Default, Serialize, ToSchema)]
pub struct ProviderLimits {
    /// Calls to its API (or runs of its program) per minute; `None`: no budget beyond the
    /// per-host one.
    pub requests_per_minute: Option<u32>,
    /// Calls allowed at once before the per-minute pace applies; `None`: the whole minute's.
    pub burst: Option<u32>,
    /// Audio downloads at once across the process; `None`: only the per-host limit.
    pub concurrency: Option<u32>,
}

/// One release of an artist, for `GET /providers/{p}/artist/{id}`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Release {
    /// The kind `POST /downloads` takes for it (`album`, `playlist`, `track`).
    pub kind: String,
    /// Its id within the provider.
    pub id: String,
    /// Title.
    pub title: String,
    /// `album`, `single`, `compilation` or `appears_on`.
    pub release_type: String,
    /// Release date, when known.
    pub date: Option<String>,
    /// Number of tracks, when known.
    pub track_count: Option<u32>,
    /// Cover image URL.
    pub image_url: Option<String>,
}

/// An artist and every release of theirs, newest first.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Discography {
    /// The artist's name.
    pub name: Option<String>,
    /// The releases.
    pub releases: Vec<Release>,
}

/// A recording an audio source offers for a catalog track; scored by `matching`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Candidate {
    /// The audio source (`youtube_music`, `jamendo`).
    pub source: String,
    /// Its id there (a video id, a track id).
    pub id: String,
    /// What is downloaded (a watch page for yt-dlp, an audio URL).
    pub url: String,
    /// Title as the source shows it.
    pub title: String,
    /// Artists (or the channel) as the source shows them.
    #[serde(default)]
    pub artists: Vec<String>,
    /// Album, when the source names one.
    pub album: Option<String>,
    /// Length in milliseconds.
    pub duration_ms: Option<u64>,
    /// Whether the source marks it explicit (`None`: it does not say).
    pub explicit: Option<bool>,
    /// An official upload: a YouTube Music "song" result or a "Topic" channel, a catalog track.
    #[serde(default)]
    pub official: bool,
    /// The search that found it.
    #[serde(default)]
    pub query: String,
    /// Score from 0 to 100 (set by matching).
    #[serde(default)]
    pub score: f64,
    /// What raised or lowered the score, in words.
    #[serde(default)]
    pub reasons: Vec<String>,
}

/// One search an audio source is asked.
#[derive(Clone, Debug)]
pub struct AudioQuery {
    /// The words (or an ISRC).
    pub text: String,
    /// Songs only (catalog tracks, YouTube Music's "songs" filter), or videos.
    pub songs: bool,
}

/// Where a provider that downloads audio itself puts it, and how it reports.
pub struct AudioFetch<'a> {
    /// The task's staging directory.
    pub staging: &'a Path,
    /// Bytes done and total, as they come.
    pub progress: &'a (dyn Fn(u64, Option<u64>) + Send + Sync),
    /// Fired on cancel: stop and remove partial files.
    pub cancel: &'a tokio_util::sync::CancellationToken,
}

/// A source of audio.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// Its name and kinds.
    fn info(&self) -> ProviderInfo;
    /// Resolves a (kind, id); for URL-based providers the id is the URL.
    async fn resolve(&self, kind: &str, id: &str, fetch: &Fetcher) -> Result<Resolved, JobError>;
    /// Searches the catalogue for `kind` items, one page of `limit` from `offset`. `None`:
    /// this provider cannot search.
    async fn search(
        &self,
        _query: &str,
        _kind: &str,
        _limit: u32,
        _offset: u32,
        _fetch: &Fetcher,
    ) -> Option<Result<Vec<SearchItem>, JobError>> {
        None
    }
    /// Downloads a track's audio itself (an external program, say) and returns the file.
    /// `None`: fetch `track.url` over HTTP, as usual.
    async fn fetch_audio(
        &self,
        _track: &TrackInfo,
        _to: &AudioFetch<'_>,
        _fetch: &Fetcher,
    ) -> Option<Result<PathBuf, JobError>> {
        None
    }
    /// Its request budget and download concurrency.
    fn limits(&self) -> ProviderLimits {
        ProviderLimits::default()
    }
    /// An artist's releases (each one downloadable on its own). `None`: this provider has
    /// no artist kind, or lists an artist as tracks only.
    async fn discography(
        &self,
        _artist: &str,
        _fetch: &Fetcher,
    ) -> Option<Result<Discography, JobError>> {
        None
    }
    /// A catalog (Spotify, Deezer, MusicBrainz) says what a track is but has no audio: its
    /// tracks are matched against the audio sources.
    fn is_catalog(&self) -> bool {
        false
    }
    /// As an audio source: the recordings it offers for `query`. `None`: not an audio source.
    async fn search_audio(
        &self,
        _query: &AudioQuery,
        _fetch: &Fetcher,
    ) -> Option<Result<Vec<Candidate>, JobError>> {
        None
    }
    /// Whether it can work now (a program is installed, a credential is set); the reason when
    /// not. Shown by `GET /providers` and `/health/deep`.
    async fn status(&self, _fetch: &Fetcher) -> Result<(), String> {
        Ok(())
    }
}

/// What providers may use of the process: its configuration, database, stored credentials,
/// limits, the provider registry and the egress proxy; nothing of the queue or the runner.
#[derive(Debug)]
pub struct Env {
    /// Effective configuration.
    pub config: crate::config::Config,
    /// State database.
    pub db: crate::db::Db,
    /// Opens stored provider credentials.
    pub vault: Arc<crate::credentials::Vault>,
    /// Jobs per pool and connections per host, changeable at run time.
    pub limits: Arc<crate::limits::Limits>,
    /// The sources of audio.
    pub providers: Registry,
    /// The filtering proxy that programs doing their own networking (yt-dlp) go through.
    pub egress: Arc<crate::egress::Egress>,
}

/// The key under which a provider's pause is kept with the host pauses.
pub fn provider_key(provider: &str) -> String {
    format!("provider:{provider}")
}

/// Whether a document looks like an RSS or Atom feed.
pub fn looks_like_feed(body: &[u8], content_type: Option<&str>) -> bool {
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    if ct.contains("rss") || ct.contains("atom") {
        return true;
    }
    let head = String::from_utf8_lossy(&body[..body.len().min(1024)]).to_ascii_lowercase();
    let head = head.trim_start_matches('\u{feff}').trim_start();
    head.starts_with("<?xml") && (head.contains("<rss") || head.contains("<feed"))
        || head.starts_with("<rss")
        || head.starts_with("<feed")
}

/// Providers whose ids are page or file URLs: checked as URLs when a request arrives, so
/// something like `--exec=…` or `file:///…` is refused before any job runs.
pub const URL_ID_PROVIDERS: &[&str] = &["http", "podcast", "ytdlp"];

/// Checks a URL the user gave: `http(s)` only, with a host.
pub fn parse_user_url(raw: &str) -> Result<url::Url, String> {
    let u = url::Url::parse(raw.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!(
            "only http and https URLs are supported, not {}:",
            u.scheme()
        ));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    Ok(u)
}

/// The file name at the end of a URL's path, without extension, for a title fallback.
pub fn url_stem(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let last = u.path_segments()?.next_back()?.to_string();
    let decoded = percent_decode(&last);
    let stem = Path::new(&decoded)
        .file_stem()?
        .to_string_lossy()
        .to_string();
    (!stem.is_empty()).then_some(stem)
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}
