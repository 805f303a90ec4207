//! A stand-in for upstream sites: a loopback HTTP server whose files the test can change
//! (serve, answer 404, serve slowly), and generated audio (ffmpeg tones).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// How a file is served.
#[derive(Clone)]
pub enum Entry {
    /// The bytes with this content type.
    File(Arc<Vec<u8>>, &'static str),
    /// Served in 64 KiB chunks with this pause between them.
    Slow(Arc<Vec<u8>>, &'static str, Duration),
    /// 404.
    Missing,
    /// 429 with `Retry-After: <secs>` for the first `n` requests, then the file.
    Limited(Arc<Vec<u8>>, &'static str, u32, Arc<Mutex<u32>>),
    /// 302 to this URL.
    Redirect(String),
}

/// The server's files, by path (without the leading `/`).
#[derive(Clone, Default)]
pub struct Upstream {
    files: Arc<Mutex<HashMap<String, Entry>>>,
    /// Requests seen, by path.
    pub hits: Arc<Mutex<HashMap<String, usize>>>,
    /// 304 answers sent, by path.
    pub not_modified: Arc<Mutex<HashMap<String, usize>>>,
    /// Responses being sent now, and the most at once.
    inflight: Arc<Mutex<(usize, usize)>>,
    pub addr: Option<SocketAddr>,
}

impl Upstream {
    /// Starts the server on a free loopback port.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1").await
    }

    /// Starts the server on a free port of this loopback address (`127.0.0.2`, say: another
    /// "host" that the address guard can tell apart from the first).
    pub async fn start_on(ip: &str) -> Self {
        let mut up = Upstream::default();
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        up.addr = Some(listener.local_addr().unwrap());
        let router = axum::Router::new()
            .route("/{*path}", axum::routing::get(serve))
            .with_state(up.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        up
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr.unwrap())
    }

    pub fn set(&self, path: &str, e: Entry) {
        self.files.lock().unwrap().insert(path.to_string(), e);
    }

    /// Serves an RSS feed (see [`feed`]) at `path`.
    pub fn set_feed(&self, path: &str, title: &str, episodes: &[(String, String, String)]) {
        let xml = feed(title, episodes).into_bytes();
        self.set(path, Entry::File(Arc::new(xml), "application/rss+xml"));
    }

    /// The most responses that were being sent at once.
    pub fn max_inflight(&self) -> usize {
        self.inflight.lock().unwrap().1
    }

    /// Forgets the most-at-once count.
    pub fn reset_inflight(&self) {
        let mut f = self.inflight.lock().unwrap();
        f.1 = f.0;
    }

    /// How many requests for `path` were answered 304 (their `If-None-Match` matched).
    pub fn not_modified(&self, path: &str) -> usize {
        self.not_modified
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// Requests seen for any path.
    pub fn total_hits(&self) -> usize {
        self.hits.lock().unwrap().values().sum()
    }
}

async fn serve(
    State(up): State<Upstream>,
    UrlPath(path): UrlPath<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: axum::http::HeaderMap,
) -> Response {
    *up.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    // `path?query` first (API stand-ins answer by query), then the path alone.
    let entry = {
        let files = up.files.lock().unwrap();
        query
            .and_then(|q| files.get(&format!("{path}?{q}")).cloned())
            .or_else(|| files.get(&path).cloned())
    };
    match entry {
        Some(Entry::File(bytes, ct)) => {
            // A strong ETag from the content, and 304 when the client has it.
            let tag = format!("\"{:016x}\"", {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                bytes.hash(&mut h);
                h.finish()
            });
            if headers
                .get(header::IF_NONE_MATCH)
                .is_some_and(|v| v.as_bytes() == tag.as_bytes())
            {
                *up.not_modified.lock().unwrap().entry(path).or_default() += 1;
                return (StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response();
            }
            (
                [(header::CONTENT_TYPE, ct.to_string()), (header::ETAG, tag)],
                bytes.as_ref().clone(),
            )
                .into_response()
        }
        Some(Entry::Slow(bytes, ct, pause)) => {
            let len = bytes.len();
            let guard = Inflight::new(up.inflight.clone());
            let stream = async_stream::stream! {
                let _guard = guard;
                for chunk in bytes.chunks(64 * 1024) {
                    tokio::time::sleep(pause).await;
                    yield Ok::<_, std::io::Error>(axum::body::Bytes::copy_from_slice(chunk));
                }
            };
            (
                [
                    (header::CONTENT_TYPE, ct.to_string()),
                    (header::CONTENT_LENGTH, len.to_string()),
                ],
                Body::from_stream(stream),
            )
                .into_response()
        }
        Some(Entry::Limited(bytes, ct, secs, left)) => {
            let refuse = {
                let mut n = left.lock().unwrap();
                let refuse = *n > 0;
                *n = n.saturating_sub(1);
                refuse
            };
            if refuse {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, secs.to_string())],
                )
                    .into_response()
            } else {
                ([(header::CONTENT_TYPE, ct)], bytes.as_ref().clone()).into_response()
            }
        }
        Some(Entry::Redirect(to)) => (StatusCode::FOUND, [(header::LOCATION, to)]).into_response(),
        Some(Entry::Missing) | None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Counts a response in flight until dropped (the body is sent or the client left).
struct Inflight(Arc<Mutex<(usize, usize)>>);

impl Inflight {
    fn new(c: Arc<Mutex<(usize, usize)>>) -> Self {
        {
            let mut f = c.lock().unwrap();
            f.0 += 1;
            f.1 = f.1.max(f.0);
        }
        Self(c)
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        self.0.lock().unwrap().0 -= 1;
    }
}

/// A sine tone of `secs` seconds encoded by ffmpeg into `name` (its extension picks the
/// codec) under `dir`; returns the bytes.
pub fn tone(dir: &Path, name: &str, freq: u32, secs: u32) -> Vec<u8> {
    let out: PathBuf = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency={freq}:duration={secs}:sample_rate=44100"
        ))
        .args(["-ac", "2"])
        .arg(&out)
        .status()
        .expect("ffmpeg must be installed (bash .ci/setup-test)");
    assert!(status.success(), "ffmpeg made {name}");
    std::fs::read(out).unwrap()
}

/// An RSS 2.0 feed with iTunes fields; `episodes` are (guid, title, url).
pub fn feed(title: &str, episodes: &[(String, String, String)]) -> String {
    let items: String = episodes
        .iter()
        .enumerate()
        .map(|(i, (guid, t, url))| {
            format!(
                "<item><title>{t}</title><guid>{guid}</guid><itunes:episode>{}</itunes:episode>\
                 <pubDate>Mon, 0{} Nov 2026 10:00:00 GMT</pubDate>\
                 <enclosure url=\"{url}\" type=\"audio/mpeg\" length=\"1\"/></item>",
                i + 1,
                i + 1
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <rss version=\"2.0\" xmlns:itunes=\"http://www.itunes.com/dtds/podcast-1.0.dtd\">\
         <channel><title>{title}</title><itunes:author>Test Host</itunes:author>{items}</channel></rss>"
    )
}

/// Every regular file under `dir`, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Files in the library, not counting its staging area or its playlists.
pub fn library_files(library: &Path) -> Vec<PathBuf> {
    let staging = library.join(".musicd-staging");
    let playlists = library.join("Playlists");
    files_under(library)
        .into_iter()
        .filter(|p| !p.starts_with(&staging) && !p.starts_with(&playlists))
        .collect()
}

/// The entries of the library's `.m3u8` named `title`, as paths relative to the library.
pub fn playlist_entries(library: &Path, title: &str) -> Vec<String> {
    let path = library.join("Playlists").join(format!("{title}.m3u8"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no playlist {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.strip_prefix("../").unwrap_or(l).to_string())
        .collect()
}

/// Checks that ffprobe finds an audio stream and ffmpeg decodes the whole file without an
/// error; the error is what they printed.
pub fn decodes(path: &Path) -> Result<(), String> {
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_entries",
            "stream=codec_type",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe");
    if !String::from_utf8_lossy(&probe.stdout)
        .trim()
        .starts_with("audio")
    {
        return Err(format!(
            "{}: no audio stream: {}",
            path.display(),
            String::from_utf8_lossy(&probe.stderr)
        ));
    }
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    if out.status.success() && out.stderr.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The container tags ffprobe reads from a file (keys lowercased).
pub fn tags(path: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format_tags", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let mut lower = serde_json::Map::new();
    if let Some(m) = v["format"]["tags"].as_object() {
        for (k, val) in m {
            lower.insert(k.to_lowercase(), val.clone());
        }
    }
    serde_json::Value::Object(lower)
}
