//! Catalog benchmark: what matching costs. The release `musicd serve` as a child process
//! against the loopback stand-ins of the tests (Deezer, YouTube Music search, watch pages).
//! In one run, each on a fresh daemon, wall time from `POST /downloads` to the parent `done`:
//!
//! 1. **catalog**: a Deezer playlist of N tracks; every track is completed from the catalog
//!    (`/track/{id}`), searched on YouTube Music (its ISRC search answers a live decoy first
//!    and the right song second), scored, downloaded by yt-dlp and its length checked;
//! 2. **yt-dlp URLs**: the same N audio files requested as N `ytdlp` URL downloads (the same
//!    download path without the catalog, the search and the scoring);
//! 3. **direct URLs**: the same N files as direct URLs (the native fetcher, no yt-dlp);
//! 4. **catalog via Jamendo**: the same playlist matched against Jamendo's track search
//!    (`artist - title`, a live decoy first), whose audio the native fetcher downloads: the
//!    same download path as (3), so the difference is what the catalog and matching cost;
//! 5. **scoring CPU**: `matching::score::score` over every track's candidates, in this
//!    process, per track.
//!
//! Run: `cargo bench --bench catalog` (`-- --tracks 100`). Needs ffmpeg and yt-dlp.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::Daemon;

#[allow(dead_code)]
#[path = "../tests/api/catalogs.rs"]
mod catalogs;
use catalogs::{Catalogs, tone_of, ytm_row};

fn tracks_arg() -> usize {
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if a == "--tracks" {
            return it.next().and_then(|v| v.parse().ok()).expect("--tracks N");
        }
    }
    100
}

/// The environment that points the daemon at the stand-ins, matching from `sources`.
fn env(cat: &Catalogs, sources: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "MUSICD_PROVIDERS__JAMENDO__BASE_URL",
            cat.url("jamendo/v3.0"),
        ),
        ("MUSICD_PROVIDERS__JAMENDO__REQUESTS_PER_MINUTE", "0".into()),
        ("MUSICD_PROVIDERS__JAMENDO__CONCURRENCY", "0".into()),
        ("MUSICD_PROVIDERS__DEEZER__BASE_URL", cat.url("deezer")),
        ("MUSICD_PROVIDERS__YOUTUBE_MUSIC__BASE_URL", cat.url("ytm")),
        (
            "MUSICD_PROVIDERS__YOUTUBE_MUSIC__WATCH_URL",
            cat.url("watch/{id}.mp3"),
        ),
        (
            "MUSICD_PROVIDERS__MUSICBRAINZ__BASE_URL",
            cat.url("mb/ws/2"),
        ),
        (
            "MUSICD_PROVIDERS__MUSICBRAINZ__REQUESTS_PER_MINUTE",
            "0".into(),
        ),
        ("MUSICD_PROVIDERS__MATCH__SOURCES", format!("[{sources}]")),
        ("MUSICD_PROVIDERS__YTDLP__REQUESTS_PER_MINUTE", "0".into()),
        ("MUSICD_PROVIDERS__DEEZER__REQUESTS_PER_MINUTE", "0".into()),
        (
            "MUSICD_PROVIDERS__YOUTUBE_MUSIC__REQUESTS_PER_MINUTE",
            "0".into(),
        ),
    ]
}

