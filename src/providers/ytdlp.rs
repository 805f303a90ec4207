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
use crate::jobs::JobError;

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
            },
            version: Mutex::new(None),
        }
    }

    /// yt-dlp's version (cached for a minute), or why it cannot run.
    pub async fn version(&self) -> Result<String, String> {
        if let Some((at, v)) = self.version.lock().ok().and_then(|g| g.clone())
            && at.elapsed() < STATUS_TTL
        {
            return v;
        }
        let run = tokio::process::Command::new(&self.path)
            .arg("--version")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .output();
        let v = match tokio::time::timeout(Duration::from_secs(30), run).await {
            Err(_) => Err(format!(
                "yt-dlp at {} did not answer --version within 30 s",
                self.path.display()
            )),
            Ok(Err(e)) => Err(self.spawn_message(&e)),
            Ok(Ok(out)) if out.status.success() => {
                Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
            }
            Ok(Ok(out)) => Err(format!(
                "yt-dlp at {} failed to report its version ({})",
                self.path.display(),
                out.status
            )),
        };
        if let Ok(mut g) = self.version.lock() {
            *g = Some((Instant::now(), v.clone()));
        }
        v
    }

    fn spawn_message(&self, e: &std::io::Error) -> String {
        match e.kind() {
            std::io::ErrorKind::NotFound => format!(
                "yt-dlp not found at {}: install it or set providers.ytdlp.path",
                self.path.display()
            ),
            _ => format!(
                "yt-dlp at {} cannot be run ({e}): check providers.ytdlp.path",
                self.path.display()
            ),
        }
    }

    /// Options of every run.
    fn base_args(&self, fetch: &Fetcher) -> Vec<OsString> {
        let max = fetch
            .shared
            .config
            .media
            .max_input_size
            .as_u64()
            .to_string();
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

    /// Runs yt-dlp with `args` until it ends, `cancel` fires or the timeout passes (then it
    /// and its children are killed).
    async fn run(
        &self,
        fetch: &Fetcher,
        args: Vec<OsString>,
        read: Read<'_>,
        cancel: &CancellationToken,
    ) -> Result<Ran, JobError> {
        let egress = fetch.shared.egress.session();
        let mut cmd = tokio::process::Command::new(&self.path);
        cmd.arg("--proxy")
            .arg(egress.proxy_url())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_clear()
            .envs(std::env::vars_os().filter(|(k, _)| passed_env(k)))
            .env("PYTHONUNBUFFERED", "1")
            .kill_on_drop(true);
        // Its own process group, so a kill reaches what it started (ffmpeg, say) too.
        #[cfg(unix)]
        cmd.process_group(0);
        let mut child = cmd.spawn().map_err(|e| {
            let msg = self.spawn_message(&e);
            match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                    JobError::permanent("provider_unavailable", msg)
                }
                _ => JobError::transient("provider_unavailable", msg),
            }
        })?;
        let mut group = Group(child.id());
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let tail = tokio::spawn(async move {
            let mut lines = VecDeque::new();
            if let Some(err) = stderr {
                each_line(err, |l| {
                    if lines.len() == STDERR_LINES {
                        lines.pop_front();
                    }
                    lines.push_back(l.to_string());
                    true
                })
                .await;
            }
            Vec::from(lines).join("\n")
        });
        let mut notice = false;
        let outcome = {
            let work = async {
                let mut out = Vec::new();
                match (read, stdout) {
                    (_, None) => {}
                    (Read::Json, Some(s)) => {
                        s.take(MAX_JSON + 1)
                            .read_to_end(&mut out)
                            .await
                            .map_err(|e| Stop::Failed(io_error(e)))?;
                        if out.len() as u64 > MAX_JSON {
                            return Err(Stop::TooLarge(format!(
                                "yt-dlp's metadata is larger than {MAX_JSON} bytes"
                            )));
                        }
                    }
                    (Read::Progress { report, max }, Some(s)) => {
                        let mut over = None;
                        each_line(s, |l| {
                            if let Some((done, total)) = parse_progress(l) {
                                if done > max {
                                    over = Some(done);
                                    return false;
                                }
                                report(done, total);
                            } else if l.contains("larger than max-filesize") {
                                notice = true;
                            }
                            true
                        })
                        .await;
                        if let Some(done) = over {
                            return Err(Stop::TooLarge(format!(
                                "the download passed {done} bytes, over media.max_input_size ({max} bytes)"
                            )));
                        }
                    }
                }
                let status = child.wait().await.map_err(|e| Stop::Failed(io_error(e)))?;
                Ok((out, status))
            };
            tokio::select! {
                r = work => r,
                _ = cancel.cancelled() => Err(Stop::Cancelled),
                _ = tokio::time::sleep(self.timeout) => Err(Stop::Timeout),
            }
        };
        let (stdout, status) = match outcome {
            Ok(r) => {
                group.disarm();
                r
            }
            Err(stop) => {
                group.kill();
                let _ = child.kill().await;
                group.disarm();
                let stderr = tail.await.unwrap_or_default();
                if !stderr.is_empty() {
                    tracing::debug!("yt-dlp stopped; its stderr: {stderr}");
                }
                return Err(match stop {
                    Stop::Cancelled => JobError::Interrupted,
                    Stop::Timeout => JobError::transient(
                        "timeout",
                        format!(
                            "yt-dlp ran longer than providers.ytdlp.timeout ({} s) and was stopped",
                            self.timeout.as_secs()
                        ),
                    ),
                    Stop::TooLarge(m) => JobError::permanent("too_large", m),
                    Stop::Failed(e) => e,
                });
            }
        };
        // A straggler that inherited stderr must not hold us up.
        let stderr = match tokio::time::timeout(Duration::from_secs(5), tail).await {
            Ok(r) => r.unwrap_or_default(),
            Err(_) => String::new(),
        };
        // Whatever yt-dlp made of it (it may skip a refused fragment and exit 0), a refused
        // connection fails the run: its output may be partial, or not what the page was.
        if let Some(refused) = egress.refusals().into_iter().next() {
            return Err(JobError::permanent("blocked_address", refused));
        }
        Ok(Ran {
            status,
            stdout,
            stderr,
            too_large: notice,
        })
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
        let url = check_id(&track.url).map_err(|m| JobError::permanent("validation_error", m))?;
        guard_host(&url, fetch)?;
        remove_ours(to.staging, None);
        fetch
            .shared
            .providers
            .admit("ytdlp", &fetch.shared.limits, to.cancel)
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
        let max = fetch.shared.config.media.max_input_size.as_u64();
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
                    "too_large",
                    format!("the audio is larger than media.max_input_size ({max} bytes)"),
                )
            } else {
                JobError::permanent(
                    "upstream_error",
                    format!("yt-dlp wrote no audio file for {url}"),
                )
            });
        };
        remove_ours(to.staging, Some(&file));
        Ok(file)
    }
}

