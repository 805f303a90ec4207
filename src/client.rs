//! The client verbs `add`, `tasks` and `task`: they talk to a running daemon's `/api/v1` with
//! an API key, and `--follow` shows a download's progress from its event stream.
//!
//! Exit status: 0 on success, 1 when the daemon refused a request or a followed download did
//! not fully succeed, 2 for usage and connection problems, 130 when following is interrupted.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::config::Config;

/// Task statuses the API reports.
const STATUSES: [&str; 7] = [
    "queued",
    "running",
    "processing",
    "done",
    "failed",
    "cancelled",
    "skipped",
];

/// Time limit for an ordinary request (not the event stream).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The daemon sends a keep-alive every 15 s; this much silence means the stream is dead.
const STREAM_IDLE: Duration = Duration::from_secs(45);
/// How long to keep trying to reach the daemon again while following.
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(15);

/// Where the daemon is and the key to send it.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Daemon URL, e.g. http://127.0.0.1:7171 [default: `[client] url`, else http://<listen>]
    #[arg(long = "url", env = "MUSICD_URL", value_name = "URL")]
    daemon_url: Option<String>,
    /// API key, sent as `X-API-Key` [default: `[client] api_key`]
    #[arg(
        long,
        env = "MUSICD_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    api_key: Option<String>,
}

/// `musicd add`: ask the daemon to download something.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// What to download: a file, page or feed URL.
    #[arg(value_name = "URL")]
    source: String,
    /// Output format: copy, mp3, opus, flac, vorbis or wav [default: the daemon's `[media] format`]
    #[arg(long)]
    format: Option<String>,
    /// low, medium, high or lossless [default: the daemon's `[media] quality`]
    #[arg(long)]
    quality: Option<String>,
    /// Library layout for this request (syntax in docs/MEDIA.md).
    #[arg(long)]
    path_template: Option<String>,
    /// Show progress until the download ends; the exit status is 0 only if every track succeeded.
    #[arg(long)]
    follow: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// `musicd tasks`: list tasks, newest first.