async fn post(http: &reqwest::Client, d: &Daemon, token: &str, body: Value) -> String {
    let r = http
        .post(format!("{}/api/v1/downloads", d.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    v["data"]["task_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_string()
}

/// Waits until every task has ended; how many tracks ended `done` (a request's children,
/// or the task itself when it has none).
async fn wait_all(http: &reqwest::Client, d: &Daemon, token: &str, ids: &[String]) -> usize {
    let mut done = 0;
    for id in ids {
        loop {
            let v = common::get_json(http, format!("{}/api/v1/tasks/{id}", d.base), token).await;
            let s = v["data"]["status"].as_str().unwrap_or_default().to_string();
            if !matches!(s.as_str(), "queued" | "running" | "processing") {
                let url = format!("{}/api/v1/tasks/{id}/children?limit=500", d.base);
                let kids = common::get_json(http, url, token).await;
                let items = kids["data"]["items"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                done += if items.is_empty() {
                    usize::from(s == "done")
                } else {
                    items
                        .iter()
                        .filter(|k| k["status"] == json!("done"))
                        .count()
                };
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    done
}

/// Runs `bodies` on a fresh daemon: seconds from the first POST to the last task ended.
async fn run(cat: &Catalogs, sources: &str, bodies: Vec<Value>) -> (f64, usize) {
    let http = reqwest::Client::new();
    let d = Daemon::start(&http, &env(cat, sources)).await;
    let token = d.token(&http).await;
    http.put(format!("{}/api/v1/credentials/jamendo/client_id", d.base))
        .bearer_auth(&token)
        .json(&json!({"value": "bench-client-id"}))
        .send()
        .await
        .unwrap();
    let start = Instant::now();
    let mut ids = Vec::new();
    for b in bodies {
        ids.push(post(&http, &d, &token, b).await);
    }
    let ok = wait_all(&http, &d, &token, &ids).await;
    (start.elapsed().as_secs_f64(), ok)
}

#[tokio::main]
async fn main() {
    let n = tracks_arg();
    let scratch = tempfile::tempdir().unwrap();
    let cat = Catalogs::start().await;
    let mut list = Vec::new();
    let mut cases = Vec::new();
    for i in 0..n {
        let (id, secs, isrc) = (
            10_000 + i as u64,
            20 + (i % 5) as u64,
            format!("QZBEN26{i:05}"),
        );
        let title = format!("Bench Song {i}");
        let t = json!({"id": id, "readable": true, "title": title, "duration": secs, "isrc": isrc,
            "track_position": 1, "disk_number": 1, "artist": {"id": 1, "name": "Bench Artist"},
            "contributors": [{"id": 1, "name": "Bench Artist"}], "album": {"id": 1, "title": "Bench Album"}});
        cat.deezer(&format!("track/{id}"), t.clone());
        list.push(
            json!({"id": id, "title": title, "duration": secs, "artist": {"name": "Bench Artist"}}),
        );
        let rows = vec![
            ytm_row(
                &format!("live{i}"),
                &format!("{title} (Live)"),
                &["Bench Artist"],
                None,
                secs + 3,
                true,
                false,
            ),
            ytm_row(
                &format!("b{i}"),
                &title,
                &["Bench Artist"],
                Some("Bench Album"),
                secs,
                true,
                false,
            ),
        ];
        cat.ytm(&isrc, true, rows.clone());
        let jam = |jid: String, name: String, secs: u64| {
            json!({"id": jid.clone(), "name": name, "duration": secs,
            "artist_name": "Bench Artist", "album_name": "Bench Album", "position": 1,
            "audio": cat.url(&format!("watch/{jid}.mp3")), "audiodownload": cat.url(&format!("watch/{jid}.mp3")),
            "audiodownload_allowed": true})
        };
        cat.jamendo(
            &format!("Bench Artist - {title}"),
            vec![
                jam(format!("live{i}"), format!("{title} (Live)"), secs + 3),
                jam(format!("b{i}"), title.clone(), secs),
            ],
        );
        for vid in [format!("live{i}"), format!("b{i}")] {
            cat.audio(&vid, tone_of(scratch.path(), secs));
        }
        cases.push((t, rows));
    }
    cat.deezer(
        "playlist/4242",
        json!({"id": 4242, "title": "Bench List", "nb_tracks": n}),
    );
    cat.deezer_list("playlist/4242/tracks", list);

    let playlist = || vec![json!({"url": "https://www.deezer.com/playlist/4242"})];
    let (catalog, ok_c) = run(&cat, "youtube_music", playlist()).await;
    let (via_jamendo, ok_j) = run(&cat, "jamendo", playlist()).await;
    let ytdlp: Vec<Value> = (0..n)
        .map(|i| json!({"provider": "ytdlp", "kind": "url", "id": cat.url(&format!("watch/b{i}.mp3"))}))
        .collect();
    let (via_ytdlp, ok_y) = run(&cat, "youtube_music", ytdlp).await;
    let direct: Vec<Value> = (0..n)
        .map(|i| json!({"url": cat.url(&format!("watch/b{i}.mp3"))}))
        .collect();
    let (via_direct, ok_d) = run(&cat, "youtube_music", direct).await;

    // Scoring alone, in this process.
    let rounds = 200;
    let start = Instant::now();
    for _ in 0..rounds {
        for (t, rows) in &cases {
            let track = musicd::providers::TrackInfo {
                title: t["title"].as_str().map(str::to_string),
                artists: vec!["Bench Artist".into()],
                album: Some("Bench Album".into()),
                duration_ms: t["duration"].as_u64().map(|s| s * 1000),
                ..Default::default()
            };
            for r in rows {
                let mut c = musicd::providers::Candidate {
                    title: r["flexColumns"][0]["musicResponsiveListItemFlexColumnRenderer"]["text"]
                        ["runs"][0]["text"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    artists: vec!["Bench Artist".into()],
                    duration_ms: Some(20_000),
                    official: true,
                    ..Default::default()
                };
                musicd::matching::score::score(&track, &mut c);
                std::hint::black_box(c.score);
            }
        }
    }
    let score_us = start.elapsed().as_secs_f64() * 1e6 / (rounds * n) as f64;

    println!("| measure ({n} tracks, one run) | wall time | done | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| catalog playlist (Deezer → YouTube Music search → yt-dlp) | {catalog:.1} s | {ok_c} request | 1.00 |"
    );
    println!(
        "| the same files as yt-dlp URLs | {via_ytdlp:.1} s | {ok_y} of {n} | catalog / this: {:.2} |",
        catalog / via_ytdlp
    );
    println!(
        "| the same files as direct URLs (native fetcher) | {via_direct:.1} s | {ok_d} of {n} | catalog / this: {:.2} |",
        catalog / via_direct
    );
    println!(
        "| catalog playlist matched on Jamendo (native fetcher) | {via_jamendo:.1} s | {ok_j} request | this / direct URLs: {:.2} |",
        via_jamendo / via_direct
    );
    println!("\nscoring CPU: {score_us:.1} µs per track (2 candidates each)");
}
