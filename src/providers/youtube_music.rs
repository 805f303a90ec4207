//! `youtube_music`: an audio source. Searches YouTube Music through its `youtubei` search API
//! (the one ytmusicapi and spotDL use: `POST <base_url>/youtubei/v1/search` with the
//! `WEB_REMIX` client) with the "songs" or "videos" filter, and reads the result rows
//! (`musicResponsiveListItemRenderer`) into candidates. A chosen video is downloaded by
//! yt-dlp from `watch_url` through the egress guard.

use serde_json::{Value, json};

use super::{
    AudioFetch, AudioQuery, Candidate, Fetcher, Provider, ProviderInfo, ProviderLimits, Resolved,
    TrackInfo, parse_json,
};
use crate::config::YoutubeMusicConfig;
use crate::failure::{JobError, code};

/// Largest search answer read.
const MAX_ANSWER: u64 = 4 * 1024 * 1024;
/// How upstream is named in messages.
const LABEL: &str = "YouTube Music";
/// The web client's name and a version it accepts.
const CLIENT_NAME: &str = "WEB_REMIX";
const CLIENT_VERSION: &str = "1.20251201.01.00";
/// The search filters (`params`) for songs and for videos, without spelling correction
/// turned off, as ytmusicapi sends them.
const SONGS: &str = "EgWKAQIIAWoMEA4QChADEAQQCRAF";
const VIDEOS: &str = "EgWKAQIQAWoMEA4QChADEAQQCRAF";

/// The YouTube Music audio source.
pub struct YoutubeMusic {
    base: String,
    watch_url: String,
    limits: ProviderLimits,
}

impl YoutubeMusic {
    /// From its configuration.
    pub fn new(config: &YoutubeMusicConfig) -> Self {
        Self {
            base: config.base_url.trim_end_matches('/').to_string(),
            watch_url: config.watch_url.clone(),
            limits: ProviderLimits {
                requests_per_minute: Some(config.requests_per_minute).filter(|n| *n > 0),
                burst: Some(10),
                concurrency: None,
            },
        }
    }

    /// The page a video is downloaded from.
    pub fn watch_url(&self, id: &str) -> String {
        self.watch_url.replace("{id}", id)
    }

    async fn search_rows(
        &self,
        q: &AudioQuery,
        fetch: &Fetcher,
    ) -> Result<Vec<Candidate>, JobError> {
        let body = json!({
            "context": {"client": {"clientName": CLIENT_NAME, "clientVersion": CLIENT_VERSION, "hl": "en"}, "user": {}},
            "query": q.text,
            "params": if q.songs { SONGS } else { VIDEOS },
        });
        let req = musicd_media::request::Request {
            method: Some(reqwest::Method::POST),
            url: format!("{}/youtubei/v1/search?alt=json", self.base),
            headers: vec![
                ("Origin".into(), "https://music.youtube.com".into()),
                ("X-Goog-Api-Format-Version".into(), "1".into()),
            ],
            body: Some(("application/json".into(), body.to_string().into_bytes())),
            follow: false,
        };
        let a = fetch.api("youtube_music", LABEL, req, MAX_ANSWER).await?;
        if a.status != 200 {
            return Err(JobError::permanent(
                code::UPSTREAM_ERROR,
                format!("{LABEL} answered HTTP {} to a search", a.status),
            ));
        }
        let v: Value = parse_json(LABEL, &a.bytes)?;
        let mut rows = Vec::new();
        collect_rows(&v, &mut rows);
        Ok(rows
            .into_iter()
            .filter_map(|r| row(r, q.songs))
            .map(|mut c| {
                c.url = self.watch_url(&c.id);
                c.query = q.text.clone();
                c
            })
            .collect())
    }
}

/// Every result row under a shelf (`musicShelfRenderer.contents[].musicResponsiveListItemRenderer`).
fn collect_rows<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            if let Some(shelf) = m.get("musicShelfRenderer") {
                for item in shelf["contents"].as_array().into_iter().flatten() {
                    if let Some(r) = item.get("musicResponsiveListItemRenderer") {
                        out.push(r);
                    }
                }
                return;
            }
            for child in m.values() {
                collect_rows(child, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|c| collect_rows(c, out)),
        _ => {}
    }
}

