//! Webhook load benchmark: the real `musicd serve` release binary downloads a feed of N
//! episodes from a loopback upstream (an axum server in this process), twice on fresh
//! daemons: once with no hooks, once with one webhook that hears every track's end and the
//! request's summary (`track.completed`, `task.completed`: N + 1 messages). The receiver (in
//! this process) answers 204 and records each `webhook-id`.
//!
//! Reported side by side: wall time to the request's end, the time the N tracks took to end,
//! messages received and distinct `webhook-id`s (a duplicate would be a message sent twice),
//! the lag from the request's end to the last message, and the daemon's RSS (peak and at the
//! end, sampled every 100 ms from `/proc`). The claim checked: with hooks, RSS stays within
//! 20 MB of the run without.
//!
//! Run: `cargo bench --bench hooks` (option after `--`: `--tracks 1000`). Needs `ffmpeg`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use serde_json::{Value, json};

mod common;
use common::{Daemon, feed_xml, get_json, make_mp3, proc_mib, sh};

fn tracks_arg() -> usize {
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if a == "--tracks" {
            return it.next().and_then(|v| v.parse().ok()).expect("--tracks N");
        }
    }
    1000
}

#[derive(Default)]
struct Received {
    ids: Vec<String>,
    last: Option<Instant>,
}

/// The upstream (feed and audio) and the webhook receiver, on one loopback server.
async fn start_servers(mp3: Vec<u8>, tracks: usize) -> (String, Arc<Mutex<Received>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let feed = feed_xml(&base, tracks, mp3.len());
    let mp3 = Bytes::from(mp3);
    let got = Arc::new(Mutex::new(Received::default()));
    let rx = got.clone();
    let app = axum::Router::new()
        .route(
            "/feed.xml",
            get(move || {
                let f = feed.clone();
                async move { ([(header::CONTENT_TYPE, "application/rss+xml")], f) }
            }),
        )
        .route(
            "/ep/{file}",
            get(move || {
                let b = mp3.clone();
                async move { ([(header::CONTENT_TYPE, "audio/mpeg")], b) }
            }),
        )
        .route(
            "/hook",
            post(
                |State(rx): State<Arc<Mutex<Received>>>, headers: HeaderMap| async move {
                    let id = headers
                        .get("webhook-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    let mut r = rx.lock().unwrap();
                    r.ids.push(id);
                    r.last = Some(Instant::now());
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(rx);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, got)
}

struct Run {
    wall: Duration,
    tracks_span: Duration,
    rss_peak: f64,
    rss_end: f64,
    received: usize,
    distinct: usize,
    lag: Option<Duration>,
}

async fn run(base: &str, got: &Arc<Mutex<Received>>, tracks: usize, hooks: bool) -> Run {
    let http = reqwest::Client::new();
    *got.lock().unwrap() = Received::default();
    let d = Daemon::start(&http, &[]).await;
    let token = d.token(&http).await;
    let api = format!("{}/api/v1", d.base);
    if hooks {
        let r = http
            .post(format!("{api}/webhooks"))
            .bearer_auth(&token)
            .json(&json!({"url": format!("{base}/hook"), "events": ["track.completed", "task.completed"]}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "hook: {}", r.status());
    }
    let peak = Arc::new(Mutex::new(0f64));
    let (p2, pid) = (peak.clone(), d.pid);
    let sampler = tokio::spawn(async move {
        loop {
            let rss = proc_mib(pid, "VmRSS");
            {
                let mut p = p2.lock().unwrap();
                *p = p.max(rss);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let start = Instant::now();
    let r: Value = http
        .post(format!("{api}/downloads"))
        .bearer_auth(&token)
        .json(&json!({"url": format!("{base}/feed.xml")}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = r["data"]["task_id"].as_str().expect("task id").to_string();
    let task = loop {
        let t = get_json(&http, format!("{api}/tasks/{id}"), &token).await;
        if t["data"]["status"] == "done" || t["data"]["status"] == "failed" {
            break t["data"].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ended = Instant::now();
    let wall = ended - start;
    assert_eq!(task["status"], "done", "{task}");
    // The first and last track's end, from the ledger.
    let mut ends = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = get_json(
            &http,
            format!("{api}/tasks/{id}/children?limit=500{cursor}"),
            &token,
        )
        .await;
        let items = page["data"]["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        ends.extend(items.iter().filter_map(|t| t["finished_at"].as_i64()));
        match page["data"]["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let span = match (ends.iter().min(), ends.iter().max()) {
        (Some(a), Some(b)) => Duration::from_millis((b - a) as u64),
        _ => Duration::ZERO,
    };
    let want = if hooks { tracks + 1 } else { 0 };
    let deadline = Instant::now() + Duration::from_secs(120);
    while got.lock().unwrap().ids.len() < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Anything sent twice would arrive in the next seconds.
    tokio::time::sleep(Duration::from_secs(if hooks { 3 } else { 0 })).await;
    sampler.abort();
    let rss_end = proc_mib(d.pid, "VmRSS");
    let g = got.lock().unwrap();
    let distinct: HashSet<&String> = g.ids.iter().collect();
    Run {
        wall,
        tracks_span: span,
        rss_peak: *peak.lock().unwrap(),
        rss_end,
        received: g.ids.len(),
        distinct: distinct.len(),
        lag: g.last.map(|l| l.saturating_duration_since(ended)),
    }
}

#[tokio::main]
async fn main() {
    let tracks = tracks_arg();
    let tmp = tempfile::tempdir().unwrap();
    let (base, got) = start_servers(make_mp3(tmp.path()), tracks).await;
    let without = run(&base, &got, tracks, false).await;
    let with = run(&base, &got, tracks, true).await;
    println!(
        "webhook load: {tracks} tracks of a feed, musicd {} ({}), {} cores",
        env!("CARGO_PKG_VERSION"),
        sh("git", &["rev-parse", "--short", "HEAD"]),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!("| | no hooks | one webhook (track.completed + task.completed) |");
    println!("|---|---|---|");
    let secs = |d: Duration| format!("{:.1} s", d.as_secs_f64());
    println!(
        "| request wall time | {} | {} |",
        secs(without.wall),
        secs(with.wall)
    );
    println!(
        "| tracks ended within | {} | {} |",
        secs(without.tracks_span),
        secs(with.tracks_span)
    );
    println!(
        "| messages received (expected) | {} (0) | {} ({}) |",
        without.received,
        with.received,
        tracks + 1
    );
    println!(
        "| distinct webhook-id | - | {} ({} duplicates) |",
        with.distinct,
        with.received - with.distinct
    );
    println!(
        "| last message after the request ended | - | {} |",
        with.lag
            .map_or("-".into(), |l| format!("{} ms", l.as_millis()))
    );
    println!(
        "| RSS peak | {:.1} MiB | {:.1} MiB |",
        without.rss_peak, with.rss_peak
    );
    println!(
        "| RSS at the end | {:.1} MiB | {:.1} MiB |",
        without.rss_end, with.rss_end
    );
    let delta = (with.rss_peak - without.rss_peak) * 1.048576;
    println!();
    println!(
        "RSS peak with hooks minus without: {delta:+.1} MB (claim: within 20 MB: {})",
        if delta.abs() <= 20.0 {
            "holds"
        } else {
            "does not hold"
        }
    );
}