#[derive(Debug, Args)]
pub struct TasksArgs {
    /// Only tasks with this status.
    #[arg(long, value_parser = STATUSES)]
    status: Option<String>,
    /// Only tasks that have not finished.
    #[arg(long)]
    active: bool,
    /// How many tasks to show (1–200).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=200))]
    limit: u32,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// `musicd task`: one task and its tracks.
#[derive(Debug, Args)]
pub struct TaskArgs {
    /// Task id (as printed by `musicd add` and `musicd tasks`).
    id: String,
    /// Print the API's JSON instead of a summary.
    #[arg(long)]
    json: bool,
    /// Show progress until the task ends, as `musicd add --follow` does.
    #[arg(long)]
    follow: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// `musicd watch …`.
#[derive(Debug, clap::Subcommand)]
pub enum WatchCommand {
    /// Watch a feed URL or a playlist page (or, with --provider and --kind, a provider's id).
    Add(WatchAddArgs),
    /// List your watches with their last and next check.
    List {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Check one watch now, or all of yours without an id.
    Check {
        /// Watch id (as printed by `musicd watch list`).
        id: Option<String>,
        /// Only show what would be added and removed.
        #[arg(long, requires = "id")]
        dry_run: bool,
        #[command(flatten)]
        connect: ConnectArgs,
    },
}

/// `musicd watch add`.
#[derive(Debug, Args)]
pub struct WatchAddArgs {
    /// A feed URL or playlist page; with --provider, the provider's id.
    #[arg(value_name = "URL_OR_ID")]
    source: String,
    /// A provider (e.g. jamendo) whose id SOURCE is.
    #[arg(long, requires = "kind")]
    provider: Option<String>,
    /// With --provider: feed, playlist or artist.
    #[arg(long)]
    kind: Option<String>,
    /// Cron expression (UTC) [default: the daemon's `[watch] default_schedule`]
    #[arg(long)]
    schedule: Option<String>,
    /// Also download what is there now (otherwise only later additions download).
    #[arg(long)]
    download_existing: bool,
    /// For artists: release types to keep (album, single, compilation, appears_on).
    #[arg(long, value_delimiter = ',')]
    release_types: Vec<String>,
    /// When the source drops an item: keep, delete or flag.
    #[arg(long, value_parser = ["keep", "delete", "flag"])]
    on_removed: Option<String>,
    /// Output format [default: the daemon's `[media] format`]
    #[arg(long)]
    format: Option<String>,
    /// Quality preset [default: the daemon's `[media] quality`]
    #[arg(long)]
    quality: Option<String>,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// Runs `musicd watch …`.
pub async fn watch(config: &Config, command: WatchCommand) -> ExitCode {
    report(watch_inner(config, command).await)
}

/// Runs `musicd add`.
pub async fn add(config: &Config, args: AddArgs) -> ExitCode {
    report(add_inner(config, args).await)
}

/// Runs `musicd tasks`.
pub async fn tasks(config: &Config, args: TasksArgs) -> ExitCode {
    report(tasks_inner(config, args).await)
}

/// Runs `musicd task`.
pub async fn task(config: &Config, args: TaskArgs) -> ExitCode {
    report(task_inner(config, args).await)
}

/// Why a client verb failed.
#[derive(Debug)]
enum ClientError {
    /// Bad input or missing settings (exit 2).
    Usage(String),
    /// The daemon could not be reached, or what answered was not the daemon (exit 2).
    Connect(String),
    /// The daemon refused, with its error envelope (exit 1).
    Api {
        status: u16,
        code: String,
        message: String,
        details: Vec<Value>,
    },
}

fn report(result: Result<ExitCode, ClientError>) -> ExitCode {
    let e = match result {
        Ok(code) => return code,
        Err(e) => e,
    };
    match e {
        ClientError::Usage(msg) | ClientError::Connect(msg) => {
            eprintln!("musicd: {msg}");
            ExitCode::from(2)
        }
        ClientError::Api {
            status,
            code,
            message,
            details,
        } => {
            eprintln!("musicd: {code}: {message}");
            for d in &details {
                eprintln!("  {d}");
            }
            match status {
                401 => eprintln!("  (check the key given by --api-key or MUSICD_API_KEY)"),
                403 => eprintln!("  (the API key may lack the `write` scope)"),
                _ => {}
            }
            ExitCode::from(1)
        }
    }
}

/// How to get a key, for when none is configured.
fn no_key_help(root: &str) -> String {
    format!(
        "no API key: pass --api-key, set MUSICD_API_KEY, or set `api_key` in the [client] section of the config file.
To create a key, log in and ask for one with the `write` scope (it is shown only once):
  TOKEN=$(curl -s {root}/api/v1/auth/login -H 'content-type: application/json' \\
      -d '{{\"username\":\"USER\",\"password\":\"PASSWORD\"}}' | jq -r .data.access_token)
  curl -s {root}/api/v1/api-keys -H \"authorization: Bearer $TOKEN\" \\
      -H 'content-type: application/json' -d '{{\"name\":\"cli\",\"scopes\":[\"read\",\"write\"]}}' | jq -r .data.key
  export MUSICD_API_KEY=<that key>"
    )
}

/// The daemon's address when it listens on all interfaces: the same port on loopback.
fn local_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// The daemon's root URL (without `/api/v1`): the flag or environment, then `[client] url`,
/// then `http://<listen>`.
fn resolve_root(flag: Option<String>, config: &Config) -> Result<String, ClientError> {
    let raw = flag
        .filter(|s| !s.trim().is_empty())
        .or_else(|| Some(config.client.url.clone()).filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| format!("http://{}", local_addr(config.listen)));
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("http://{raw}")
    };
    let url = url::Url::parse(&with_scheme)
        .map_err(|e| ClientError::Usage(format!("daemon URL `{raw}`: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ClientError::Usage(format!(
            "daemon URL `{raw}`: must start with http:// or https://"
        )));
    }
    let root = url.as_str().trim_end_matches('/');
    Ok(root
        .strip_suffix("/api/v1")
        .unwrap_or(root)
        .trim_end_matches('/')
        .to_string())
}

/// A daemon's API, with the key to send.
struct Daemon {
    http: reqwest::Client,
    root: String,
    key: String,
}

impl Daemon {
    fn new(config: &Config, args: ConnectArgs) -> Result<Self, ClientError> {
        let root = resolve_root(args.daemon_url, config)?;
        let key = args
            .api_key
            .filter(|k| !k.trim().is_empty())
            .or_else(|| Some(config.client.api_key.clone()).filter(|k| !k.trim().is_empty()))
            .ok_or_else(|| ClientError::Usage(no_key_help(&root)))?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("musicd/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ClientError::Usage(format!("cannot set up HTTP: {e}")))?;
        Ok(Self {
            http,
            root,
            key: key.trim().to_string(),
        })
    }

    /// `<root>/api/v1/<segments…>`, each segment escaped.
    fn url(&self, segments: &[&str]) -> url::Url {
        let mut url = url::Url::parse(&format!("{}/api/v1", self.root)).expect("checked root");
        url.path_segments_mut()
            .expect("http URLs have paths")
            .extend(segments);
        url
    }

    fn unreachable(&self, e: &reqwest::Error) -> ClientError {
        if e.is_timeout() {
            return ClientError::Connect(format!(
                "the daemon at {} did not answer in time",
                self.root
            ));
        }
        let mut msg = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            source = s.source();
        }
        ClientError::Connect(format!(
            "cannot reach the daemon at {} ({msg}); is it running? Set MUSICD_URL or --url",
            self.root
        ))
    }

    /// Sends a request and reads the envelope's `data`.
    async fn call<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let resp = req
            .header("x-api-key", &self.key)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let url = resp.url().clone();
        let body = resp.bytes().await.map_err(|e| self.unreachable(&e))?;
        let value: Value =
            serde_json::from_slice(&body).map_err(|_| not_the_api(status, &url, &body))?;
        if !status.is_success() || value.get("success") == Some(&Value::Bool(false)) {
            return Err(api_error(status, &url, &value, &body));
        }
        let data = value.get("data").cloned().unwrap_or(Value::Null);
        serde_json::from_value(data).map_err(|e| {
            ClientError::Connect(format!(
                "unexpected answer from {url}: {e} (is this a musicd of the same version?)"
            ))
        })
    }

    async fn get_task(&self, id: &str) -> Result<Task, ClientError> {
        self.call(self.http.get(self.url(&["tasks", id]))).await
    }

