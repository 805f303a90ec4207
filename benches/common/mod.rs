//! What the benchmarks share: the release `musicd serve` as a child process, and reading its
//! memory from `/proc`.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

pub const ADMIN_PASSWORD: &str = "bench-admin-password";
pub const JWT_SECRET: &str = "bench-jwt-secret-0123456789-abcdefghijklmn";

pub fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into())
}

/// A `kB` line of `/proc/<pid>/status`, in MiB.
pub fn proc_mib(pid: u32, key: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .strip_prefix(':')?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// GETs `url` with a bearer token; the JSON body.
pub async fn get_json(http: &reqwest::Client, url: String, token: &str) -> Value {
    http.get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// The daemon under test: a child process, stopped on drop (also when the bench panics).

#[path = "../../tests/support/daemon.rs"]
mod process;

/// The release `musicd serve` in a temp directory, the admin signed in on demand.
pub struct Daemon {
    pub process: process::Daemon,
    pub pid: u32,
    pub base: String,
    pub dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `musicd serve` in a temp directory with `extra` environment on top.
    pub async fn start(_http: &reqwest::Client, extra: &[(&str, String)]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // A temp working directory, so the repository's config/musicd.toml is not read.
        let mut env = vec![
            ("MUSICD_LISTEN", format!("127.0.0.1:{port}")),
            (
                "MUSICD_DATA_DIR",
                dir.path().join("data").display().to_string(),
            ),
            (
                "MUSICD_LIBRARY_DIR",
                dir.path().join("library").display().to_string(),
            ),
            ("MUSICD_ADMIN_USER", "admin".to_string()),
            ("MUSICD_ADMIN_PASSWORD", ADMIN_PASSWORD.to_string()),
            ("MUSICD_FETCH_ALLOW_PRIVATE", "true".to_string()),
            ("MUSICD_JWT_SECRET", JWT_SECRET.to_string()),
            ("MUSICD_LOG_LEVEL", "warn".to_string()),
            ("MUSICD_MEDIA__LYRICS", "off".to_string()),
            // The benches measure the daemon, not its connection cap (1,024 by default):
            // the SSE fan-out opens tens of thousands.
            ("MUSICD_HTTP__MAX_CONNECTIONS", "65536".to_string()),
        ];
        env.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
        let mut process = process::Daemon::spawn(&["serve"], &env, dir.path(), "musicd.log");
        process.graceful = true;
        process.wait_for("/readyz", Duration::from_secs(60)).await;
        Daemon {
            pid: process.pid(),
            base: process.base.clone(),
            process,
            dir,
        }
    }

    pub fn log_text(&self) -> String {
        self.process.log_text()
    }

    /// Logs in as the admin; the bearer token.
    pub async fn token(&self, http: &reqwest::Client) -> String {
        let r = http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "login: {}", r.status());
        let v: Value = r.json().await.unwrap();
        v["data"]["access_token"].as_str().unwrap().to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// Generated audio and a feed of it.

/// One generated 2-second stereo 440 Hz MP3.
pub fn make_mp3(dir: &Path) -> Vec<u8> {
    let out = dir.join("x.mp3");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"])
        .args(["-i", "sine=frequency=440:duration=2", "-ac", "2"])
        .arg(&out)
        .status()
        .expect("ffmpeg must be on PATH");
    assert!(status.success(), "ffmpeg failed");
    std::fs::read(out).unwrap()
}

/// An RSS 2.0 feed of `tracks` episodes at `<base>/ep/<i>.mp3`, each `len` bytes.
pub fn feed_xml(base: &str, tracks: usize, len: usize) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>\
         <title>Bench Podcast</title><link>http://example.invalid/</link>\
         <description>generated</description>\n",
    );
    for i in 0..tracks {
        // 2024-01-01 was a Monday; one minute apart so the episodes have an order.
        let (h, m) = ((i / 60) % 24, i % 60);
        s.push_str(&format!(
            "<item><title>Episode {i:04}</title><guid isPermaLink=\"false\">bench-episode-{i}</guid>\
             <pubDate>Mon, 01 Jan 2024 {h:02}:{m:02}:00 +0000</pubDate>\
             <description>Episode {i} of the benchmark feed.</description>\
             <enclosure url=\"{base}/ep/{i}.mp3\" length=\"{len}\" type=\"audio/mpeg\"/></item>\n"
        ));
    }
    s.push_str("</channel></rss>\n");
    s
}