/// How a run's stdout is read.
enum Read<'a> {
    /// Whole, as the metadata document.
    Json,
    /// Line by line: progress lines go to `report`; more than `max` bytes stops the run.
    Progress {
        report: &'a (dyn Fn(u64, Option<u64>) + Send + Sync),
        max: u64,
    },
}

/// Why a run was stopped.
enum Stop {
    Cancelled,
    Timeout,
    TooLarge(String),
    Failed(JobError),
}

/// A finished run.
struct Ran {
    status: ExitStatus,
    stdout: Vec<u8>,
    /// Its last lines.
    stderr: String,
    /// yt-dlp said the file is larger than `--max-filesize` (it then exits 0).
    too_large: bool,
}

/// Kills a process group when dropped, unless disarmed (after the leader was reaped).
struct Group(Option<u32>);

impl Group {
    fn kill(&self) {
        #[cfg(unix)]
        if let Some(pid) = self
            .0
            .and_then(|p| i32::try_from(p).ok())
            .filter(|p| *p > 1)
        {
            // SAFETY: plain syscall; the group is ours (process_group(0)) and its leader is
            // not reaped yet, so the id cannot have been reused.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }

    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

fn io_error(e: std::io::Error) -> JobError {
    JobError::transient("io_error", format!("reading from yt-dlp: {e}"))
}

/// Calls `f` with each line of `r` (longer lines come in pieces) until it returns false.
async fn each_line<R: AsyncRead + Unpin>(r: R, mut f: impl FnMut(&str) -> bool) {
    let mut r = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match (&mut r).take(MAX_LINE).read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if !f(String::from_utf8_lossy(&buf).trim_end()) {
            break;
        }
    }
}

/// Parses one of our progress lines: bytes done and the total (or yt-dlp's estimate).
fn parse_progress(line: &str) -> Option<(u64, Option<u64>)> {
    let mut it = line.strip_prefix(PROGRESS_TAG)?.split_whitespace();
    let num = |s: Option<&str>| {
        s.and_then(|s| s.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| v as u64)
    };
    let done = num(it.next())?;
    let total = num(it.next());
    let estimate = num(it.next());
    Some((done, total.or(estimate).filter(|t| *t > 0)))
}

/// Turns a failed run into a job error: a missing or unusable program is
/// `provider_unavailable`, network trouble and 5xx/429 are transient, the rest (unsupported
/// URL, 404, unavailable) is a permanent `upstream_error`.
fn classify(path: &Path, status: ExitStatus, stderr: &str) -> JobError {
    let last_error = stderr
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("ERROR:"))
        .map(str::trim);
    let last_line = stderr.lines().rev().map(str::trim).find(|l| !l.is_empty());
    let Some(msg) = last_error else {
        if stderr.contains("yt-dlp: error:") || stderr.contains("no such option") {
            return JobError::permanent(
                "provider_unavailable",
                format!(
                    "yt-dlp at {} refused musicd's options (too old?): {}",
                    path.display(),
                    last_line.unwrap_or_default()
                ),
            );
        }
        if stderr.contains("Traceback (most recent call last)") {
            return JobError::permanent(
                "provider_unavailable",
                format!(
                    "yt-dlp at {} crashed: {}",
                    path.display(),
                    last_line.unwrap_or_default()
                ),
            );
        }
        return JobError::transient(
            "upstream_error",
            format!(
                "yt-dlp failed ({status}){}",
                last_line.map(|l| format!(": {l}")).unwrap_or_default()
            ),
        );
    };
    let msg: String = msg.chars().take(500).collect();
    let lower = msg.to_ascii_lowercase();
    let http = lower
        .split("http error ")
        .nth(1)
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse::<u16>().ok());
    let transient = match http {
        Some(code) => code >= 500 || code == 429 || code == 408,
        None => [
            "timed out",
            "timeout",
            "connection refused",
            "connection reset",
            "connection aborted",
            "temporary failure",
            "network is unreachable",
            "remote end closed",
            "incompleteread",
            "incomplete read",
            "eof occurred",
            "failed to establish a new connection",
            "giving up after",
            "did not get any data blocks",
            "content too short",
        ]
        .iter()
        .any(|m| lower.contains(m)),
    };
    if transient {
        JobError::transient("upstream_error", format!("yt-dlp: {msg}"))
    } else {
        JobError::permanent("upstream_error", format!("yt-dlp: {msg}"))
    }
}

