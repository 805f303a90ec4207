//! `ytdlp`: pages that yt-dlp understands (video and audio sites, HTML5 `<audio>` pages,
//! direct media links). The id is always the page URL. yt-dlp reads the metadata
//! (`--dump-single-json --flat-playlist`) and downloads the best audio itself into the task's
//! staging directory; the pipeline does the rest.
//!
//! Safety: yt-dlp runs without a shell, with `--ignore-config` (no config file can add
//! `--exec`) and `--no-exec`, the URL (checked to be `http(s)` with a host) after `--`, and an
//! environment reduced to what it needs to start (no `MUSICD_*`, no proxy settings, no
//! secrets). yt-dlp does its own networking, so every run goes through the egress proxy
//! ([`crate::egress`]) with `--proxy`: each connection it makes (the page, redirects,
//! manifests, segments) is resolved and checked there, and a refusal fails the run with
//! `blocked_address`, even when yt-dlp itself carried on (it skips unavailable fragments).

mod metadata;
mod process;
mod staging;
use metadata::*;
use process::*;
use staging::*;

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio_util::sync::CancellationToken;

use super::{
    AudioFetch, Fetcher, Provider, ProviderInfo, ProviderLimits, Resolved, TrackInfo,
    parse_user_url,
};
use crate::config::YtdlpConfig;
use crate::failure::JobError;
use crate::failure::code;

/// Kinds: `url` lets yt-dlp decide between a track and a collection.
const KINDS: &[&str] = &["track", "playlist", "artist", "url"];

/// File name stem of everything yt-dlp writes into the staging directory.
const OUT_STEM: &str = "ytdlp";

/// Marks our progress lines on yt-dlp's stdout.
const PROGRESS_TAG: &str = "musicd-progress";

/// Largest metadata document read (a playlist of tens of thousands of entries fits).
const MAX_JSON: u64 = 64 * 1024 * 1024;

/// Longest output line kept whole.
const MAX_LINE: u64 = 16 * 1024;

/// Lines of stderr kept for error messages.
const STDERR_LINES: usize = 40;

/// yt-dlp's own network timeout.
const SOCKET_TIMEOUT_SECS: &str = "30";

/// How long a `--version` answer is trusted.
const STATUS_TTL: Duration = Duration::from_secs(60);

/// Longest description kept as the comment.
const MAX_COMMENT_CHARS: usize = 1000;

/// The yt-dlp provider.
pub struct Ytdlp {
    path: PathBuf,
    timeout: Duration,
    limits: ProviderLimits,
    version: Mutex<Option<(Instant, Result<String, String>)>>,
}

/// Checks an id: an `http(s)` URL with a host, never something yt-dlp could read as an
/// option. Returns the URL as it is passed on.
pub fn check_id(id: &str) -> Result<url::Url, String> {
    if id.trim_start().starts_with('-') {
        return Err("the id must be a page URL, not an option".into());
    }
    parse_user_url(id)
}

impl Ytdlp {
    /// From its configuration.
    pub fn new(config: &YtdlpConfig) -> Self {
        Self {
            path: config.path.clone(),
            timeout: config.timeout,
            limits: ProviderLimits {
                requests_per_minute: Some(config.requests_per_minute).filter(|n| *n > 0),
                concurrency: Some(config.concurrency).filter(|n| *n > 0),
                burst: None,
            },
            version: Mutex::new(None),
        }
    }

    /// Options of every run.
    fn base_args(&self, fetch: &Fetcher) -> Vec<OsString> {
        let max = fetch.env.config.media.max_input_size.as_u64().to_string();
        [
            "--ignore-config",
            "--no-exec",
            "--no-cache-dir",
            "--no-mtime",
            "--socket-timeout",
            SOCKET_TIMEOUT_SECS,
            "--max-filesize",
            &max,
        ]
        .into_iter()
        .map(OsString::from)
        .collect()
    }

    /// The job error for a run that ended unsuccessfully.
    fn failure(&self, ran: &Ran) -> JobError {
        classify(&self.path, ran.status, &ran.stderr)
    }

