//! Verified, resumable HTTP download into the staging area.
//!
//! - Streams to a temp file; on a broken transfer it resumes with `Range`, but only when the
//!   server's `Content-Range` starts exactly where we asked; otherwise it starts again from
//!   zero. A server that ignores `Range` (answers 200) restarts the file.
//! - The length is checked against `Content-Length`/`Content-Range`, and a SHA-256 when given.
//! - Connect errors, resets, timeouts, 408, 429 and 5xx are retried with exponential backoff
//!   and jitter, honouring `Retry-After`; other 4xx fail at once.
//! - SSRF guard: every host is resolved by our own resolver, which refuses loopback, private,
//!   link-local, CGNAT, multicast and cloud-metadata addresses unless `allow_private` is set.
//!   Redirects are followed by hand so each hop is checked again, and credentials (extra
//!   headers) are sent only to the origin they were given for.
//! - The environment's proxy settings (`HTTP_PROXY`, …) are ignored: a proxy is used only when
//!   [`FetchOptions::proxy`] names one. Through a proxy the guard can check only the URL's
//!   literal host (an IP address or `localhost`): the proxy resolves the name.
//! - A cancellation token aborts the transfer and removes the temp file.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{
    CONTENT_LENGTH, CONTENT_RANGE, HeaderMap, HeaderName, HeaderValue, LOCATION, RANGE, RETRY_AFTER,
};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::error::{ErrorCode, PipelineError, Result};
use crate::place::StagedFile;

/// Options of one download.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Allow loopback/private/link-local targets (`MUSICD_FETCH_ALLOW_PRIVATE`).
    pub allow_private: bool,
    /// Addresses allowed even though they are private (e.g. a LAN mirror).
    pub allow_ips: Vec<IpAddr>,
    /// Refuse bodies larger than this.
    pub max_bytes: u64,
    /// Attempts in total, including the first.
    pub max_attempts: u32,
    /// First backoff delay; doubles per attempt, with jitter.
    pub base_backoff: Duration,
    /// Longest single wait (also caps `Retry-After`).
    pub max_backoff: Duration,
    /// Redirect hops allowed.
    pub max_redirects: u32,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Longest silence while reading the body.
    pub read_timeout: Duration,
    /// Extra headers (e.g. `Authorization`), sent only to the URL's own origin.
    pub headers: Vec<(String, String)>,
    /// User agent.
    pub user_agent: String,
    /// Expected SHA-256 of the body, when the source publishes one.
    pub sha256: Option<[u8; 32]>,
    /// An outbound proxy (`http://host:port`), only when configured (`fetch.proxy`).
    pub proxy: Option<String>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            allow_private: false,
            allow_ips: Vec::new(),
            max_bytes: 2 * 1024 * 1024 * 1024,
            max_attempts: 5,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            max_redirects: 10,
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
            headers: Vec::new(),
            user_agent: format!("musicd/{}", env!("CARGO_PKG_VERSION")),
            sha256: None,
            proxy: None,
        }
    }
}

/// Progress of a download.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FetchProgress {
    /// Bytes in the temp file.
    pub bytes_done: u64,
    /// Expected total, when the server said.
    pub total: Option<u64>,
    /// Average speed of this attempt, bytes per second.
    pub bytes_per_sec: f64,
}

/// A finished download. The file is deleted when this is dropped unless [`Fetched::keep`] is
/// called; pass [`Fetched::path`] to the pipeline and drop it afterwards.
#[derive(Debug)]
pub struct Fetched {
    file: StagedFile,
    /// Bytes written.
    pub bytes: u64,
    /// URL after redirects.
    pub final_url: Url,
    /// `Content-Type` of the final response.
    pub content_type: Option<String>,
}

impl Fetched {
    /// Path of the downloaded file in the staging directory.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Keep the file past this value's lifetime and return its path.
    pub fn keep(self) -> PathBuf {
        self.file.keep()
    }
}

