//! Test helpers: temp dirs, a daemon in-process on port 0, the real `musicd` binary as a
//! child process, fresh PostgreSQL databases, unique Redis queue prefixes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use musicd::app::{Application, Role};
use musicd::config::Config;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Admin account every test daemon starts with.
pub const ADMIN: &str = "admin";
/// Its password.
pub const ADMIN_PW: &str = "admin-password-1";
/// A fixed JWT secret, so tests can forge tokens signed with it.
pub const JWT_SECRET: &str = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz";

/// Redis for tests (the machine's server).
pub fn redis_url() -> String {
    std::env::var("MUSICD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A queue prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}

/// Creates a fresh PostgreSQL database and returns its URL.
pub async fn fresh_postgres() -> String {
    let admin = std::env::var("MUSICD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    sqlx::any::install_default_drivers();
    let name = format!("musicd_test_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::AnyPool::connect(&admin)
        .await
        .expect("PostgreSQL must answer at MUSICD_TEST_POSTGRES_URL (see .ci/run)");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .expect("create test database");
    pool.close().await;
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    format!("{base}/{name}")
}

/// Temp data and library dirs for one daemon.
pub struct Dirs {
    /// Owns the temp dir.
    pub tmp: tempfile::TempDir,
}

impl Dirs {
    pub fn new() -> Self {
        Self {
            tmp: tempfile::tempdir().expect("tempdir"),
        }
    }
    pub fn data(&self) -> PathBuf {
        self.tmp.path().join("data")
    }
    pub fn library(&self) -> PathBuf {
        self.tmp.path().join("library")
    }
}

/// The test configuration: temp dirs, port 0, fixed secret, an admin.
pub fn test_config(dirs: &Dirs) -> Config {
    let mut c = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dirs.data(),
        library_dir: dirs.library(),
        jwt_secret: JWT_SECRET.into(),
        admin_user: ADMIN.into(),
        admin_password: ADMIN_PW.into(),
        ..Config::default()
    };
    c.queue.prefix = unique_prefix();
    c.queue.lease = Duration::from_secs(3);
    c.queue.heartbeat_interval = Duration::from_secs(1);
    c.queue.backoff_base = Duration::from_millis(200);
    c.queue.shutdown_timeout = Duration::from_secs(2);
    // Lyrics would be asked of lrclib.net; the tests that want them point it at a stand-in.
    c.media.lyrics = "off".into();
    c
}

/// A daemon running in this process.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    stop: CancellationToken,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dirs: Dirs,
}

impl TestApp {
    /// Starts with the test configuration, adjusted by `tweak`.
    pub async fn start(tweak: impl FnOnce(&mut Config)) -> Self {
        // `TEST_DAEMON_LOG=<file>` writes every in-process daemon's log there, for debugging.
        if let Ok(path) = std::env::var("TEST_DAEMON_LOG")
            && let Ok(file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
        {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("musicd=debug,apalis=debug,apalis_sqlite=debug")
                .with_writer(std::sync::Mutex::new(file))
                .with_ansi(false)
                .try_init();
        }
        let dirs = Dirs::new();
        let mut config = test_config(&dirs);
        tweak(&mut config);
        let app = Application::build(config, Role::Serve)
            .await
            .expect("build app");
        let addr: SocketAddr = app.addr.expect("bound address");
        let stop = CancellationToken::new();
        let handle = tokio::spawn(app.run_until_stopped(stop.clone()));
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            stop,
            handle: Some(handle),
            _dirs: dirs,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn library(&self) -> PathBuf {
        self._dirs.library()
    }

    pub fn data(&self) -> PathBuf {
        self._dirs.data()
    }

    /// Logs in and returns the access token.
    pub async fn login(&self, user: &str, pw: &str) -> String {
        login(&self.client, &self.base, user, pw).await
    }

    /// Stops the daemon and waits for it.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(h) = self.handle.take() {
            h.await.expect("join").expect("clean shutdown");
        }
    }
}

/// Logs in over HTTP and returns the access token.
pub async fn login(client: &reqwest::Client, base: &str, user: &str, pw: &str) -> String {
    let res = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "username": user, "password": pw }))
        .send()
        .await
        .expect("login request");
    assert_eq!(res.status(), 200, "login failed");
    let body: Value = res.json().await.unwrap();
    body["data"]["access_token"].as_str().unwrap().to_string()
}

/// A free loopback port (the OS picks; a race is possible but unlikely).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub use crate::daemon::Daemon;

/// Polls a task until `pred` holds (two minutes at most: CI's two cores run every test at
/// once) and returns it.
pub async fn wait_task(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    task_id: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..1200 {
        let res = client
            .get(format!("{base}/api/v1/tasks/{task_id}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        last = res.json::<Value>().await.unwrap()["data"].clone();
        if pred(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("task never reached the expected state: {last}");
}

/// Enqueues a ping job and returns its task id.
pub async fn ping(client: &reqwest::Client, base: &str, token: &str, body: Value) -> String {
    let res = client
        .post(format!("{base}/api/v1/diagnostics/ping"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let v: Value = res.json().await.unwrap();
    v["data"]["task_id"].as_str().unwrap().to_string()
}

/// POSTs JSON with a bearer token; the status and the body (`Null` when not JSON).
pub async fn post_json(c: &reqwest::Client, url: String, token: &str, body: Value) -> (u16, Value) {
    let res = c
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// GETs with a bearer token, asserting success; the body.
pub async fn get_json(c: &reqwest::Client, url: String, token: &str) -> Value {
    let res = c.get(url).bearer_auth(token).send().await.unwrap();
    assert!(res.status().is_success(), "GET: {}", res.status());
    res.json().await.unwrap()
}

/// Polls a task until it has ended (three minutes at most: several requests of a test may
/// share CI's two cores with every other test) and returns it.
pub async fn wait_task_long(c: &reqwest::Client, base: &str, token: &str, id: &str) -> Value {
    for _ in 0..1800 {
        let t = get_json(c, format!("{base}/api/v1/tasks/{id}"), token).await;
        if matches!(
            t["data"]["status"].as_str(),
            Some("done" | "failed" | "cancelled")
        ) {
            return t["data"].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("task {id} never ended");
}

/// Runs the `musicd` client verb `args` against the daemon at `base` with API key `key`;
/// the exit code, stdout and stderr.
pub async fn run_cli(base: &str, key: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let (base, key) = (base.to_string(), key.to_string());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_musicd"))
            .args(&args)
            .env("MUSICD_URL", base)
            .env("MUSICD_API_KEY", key)
            .env_remove("MUSICD_CONFIG")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `POST /downloads` with a URL; asserts the 202 and returns the task id.
pub async fn download(c: &reqwest::Client, base: &str, token: &str, url: &str) -> String {
    let (s, body) = post_json(
        c,
        format!("{base}/api/v1/downloads"),
        token,
        json!({ "url": url }),
    )
    .await;
    assert_eq!(s, 202, "{body}");
    body["data"]["task_id"].as_str().unwrap().to_string()
}
