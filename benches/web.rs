//! The web app in headless Chromium against the release `musicd serve`, measured by the
//! browser itself (Navigation and Resource Timing, `performance.mark`):
//!
//! 1. **Weight**: the compressed bytes of everything the first page loads (the files the
//!    browser lists in Resource Timing, fetched again with gzip as a browser asks).
//! 2. **Time to interactive**: from navigation start to the app's `musicd:ready` mark (the
//!    page rendered, its handlers attached, its data loaded), first and later loads, over
//!    `--loads` loads; side by side with the reference, the same browser opening
//!    `/healthz` (one request and no script: the floor of a navigation here).
//! 3. **Event to paint**: from an SSE message's arrival in the page to the frame that shows
//!    it (`musicd:event` measures), while the queue page follows `--pings` ping jobs that
//!    report progress every 100 ms.
//!
//! Run: `cargo bench --bench web` (options after `--`: `--loads 20 --pings 10`). Needs
//! `chromium` and `chromedriver` (`bash .ci/setup-test`). Prints a Markdown table.

mod common;

use std::time::Duration;

use common::{ADMIN_PASSWORD, Daemon};
use serde_json::{Value, json};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(default)
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

struct Chrome {
    client: fantoccini::Client,
    driver: std::process::Child,
    _profile: tempfile::TempDir,
}

impl Chrome {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver (bash .ci/setup-test installs it)");
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display())]}),
        );
        let mut client = None;
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            if let Ok(c) = fantoccini::ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                client = Some(c);
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Self {
            client: client.expect("chromedriver opens a session"),
            driver,
            _profile: profile,
        }
    }

    async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, Vec::new()).await.unwrap()
    }

    async fn until(&self, script: &str) -> Value {
        for _ in 0..600 {
            let v = self.eval(script).await;
            if !v.is_null() && v != json!(false) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let seen = self
            .eval("return {url: location.href, page: document.body.dataset.page, ready: document.body.dataset.ready, text: document.body.innerText.slice(0, 300)};")
            .await;
        panic!("never true: {script}; the page: {seen}");
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// Milliseconds from navigation start to the app's ready mark.
const READY: &str = "const m = performance.getEntriesByName('musicd:ready'); return m.length ? m[0].startTime : null;";

#[tokio::main]
async fn main() {
    let loads = arg("--loads", 20) as usize;
    let pings = arg("--pings", 10);
    let http = reqwest::Client::new();
    let daemon = Daemon::start(&http, &[]).await;
    let b = Chrome::start().await;
    let base = daemon.base.clone();

    // Sign in through the page.
    b.client.goto(&format!("{base}/#/login")).await.unwrap();
    b.until("return document.querySelector('input[name=username]') !== null;")
        .await;
    b.eval(&format!(
        "document.querySelector('input[name=username]').value = 'admin';
         document.querySelector('input[name=password]').value = {ADMIN_PASSWORD:?};
         document.querySelector('form.login').requestSubmit(); return true;"
    ))
    .await;
    b.until("return document.body.dataset.page === 'add';")
        .await;

    // 1 and 2: the first load of the app in this session (after sign-in, the files of the
    // page were fetched once already: this is as cold as a signed-in user gets), then warm
    // loads; each load a new document.
    let mut times = Vec::new();
    for i in 0..loads {
        b.client.goto(&format!("{base}/?n={i}#/add")).await.unwrap();
        times.push(b.until(READY).await.as_f64().unwrap());
    }
    let first = times.remove(0);
    let warm = times;
    // The weight: every file the page loaded (not the API), fetched as a browser does, with
    // gzip; reqwest here does not decompress, so the body is what travels.
    let names: Vec<String> = serde_json::from_value(
        b.eval("return [location.href.split('?')[0], ...performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.includes('/api/'))];")
            .await,
    )
    .unwrap();
    let mut bytes = 0.0;
    for n in &names {
        let body = http
            .get(n.split('#').next().unwrap())
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        bytes += body.len() as f64;
    }
    let files = names.len();
    let mut floor = Vec::new();
    for i in 0..loads {
        b.client
            .goto(&format!("{base}/healthz?n={i}"))
            .await
            .unwrap();
        let t = b
            .until("const n = performance.getEntriesByType('navigation')[0]; return n && n.loadEventEnd > 0 ? n.loadEventEnd : null;")
            .await;
        floor.push(t.as_f64().unwrap());
    }

    // 3: the queue page follows ping jobs.
    b.client.goto(&format!("{base}/#/queue")).await.unwrap();
    b.until("return document.body.dataset.page === 'queue' && document.getElementById('stream-state').dataset.state === 'live';")
        .await;
    b.eval("performance.clearMeasures('musicd:event'); return true;")
        .await;
    let token = daemon.token(&http).await;
    for _ in 0..pings {
        http.post(format!("{base}/api/v1/diagnostics/ping"))
            .bearer_auth(&token)
            .json(&json!({"sleep_ms": 2000}))
            .send()
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    b.until(&format!(
        "const r = [...document.querySelectorAll('#queue tr[data-task]')]; return r.length >= {pings} && r.every(x => x.dataset.status === 'done');"
    ))
    .await;
    let lat: Vec<f64> = serde_json::from_value(
        b.eval("return performance.getEntriesByName('musicd:event').map(m => m.duration);")
            .await,
    )
    .unwrap();

    let med = |v: &Vec<f64>| percentile(v.clone(), 0.5);
    println!("| measure | musicd | reference | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| first page, compressed ({files} files) | {:.1} KB | budget 150 KB | {:.2} of the budget |",
        bytes / 1000.0,
        bytes / 150_000.0
    );
    println!(
        "| time to interactive, first load | {:.0} ms | `/healthz` navigation {:.0} ms | {:.1}× |",
        first,
        med(&floor),
        first / med(&floor)
    );
    println!(
        "| time to interactive, warm (median, p99 of {}) | {:.0} ms, {:.0} ms | `/healthz` navigation {:.0} ms | {:.1}× |",
        warm.len(),
        med(&warm),
        percentile(warm.clone(), 0.99),
        med(&floor),
        med(&warm) / med(&floor)
    );
    println!(
        "| event arrival → painted ({} events; median, p99, max) | {:.1} ms, {:.1} ms, {:.1} ms | budget 100 ms | {:.2} of the budget (p99) |",
        lat.len(),
        med(&lat),
        percentile(lat.clone(), 0.99),
        lat.iter().cloned().fold(0.0, f64::max),
        percentile(lat.clone(), 0.99) / 100.0
    );
    let _ = b.client.clone().close().await;
}