    /// Every child of a parent, in creation order, following the cursor.
    async fn children(&self, id: &str) -> Result<Vec<Task>, ClientError> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut req = self
                .http
                .get(self.url(&["tasks", id, "children"]))
                .query(&[("limit", "200")]);
            if let Some(c) = &cursor {
                req = req.query(&[("cursor", c)]);
            }
            let page: Page = self.call(req).await?;
            all.extend(page.items);
            match page.next_cursor {
                Some(c) if Some(&c) != cursor.as_ref() => cursor = Some(c),
                _ => return Ok(all),
            }
        }
    }

    /// Opens the event stream of a task and its children, resuming after `last_id`.
    async fn open_events(
        &self,
        task_id: &str,
        last_id: Option<&str>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut req = self
            .http
            .get(self.url(&["events"]))
            .query(&[("task_id", task_id)])
            .header("x-api-key", &self.key)
            .header("accept", "text/event-stream");
        if let Some(id) = last_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let url = resp.url().clone();
        let body = resp.bytes().await.map_err(|e| self.unreachable(&e))?;
        Err(match serde_json::from_slice::<Value>(&body) {
            Ok(v) => api_error(status, &url, &v, &body),
            Err(_) => not_the_api(status, &url, &body),
        })
    }
}

/// An answer that is not the API's JSON: a proxy's error page, another server.
fn not_the_api(status: reqwest::StatusCode, url: &url::Url, body: &[u8]) -> ClientError {
    let text: String = String::from_utf8_lossy(body).chars().take(200).collect();
    ClientError::Connect(format!(
        "{url} answered HTTP {status} without the API's JSON: {}",
        text.trim()
    ))
}

fn api_error(status: reqwest::StatusCode, url: &url::Url, v: &Value, body: &[u8]) -> ClientError {
    let Some(err) = v.get("error") else {
        return not_the_api(status, url, body);
    };
    ClientError::Api {
        status: status.as_u16(),
        code: err["code"].as_str().unwrap_or("error").to_string(),
        message: err["message"].as_str().unwrap_or("").to_string(),
        details: err["details"].as_array().cloned().unwrap_or_default(),
    }
}

/// A task as the API shows it (the fields the client uses).
#[derive(Debug, Clone, Deserialize)]
struct Task {
    id: String,
    #[serde(default)]
    kind: String,
    status: String,
    stage: Option<String>,
    #[serde(default)]
    progress: f64,
    #[serde(default)]
    bytes_done: i64,
    bytes_total: Option<i64>,
    #[serde(default)]
    attempts: i64,
    error: Option<String>,
    error_code: Option<String>,
    source: Option<String>,
    output_path: Option<String>,
    #[serde(default)]
    created_at: i64,
    #[serde(default)]
    updated_at: i64,
}

/// A page of tasks.
#[derive(Debug, Deserialize)]
struct Page {
    items: Vec<Task>,
    next_cursor: Option<String>,
}

/// The `data` of a task event (every field optional, so a newer daemon's events still parse).
#[derive(Debug, Clone, Default, Deserialize)]
struct EventData {
    task_id: Option<String>,
    status: Option<String>,
    stage: Option<String>,
    /// 0 to 100.
    percent: Option<f64>,
    bytes_done: Option<i64>,
    bytes_total: Option<i64>,
    speed_bps: Option<f64>,
    eta_seconds: Option<f64>,
    attempts: Option<i64>,
    error: Option<String>,
    error_code: Option<String>,
    output_path: Option<String>,
    source: Option<String>,
    title: Option<String>,
}

impl From<&Task> for EventData {
    fn from(t: &Task) -> Self {
        Self {
            task_id: Some(t.id.clone()),
            status: Some(t.status.clone()),
            stage: t.stage.clone(),
            percent: Some(t.progress * 100.0),
            bytes_done: Some(t.bytes_done),
            bytes_total: t.bytes_total,
            speed_bps: None,
            eta_seconds: None,
            attempts: Some(t.attempts),
            error: t.error.clone(),
            error_code: t.error_code.clone(),
            output_path: t.output_path.clone(),
            source: t.source.clone(),
            title: None,
        }
    }
}

fn is_final(status: &str) -> bool {
    matches!(status, "done" | "failed" | "cancelled" | "skipped")
}

/// The status an event implies when its data does not say.
fn status_of_event(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "task.created" | "task.queued" | "task.retrying" => "queued",
        "task.started" => "running",
        "task.completed" => "done",
        "task.failed" => "failed",
        "task.skipped" => "skipped",
        "task.cancelled" => "cancelled",
        _ => return None,
    })
}

