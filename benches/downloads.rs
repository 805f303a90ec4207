//! Downloads benchmark: the real `musicd serve` release binary, run as a child process against
//! a loopback upstream (an axum server in this process), measured from the outside through
//! the HTTP API.
//!
//! 1. **Playlist end to end**: an RSS 2.0 feed of N episodes (one 2-second MP3, generated once
//!    with `ffmpeg`, served at N URLs with distinct GUIDs) is requested with
//!    `POST /api/v1/downloads`; wall time runs until the parent task is `done`. The baseline does
//!    the same work (feed fetch + parse, N fetches, N `process_file`, default `copy` format) with
//!    `musicd-media` directly in this process, with the daemon's pool sizes; the difference,
//!    divided by the 2N jobs (a fetch and a process job per track), is the daemon's overhead.
//! 2. **SSE fan-out**: M concurrent `GET /api/v1/events?kinds=task.` streams on a fresh daemon,
//!    50 `POST /diagnostics/ping` 100 ms apart; every subscriber must see every event. Delivery
//!    latency is receive time minus the `<ms>` of the event id (same machine clock). Also the
//!    daemon's RSS with M subscribers connected.
//! 3. **Request to first event**: with one subscriber, 30 direct-URL `POST /downloads`; time
//!    from sending the request to the `task.created` event of the returned task id.
//!
//! Run: `cargo bench --bench downloads` (options after `--`: `--tracks 200 --subscribers 1000
//! --pings 50 --requests 30`). Needs `ffmpeg` on PATH. Prints a Markdown table.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::routing::get;
use futures::StreamExt;
use musicd::providers::Resolved;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

mod common;
use common::{Daemon, feed_xml, make_mp3, proc_mib, sh};

struct Args {
    tracks: usize,
    subscribers: usize,
    pings: usize,
    requests: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        tracks: 200,
        subscribers: 1000,
        pings: 50,
        requests: 30,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = || -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{arg} needs a number"))
        };
        match arg.as_str() {
            "--tracks" => a.tracks = num(),
            "--subscribers" => a.subscribers = num(),
            "--pings" => a.pings = num(),
            "--requests" => a.requests = num(),
            _ => {} // `--bench` (added by cargo) and filters
        }
    }
    a
}

// ---------------------------------------------------------------------------------------------
// Small helpers

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Raises the soft open-files limit to the hard one (the daemon child inherits it).
fn raise_nofile() -> u64 {
    // SAFETY: plain libc calls on a local struct.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur = r.rlim_max.min(1 << 20);
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur
    }
}

// ---------------------------------------------------------------------------------------------
// Loopback upstream: /feed.xml, /ep/{n}.mp3, /track.mp3

struct Upstream {
    feed: String,
    mp3: Bytes,
}

