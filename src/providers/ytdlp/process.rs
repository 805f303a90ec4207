//! Running yt-dlp: the process group, the reduced environment, the egress session, reading
//! its output (metadata or progress lines), timeouts and cancellation, and classifying how a
//! run failed.

use super::*;
use crate::failure::code;

impl Ytdlp {
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

    pub(super) fn spawn_message(&self, e: &std::io::Error) -> String {
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

    /// Runs yt-dlp with `args` until it ends, `cancel` fires or the timeout passes (then it
    /// and its children are killed).
    pub(super) async fn run(
        &self,
        fetch: &Fetcher,
        args: Vec<OsString>,
        read: Read<'_>,
        cancel: &CancellationToken,
    ) -> Result<Ran, JobError> {
        let egress = fetch.env.egress.session();
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
                    JobError::permanent(code::PROVIDER_UNAVAILABLE, msg)
                }
                _ => JobError::transient(code::PROVIDER_UNAVAILABLE, msg),
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
                        code::TIMEOUT,
                        format!(
                            "yt-dlp ran longer than providers.ytdlp.timeout ({} s) and was stopped",
                            self.timeout.as_secs()
                        ),
                    ),
                    Stop::TooLarge(m) => JobError::permanent(code::TOO_LARGE, m),
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
            return Err(JobError::permanent(code::BLOCKED_ADDRESS, refused));
        }
        Ok(Ran {
            status,
            stdout,
            stderr,
            too_large: notice,
        })
    }
}

/// How a run's stdout is read.
pub(super) enum Read<'a> {
    /// Whole, as the metadata document.
    Json,
    /// Line by line: progress lines go to `report`; more than `max` bytes stops the run.
    Progress {
        report: &'a (dyn Fn(u64, Option<u64>) + Send + Sync),
        max: u64,
    },
}

/// Why a run was stopped.
pub(super) enum Stop {
    Cancelled,
    Timeout,
    TooLarge(String),
    Failed(JobError),
}

/// A finished run.
pub(super) struct Ran {
    pub(super) status: ExitStatus,
    pub(super) stdout: Vec<u8>,
    /// Its last lines.
    pub(super) stderr: String,
    /// yt-dlp said the file is larger than `--max-filesize` (it then exits 0).
    pub(super) too_large: bool,
}

/// Kills a process group when dropped, unless disarmed (after the leader was reaped).
pub(super) struct Group(Option<u32>);

impl Group {
    pub(super) fn kill(&self) {
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

    pub(super) fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(super) fn io_error(e: std::io::Error) -> JobError {
    JobError::transient(code::IO_ERROR, format!("reading from yt-dlp: {e}"))
}

/// Calls `f` with each line of `r` (longer lines come in pieces) until it returns false.
pub(super) async fn each_line<R: AsyncRead + Unpin>(r: R, mut f: impl FnMut(&str) -> bool) {
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
pub(super) fn parse_progress(line: &str) -> Option<(u64, Option<u64>)> {
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
pub(super) fn classify(path: &Path, status: ExitStatus, stderr: &str) -> JobError {
    let last_error = stderr
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("ERROR:"))
        .map(str::trim);
    let last_line = stderr.lines().rev().map(str::trim).find(|l| !l.is_empty());
    let Some(msg) = last_error else {
        if stderr.contains("yt-dlp: error:") || stderr.contains("no such option") {
            return JobError::permanent(
                code::PROVIDER_UNAVAILABLE,
                format!(
                    "yt-dlp at {} refused musicd's options (too old?): {}",
                    path.display(),
                    last_line.unwrap_or_default()
                ),
            );
        }
        if stderr.contains("Traceback (most recent call last)") {
            return JobError::permanent(
                code::PROVIDER_UNAVAILABLE,
                format!(
                    "yt-dlp at {} crashed: {}",
                    path.display(),
                    last_line.unwrap_or_default()
                ),
            );
        }
        return JobError::transient(
            code::UPSTREAM_ERROR,
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
        JobError::transient(code::UPSTREAM_ERROR, format!("yt-dlp: {msg}"))
    } else {
        JobError::permanent(code::UPSTREAM_ERROR, format!("yt-dlp: {msg}"))
    }
}

/// Environment variables yt-dlp is given: what a Python program needs to start and find its
/// interpreter and ffmpeg; nothing of ours, no proxy settings, no secrets.
pub(super) fn passed_env(name: &std::ffi::OsStr) -> bool {
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