async fn add_inner(config: &Config, args: AddArgs) -> Result<ExitCode, ClientError> {
    let daemon = Daemon::new(config, args.connect)?;
    let mut body = json!({ "url": args.source });
    for (k, v) in [
        ("format", &args.format),
        ("quality", &args.quality),
        ("path_template", &args.path_template),
    ] {
        if let Some(v) = v {
            body[k] = json!(v);
        }
    }
    #[derive(Deserialize)]
    struct Created {
        task_id: String,
    }
    let req = daemon.http.post(daemon.url(&["downloads"])).json(&body);
    let task_id = match daemon.call::<Created>(req).await {
        Ok(c) => {
            println!("requested as task {}", c.task_id);
            c.task_id
        }
        Err(ClientError::Api { code, details, .. })
            if code == "duplicate_request"
                && details
                    .first()
                    .and_then(|d| d["task_id"].as_str())
                    .is_some() =>
        {
            let id = details[0]["task_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            println!("already requested as task {id}");
            id
        }
        Err(e) => return Err(e),
    };
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    Follow::new(task_id).run(&daemon).await
}

async fn tasks_inner(config: &Config, args: TasksArgs) -> Result<ExitCode, ClientError> {
    let daemon = Daemon::new(config, args.connect)?;
    let mut query = vec![("limit", args.limit.to_string())];
    if let Some(s) = args.status {
        query.push(("status", s));
    }
    if args.active {
        query.push(("active_only", "true".into()));
    }
    let data: Value = daemon
        .call(daemon.http.get(daemon.url(&["tasks"])).query(&query))
        .await?;
    if args.json {
        println!("{}", pretty(&data));
        return Ok(ExitCode::SUCCESS);
    }
    let page: Page = serde_json::from_value(data)
        .map_err(|e| ClientError::Connect(format!("unexpected task list: {e}")))?;
    if page.items.is_empty() {
        println!("no tasks");
    } else {
        print!("{}", table(&page.items));
    }
    if page.next_cursor.is_some() {
        println!("(more tasks: raise --limit, at most 200)");
    }
    Ok(ExitCode::SUCCESS)
}

async fn task_inner(config: &Config, args: TaskArgs) -> Result<ExitCode, ClientError> {
    let daemon = Daemon::new(config, args.connect)?;
    if args.follow {
        return Follow::new(args.id).run(&daemon).await;
    }
    let data: Value = daemon
        .call(daemon.http.get(daemon.url(&["tasks", &args.id])))
        .await?;
    if args.json {
        println!("{}", pretty(&data));
        return Ok(ExitCode::SUCCESS);
    }
    let t: Task = serde_json::from_value(data)
        .map_err(|e| ClientError::Connect(format!("unexpected task: {e}")))?;
    let now = now_ms();
    let mut rows = vec![
        ("id", t.id.clone()),
        ("kind", t.kind.clone()),
        ("status", t.status.clone()),
    ];
    if let Some(s) = &t.stage {
        rows.push(("stage", s.clone()));
    }
    let mut progress = format!("{:.0}%", t.progress * 100.0);
    if t.bytes_done > 0 || t.bytes_total.is_some() {
        progress.push_str(&format!("  {}", bytes_of(t.bytes_done, t.bytes_total)));
    }
    rows.push(("progress", progress));
    rows.push(("attempts", t.attempts.to_string()));
    if let Some(s) = &t.source {
        rows.push(("source", s.clone()));
    }
    if let Some(p) = &t.output_path {
        rows.push(("output", p.clone()));
    }
    if let Some(e) = &t.error {
        rows.push(("error", with_code(e, t.error_code.as_deref())));
    }
    rows.push(("created", ago(now, t.created_at)));
    rows.push(("updated", ago(now, t.updated_at)));
    for (k, v) in rows {
        println!("{k:<9} {v}");
    }
    if t.kind == "download" {
        match daemon.children(&t.id).await {
            Ok(children) if !children.is_empty() => {
                println!();
                print!("{}", table(&children));
            }
            Ok(_) => {}
            Err(e @ ClientError::Connect(_)) => return Err(e),
            Err(_) => eprintln!("musicd: this daemon does not list a task's children"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// A compact table: id, kind, status, progress, and the output (when done) or the source.
fn table(tasks: &[Task]) -> String {
    let rows: Vec<[String; 5]> = tasks
        .iter()
        .map(|t| {
            let mut what = match (&t.output_path, &t.source) {
                (Some(p), _) if t.status == "done" => p.clone(),
                (_, Some(s)) => s.clone(),
                (Some(p), None) => p.clone(),
                (None, None) => String::new(),
            };
            if let Some(e) = t.error.as_deref().filter(|_| t.status != "done") {
                what = format!("{what}  [{e}]").trim_start().to_string();
            }
            [
                t.id.clone(),
                t.kind.clone(),
                t.status.clone(),
                format!("{:.0}%", t.progress * 100.0),
                what,
            ]
        })
        .collect();
    let head = ["ID", "KIND", "STATUS", "PROGRESS", "SOURCE / OUTPUT"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([head[i].len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2, w3) = (width(0), width(1), width(2), width(3));
    let mut out = String::new();
    for r in std::iter::once(head.map(String::from)).chain(rows) {
        out.push_str(&format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {}\n",
            r[0], r[1], r[2], r[3], r[4]
        ));
    }
    out
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `12s ago`, `5m ago`, `3h ago`, `2d ago`.
fn ago(now: i64, at: i64) -> String {
    if at <= 0 {
        return "-".into();
    }
    let s = ((now - at) / 1000).max(0);
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

fn bytes_of(done: i64, total: Option<i64>) -> String {
    let b = |n: i64| bytesize::ByteSize(n.max(0) as u64).to_string();
    match total {
        Some(t) if t > 0 => format!("{} / {}", b(done), b(t)),
        _ => b(done),
    }
}

fn with_code(error: &str, code: Option<&str>) -> String {
    match code {
        Some(c) if !c.is_empty() => format!("{error} [{c}]"),
        _ => error.to_string(),
    }
}

/// A short name for a task: the last path segment of its source, decoded.
fn title_of(source: Option<&str>, fallback: &str) -> String {
    let Some(src) = source.map(str::trim).filter(|s| !s.is_empty()) else {
        return fallback.to_string();
    };
    let last = match url::Url::parse(src) {
        Ok(u) => u
            .path_segments()
            .and_then(|mut s| s.rfind(|p| !p.is_empty()).map(percent_decode))
            .or_else(|| u.host_str().map(str::to_string)),
        Err(_) => src.rsplit('/').find(|p| !p.is_empty()).map(str::to_string),
    };
    last.unwrap_or_else(|| src.to_string())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let hex = |i: usize| bytes.get(i).and_then(|&b| (b as char).to_digit(16));
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Bars on a terminal, plain lines otherwise.
enum Ui {
    Bars(MultiProgress),
    Plain,
}

impl Ui {
    fn new() -> Self {
        if std::io::stdout().is_terminal() {
            Ui::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stdout()))
        } else {
            Ui::Plain
        }
    }

    fn line(&self, s: &str) {
        match self {
            Ui::Bars(m) => m.suspend(|| println!("{s}")),
            Ui::Plain => println!("{s}"),
        }
    }

    fn warn(&self, s: &str) {
        match self {
            Ui::Bars(m) => m.suspend(|| eprintln!("musicd: {s}")),
            Ui::Plain => eprintln!("musicd: {s}"),
        }
    }

    fn bar(&self, style: &ProgressStyle) -> Option<ProgressBar> {
        match self {
            Ui::Bars(m) => Some(m.add(ProgressBar::new(100).with_style(style.clone()))),
            Ui::Plain => None,
        }
    }

    fn remove(&self, bar: &ProgressBar) {
        bar.finish_and_clear();
        if let Ui::Bars(m) = self {
            m.remove(bar);
        }
    }
}

/// What is known of one task while following.
struct Item {
    title: String,
    status: String,
    stage: Option<String>,
    attempts: i64,
    error: Option<String>,
    error_code: Option<String>,
    output_path: Option<String>,
    bar: Option<ProgressBar>,
}

impl Item {
    fn new(title: String) -> Self {
        Self {
            title,
            status: "queued".into(),
            stage: None,
            attempts: 0,
            error: None,
            error_code: None,
            output_path: None,
            bar: None,
        }
    }
}

/// Following a task: its children's bars, state-change lines and the final summary.
struct Follow {
    id: String,
    parent: Item,
    children: HashMap<String, Item>,
    /// Children in the order they were first seen.
    order: Vec<String>,
    ui: Ui,
    overall: Option<ProgressBar>,
    bar_style: ProgressStyle,
    /// Set once the daemon has refused to list children, so the warning is shown once.
    no_children_route: bool,
}

enum Outcome {
    /// The task reached a final status.
    Ended,
    /// Ctrl-C.
    Interrupted,
}

impl Follow {
    fn new(id: String) -> Self {
        let ui = Ui::new();
        let overall = ui.bar(
            &ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        if let Some(b) = &overall {
            b.set_prefix(id.clone());
            b.set_message("connecting");
            b.enable_steady_tick(Duration::from_millis(150));
        }
        Self {
            parent: Item::new(id.clone()),
            id,
            children: HashMap::new(),
            order: Vec::new(),
            ui,
            overall,
            bar_style: ProgressStyle::with_template(
                "{prefix:>10.dim} [{bar:24.cyan/blue}] {pos:>3}% {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
            no_children_route: false,
        }
    }

    /// Follows until the task ends or Ctrl-C, then prints the summary.
    async fn run(mut self, daemon: &Daemon) -> Result<ExitCode, ClientError> {
        let outcome = self.watch(daemon).await;
        self.clear_bars();
        match outcome {
            Ok(Outcome::Ended) => Ok(self.summary(daemon).await),
            Ok(Outcome::Interrupted) => {
                eprintln!(
                    "stopped following; task {id} continues on the daemon (musicd task {id} --follow)",
                    id = self.id
                );
                Ok(ExitCode::from(130))
            }
            Err(e) => {
                eprintln!(
                    "musicd: stopped following; task {} continues on the daemon",
                    self.id
                );
                Err(e)
            }
        }
    }

    async fn watch(&mut self, daemon: &Daemon) -> Result<Outcome, ClientError> {
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        let mut last_id: Option<String> = None;
        let mut down_since: Option<Instant> = None;
        let mut backoff = Duration::from_secs(1);
        loop {
            if let Some(since) = down_since {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = &mut ctrl_c => return Ok(Outcome::Interrupted),
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                if since.elapsed() > GIVE_UP_AFTER {
                    return Err(ClientError::Connect(format!(
                        "lost the daemon at {} for over {}s",
                        daemon.root,
                        GIVE_UP_AFTER.as_secs()
                    )));
                }
            }
            let opened = tokio::select! {
                r = daemon.open_events(&self.id, last_id.as_deref()) => r,
                _ = &mut ctrl_c => return Ok(Outcome::Interrupted),
            };
            let resp = match opened {
                Ok(r) => r,
                Err(e @ ClientError::Connect(_)) => {
                    if down_since.is_none() {
                        self.ui.warn(&format!("{}; retrying", message_of(&e)));
                        down_since = Some(Instant::now());
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            // Read the state only once the stream is open: whatever ends after this point
            // arrives as an event, whatever ended before is in the answer.
            match self.sync(daemon).await {
                Ok(()) => {}
                Err(e @ ClientError::Connect(_)) => {
                    self.ui.warn(&format!("{}; retrying", message_of(&e)));
                    down_since.get_or_insert_with(Instant::now);
                    continue;
                }
                Err(e) => return Err(e),
            }
            if down_since.take().is_some() {
                self.ui.warn("connected again");
            }
            if is_final(&self.parent.status) {
                return Ok(Outcome::Ended);
            }
            let mut events = std::pin::pin!(idle_guard(resp.bytes_stream()).eventsource());
            loop {
                let next = tokio::select! {
                    n = events.next() => n,
                    _ = &mut ctrl_c => return Ok(Outcome::Interrupted),
                };
                let ev = match next {
                    Some(Ok(ev)) => ev,
                    Some(Err(e)) => {
                        self.ui
                            .warn(&format!("event stream interrupted ({e}); reconnecting"));
                        break;
                    }
                    None => {
                        self.ui.warn("event stream closed; reconnecting");
                        break;
                    }
                };
                if !ev.id.is_empty() {
                    last_id = Some(ev.id.clone());
                }
                if ev.event == "stream.gap" {
                    // Some events are gone: the task's state is the truth.
                    match self.sync(daemon).await {
                        Ok(()) => {}
                        Err(ClientError::Connect(_)) => break,
                        Err(e) => return Err(e),
                    }
                } else if ev.event.starts_with("task.") {
                    let Ok(data) = serde_json::from_str::<EventData>(&ev.data) else {
                        continue;
                    };
                    self.on_event(daemon, &ev.event, data).await;
                }
                if is_final(&self.parent.status) {
                    return Ok(Outcome::Ended);
                }
            }
            // A dropped stream is retried at once; a daemon that is down backs off above.
            down_since.get_or_insert_with(Instant::now);
            backoff = Duration::from_millis(200);
        }
    }

    /// Refetches the task and its children.
    async fn sync(&mut self, daemon: &Daemon) -> Result<(), ClientError> {
        let parent = daemon.get_task(&self.id).await?;
        if !self.no_children_route {
            match daemon.children(&self.id).await {
                Ok(children) => {
                    for c in &children {
                        self.apply(&c.id, "", EventData::from(c));
                    }
                }
                Err(e @ ClientError::Connect(_)) => return Err(e),
                Err(e) => {
                    self.no_children_route = true;
                    self.ui.warn(&format!(
                        "cannot list the task's tracks ({}); following events only",
                        message_of(&e)
                    ));
                }
            }
        }
        if self.parent.title == self.id {
            self.parent.title = title_of(parent.source.as_deref(), &self.id);
        }
        self.apply(&self.id.clone(), "", EventData::from(&parent));
        Ok(())
    }

    async fn on_event(&mut self, daemon: &Daemon, kind: &str, data: EventData) {
        let Some(id) = data.task_id.clone() else {
            return;
        };
        if id != self.id && !self.children.contains_key(&id) {
            // A track not seen before: its source names it.
            let source = match data.source.clone() {
                Some(s) => Some(s),
                None => daemon.get_task(&id).await.ok().and_then(|t| t.source),
            };
            let title = data
                .title
                .clone()
                .unwrap_or_else(|| title_of(source.as_deref(), &id));
            self.children.insert(id.clone(), Item::new(title));
            self.order.push(id.clone());
        }
        self.apply(&id, kind, data);
    }

    /// Applies an event (`kind` is its type) or a snapshot (`kind` is empty) to one task.
    fn apply(&mut self, id: &str, kind: &str, d: EventData) {
        let is_parent = id == self.id;
        if !is_parent && !self.children.contains_key(id) {
            let title = d
                .title
                .clone()
                .unwrap_or_else(|| title_of(d.source.as_deref(), id));
            self.children.insert(id.to_string(), Item::new(title));
            self.order.push(id.to_string());
        }
        let item = if is_parent {
            &mut self.parent
        } else {
            self.children.get_mut(id).expect("inserted above")
        };
        let prev = item.status.clone();
        let status = d
            .status
            .clone()
            .or_else(|| status_of_event(kind).map(str::to_string))
            .unwrap_or_else(|| prev.clone());
        // A final status stays (an older event or snapshot can arrive after a newer one) and
        // is reported once; a later snapshot may only fill in what the event left out.
        if is_final(&prev) {
            if status == prev {
                if item.error.is_none() {
                    item.error = d.error;
                    item.error_code = d.error_code;
                }
                if item.output_path.is_none() {
                    item.output_path = d.output_path;
                }
            }
            return;
        }
        item.status = status.clone();
        if d.stage.is_some() {
            item.stage = d.stage.clone();
        }
        if let Some(a) = d.attempts {
            item.attempts = a;
        }
        if d.error.is_some() {
            item.error = d.error.clone();
            item.error_code = d.error_code.clone();
        }
        if d.output_path.is_some() {
            item.output_path = d.output_path.clone();
        }
        let mut lines = Vec::new();
        let title = item.title.clone();
        let reason = || {
            with_code(
                item.error.as_deref().unwrap_or(""),
                item.error_code.as_deref(),
            )
        };
        if status != prev || kind == "task.retrying" {
            match status.as_str() {
                "done" => lines.push(match &item.output_path {
                    Some(p) => format!("done      {title} -> {p}"),
                    None => format!("done      {title}"),
                }),
                "failed" => lines.push(format!("failed    {title}: {}", reason())),
                "cancelled" => lines.push(format!("cancelled {title}")),
                "skipped" => lines.push(match (&item.error, &item.output_path) {
                    (Some(_), _) => format!("skipped   {title}: {}", reason()),
                    (None, Some(p)) => format!("skipped   {title}: already at {p}"),
                    (None, None) => format!("skipped   {title}"),
                }),
                _ if kind == "task.retrying" => lines.push(format!(
                    "retrying  {title} (attempt {}): {}",
                    item.attempts + 1,
                    reason()
                )),
                "running" | "processing" if matches!(self.ui, Ui::Plain) && !is_parent => {
                    lines.push(format!("started   {title}"));
                }
                _ => {}
            }
        }
        // A parent that ends with `done` tells how many children failed in `error`: the
        // summary says that, so its own line would repeat it.
        if is_parent && status == "done" {
            lines.clear();
        }
        if is_final(&status) || status == "queued" {
            if let Some(bar) = item.bar.take() {
                self.ui.remove(&bar);
            }
        } else if !is_parent {
            if item.bar.is_none() {
                item.bar = self.ui.bar(&self.bar_style);
            }
            if let Some(bar) = &item.bar {
                bar.set_prefix(item.stage.clone().unwrap_or_else(|| status.clone()));
                if let Some(p) = d.percent {
                    bar.set_position(p.clamp(0.0, 100.0).round() as u64);
                }
                let mut msg = title.clone();
                if let Some(done) = d.bytes_done.filter(|&b| b > 0) {
                    msg.push_str(&format!("  {}", bytes_of(done, d.bytes_total)));
                }
                if let Some(speed) = d.speed_bps.filter(|&s| s > 0.0) {
                    msg.push_str(&format!("  {}/s", bytesize::ByteSize(speed as u64)));
                }
                if let Some(eta) = d.eta_seconds.filter(|&s| s > 0.0) {
                    msg.push_str(&format!("  eta {}s", eta.round() as u64));
                }
                bar.set_message(msg);
            }
        }
        if is_parent && status != prev && matches!(self.ui, Ui::Plain) && !is_final(&status) {
            let stage = item
                .stage
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            lines.push(format!("task      {title}: {status}{stage}"));
        }
        for l in lines {
            self.ui.line(&l);
        }
        self.update_overall();
    }

    fn update_overall(&self) {
        let Some(bar) = &self.overall else {
            return;
        };
        let ended = self
            .children
            .values()
            .filter(|c| is_final(&c.status))
            .count();
        let stage = self
            .parent
            .stage
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        let mut msg = format!("{}{stage}  {}", self.parent.status, self.parent.title);
        if !self.children.is_empty() {
            msg = format!("{ended}/{} tracks  {msg}", self.children.len());
        }
        bar.set_message(msg);
    }

    fn clear_bars(&mut self) {
        if let Some(b) = self.overall.take() {
            self.ui.remove(&b);
        }
        let bars: Vec<_> = self
            .children
            .values_mut()
            .filter_map(|c| c.bar.take())
            .collect();
        for b in bars {
            self.ui.remove(&b);
        }
    }

    /// Prints the counts and failures from the daemon's final state; the exit status is 0
    /// only if everything ended done or skipped.
    async fn summary(mut self, daemon: &Daemon) -> ExitCode {
        // The ledger is the truth; lines for anything the stream did not show print here.
        self.ui = Ui::Plain;
        if let Err(e) = self.sync(daemon).await {
            eprintln!("musicd: cannot read the final state ({})", message_of(&e));
        }
        let items: Vec<&Item> = if self.children.is_empty() {
            vec![&self.parent]
        } else {
            self.order
                .iter()
                .filter_map(|id| self.children.get(id))
                .collect()
        };
        let count = |s: &str| items.iter().filter(|i| i.status == s).count();
        let (done, failed, skipped, cancelled) = (
            count("done"),
            count("failed"),
            count("skipped"),
            count("cancelled"),
        );
        let unfinished = items.len() - done - failed - skipped - cancelled;
        let mut line = format!("{done} done, {failed} failed, {skipped} skipped");
        if cancelled > 0 {
            line.push_str(&format!(", {cancelled} cancelled"));
        }
        if unfinished > 0 {
            line.push_str(&format!(", {unfinished} unfinished"));
        }
        println!("{line}");
        for i in items.iter().filter(|i| i.status == "failed") {
            println!(
                "  failed: {}: {}",
                i.title,
                with_code(
                    i.error.as_deref().unwrap_or("no reason given"),
                    i.error_code.as_deref()
                )
            );
        }
        let p = &self.parent;
        if !self.children.is_empty() && matches!(p.status.as_str(), "failed" | "cancelled") {
            println!(
                "task {} {}{}",
                self.id,
                p.status,
                p.error
                    .as_deref()
                    .map(|e| format!(": {}", with_code(e, p.error_code.as_deref())))
                    .unwrap_or_default()
            );
        }
        let ok = matches!(p.status.as_str(), "done" | "skipped")
            && failed == 0
            && cancelled == 0
            && unfinished == 0;
        if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    }
}

fn message_of(e: &ClientError) -> String {
    match e {
        ClientError::Usage(m) | ClientError::Connect(m) => m.clone(),
        ClientError::Api { code, message, .. } => format!("{code}: {message}"),
    }
}

/// Why the byte stream under the events ended.
#[derive(Debug)]
enum StreamFail {
    Http(reqwest::Error),
    Idle,
}

impl std::fmt::Display for StreamFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamFail::Http(e) => write!(f, "{e}"),
            StreamFail::Idle => write!(f, "nothing received for {}s", STREAM_IDLE.as_secs()),
        }
    }
}

/// Ends the byte stream with an error when it stays silent longer than [`STREAM_IDLE`]
/// (keep-alive comments count as traffic).
fn idle_guard<B>(
    bytes: impl Stream<Item = reqwest::Result<B>>,
) -> impl Stream<Item = Result<B, StreamFail>> {
    futures::stream::unfold(Some(Box::pin(bytes)), |state| async move {
        let mut s = state?;
        match tokio::time::timeout(STREAM_IDLE, s.next()).await {
            Ok(Some(Ok(b))) => Some((Ok(b), Some(s))),
            Ok(Some(Err(e))) => Some((Err(StreamFail::Http(e)), None)),
            Ok(None) => None,
            Err(_) => Some((Err(StreamFail::Idle), None)),
        }
    })
}

async fn watch_inner(config: &Config, command: WatchCommand) -> Result<ExitCode, ClientError> {
    match command {
        WatchCommand::Add(a) => {
            let daemon = Daemon::new(config, a.connect)?;
            let mut body = match &a.provider {
                Some(p) => json!({ "provider": p, "kind": a.kind, "id": a.source }),
                None => json!({ "url": a.source }),
            };
            body["download_existing"] = json!(a.download_existing);
            for (k, v) in [
                ("schedule", &a.schedule),
                ("on_removed", &a.on_removed),
                ("format", &a.format),
                ("quality", &a.quality),
            ] {
                if let Some(v) = v {
                    body[k] = json!(v);
                }
            }
            if !a.release_types.is_empty() {
                body["release_types"] = json!(a.release_types);
            }
            let w: Value = daemon
                .call(daemon.http.post(daemon.url(&["watches"])).json(&body))
                .await?;
            println!(
                "watching as {} ({} {}); first check: task {}",
                w["id"].as_str().unwrap_or("?"),
                w["provider"].as_str().unwrap_or("?"),
                w["kind"].as_str().unwrap_or("?"),
                w["check_task_id"].as_str().unwrap_or("already running"),
            );
            Ok(ExitCode::SUCCESS)
        }
        WatchCommand::List {
            json: as_json,
            connect,
        } => {
            let daemon = Daemon::new(config, connect)?;
            let data: Value = daemon
                .call(
                    daemon
                        .http
                        .get(daemon.url(&["watches"]))
                        .query(&[("limit", "500")]),
                )
                .await?;
            if as_json {
                println!("{}", pretty(&data));
                return Ok(ExitCode::SUCCESS);
            }
            let items = data["items"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                println!("no watches");
            }
            for w in items {
                let when = |k: &str| {
                    w[k].as_i64()
                        .and_then(chrono::DateTime::from_timestamp_millis)
                        .map_or("-".to_string(), |t| {
                            t.format("%Y-%m-%d %H:%M:%SZ").to_string()
                        })
                };
                let result = match (&w["last_error"], &w["last_result"]) {
                    (Value::String(e), _) => format!("error: {e}"),
                    (_, r) if r.is_object() => {
                        format!("+{} -{}", r["added"], r["removed"])
                    }
                    _ => "not checked yet".into(),
                };
                println!(
                    "{}  {:<40}  last {}  next {}  {}{}",
                    w["id"].as_str().unwrap_or("?"),
                    w["title"]
                        .as_str()
                        .or(w["item_id"].as_str())
                        .unwrap_or("?")
                        .chars()
                        .take(40)
                        .collect::<String>(),
                    when("last_check_at"),
                    when("next_check_at"),
                    result,
                    if w["enabled"] == json!(false) {
                        "  (disabled)"
                    } else {
                        ""
                    },
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        WatchCommand::Check {
            id,
            dry_run,
            connect,
        } => {
            let daemon = Daemon::new(config, connect)?;
            let Some(id) = id else {
                let r: Value = daemon
                    .call(daemon.http.post(daemon.url(&["watches", "check"])))
                    .await?;
                let n = |k: &str| r[k].as_array().map_or(0, Vec::len);
                println!(
                    "{} checks queued, {} already running",
                    n("queued"),
                    n("running")
                );
                return Ok(ExitCode::SUCCESS);
            };
            let req = daemon
                .http
                .post(daemon.url(&["watches", &id, "check"]))
                .query(&[("dry_run", dry_run.to_string())]);
            let r: Value = daemon.call(req).await?;
            if dry_run {
                for (sign, key) in [("+", "added"), ("-", "removed")] {
                    for i in r[key].as_array().into_iter().flatten() {
                        println!(
                            "{sign} {}",
                            i["title"].as_str().or(i["id"].as_str()).unwrap_or("?")
                        );
                    }
                }
                let n = |k: &str| r[k].as_array().map_or(0, Vec::len);
                println!("would add {}, remove {}", n("added"), n("removed"));
            } else {
                println!(
                    "check queued as task {}",
                    r["task_id"].as_str().unwrap_or("?")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_come_from_the_source() {
        assert_eq!(
            title_of(Some("https://example.com/a/My%20Song.mp3?x=1"), "id"),
            "My Song.mp3"
        );
        assert_eq!(title_of(Some("https://example.com/"), "id"), "example.com");
        assert_eq!(title_of(None, "id"), "id");
        assert_eq!(title_of(Some("/music/in/a.flac"), "id"), "a.flac");
    }

    #[test]
    fn root_url_comes_from_flag_config_or_listen() {
        let mut c = Config {
            listen: "0.0.0.0:7000".parse().unwrap(),
            ..Config::default()
        };
        assert_eq!(resolve_root(None, &c).unwrap(), "http://127.0.0.1:7000");
        c.client.url = "https://music.example.org/api/v1/".into();
        assert_eq!(resolve_root(None, &c).unwrap(), "https://music.example.org");
        assert_eq!(
            resolve_root(Some("localhost:9".into()), &c).unwrap(),
            "http://localhost:9"
        );
        assert!(resolve_root(Some("ftp://x".into()), &c).is_err());
    }
}