    async fn download(
        &self,
        track: &TrackInfo,
        to: &AudioFetch<'_>,
        fetch: &Fetcher,
    ) -> Result<PathBuf, JobError> {
        let url =
            check_id(&track.url).map_err(|m| JobError::permanent(code::VALIDATION_ERROR, m))?;
        guard_host(&url, fetch)?;
        remove_ours(to.staging, None);
        fetch
            .env
            .providers
            .admit("ytdlp", &fetch.env.limits, to.cancel)
            .await?;
        let mut args = self.base_args(fetch);
        let mut home = OsString::from("home:");
        home.push(to.staging);
        let mut temp = OsString::from("temp:");
        temp.push(to.staging);
        args.extend([
            OsString::from("--no-playlist"),
            "-f".into(),
            "bestaudio/best".into(),
            "-P".into(),
            home,
            "-P".into(),
            temp,
            "-o".into(),
            format!("{OUT_STEM}.%(ext)s").into(),
            "--newline".into(),
            "--progress-template".into(),
            format!(
                "download:{PROGRESS_TAG} %(progress.downloaded_bytes)s \
                     %(progress.total_bytes)s %(progress.total_bytes_estimate)s"
            )
            .into(),
            // A missing fragment means a partial file: fail instead of skipping it.
            "--abort-on-unavailable-fragments".into(),
            "--".into(),
            url.as_str().into(),
        ]);
        let max = fetch.env.config.media.max_input_size.as_u64();
        let ran = match self
            .run(
                fetch,
                args,
                Read::Progress {
                    report: to.progress,
                    max,
                },
                to.cancel,
            )
            .await
        {
            Ok(r) => r,
            Err(e) => {
                remove_ours(to.staging, None);
                return Err(e);
            }
        };
        if !ran.status.success() {
            remove_ours(to.staging, None);
            return Err(self.failure(&ran));
        }
        let Some(file) = produced(to.staging) else {
            remove_ours(to.staging, None);
            return Err(if ran.too_large {
                JobError::permanent(
                    code::TOO_LARGE,
                    format!("the audio is larger than media.max_input_size ({max} bytes)"),
                )
            } else {
                JobError::permanent(
                    code::UPSTREAM_ERROR,
                    format!("yt-dlp wrote no audio file for {url}"),
                )
            });
        };
        remove_ours(to.staging, Some(&file));
        Ok(file)
    }
}

/// Refuses a URL whose host is literally a blocked address (or `localhost`) before yt-dlp
/// starts; names are resolved and checked by the egress proxy, connection by connection.
fn guard_host(url: &url::Url, fetch: &Fetcher) -> Result<(), JobError> {
    let opts = &fetch.options;
    let host = url
        .host_str()
        .ok_or_else(|| JobError::permanent(code::VALIDATION_ERROR, "the URL has no host"))?;
    let ip = musicd_media::fetch::literal_address(host);
    match ip {
        Some(ip) if musicd_media::fetch::refuses(ip, opts.allow_private, &opts.allow_ips) => {
            Err(JobError::permanent(
                code::BLOCKED_ADDRESS,
                format!(
                    "{} is {ip}, a loopback, private or link-local address: refused \
                     (MUSICD_FETCH_ALLOW_PRIVATE allows it)",
                    url.host_str().unwrap_or_default()
                ),
            ))
        }
        _ => Ok(()),
    }
}

