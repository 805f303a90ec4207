//! What the benchmarks share: the release `musicd serve` as a child process, and reading its
//! memory from `/proc`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

pub struct Daemon {
    pub child: Child,
    pub pid: u32,
    pub base: String,
    pub log: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `musicd serve` in a temp directory with `extra` environment on top.
    pub async fn start(http: &reqwest::Client, extra: &[(&str, String)]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.path().join("musicd.log");
        let logf = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_musicd"));
        // A temp working directory, so the repository's config/musicd.toml is not read.
        cmd.arg("serve").current_dir(dir.path());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("MUSICD_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("MUSICD_LISTEN", format!("127.0.0.1:{port}"))
            .env("MUSICD_DATA_DIR", dir.path().join("data"))
            .env("MUSICD_LIBRARY_DIR", dir.path().join("library"))
            .env("MUSICD_ADMIN_USER", "admin")
            .env("MUSICD_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("MUSICD_FETCH_ALLOW_PRIVATE", "true")
            .env("MUSICD_JWT_SECRET", JWT_SECRET)
            .env("MUSICD_LOG_LEVEL", "warn")
            // The benches measure the daemon, not its connection cap (1,024 by default):
            // the SSE fan-out opens tens of thousands.
            .env("MUSICD_HTTP__MAX_CONNECTIONS", "65536")
            .envs(extra.iter().map(|(k, v)| (k.to_string(), v.clone())))
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf);
        let child = cmd.spawn().expect("start target/release/musicd");
        let mut d = Daemon {
            pid: child.id(),
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            dir,
        };
        let t0 = Instant::now();
        loop {
            if let Ok(Some(st)) = d.child.try_wait() {
                panic!("musicd exited ({st}):\n{}", d.log_text());
            }
            if let Ok(r) = http.get(format!("{}/readyz", d.base)).send().await
                && r.status().is_success()
            {
                return d;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "musicd not ready after 60 s:\n{}",
                d.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
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

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.pid as i32, libc::SIGTERM) };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