/// Whether an address is one the SSRF guard refuses.
pub fn is_blocked_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_blocked_v4(v4),
        IpAddr::V6(v6) => {
            // IPv4-mapped (`::ffff:a.b.c.d`) and IPv4-compatible (`::a.b.c.d`) forms reach the
            // IPv4 address: judge that one.
            if let Some(v4) = v6.to_ipv4() {
                return is_blocked_v4(v4);
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local (incl. fd00:ec2::254 metadata)
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64 can reach anything v4
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        }
    }
}

/// Whether the guard refuses `ip` under these rules: blocked ranges are refused unless
/// private targets are allowed or the address is listed in `allow_ips`.
pub fn refuses(ip: IpAddr, allow_private: bool, allow_ips: &[IpAddr]) -> bool {
    !allow_private && !allow_ips.contains(&ip) && is_blocked_ip(ip)
}

fn is_blocked_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, includes 169.254.169.254 metadata
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // CGNAT 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || o[0] >= 240 // reserved
}

/// A resolver that drops blocked addresses, so the check holds for the address actually
/// connected to (no DNS-rebinding window).
struct GuardResolver {
    allow: Arc<Vec<IpAddr>>,
}

impl Resolve for GuardResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| !refuses(a.ip(), false, &allow))
                .collect();
            if allowed.is_empty() {
                return Err(
                    Box::new(BlockedError(host)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[derive(Debug)]
struct BlockedError(String);

impl std::fmt::Display for BlockedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} resolves only to blocked (private, loopback or link-local) addresses",
            self.0
        )
    }
}

impl std::error::Error for BlockedError {}

fn blocked(msg: impl Into<String>) -> PipelineError {
    PipelineError::new(ErrorCode::BlockedAddress, msg)
}

pub(crate) fn upstream_permanent(msg: impl Into<String>) -> PipelineError {
    PipelineError::new(ErrorCode::UpstreamError, msg)
}

pub(crate) fn upstream_transient(msg: impl Into<String>) -> PipelineError {
    PipelineError::transient(ErrorCode::UpstreamError, msg)
}

/// Check scheme and literal IP hosts (which never reach the resolver).
pub(crate) fn check_url(url: &Url, opts: &FetchOptions) -> Result<()> {
    let allow_private = opts.allow_private;
    let refuse = |ip: IpAddr| refuses(ip, allow_private, &opts.allow_ips);
    if !matches!(url.scheme(), "http" | "https") {
        return Err(upstream_permanent(format!(
            "unsupported URL scheme {:?}",
            url.scheme()
        )));
    }
    let host = url
        .host_str()
        .ok_or_else(|| upstream_permanent("URL has no host"))?;
    match literal_address(host) {
        Some(ip) if refuse(ip) => Err(blocked(format!("{host} is a blocked address"))),
        _ => Ok(()),
    }
}

/// The address a host names without a lookup: an IP literal (bracketed or not), or
/// `localhost` and `*.localhost` (127.0.0.1). Checks that cannot resolve names (before a
/// program starts, through a proxy) judge these.
pub fn literal_address(host: &str) -> Option<IpAddr> {
    let h = host.trim_matches(['[', ']']);
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Some(ip);
    }
    let lower = h.to_ascii_lowercase();
    (lower == "localhost" || lower.ends_with(".localhost")).then_some(IpAddr::from([127, 0, 0, 1]))
}

pub(crate) fn build_client(opts: &FetchOptions) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(opts.connect_timeout)
        .read_timeout(opts.read_timeout)
        .user_agent(opts.user_agent.clone());
    if let Some(proxy) = &opts.proxy {
        // The proxy resolves target names, so only their literal form is checked
        // (`check_url`); the proxy's own address is the operator's choice, not refused.
        let p = reqwest::Proxy::all(proxy)
            .map_err(|e| upstream_permanent(format!("fetch.proxy {proxy:?}: {e}")))?;
        b = b.proxy(p);
    } else {
        // Never `HTTP_PROXY` and friends from the environment: they would take name
        // resolution, and with it the guard, out of our hands.
        b = b.no_proxy();
        if !opts.allow_private {
            b = b.dns_resolver(Arc::new(GuardResolver {
                allow: Arc::new(opts.allow_ips.clone()),
            }));
        }
    }
    b.build()
        .map_err(|e| upstream_permanent(format!("HTTP client: {e}")))
}