async fn start_upstream(mp3: Vec<u8>, tracks: usize) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = Arc::new(Upstream {
        feed: feed_xml(&base, tracks, mp3.len()),
        mp3: Bytes::from(mp3),
    });
    async fn serve_feed(State(u): State<Arc<Upstream>>) -> impl axum::response::IntoResponse {
        (
            [(header::CONTENT_TYPE, "application/rss+xml")],
            u.feed.clone(),
        )
    }
    async fn serve_mp3(State(u): State<Arc<Upstream>>) -> impl axum::response::IntoResponse {
        ([(header::CONTENT_TYPE, "audio/mpeg")], u.mp3.clone())
    }
    let app = axum::Router::new()
        .route("/feed.xml", get(serve_feed))
        .route("/ep/{file}", get(serve_mp3))
        .route("/track.mp3", get(serve_mp3))
        .with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn login(http: &reqwest::Client, d: &Daemon) -> Api {
        Api {
            http: http.clone(),
            base: format!("{}/api/v1", d.base),
            token: d.token(http).await,
        }
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// Opens an event stream (the response arrives once the server has subscribed).
    async fn events(&self, kinds: &str) -> reqwest::Response {
        let r = self
            .http
            .get(format!("{}/events?kinds={kinds}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "GET /events: {}", r.status());
        r
    }
}

// ---------------------------------------------------------------------------------------------
// Server-Sent Events, parsed by hand

#[derive(Default)]
struct Frame {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

/// Moves every complete frame (ended by a blank line) from `buf` to `out`.
fn take_frames(buf: &mut Vec<u8>, out: &mut Vec<Frame>) {
    while let Some(pos) = buf.windows(2).position(|w| w == b"\n\n") {
        let raw: Vec<u8> = buf.drain(..pos + 2).collect();
        let mut f = Frame::default();
        for line in String::from_utf8_lossy(&raw[..pos]).lines() {
            if let Some(v) = line.strip_prefix("id:") {
                f.id = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("event:") {
                f.event = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("data:") {
                f.data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        if f.id.is_some() || f.event.is_some() {
            out.push(f); // comment-only frames (keep-alive) carry neither
        }
    }
}

/// `<ms>-<seq>`.
fn parse_id(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// One subscriber: (publish ms, seq, receive µs) per event until `stop`.
async fn subscriber(
    resp: reqwest::Response,
    stop: CancellationToken,
    completed: Arc<AtomicUsize>,
) -> Vec<(u64, u64, u64)> {
    let mut stream = resp.bytes_stream();
    let (mut buf, mut frames, mut out) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        let chunk = tokio::select! {
            _ = stop.cancelled() => break,
            c = stream.next() => c,
        };
        let Some(Ok(chunk)) = chunk else { break };
        let recv = now_us();
        buf.extend_from_slice(&chunk);
        take_frames(&mut buf, &mut frames);
        for f in frames.drain(..) {
            let Some((ms, seq)) = f.id.as_deref().and_then(parse_id) else {
                continue;
            };
            if f.event.as_deref() == Some("task.completed") {
                completed.fetch_add(1, Ordering::Relaxed);
            }
            out.push((ms, seq, recv));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// 1. Playlist end to end, and the in-process baseline

struct Playlist {
    wall: Duration,
    parent_status: String,
    parent_span_ms: i64,
    statuses: String,
    mean_child_total_ms: f64,
    mean_child_run_ms: f64,
    retries: i64,
    hwm_mib: f64,
}

async fn playlist(api: &Api, daemon: &Daemon, feed_url: &str) -> Playlist {
    let t0 = Instant::now();
    let (st, v) = api.post("/downloads", json!({ "url": feed_url })).await;
    assert_eq!(st, StatusCode::ACCEPTED, "POST /downloads: {v}");
    let id = v["data"]["task_id"].as_str().unwrap().to_string();
    let parent = loop {
        let t = api.get(&format!("/tasks/{id}")).await["data"].clone();
        if matches!(
            t["status"].as_str(),
            Some("done" | "failed" | "cancelled" | "skipped")
        ) {
            break t;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(3600),
            "playlist timed out"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let wall = t0.elapsed();
    let hwm_mib = proc_mib(daemon.pid, "VmHWM");

    let mut children = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/tasks/{id}/children?limit=500");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = api.get(&path).await["data"].clone();
        children.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    let (mut total, mut run, mut retries) = (0i64, 0i64, 0i64);
    for c in &children {
        *counts
            .entry(c["status"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
        let fin = c["finished_at"].as_i64().unwrap_or(0);
        total += fin - c["created_at"].as_i64().unwrap_or(fin);
        run += fin - c["started_at"].as_i64().unwrap_or(fin);
        retries += c["attempts"].as_i64().unwrap_or(1) - 1;
        if c["status"] == "failed" && counts["failed"] == 1 {
            eprintln!("first failed child: {}", c["error"]);
        }
    }
    let mut statuses: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    statuses.sort();
    let n = children.len().max(1) as f64;
    Playlist {
        wall,
        parent_status: parent["status"].as_str().unwrap_or("?").to_string(),
        parent_span_ms: parent["finished_at"].as_i64().unwrap_or(0)
            - parent["created_at"].as_i64().unwrap_or(0),
        statuses: format!("{} children: {}", children.len(), statuses.join(", ")),
        mean_child_total_ms: total as f64 / n,
        mean_child_run_ms: run as f64 / n,
        retries,
        hwm_mib,
    }
}

struct Baseline {
    wall: Duration,
    placed: usize,
    fetch_concurrency: usize,
    cpu_concurrency: usize,
}

/// The same work without the daemon: feed fetch + parse, then every track fetched (at most
/// `min(io pool, per-host connections)` at once, as the daemon's fetch jobs are limited) and
/// processed (at most `cpu pool` at once, on blocking threads), pipelined per track.
async fn baseline(feed_url: &str) -> Baseline {
    let dir = tempfile::tempdir().unwrap();
    let config = musicd::config::Config {
        fetch_allow_private: true,
        ..Default::default()
    };
    let fetch_opts = Arc::new(musicd::jobs::track::fetch_options(&config));
    let popts = config.media.process_options(None, None, None).unwrap();
    let fetch_concurrency = config
        .workers
        .io_concurrency
        .min(config.workers.per_host_connections);
    let cpu_concurrency = config.cpu_concurrency();
    let fetch_gate = Arc::new(Semaphore::new(fetch_concurrency));
    let cpu_gate = Arc::new(Semaphore::new(cpu_concurrency));
    let library = dir.path().join("library");
    let staging = dir.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let none = CancellationToken::new();

    let t0 = Instant::now();
    let feed = musicd_media::fetch::fetch(feed_url, &staging, &fetch_opts, &|_| {}, &none)
        .await
        .unwrap();
    let body = tokio::fs::read(feed.path()).await.unwrap();
    let Ok(Resolved::Collection { tracks, .. }) =
        musicd::providers::podcast::parse(&body, feed_url)
    else {
        panic!("the feed did not parse as a collection");
    };
    let mut set = tokio::task::JoinSet::new();
    for (i, t) in tracks.into_iter().enumerate() {
        let (fetch_opts, fetch_gate, cpu_gate) =
            (fetch_opts.clone(), fetch_gate.clone(), cpu_gate.clone());
        let (library, mut popts) = (library.clone(), popts.clone());
        let dir = staging.join(i.to_string());
        set.spawn(async move {
            std::fs::create_dir_all(&dir).unwrap();
            let input = {
                let _slot = fetch_gate.acquire().await.unwrap();
                musicd_media::fetch::fetch(
                    &t.url,
                    &dir,
                    &fetch_opts,
                    &|_| {},
                    &CancellationToken::new(),
                )
                .await
                .unwrap()
                .keep()
            };
            let _slot = cpu_gate.acquire_owned().await.unwrap();
            popts.staging_dir = Some(library.join(".musicd-staging").join(i.to_string()));
            let meta = t.meta("podcast");
            tokio::task::spawn_blocking(move || {
                musicd_media::process_file(
                    &input,
                    &popts,
                    &meta,
                    &library,
                    &|_, _| {},
                    &AtomicBool::new(false),
                )
            })
            .await
            .unwrap()
            .map(|p| !p.skipped)
        });
    }
    let mut placed = 0;
    while let Some(r) = set.join_next().await {
        match r.unwrap() {
            Ok(true) => placed += 1,
            Ok(false) => {}
            Err(e) => eprintln!("baseline track failed: {e:?}"),
        }
    }
    Baseline {
        wall: t0.elapsed(),
        placed,
        fetch_concurrency,
        cpu_concurrency,
    }
}

// ---------------------------------------------------------------------------------------------
// 2. SSE fan-out

struct Fanout {
    subscribers: usize,
    open_time: Duration,
    events_min: usize,
    events_max: usize,
    reference: usize,
    mismatched: usize,
    deliveries: usize,
    p50: f64,
    p99: f64,
    max: f64,
    rss_idle: f64,
    rss_connected: f64,
    rss_after: f64,
    hwm: f64,
}

async fn fanout(api: &Api, daemon: &Daemon, subscribers: usize, pings: usize) -> Fanout {
    let rss_idle = proc_mib(daemon.pid, "VmRSS");
    let stop = CancellationToken::new();
    let completed = Arc::new(AtomicUsize::new(0));

    // Open the streams, at most 100 handshakes at a time.
    let t0 = Instant::now();
    let responses: Vec<reqwest::Response> = futures::stream::iter(0..subscribers)
        .map(|_| api.events("task."))
        .buffer_unordered(100)
        .collect()
        .await;
    let open_time = t0.elapsed();
    let handles: Vec<_> = responses
        .into_iter()
        .map(|r| tokio::spawn(subscriber(r, stop.clone(), completed.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_connected = proc_mib(daemon.pid, "VmRSS");

    // Generate events: pings 100 ms apart.
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for _ in 0..pings {
        tick.tick().await;
        let (st, v) = api
            .post("/diagnostics/ping", json!({ "sleep_ms": 0 }))
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "ping: {v}");
    }
    let t1 = Instant::now();
    while completed.load(Ordering::Relaxed) < subscribers * pings
        && t1.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // anything after the last completion
    let rss_after = proc_mib(daemon.pid, "VmRSS");
    let hwm = proc_mib(daemon.pid, "VmHWM");
    stop.cancel();

    let mut per_sub = Vec::with_capacity(subscribers);
    for h in handles {
        per_sub.push(h.await.unwrap());
    }
    let fingerprint =
        |v: &Vec<(u64, u64, u64)>| v.iter().map(|&(m, s, _)| (m, s)).collect::<Vec<_>>();
    let reference = fingerprint(&per_sub[0]);
    let mismatched = per_sub
        .iter()
        .filter(|v| fingerprint(v) != reference)
        .count();
    let counts: Vec<usize> = per_sub.iter().map(Vec::len).collect();
    let mut lat: Vec<f64> = per_sub
        .iter()
        .flatten()
        .map(|&(m, _, recv)| recv as f64 / 1000.0 - m as f64)
        .collect();
    lat.sort_by(f64::total_cmp);
    Fanout {
        subscribers,
        open_time,
        events_min: *counts.iter().min().unwrap(),
        events_max: *counts.iter().max().unwrap(),
        reference: reference.len(),
        mismatched,
        deliveries: lat.len(),
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        max: *lat.last().unwrap(),
        rss_idle,
        rss_connected,
        rss_after,
        hwm,
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Request to first event

struct FirstEvent {
    first_p50: f64,
    first_p99: f64,
    post_p50: f64,
    post_p99: f64,
}

async fn first_event(api: &Api, upstream: &str, requests: usize) -> FirstEvent {
    let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let stop = CancellationToken::new();
    let resp = api.events("task.created").await;
    let (a2, s2) = (arrivals.clone(), stop.clone());
    let reader = tokio::spawn(async move {
        let mut stream = resp.bytes_stream();
        let (mut buf, mut frames) = (Vec::new(), Vec::new());
        loop {
            let chunk = tokio::select! {
                _ = s2.cancelled() => break,
                c = stream.next() => c,
            };
            let Some(Ok(chunk)) = chunk else { break };
            let at = Instant::now();
            buf.extend_from_slice(&chunk);
            take_frames(&mut buf, &mut frames);
            for f in frames.drain(..) {
                let v: Value = serde_json::from_str(&f.data).unwrap_or(Value::Null);
                if let Some(id) = v["task_id"].as_str() {
                    a2.lock().unwrap().entry(id.to_string()).or_insert(at);
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (mut first, mut post) = (Vec::new(), Vec::new());
    for i in 0..requests {
        let url = format!("{upstream}/track.mp3?n={i}");
        let t0 = Instant::now();
        let (st, v) = api.post("/downloads", json!({ "url": url })).await;
        post.push(ms(t0.elapsed()));
        assert_eq!(st, StatusCode::ACCEPTED, "POST /downloads: {v}");
        let id = v["data"]["task_id"].as_str().unwrap().to_string();
        let arrived = loop {
            if let Some(at) = arrivals.lock().unwrap().get(&id) {
                break *at;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "no task.created for {id}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        first.push(ms(arrived - t0));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    let _ = reader.await;
    first.sort_by(f64::total_cmp);
    post.sort_by(f64::total_cmp);
    FirstEvent {
        first_p50: percentile(&first, 0.5),
        first_p99: percentile(&first, 0.99),
        post_p50: percentile(&post, 0.5),
        post_p99: percentile(&post, 0.99),
    }
}

// ---------------------------------------------------------------------------------------------

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mut args = parse_args();
    let nofile = raise_nofile();
    let needed = args.subscribers as u64 + 256;
    if nofile < needed {
        eprintln!(
            "warning: open-files limit is {nofile} (hard), {needed} needed for {} subscribers; \
             raise it (ulimit -Hn / limits.conf). Using {} subscribers.",
            args.subscribers,
            nofile.saturating_sub(256)
        );
        args.subscribers = nofile.saturating_sub(256) as usize;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dirty = if sh("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty() {
        ""
    } else {
        " (with uncommitted changes)"
    };
    let extra: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let command = if extra.is_empty() {
        "cargo bench --bench downloads".to_string()
    } else {
        format!("cargo bench --bench downloads -- {}", extra.join(" "))
    };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tmp = tempfile::tempdir().unwrap();
        let mp3 = make_mp3(tmp.path());
        let mp3_len = mp3.len();
        let upstream = start_upstream(mp3, args.tracks).await;
        let feed_url = format!("{upstream}/feed.xml");
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(usize::MAX)
            .build()
            .unwrap();

        // 1. Playlist through the daemon, then the baseline with the daemon stopped.
        let d1 = Daemon::start(&http, &[]).await;
        let api = Api::login(&http, &d1).await;
        let pl = playlist(&api, &d1, &feed_url).await;
        drop(d1);
        let base = baseline(&feed_url).await;

        // 2 and 3 on a fresh daemon (so its RSS reflects only the event streams).
        let d2 = Daemon::start(&http, &[]).await;
        let api = Api::login(&http, &d2).await;
        let fo = fanout(&api, &d2, args.subscribers, args.pings).await;
        let fe = first_event(&api, &upstream, args.requests).await;
        drop(d2);

        let (dw, bw) = (pl.wall.as_secs_f64(), base.wall.as_secs_f64());
        let jobs = 2 * args.tracks;
        let per_job = (dw - bw) * 1000.0 / jobs as f64;
        let per_track = (dw - bw) * 1000.0 / args.tracks as f64;
        let goal = |ok: bool| if ok { "met" } else { "**missed**" };

        println!("# musicd downloads benchmark\n");
        println!(
            "- machine: {cores} cores ({}), kernel {}",
            sh("sh", &["-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"]),
            sh("uname", &["-r"])
        );
        println!("- commit: {}{dirty}", sh("git", &["rev-parse", "--short", "HEAD"]));
        println!("- command: `{command}`");
        println!(
            "- daemon: `target/release/musicd serve` child process, SQLite, default config; \
             upstream and clients in the bench process (sharing the {cores} cores)"
        );
        println!(
            "- input: {} episodes of one {:.1} KiB 2 s MP3, format `copy` (loudness on)\n",
            args.tracks,
            mp3_len as f64 / 1024.0
        );
        println!("| measurement | result | goal |");
        println!("|---|---|---|");
        println!(
            "| {} tracks via daemon: POST → parent `{}` (wall) | {:.2} s (ledger: {:.2} s) | |",
            args.tracks,
            pl.parent_status,
            dw,
            pl.parent_span_ms as f64 / 1000.0
        );
        println!(
            "| same work in-process (musicd-media; pipelined per track, fetch ≤ {} at once, \
             process ≤ {} at once) | {:.2} s ({} placed) | |",
            base.fetch_concurrency, base.cpu_concurrency, bw, base.placed
        );
        println!("| ratio daemon / baseline | {:.2}× | |", dw / bw);
        println!(
            "| overhead per job ((daemon − baseline) / {jobs} jobs) | {per_job:.2} ms | ≤ 5 ms: {} |",
            goal(per_job <= 5.0)
        );
        println!("| overhead per track | {per_track:.2} ms | |");
        println!(
            "| children | {} ({} retries) | all done |",
            pl.statuses, pl.retries
        );
        println!(
            "| mean child finished − created / finished − started | {:.0} ms / {:.0} ms | |",
            pl.mean_child_total_ms, pl.mean_child_run_ms
        );
        println!("| daemon peak RSS (VmHWM) after the playlist | {:.1} MiB | |", pl.hwm_mib);
        println!(
            "| SSE subscribers opened (`/events?kinds=task.`) | {} in {:.2} s | |",
            fo.subscribers,
            fo.open_time.as_secs_f64()
        );
        println!(
            "| events per subscriber min / max (reference {}; {} pings) | {} / {}, {} differ from the reference | all equal: {} |",
            fo.reference,
            args.pings,
            fo.events_min,
            fo.events_max,
            fo.mismatched,
            goal(fo.mismatched == 0 && fo.reference > 0)
        );
        println!(
            "| delivery latency p50 / p99 / max ({} deliveries; ids have 1 ms resolution) | {:.1} / {:.1} / {:.1} ms | p99 ≤ 100 ms: {} |",
            fo.deliveries,
            fo.p50,
            fo.p99,
            fo.max,
            goal(fo.p99 <= 100.0)
        );
        println!(
            "| daemon VmRSS idle / {} connected / after events; VmHWM | {:.1} / {:.1} / {:.1} MiB; {:.1} MiB | ≤ 150 MB: {} |",
            fo.subscribers,
            fo.rss_idle,
            fo.rss_connected,
            fo.rss_after,
            fo.hwm,
            goal(fo.hwm * 1.048_576 <= 150.0)
        );
        println!(
            "| request → `task.created` p50 / p99 ({} direct-URL downloads, 1 subscriber) | {:.1} / {:.1} ms | |",
            args.requests, fe.first_p50, fe.first_p99
        );
        println!(
            "| `POST /downloads` response p50 / p99 | {:.1} / {:.1} ms | |",
            fe.post_p50, fe.post_p99
        );
    });
    // The upstream server task and idle connections go with the runtime.
    rt.shutdown_timeout(Duration::from_secs(1));
}
