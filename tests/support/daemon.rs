//! The real `musicd` binary as a child process, shared by the integration tests and the
//! benches: started with a clean `MUSICD_*` environment, logging to a file, waited for until
//! it answers, stopped on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `musicd <args>`.
pub struct Daemon {
    pub child: Child,
    /// `http://<MUSICD_LISTEN>`.
    pub base: String,
    /// Its stdout and stderr.
    pub log: PathBuf,
    /// On drop: SIGTERM and up to 5 s to exit (else SIGKILL at once).
    pub graceful: bool,
}

impl Daemon {
    /// Runs `musicd <args>` in `cwd` with only `envs` of the `MUSICD_*` variables, logging to
    /// `cwd/<log>`.
    pub fn spawn(args: &[&str], envs: &[(&str, String)], cwd: &Path, log: &str) -> Self {
        let log = cwd.join(log);
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_musicd"));
        cmd.args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("MUSICD_") {
                cmd.env_remove(k);
            }
        }
        let mut base = String::new();
        for (k, v) in envs {
            if *k == "MUSICD_LISTEN" {
                base = format!("http://{v}");
            }
            cmd.env(k, v);
        }
        Self {
            child: cmd.spawn().expect("spawn musicd"),
            base,
            log,
            graceful: false,
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `/healthz` answers (30 s at most).
    pub async fn wait_ready(&mut self) {
        self.wait_for("/healthz", Duration::from_secs(30)).await;
    }

    /// Waits until `path` answers with a success; panics with the log if the process exits
    /// first or `within` passes.
    pub async fn wait_for(&mut self, path: &str, within: Duration) {
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{}{path}", self.base)).send().await
                && r.status().is_success()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("musicd exited early ({status}): {}", self.log_text());
            }
            assert!(
                started.elapsed() < within,
                "musicd never became ready: {}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no cleanup at all.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: signalling our own child by its pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        self.child.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.graceful {
            // SAFETY: signalling our own child by its pid.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