pub(crate) fn classify_reqwest(e: &reqwest::Error) -> PipelineError {
    // Find our resolver's refusal anywhere in the cause chain.
    let mut src: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = src {
        if let Some(b) = s.downcast_ref::<BlockedError>() {
            return blocked(b.to_string());
        }
        src = s.source();
    }
    upstream_transient(format!("transfer failed: {e}"))
}

pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

pub(crate) fn parse_retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(RETRY_AFTER)?.to_str().ok()?.trim();
    v.parse::<u64>().ok().map(Duration::from_secs)
}

/// Parse `bytes start-end/total` (total may be `*`).
fn parse_content_range(h: &HeaderMap) -> Option<(u64, u64, Option<u64>)> {
    let v = h.get(CONTENT_RANGE)?.to_str().ok()?;
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let total = if total == "*" {
        None
    } else {
        Some(total.parse().ok()?)
    };
    Some((start.parse().ok()?, end.parse().ok()?, total))
}

fn backoff(opts: &FetchOptions, attempt: u32) -> Duration {
    let exp = opts
        .base_backoff
        .saturating_mul(1u32 << attempt.min(16).saturating_sub(1));
    let capped = exp.min(opts.max_backoff);
    // Jitter in [50%, 100%] so synchronized clients spread out.
    capped.mul_f64(0.5 + rand::random::<f64>() * 0.5)
}

/// Send a GET, following redirects by hand with the guard applied on every hop.
async fn get_following(
    client: &reqwest::Client,
    start: &Url,
    range_from: Option<u64>,
    opts: &FetchOptions,
) -> Result<(reqwest::Response, Url)> {
    let mut url = start.clone();
    for _ in 0..=opts.max_redirects {
        check_url(&url, opts)?;
        let mut req = client.get(url.clone());
        if same_origin(&url, start) {
            for (k, v) in &opts.headers {
                let name = HeaderName::from_bytes(k.as_bytes())
                    .map_err(|e| upstream_permanent(format!("header {k}: {e}")))?;
                let value = HeaderValue::from_str(v)
                    .map_err(|e| upstream_permanent(format!("header {k}: {e}")))?;
                req = req.header(name, value);
            }
        }
        if let Some(from) = range_from.filter(|f| *f > 0) {
            req = req.header(RANGE, format!("bytes={from}-"));
        }
        let resp = req.send().await.map_err(|e| classify_reqwest(&e))?;
        if resp.status().is_redirection() && resp.status() != StatusCode::NOT_MODIFIED {
            let loc = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    upstream_permanent(format!("{} redirect without Location", resp.status()))
                })?;
            url = url
                .join(loc)
                .map_err(|e| upstream_permanent(format!("bad redirect target {loc:?}: {e}")))?;
            continue;
        }
        return Ok((resp, url));
    }
    Err(upstream_permanent(format!(
        "more than {} redirects",
        opts.max_redirects
    )))
}

/// A small document fetched with validators (see [`fetch_document`]).
#[derive(Debug)]
pub enum Document {
    /// 304: unchanged since the validators were issued.
    NotModified,
    /// The body, with the validators to send next time.
    Body {
        /// The bytes.
        bytes: Vec<u8>,
        /// `Content-Type`.
        content_type: Option<String>,
        /// `ETag`.
        etag: Option<String>,
        /// `Last-Modified`.
        last_modified: Option<String>,
    },
}