/// The runs of flex column `i`.
fn runs(r: &Value, i: usize) -> &[Value] {
    r["flexColumns"][i]["musicResponsiveListItemFlexColumnRenderer"]["text"]["runs"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn page_type(run: &Value) -> &str {
    run["navigationEndpoint"]["browseEndpoint"]["browseEndpointContextSupportedConfigs"]
        ["browseEndpointContextMusicConfig"]["pageType"]
        .as_str()
        .unwrap_or_default()
}

/// `m:ss` or `h:mm:ss` in milliseconds.
fn parse_duration(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.trim().split(':').collect();
    if !(2..=3).contains(&parts.len())
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    Some(
        parts
            .iter()
            .fold(0u64, |acc, p| acc * 60 + p.parse::<u64>().unwrap_or(0))
            * 1000,
    )
}

/// One result row as a candidate; `songs` when the search was filtered to songs.
fn row(r: &Value, songs: bool) -> Option<Candidate> {
    let title_runs = runs(r, 0);
    let watch = &title_runs.first()?["navigationEndpoint"]["watchEndpoint"];
    let overlay = &r["overlay"]["musicItemThumbnailOverlayRenderer"]["content"]["musicPlayButtonRenderer"]
        ["playNavigationEndpoint"]["watchEndpoint"];
    let id = r["playlistItemData"]["videoId"]
        .as_str()
        .or(watch["videoId"].as_str())
        .or(overlay["videoId"].as_str())?
        .to_string();
    let watch = if watch.is_object() { watch } else { overlay };
    let video_type =
        watch["watchEndpointMusicSupportedConfigs"]["watchEndpointMusicConfig"]["musicVideoType"]
            .as_str()
            .unwrap_or_default();
    let title: String = title_runs
        .iter()
        .filter_map(|x| x["text"].as_str())
        .collect();
    // The second column: groups of runs separated by " • " (type word, artists, album or
    // views, duration).
    let mut groups: Vec<Vec<&Value>> = vec![Vec::new()];
    for run in runs(r, 1) {
        if run["text"].as_str().is_some_and(|t| t.trim() == "•") {
            groups.push(Vec::new());
        } else if let Some(g) = groups.last_mut() {
            g.push(run);
        }
    }
    let text = |g: &[&Value]| -> String { g.iter().filter_map(|x| x["text"].as_str()).collect() };
    let mut kind = if songs { "Song" } else { "Video" }.to_string();
    if let Some(first) = groups.first().map(|g| text(g))
        && matches!(
            first.as_str(),
            "Song" | "Video" | "Episode" | "Podcast" | "Album" | "Single" | "EP"
        )
    {
        kind = first;
        groups.remove(0);
    }
    let duration_ms = groups.iter().rev().find_map(|g| parse_duration(&text(g)));
    let flat: Vec<&Value> = groups.iter().flatten().copied().collect();
    let mut artists: Vec<String> = flat
        .iter()
        .filter(|x| {
            page_type(x) == "MUSIC_PAGE_TYPE_ARTIST"
                || x["navigationEndpoint"]["browseEndpoint"]["browseId"]
                    .as_str()
                    .is_some_and(|b| b.starts_with("UC"))
        })
        .filter_map(|x| x["text"].as_str().map(str::to_string))
        .collect();
    if artists.is_empty()
        && let Some(g) = groups.first()
    {
        let t = text(g);
        artists = t
            .split([',', '&'])
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect();
    }
    let album = flat
        .iter()
        .find(|x| page_type(x) == "MUSIC_PAGE_TYPE_ALBUM")
        .and_then(|x| x["text"].as_str().map(str::to_string));
    let explicit_badge = r["badges"].as_array().is_some_and(|b| {
        b.iter().any(|x| {
            x["musicInlineBadgeRenderer"]["icon"]["iconType"].as_str()
                == Some("MUSIC_EXPLICIT_BADGE")
        })
    });
    let is_song = kind == "Song" || video_type == "MUSIC_VIDEO_TYPE_ATV";
    if !matches!(kind.as_str(), "Song" | "Video") {
        return None;
    }
    Some(Candidate {
        source: "youtube_music".into(),
        id,
        url: String::new(),
        title,
        official: is_song || artists.iter().any(|a| a.ends_with(" - Topic")),
        artists,
        album,
        duration_ms,
        // Songs carry the badge when explicit; a video's lyrics are not rated.
        explicit: if is_song {
            Some(explicit_badge)
        } else {
            explicit_badge.then_some(true)
        },
        query: String::new(),
        score: 0.0,
        reasons: Vec::new(),
    })
}

#[async_trait::async_trait]
impl Provider for YoutubeMusic {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: "youtube_music",
            kinds: &["track"],
            description: "YouTube Music search, the audio source for catalog tracks; a chosen \
                          video is downloaded by yt-dlp. The id is a video id.",
        }
    }

    async fn resolve(&self, kind: &str, id: &str, _fetch: &Fetcher) -> Result<Resolved, JobError> {
        if kind != "track" {
            return Err(JobError::permanent(
                code::VALIDATION_ERROR,
                format!("youtube_music has no kind `{kind}`"),
            ));
        }
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(JobError::permanent(
                code::VALIDATION_ERROR,
                format!("`{id}` is not a YouTube video id"),
            ));
        }
        Ok(Resolved::Track {
            track: TrackInfo {
                id: id.to_string(),
                url: self.watch_url(id),
                ..TrackInfo::default()
            },
        })
    }

    async fn search_audio(
        &self,
        query: &AudioQuery,
        fetch: &Fetcher,
    ) -> Option<Result<Vec<Candidate>, JobError>> {
        Some(self.search_rows(query, fetch).await)
    }

    async fn fetch_audio(
        &self,
        track: &TrackInfo,
        to: &AudioFetch<'_>,
        fetch: &Fetcher,
    ) -> Option<Result<std::path::PathBuf, JobError>> {
        // yt-dlp downloads the watch page's audio, through the egress guard, in one of its
        // download slots.
        let ytdlp = fetch.env.providers.get("ytdlp")?;
        let _slot = fetch.env.providers.slot("ytdlp").await;
        ytdlp.fetch_audio(track, to, fetch).await
    }

    fn limits(&self) -> ProviderLimits {
        self.limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_milliseconds() {
        assert_eq!(parse_duration("3:45"), Some(225_000));
        assert_eq!(parse_duration("1:02:03"), Some(3_723_000));
        assert_eq!(parse_duration("512M plays"), None);
        assert_eq!(parse_duration("3:"), None);
    }
}