#[async_trait::async_trait]
impl Provider for Ytdlp {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: "ytdlp",
            kinds: KINDS,
            description: "Pages yt-dlp understands (video and audio sites, HTML5 <audio> pages): \
                          the best audio, downloaded by yt-dlp. The id is the page URL; kind \
                          `url` lets yt-dlp decide between a track and a playlist.",
        }
    }

    async fn resolve(&self, kind: &str, id: &str, fetch: &Fetcher) -> Result<Resolved, JobError> {
        if !KINDS.contains(&kind) {
            return Err(JobError::permanent(
                code::VALIDATION_ERROR,
                format!("ytdlp has no kind `{kind}` (it has {})", KINDS.join(", ")),
            ));
        }
        let url = check_id(id).map_err(|m| JobError::permanent(code::VALIDATION_ERROR, m))?;
        guard_host(&url, fetch)?;
        fetch
            .env
            .providers
            .admit("ytdlp", &fetch.env.limits, &fetch.cancel)
            .await?;
        let mut args = self.base_args(fetch);
        args.extend(["--dump-single-json", "--flat-playlist"].map(OsString::from));
        if kind == "track" {
            args.push("--no-playlist".into());
        }
        args.extend(["--".into(), OsString::from(url.as_str())]);
        let ran = self.run(fetch, args, Read::Json, &fetch.cancel).await?;
        if !ran.status.success() {
            return Err(self.failure(&ran));
        }
        let v: Value = serde_json::from_slice(&ran.stdout).map_err(|e| {
            JobError::permanent(
                code::UPSTREAM_ERROR,
                format!("yt-dlp printed no metadata for {url}: {e}"),
            )
        })?;
        to_resolved(kind, &v, url.as_str())
    }

    async fn fetch_audio(
        &self,
        track: &TrackInfo,
        to: &AudioFetch<'_>,
        fetch: &Fetcher,
    ) -> Option<Result<PathBuf, JobError>> {
        Some(self.download(track, to, fetch).await)
    }

    fn limits(&self) -> ProviderLimits {
        self.limits
    }

    async fn status(&self, _fetch: &Fetcher) -> Result<(), String> {
        self.version().await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn code(e: &JobError) -> (&'static str, bool) {
        match e {
            JobError::Permanent { code, .. } => (code, false),
            JobError::Transient { code, .. } => (code, true),
            JobError::Interrupted => ("interrupted", false),
        }
    }

    #[test]
    fn ids_are_urls_never_options() {
        assert!(check_id("--exec=touch /tmp/x").is_err());
        assert!(check_id(" -o/etc/x http://a/").is_err());
        assert!(check_id("file:///etc/passwd").is_err());
        assert!(check_id("http://").is_err());
        assert_eq!(
            check_id("https://example.com/watch?v=1").unwrap().as_str(),
            "https://example.com/watch?v=1"
        );
    }

    #[test]
    fn progress_lines() {
        assert_eq!(
            parse_progress("musicd-progress 1024 48736 NA"),
            Some((1024, Some(48736)))
        );
        assert_eq!(
            parse_progress("musicd-progress 10 NA 2000.5"),
            Some((10, Some(2000)))
        );
        assert_eq!(parse_progress("musicd-progress 10 NA NA"), Some((10, None)));
        assert_eq!(parse_progress("musicd-progress NA NA NA"), None);
        assert_eq!(parse_progress("[download] 10%"), None);
    }

    #[test]
    fn errors_are_classified() {
        let p = Path::new("yt-dlp");
        let st = ExitStatus::from_raw(1 << 8);
        let e = |s: &str| code(&classify(p, st, s));
        assert_eq!(
            e("WARNING: x\nERROR: Unsupported URL: http://a/"),
            ("upstream_error", false)
        );
        assert_eq!(
            e("ERROR: [generic] x: Unable to download webpage: HTTP Error 404: Not Found"),
            ("upstream_error", false)
        );
        assert_eq!(
            e("ERROR: [generic] x: Unable to download webpage: HTTP Error 503: Busy"),
            ("upstream_error", true)
        );
        assert_eq!(
            e("ERROR: [generic] x: Unable to download webpage: [Errno 111] Connection refused"),
            ("upstream_error", true)
        );
        assert_eq!(
            e("Usage: yt-dlp [OPTIONS] URL\n\nyt-dlp: error: no such option: --no-exec"),
            ("provider_unavailable", false)
        );
    }

    #[test]
    fn single_page_maps_to_a_track() {
        let v = serde_json::json!({
            "_type": "video", "id": "abc", "extractor_key": "Youtube",
            "title": "Video title", "track": "Song", "artists": ["A", "B"], "uploader": "U",
            "album": "LP", "track_number": 3, "release_date": "20240105", "upload_date": "20230101",
            "genres": ["Rock"], "description": "d".repeat(3000),
            "thumbnail": "https://i.example/t.jpg",
            "webpage_url": "https://www.example.com/watch?v=abc",
            "url": "https://media.example/abc.webm"
        });
        let Resolved::Track { track } = to_resolved("url", &v, "https://x/").unwrap() else {
            panic!()
        };
        assert_eq!(track.id, "abc");
        assert_eq!(track.url, "https://www.example.com/watch?v=abc");
        assert_eq!(track.title.as_deref(), Some("Song"));
        assert_eq!(track.artists, ["A", "B"]);
        assert_eq!(track.album.as_deref(), Some("LP"));
        assert_eq!(track.track_number, Some(3));
        assert_eq!(track.date.as_deref(), Some("2024-01-05"));
        assert_eq!(track.genres, ["Rock"]);
        assert_eq!(track.comment.as_ref().unwrap().chars().count(), 1000);
        assert_eq!(track.cover_url.as_deref(), Some("https://i.example/t.jpg"));

        let generic = serde_json::json!({
            "id": "page-1", "extractor_key": "HTML5MediaEmbed", "title": "T",
            "uploader": "Someone", "upload_date": "20261123",
            "webpage_url": "http://127.0.0.1:1/page.html"
        });
        let Resolved::Track { track } = to_resolved("url", &generic, "http://x/").unwrap() else {
            panic!()
        };
        assert_eq!(track.id, "http://127.0.0.1:1/page.html");
        assert_eq!(track.artists, ["Someone"]);
        assert_eq!(track.date.as_deref(), Some("2026-11-23"));
        assert!(to_resolved("track", &serde_json::json!({"entries": []}), "http://x/").is_err());
    }

    #[test]
    fn playlists_and_channels_keep_source_order() {
        let v = serde_json::json!({
            "_type": "playlist", "id": "UC1", "channel_id": "UC1", "uploader": "Chan",
            "title": "Chan - Videos",
            "entries": [
                {"_type": "url", "ie_key": "Youtube", "id": "b", "url": "https://e.x/watch?v=b", "title": "B"},
                null,
                {"_type": "url", "id": "bad", "url": "b"},
                {"_type": "playlist", "entries": [
                    {"_type": "url", "ie_key": "Youtube", "id": "a", "url": "https://e.x/watch?v=a", "title": "A", "uploader": "Other"}
                ]}
            ]
        });
        let Resolved::Collection {
            collection,
            title,
            tracks,
        } = to_resolved("url", &v, "https://e.x/@chan").unwrap()
        else {
            panic!()
        };
        assert_eq!(collection, "artist");
        assert_eq!(title.as_deref(), Some("Chan - Videos"));
        let ids: Vec<_> = tracks.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["b", "a"]);
        assert_eq!(tracks[0].artists, ["Chan"]);
        assert_eq!(tracks[1].artists, ["Other"]);

        let multi = serde_json::json!({"_type": "playlist", "id": "multi", "extractor_key": "Generic",
            "webpage_url": "http://h/multi.html", "entries": [
            {"id": "multi-1", "extractor_key": "HTML5MediaEmbed", "url": "http://h/x.mp3", "webpage_url": "http://h/multi.html"},
            {"id": "multi-2", "extractor_key": "HTML5MediaEmbed", "url": "http://h/y.mp3", "webpage_url": "http://h/multi.html"}]});
        let Resolved::Collection { tracks, .. } =
            to_resolved("url", &multi, "http://h/multi.html").unwrap()
        else {
            panic!()
        };
        let urls: Vec<_> = tracks
            .iter()
            .map(|t| (t.id.as_str(), t.url.as_str()))
            .collect();
        assert_eq!(
            urls,
            [
                ("http://h/x.mp3", "http://h/x.mp3"),
                ("http://h/y.mp3", "http://h/y.mp3")
            ]
        );

        let pl = serde_json::json!({"_type": "playlist", "id": "PL1", "title": "Mix", "entries": [
            {"url": "https://e.x/1", "id": "1"}]});
        let Resolved::Collection { collection, .. } =
            to_resolved("url", &pl, "https://e.x/").unwrap()
        else {
            panic!()
        };
        assert_eq!(collection, "playlist");
    }

    #[test]
    fn produced_skips_partials_and_cleanup_removes_them() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("ytdlp.webm.part"), vec![0u8; 100]).unwrap();
        std::fs::write(d.join("ytdlp.webm.part-Frag3"), vec![0u8; 100]).unwrap();
        std::fs::write(d.join("ytdlp.webm.ytdl"), b"x").unwrap();
        std::fs::write(d.join("other"), b"x").unwrap();
        assert!(produced(d).is_none());
        std::fs::write(d.join("ytdlp.webm"), b"audio").unwrap();
        let f = produced(d).unwrap();
        assert!(f.ends_with("ytdlp.webm"));
        remove_ours(d, Some(&f));
        let mut left: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        left.sort();
        assert_eq!(left, ["other", "ytdlp.webm"]);
    }
}