/// One guarded GET of a small document (a feed) into memory, conditional on an earlier answer's
/// `ETag` and `Last-Modified`: [`Document::NotModified`] when the server says 304. No retries
/// (the caller's job retries); 429/5xx are transient with `Retry-After`.
pub async fn fetch_document(
    url: &str,
    opts: &FetchOptions,
    etag: Option<&str>,
    last_modified: Option<&str>,
    cancel: &CancellationToken,
) -> Result<Document> {
    let start = Url::parse(url).map_err(|e| upstream_permanent(format!("bad URL: {e}")))?;
    let client = build_client(opts)?;
    let mut opts = opts.clone();
    if let Some(e) = etag {
        opts.headers.push(("If-None-Match".into(), e.into()));
    }
    if let Some(l) = last_modified {
        opts.headers.push(("If-Modified-Since".into(), l.into()));
    }
    let (resp, final_url) = tokio::select! {
        _ = cancel.cancelled() => return Err(PipelineError::cancelled()),
        r = get_following(&client, &start, None, &opts) => r?,
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let host = final_url.host_str().unwrap_or("").to_owned();
    match status {
        StatusCode::NOT_MODIFIED => return Ok(Document::NotModified),
        s if s.is_success() => {}
        s if s == StatusCode::TOO_MANY_REQUESTS
            || s == StatusCode::REQUEST_TIMEOUT
            || s.is_server_error() =>
        {
            let mut e = upstream_transient(format!("HTTP {s} from {host}"));
            e.retry_after = parse_retry_after(&headers);
            return Err(e);
        }
        s => {
            return Err(upstream_permanent(format!(
                "HTTP {s} from {host} for {final_url}"
            )));
        }
    }
    let text = |h| {
        headers
            .get(h)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let (content_type, etag, last_modified) = (
        text(reqwest::header::CONTENT_TYPE),
        text(reqwest::header::ETAG),
        text(reqwest::header::LAST_MODIFIED),
    );
    let mut bytes = Vec::new();
    let mut stream = resp.bytes_stream();
    loop {
        let next = tokio::select! {
            _ = cancel.cancelled() => return Err(PipelineError::cancelled()),
            n = stream.next() => n,
        };
        match next {
            Some(Ok(chunk)) => {
                if (bytes.len() + chunk.len()) as u64 > opts.max_bytes {
                    return Err(PipelineError::new(
                        ErrorCode::TooLarge,
                        format!("body exceeds the cap of {} bytes", opts.max_bytes),
                    ));
                }
                bytes.extend_from_slice(&chunk);
            }
            Some(Err(e)) => {
                return Err(upstream_transient(format!(
                    "transfer from {host} broke: {e}"
                )));
            }
            None => break,
        }
    }
    Ok(Document::Body {
        bytes,
        content_type,
        etag,
        last_modified,
    })
}

/// Download `url` into a new temp file in `staging_dir`.
pub async fn fetch(
    url: &str,
    staging_dir: &Path,
    opts: &FetchOptions,
    progress: &(dyn Fn(FetchProgress) + Send + Sync),
    cancel: &CancellationToken,
) -> Result<Fetched> {
    let start =
        Url::parse(url).map_err(|e| upstream_permanent(format!("invalid URL {url:?}: {e}")))?;
    check_url(&start, opts)?;
    let client = build_client(opts)?;
    let staged = StagedFile::new(staging_dir, "part")?;
    let file = tokio::fs::File::create(staged.path())
        .await
        .map_err(|e| PipelineError::io("create temp file", e))?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut have: u64 = 0;
    let mut last_err: Option<PipelineError> = None;

    for attempt in 1..=opts.max_attempts.max(1) {
        if attempt > 1 {
            let wait = match last_err.as_ref().and_then(|e| e.retry_after) {
                Some(ra) if ra > opts.max_backoff => {
                    // The server wants a longer pause than we hold a worker for: hand it back.
                    return Err(last_err.unwrap_or_else(|| upstream_transient("throttled")));
                }
                Some(ra) => ra,
                None => backoff(opts, attempt - 1),
            };
            tokio::select! {
                _ = cancel.cancelled() => return Err(PipelineError::cancelled()),
                _ = tokio::time::sleep(wait) => {}
            }
        }
        match attempt_once(&client, &start, opts, &mut out, &mut have, progress, cancel).await {
            Ok((final_url, content_type)) => {
                out.flush()
                    .await
                    .map_err(|e| PipelineError::io("flush temp file", e))?;
                out.get_ref()
                    .sync_all()
                    .await
                    .map_err(|e| PipelineError::io("fsync temp file", e))?;
                if let Some(want) = opts.sha256 {
                    let got = crate::place::hash_file(staged.path())?;
                    if got != want {
                        // Corrupt in transit or changed upstream: start over next time.
                        have = 0;
                        out.get_mut()
                            .set_len(0)
                            .await
                            .map_err(|e| PipelineError::io("truncate", e))?;
                        out.seek(std::io::SeekFrom::Start(0))
                            .await
                            .map_err(|e| PipelineError::io("seek", e))?;
                        last_err = Some(upstream_transient("SHA-256 mismatch"));
                        continue;
                    }
                }
                return Ok(Fetched {
                    file: staged,
                    bytes: have,
                    final_url,
                    content_type,
                });
            }
            Err(e) if e.transient && e.code != ErrorCode::Cancelled => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    let e = last_err.unwrap_or_else(|| upstream_transient("download failed"));
    Err(PipelineError {
        message: format!("{} (after {} attempts)", e.message, opts.max_attempts),
        ..e
    })
}

async fn restart(out: &mut tokio::io::BufWriter<tokio::fs::File>, have: &mut u64) -> Result<()> {
    out.flush()
        .await
        .map_err(|e| PipelineError::io("flush temp file", e))?;
    out.get_mut()
        .set_len(0)
        .await
        .map_err(|e| PipelineError::io("truncate temp file", e))?;
    out.seek(std::io::SeekFrom::Start(0))
        .await
        .map_err(|e| PipelineError::io("seek temp file", e))?;
    *have = 0;
    Ok(())
}

/// Writeback is started every this many bytes, so the final fsync waits only for the tail.
const WRITEBACK_STEP: u64 = 16 * 1024 * 1024;

/// Ask the kernel to start writing out what has reached the file so far (Linux
/// `sync_file_range`, which does not wait), so disk writes overlap the download instead of
/// all landing in the fsync at the end. Elsewhere, and on any error, it does nothing: the
/// fsync at the end is what guarantees durability.
fn start_writeback(out: &tokio::io::BufWriter<tokio::fs::File>, have: u64, done: &mut u64) {
    // What the BufWriter still holds has not reached the file yet.
    let in_file = have.saturating_sub(out.buffer().len() as u64);
    if in_file < *done {
        // The file was truncated for a restart.
        *done = 0;
    }
    if in_file - *done < WRITEBACK_STEP {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let len = in_file - *done;
        // SAFETY: a valid open descriptor; the call only schedules writeback of the range.
        unsafe {
            libc::sync_file_range(
                out.get_ref().as_raw_fd(),
                *done as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    *done = in_file;
}

async fn attempt_once(
    client: &reqwest::Client,
    start: &Url,
    opts: &FetchOptions,
    out: &mut tokio::io::BufWriter<tokio::fs::File>,
    have: &mut u64,
    progress: &(dyn Fn(FetchProgress) + Send + Sync),
    cancel: &CancellationToken,
) -> Result<(Url, Option<String>)> {
    let (resp, final_url) = tokio::select! {
        _ = cancel.cancelled() => return Err(PipelineError::cancelled()),
        r = get_following(client, start, Some(*have), opts) => r?,
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let host = final_url.host_str().unwrap_or("").to_owned();
    let total = match status {
        StatusCode::OK => {
            if *have > 0 {
                // Range ignored: the body is the whole file again.
                restart(out, have).await?;
            }
            resp.content_length()
        }
        StatusCode::PARTIAL_CONTENT => match parse_content_range(&headers) {
            Some((s, _, total)) if s == *have => total,
            _ => {
                // Not the range we asked for: discard what we have and start from zero.
                restart(out, have).await?;
                return Err(upstream_transient(
                    "server answered a different range; restarting",
                ));
            }
        },
        StatusCode::RANGE_NOT_SATISFIABLE => {
            restart(out, have).await?;
            return Err(upstream_transient("range not satisfiable; restarting"));
        }
        s if s == StatusCode::TOO_MANY_REQUESTS
            || s == StatusCode::REQUEST_TIMEOUT
            || s.is_server_error() =>
        {
            let mut e = upstream_transient(format!("HTTP {s} from {host}"));
            e.retry_after = parse_retry_after(&headers);
            return Err(e);
        }
        s => {
            return Err(upstream_permanent(format!(
                "HTTP {s} from {host} for {final_url}"
            )));
        }
    };
    if let Some(t) = total
        && t > opts.max_bytes
    {
        return Err(PipelineError::new(
            ErrorCode::TooLarge,
            format!("{t} bytes is above the cap of {}", opts.max_bytes),
        ));
    }
    // Content-Length of a 206 is the remainder; keep a full-file total for checks.
    let expected_total = match status {
        StatusCode::PARTIAL_CONTENT => total.or_else(|| {
            headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                .map(|l| l + *have)
        }),
        _ => total,
    };
    let content_type = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let started = Instant::now();
    let at_start = *have;
    let mut last_report = Instant::now() - Duration::from_secs(1);
    let mut stream = resp.bytes_stream();
    // Bytes before this offset have been handed to the kernel for writeback.
    let mut written_back = (*have / WRITEBACK_STEP) * WRITEBACK_STEP;
    loop {
        let next = tokio::select! {
            _ = cancel.cancelled() => return Err(PipelineError::cancelled()),
            n = stream.next() => n,
        };
        match next {
            Some(Ok(chunk)) => {
                *have += chunk.len() as u64;
                if *have > opts.max_bytes {
                    return Err(PipelineError::new(
                        ErrorCode::TooLarge,
                        format!("body exceeds the cap of {} bytes", opts.max_bytes),
                    ));
                }
                out.write_all(&chunk)
                    .await
                    .map_err(|e| PipelineError::io("write temp file", e))?;
                start_writeback(out, *have, &mut written_back);
                if last_report.elapsed() >= Duration::from_millis(250) {
                    last_report = Instant::now();
                    let secs = started.elapsed().as_secs_f64().max(1e-3);
                    progress(FetchProgress {
                        bytes_done: *have,
                        total: expected_total,
                        bytes_per_sec: (*have - at_start) as f64 / secs,
                    });
                }
            }
            Some(Err(e)) => {
                // Keep what arrived; the next attempt resumes from here.
                out.flush()
                    .await
                    .map_err(|e| PipelineError::io("flush temp file", e))?;
                return Err(upstream_transient(format!(
                    "transfer from {host} broke after {have} bytes: {e}"
                )));
            }
            None => break,
        }
    }
    out.flush()
        .await
        .map_err(|e| PipelineError::io("flush temp file", e))?;
    if let Some(t) = expected_total {
        if *have < t {
            return Err(upstream_transient(format!(
                "short body from {host}: {have} of {t} bytes"
            )));
        }
        if *have > t {
            restart(out, have).await?;
            return Err(upstream_transient(format!(
                "body longer than announced ({t} bytes); restarting"
            )));
        }
    }
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    progress(FetchProgress {
        bytes_done: *have,
        total: expected_total,
        bytes_per_sec: (*have - at_start) as f64 / secs,
    });
    Ok((final_url, content_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_private_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            // IPv4-compatible IPv6 reaches the IPv4 address too.
            "::127.0.0.1",
            "::10.0.0.1",
            "::169.254.169.254",
        ] {
            assert!(is_blocked_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "1.1.1.1"] {
            assert!(!is_blocked_ip(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn literal_hosts_are_known_without_a_lookup() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(literal_address("127.0.0.1"), ip("127.0.0.1"));
        assert_eq!(literal_address("[::127.0.0.1]"), ip("::127.0.0.1"));
        assert_eq!(literal_address("LocalHost"), ip("127.0.0.1"));
        assert_eq!(literal_address("a.localhost"), ip("127.0.0.1"));
        assert_eq!(literal_address("example.com"), None);
    }

    #[test]
    fn parses_content_range() {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_RANGE, HeaderValue::from_static("bytes 100-199/200"));
        assert_eq!(parse_content_range(&h), Some((100, 199, Some(200))));
    }
}