/// Refuses a URL whose host is literally a blocked address (or `localhost`) before yt-dlp
/// starts; names are resolved and checked by the egress proxy, connection by connection.
fn guard_host(url: &url::Url, fetch: &Fetcher) -> Result<(), JobError> {
    let opts = &fetch.options;
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(ip.into()),
        Some(url::Host::Ipv6(ip)) => Some(ip.into()),
        Some(url::Host::Domain(d)) => (d.eq_ignore_ascii_case("localhost")
            || d.to_ascii_lowercase().ends_with(".localhost"))
        .then_some(std::net::IpAddr::from([127, 0, 0, 1])),
        None => {
            return Err(JobError::permanent(
                "validation_error",
                "the URL has no host",
            ));
        }
    };
    match ip {
        Some(ip) if musicd_workers::fetch::refuses(ip, opts.allow_private, &opts.allow_ips) => {
            Err(JobError::permanent(
                "blocked_address",
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

/// Environment variables yt-dlp is given: what a Python program needs to start and find its
/// interpreter and ffmpeg; nothing of ours, no proxy settings, no secrets.
fn passed_env(name: &std::ffi::OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    matches!(
        name,
        "PATH"
            | "HOME"
            | "LANG"
            | "LC_ALL"
            | "LC_CTYPE"
            | "TZ"
            | "TMPDIR"
            | "PYENV_ROOT"
            | "PYENV_VERSION"
    )
}

/// Whether a file name is one of yt-dlp's partial or temporary files.
fn is_partial(name: &str) -> bool {
    name.ends_with(".part")
        || name.ends_with(".ytdl")
        || name.ends_with(".temp")
        || name.ends_with(".tmp")
        || name.contains(".part-Frag")
        || name.contains(".temp.")
}

fn ours(name: &str) -> bool {
    name.strip_prefix(OUT_STEM)
        .is_some_and(|r| r.starts_with('.'))
}

/// The finished file yt-dlp wrote (the largest, should there be several).
fn produced(staging: &Path) -> Option<PathBuf> {
    std::fs::read_dir(staging)
        .ok()?
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            ours(&n) && !is_partial(&n) && e.file_type().is_ok_and(|t| t.is_file())
        })
        .max_by_key(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .map(|e| e.path())
}

/// Removes what yt-dlp wrote into `staging` (partial files, fragments), except `keep`.
fn remove_ours(staging: &Path, keep: Option<&Path>) {
    let Ok(rd) = std::fs::read_dir(staging) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if !ours(&e.file_name().to_string_lossy()) || keep == Some(p.as_path()) {
            continue;
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(&p);
        } else {
            let _ = std::fs::remove_file(&p);
        }
    }
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)?
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn texts(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A list yt-dlp joined with `", "`.
fn split_list(s: &str) -> Vec<String> {
    s.split(", ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `YYYYMMDD` → `YYYY-MM-DD`.
fn ymd(s: &str) -> Option<String> {
    (s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{}-{}-{}", &s[..4], &s[4..6], &s[6..]))
}

fn http_url(s: &str) -> Option<String> {
    check_id(s).ok().map(|u| u.to_string())
}

/// One track from a yt-dlp info dict or flat playlist entry; `None` without a usable URL.
fn track_from(v: &Value, page: Option<&str>) -> Option<TrackInfo> {
    let url = ["webpage_url", "url", "original_url"]
        .iter()
        .filter_map(|k| text(v, k))
        .chain(page)
        .find_map(http_url)?;
    // The generic extractors' ids are file names, not identities.
    let generic = matches!(
        text(v, "extractor_key").or(text(v, "ie_key")),
        Some("Generic" | "HTML5MediaEmbed")
    );
    let id = match v.get("id") {
        _ if generic => url.clone(),
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => url.clone(),
    };
    let mut artists = texts(v, "artists");
    for key in ["artist", "creators", "creator", "uploader", "channel"] {
        if !artists.is_empty() {
            break;
        }
        artists = match key {
            "creators" => texts(v, key),
            "artist" | "creator" => text(v, key).map(split_list).unwrap_or_default(),
            _ => text(v, key)
                .map(|s| vec![s.to_string()])
                .unwrap_or_default(),
        };
    }
    let mut genres = texts(v, "genres");
    if genres.is_empty() {
        genres = text(v, "genre").map(split_list).unwrap_or_default();
    }
    let date = ["release_date", "upload_date"]
        .iter()
        .filter_map(|k| text(v, k))
        .find_map(ymd)
        .or_else(|| {
            v.get("release_year")
                .and_then(Value::as_u64)
                .filter(|y| (1000..=9999).contains(y))
                .map(|y| y.to_string())
        });
    let cover_url = text(v, "thumbnail").and_then(http_url).or_else(|| {
        v.get("thumbnails")?
            .as_array()?
            .iter()
            .rev()
            .filter_map(|t| text(t, "url"))
            .find_map(http_url)
    });
    let album_artists = texts(v, "album_artists");
    Some(TrackInfo {
        id,
        title: text(v, "track")
            .or_else(|| text(v, "title"))
            .map(str::to_string)
            .or_else(|| super::url_stem(&url)),
        url,
        artists,
        album: text(v, "album").map(str::to_string),
        album_artist: text(v, "album_artist")
            .map(str::to_string)
            .or_else(|| (!album_artists.is_empty()).then(|| album_artists.join(", "))),
        track_number: v
            .get("track_number")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok()),
        track_total: None,
        date,
        genres,
        comment: text(v, "description")
            .map(|d| d.chars().take(MAX_COMMENT_CHARS).collect::<String>())
            .map(|d| d.trim().to_string()),
        cover_url,
    })
}

/// Entries of a playlist dict in source order, nested playlists flattened.
fn entries<'a>(v: &'a Value, depth: u8, out: &mut Vec<&'a Value>) {
    for e in v
        .get("entries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if e.get("entries").is_some_and(Value::is_array) && depth < 4 {
            entries(e, depth + 1, out);
        } else if e.is_object() {
            out.push(e);
        }
    }
}

/// Whether a playlist dict is a channel or uploader page.
fn is_channel(v: &Value) -> bool {
    let id = text(v, "id");
    id.is_some() && (id == text(v, "channel_id") || id == text(v, "uploader_id"))
        || text(v, "extractor_key")
            .is_some_and(|k| k.ends_with("User") || k.ends_with("Channel") || k.ends_with("Artist"))
}

/// Maps yt-dlp's `--dump-single-json --flat-playlist` document to what `kind` asked for.
fn to_resolved(kind: &str, v: &Value, page: &str) -> Result<Resolved, JobError> {
    let is_list =
        text(v, "_type") == Some("playlist") || v.get("entries").is_some_and(Value::is_array);
    if !is_list {
        let track = track_from(v, Some(page)).ok_or_else(|| {
            JobError::permanent("upstream_error", format!("yt-dlp found no URL for {page}"))
        })?;
        return Ok(match kind {
            "playlist" | "artist" => Resolved::Collection {
                collection: kind.to_string(),
                title: track.title.clone(),
                tracks: vec![track],
            },
            _ => Resolved::Track { track },
        });
    }
    if kind == "track" {
        return Err(JobError::permanent(
            "validation_error",
            format!("{page} is a playlist, not one track: ask for kind `playlist` or `url`"),
        ));
    }
    let collection = match kind {
        "artist" | "playlist" => kind,
        _ if is_channel(v) => "artist",
        _ => "playlist",
    };
    let owner = text(v, "uploader")
        .or_else(|| text(v, "channel"))
        .or_else(|| text(v, "artist"));
    let mut list = Vec::new();
    entries(v, 0, &mut list);
    let pages = [text(v, "webpage_url").and_then(http_url), http_url(page)];
    let tracks = list
        .into_iter()
        .filter_map(|e| Some((e, track_from(e, None)?)))
        .map(|(e, mut t)| {
            // Several media on one page (HTML5 `<audio>` elements) share the page's URL:
            // each is fetched by its own media URL instead.
            if pages.contains(&Some(t.url.clone()))
                && let Some(own) = text(e, "url").and_then(http_url)
            {
                if t.id == t.url {
                    t.id = own.clone();
                }
                t.url = own;
            }
            if collection == "artist"
                && t.artists.is_empty()
                && let Some(o) = owner
            {
                t.artists = vec![o.to_string()];
            }
            t
        })
        .collect();
    Ok(Resolved::Collection {
        collection: collection.to_string(),
        title: text(v, "title").map(str::to_string),
        tracks,
    })
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
                "validation_error",
                format!("ytdlp has no kind `{kind}` (it has {})", KINDS.join(", ")),
            ));
        }
        let url = check_id(id).map_err(|m| JobError::permanent("validation_error", m))?;
        guard_host(&url, fetch)?;
        fetch
            .shared
            .providers
            .admit("ytdlp", &fetch.shared.limits, &fetch.cancel)
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
                "upstream_error",
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
