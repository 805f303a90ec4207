//! Uploads and file serving benchmark, side by side with the reference in one run:
//!
//! 1. **Upload throughput** over loopback of one file (default 1 GiB of random bytes, held in
//!    this process's memory) to the release `musicd serve`: as one tus `PATCH`, and as a
//!    multipart `POST /uploads`; against the disk's raw write rate as `dd conv=fdatasync`
//!    measures it on the same disk, and against this process writing the same bytes from memory
//!    with the early writeback musicd uses (the best this disk does). The daemon's peak RSS
//!    (`VmHWM`) after the uploads.
//! 2. **Range serving**: one ~50 MB FLAC in the library, read with 1 MiB `Range` requests at
//!    random offsets by 8 concurrent clients for a fixed time, from musicd
//!    (`GET /library/tracks/{id}/file`) and from nginx serving the same file; and one whole-file
//!    GET from each.
//!
//! Each measurement runs five times, interleaved with its reference, each upload and raw write
//! after a `sync(2)`; medians are reported.
//!
//! Run: `cargo bench --bench library` (options after `--`: `--upload-mib 1024 --seconds 3 --rounds 5`).
//! Needs `ffmpeg` and `nginx` on PATH. Prints a Markdown table.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use common::{Daemon, get_json, proc_mib, sh};
use futures::StreamExt;
use serde_json::Value;

const CONCURRENCY: usize = 8;

fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    v[v.len() / 2]
}
const RANGE: u64 = 1024 * 1024;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(default)
}

/// "lowest–highest" of some rates.
fn spread(rates: impl Iterator<Item = f64>) -> String {
    let (lo, hi) = rates.fold((f64::MAX, 0.0f64), |(lo, hi), r| (lo.min(r), hi.max(r)));
    format!("{lo:.0}–{hi:.0}")
}

fn mib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1048576.0 / d.as_secs_f64()
}

/// `mib` MiB of random bytes.
fn random_bytes(mib: u64) -> Bytes {
    let mut data = vec![0u8; (mib * 1024 * 1024) as usize];
    rand::fill(&mut data[..]);
    data.into()
}

/// The time `dd` takes to write `mib` MiB into `dir` and `fdatasync` them: the disk's raw
/// write rate, measured by the usual tool.
fn dd(mib: u64, dir: &Path) -> Duration {
    let out = dir.join("dd.bin");
    let t = Instant::now();
    let ok = Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "conv=fdatasync", "status=none"])
        .arg(format!("count={mib}"))
        .arg(format!("of={}", out.display()))
        .status()
        .unwrap()
        .success();
    let took = t.elapsed();
    assert!(ok, "dd");
    let _ = std::fs::remove_file(out);
    took
}

/// The time a write of `data` into `dir` takes when writeback is started every 8 MiB as
/// musicd does (`sync_file_range`), then `fdatasync`: the best this disk does.
fn raw_write_early(data: &[u8], dir: &Path) -> Duration {
    use std::os::fd::AsRawFd;
    let copy = dir.join("raw.bin");
    let t = Instant::now();
    let mut out = std::fs::File::create(&copy).unwrap();
    let (mut written, mut kicked) = (0usize, 0usize);
    for c in data.chunks(512 * 1024) {
        out.write_all(c).unwrap();
        written += c.len();
        if written - kicked >= 8 << 20 {
            // SAFETY: an open descriptor; this only schedules writeback.
            unsafe {
                libc::sync_file_range(
                    out.as_raw_fd(),
                    kicked as i64,
                    (written - kicked) as i64,
                    libc::SYNC_FILE_RANGE_WRITE,
                )
            };
            kicked = written;
        }
    }
    out.sync_data().unwrap();
    let took = t.elapsed();
    drop(out);
    let _ = std::fs::remove_file(copy);
    took
}

async fn tus_upload(http: &reqwest::Client, base: &str, token: &str, data: &Bytes) -> Duration {
    let len = data.len();
    let t = Instant::now();
    let r = http
        .post(format!("{base}/api/v1/uploads/tus"))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", len.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let loc = r.headers()["Location"].to_str().unwrap().to_string();
    let r = http
        .patch(format!("{base}{loc}"))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Content-Type", "application/offset+octet-stream")
        .header("Upload-Offset", "0")
        .header("Content-Length", len.to_string())
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
    let took = t.elapsed();
    let task = r.headers()["Musicd-Task-Id"].to_str().unwrap().to_string();
    settle_task(http, base, token, &task).await;
    took
}

async fn multipart_upload(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    data: &Bytes,
) -> Duration {
    let t = Instant::now();
    let part = reqwest::multipart::Part::stream_with_length(data.clone(), data.len() as u64)
        .file_name("bench.bin");
    let form = reqwest::multipart::Form::new().part("file", part);
    let r = http
        .post(format!("{base}/api/v1/uploads"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    let took = t.elapsed();
    let v: Value = r.json().await.unwrap();
    settle_task(
        http,
        base,
        token,
        v["data"]["tasks"][0]["task_id"].as_str().unwrap(),
    )
    .await;
    took
}

/// Waits until the task an upload made has ended (random bytes fail to decode), so that its
/// processing is not billed to the next measurement.
async fn settle_task(http: &reqwest::Client, base: &str, token: &str, id: &str) {
    for _ in 0..1200 {
        let v = get_json(http, format!("{base}/api/v1/tasks/{id}"), token).await;
        if matches!(
            v["data"]["status"].as_str(),
            Some("done" | "failed" | "cancelled")
        ) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the upload's task {id} did not end");
}

/// Bytes read per second by `CONCURRENCY` clients doing 1 MiB ranges at random offsets of a
/// `size`-byte file at `url` for `secs`.
async fn range_load(url: &str, token: Option<&str>, size: u64, secs: u64) -> f64 {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let total: u64 = futures::stream::iter(0..CONCURRENCY)
        .map(|_| {
            let http = http.clone();
            let url = url.to_string();
            let token = token.map(str::to_string);
            async move {
                let mut got = 0u64;
                while Instant::now() < deadline {
                    let start = rand::random_range(0..size - RANGE);
                    let mut req = http
                        .get(&url)
                        .header("Range", format!("bytes={start}-{}", start + RANGE - 1));
                    if let Some(t) = &token {
                        req = req.bearer_auth(t);
                    }
                    let r = req.send().await.unwrap();
                    assert_eq!(r.status(), 206);
                    got += r.bytes().await.unwrap().len() as u64;
                }
                got
            }
        })
        .buffer_unordered(CONCURRENCY)
        .fold(0, |a, b| async move { a + b })
        .await;
    mib_s(total, started.elapsed())
}

async fn whole_file(url: &str, token: Option<&str>) -> f64 {
    let http = reqwest::Client::new();
    let t = Instant::now();
    let mut req = http.get(url);
    if let Some(tk) = token {
        req = req.bearer_auth(tk);
    }
    let r = req.send().await.unwrap();
    let mut n = 0u64;
    let mut s = r.bytes_stream();
    while let Some(c) = s.next().await {
        n += c.unwrap().len() as u64;
    }
    mib_s(n, t.elapsed())
}

fn nginx(root: &Path, dir: &Path, port: u16, sendfile: bool) -> std::process::Child {
    let conf = dir.join(format!("nginx-{port}.conf"));
    std::fs::write(
        &conf,
        format!(
            "worker_processes 1;\npid {pid};\nerror_log {err};\nevents {{ worker_connections 256; }}\n\
             http {{ access_log off; sendfile {sf}; tcp_nopush on; client_body_temp_path {tmp};\n\
             proxy_temp_path {tmp}; fastcgi_temp_path {tmp}; uwsgi_temp_path {tmp}; scgi_temp_path {tmp};\n\
             server {{ listen 127.0.0.1:{port}; root {root}; }} }}\n",
            pid = dir.join(format!("nginx-{port}.pid")).display(),
            sf = if sendfile { "on" } else { "off" },
            err = dir.join("nginx.err").display(),
            tmp = dir.display(),
            root = root.display(),
        ),
    )
    .unwrap();
    Command::new("nginx")
        .args(["-c", &conf.display().to_string(), "-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx on PATH")
}

fn main() {
    let upload_mib = arg("--upload-mib", 1024);
    let secs = arg("--seconds", 3);
    // Rounds of each measurement, interleaved; the median is reported.
    let rounds = arg("--rounds", 5);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let data = random_bytes(upload_mib);
        let bytes = data.len() as u64;

        let d = Daemon::start(
            &http,
            &[
                ("MUSICD_UPLOADS__QUOTA", "0 B".into()),
                ("MUSICD_MEDIA__MAX_INPUT_SIZE", "8 GiB".into()),
            ],
        )
        .await;
        let token = d.token(&http).await;
        let rss_idle = proc_mib(d.pid, "VmRSS");
        // Interleaved rounds; medians.
        let (mut raw, mut early, mut tus, mut multipart) = (vec![], vec![], vec![], vec![]);
        // Each starts with no dirty pages left by the one before (its writeback would be
        // billed to whoever syncs next), and 2 s after it, for the discards of the file the one
        // before removed (this disk is mounted with `discard`) and the host's own writeback.
        let settle = || {
            unsafe { libc::sync() };
            std::thread::sleep(Duration::from_secs(2));
        };
        let rate = |v: &Vec<Duration>| mib_s(bytes, v[v.len() - 1]);
        for _ in 0..rounds {
            settle();
            raw.push(dd(upload_mib, work.path()));
            settle();
            early.push(raw_write_early(&data, work.path()));
            settle();
            tus.push(tus_upload(&http, &d.base, &token, &data).await);
            settle();
            multipart.push(multipart_upload(&http, &d.base, &token, &data).await);
            eprintln!(
                "round: dd {:.0}, early writeback {:.0}, tus {:.0}, multipart {:.0} MiB/s",
                rate(&raw),
                rate(&early),
                rate(&tus),
                rate(&multipart)
            );
        }
        let spreads =
            [&raw, &early, &tus, &multipart].map(|v| spread(v.iter().map(|d| mib_s(bytes, *d))));
        let (raw, early, tus, multipart) =
            (median(raw), median(early), median(tus), median(multipart));
        let hwm = proc_mib(d.pid, "VmHWM");

        // A FLAC in the library, indexed by a scan, served by both.
        let library = d.dir.path().join("library");
        let album = library.join("Bench").join("Noise");
        std::fs::create_dir_all(&album).unwrap();
        let flac = album.join("01 Noise.flac");
        let ok = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i", "anoisesrc=d=300:c=white:r=48000:a=0.5"])
            .args(["-ac", "2", "-c:a", "flac"])
            .arg(&flac)
            .status()
            .unwrap()
            .success();
        assert!(ok, "ffmpeg");
        let size = std::fs::metadata(&flac).unwrap().len();
        let scan = Command::new(env!("CARGO_BIN_EXE_musicd"))
            .arg("scan")
            .current_dir(d.dir.path())
            .env("MUSICD_DATA_DIR", d.dir.path().join("data"))
            .env("MUSICD_LIBRARY_DIR", &library)
            .output()
            .unwrap();
        assert!(scan.status.success(), "{}", String::from_utf8_lossy(&scan.stderr));
        let page = get_json(
            &http,
            format!("{}/api/v1/library/tracks?format=flac", d.base),
            &token,
        )
        .await;
        let id = page["data"]["items"][0]["id"].as_str().unwrap().to_string();
        let musicd_url = format!("{}/api/v1/library/tracks/{id}/file", d.base);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let port2 = port + 1;
        let ng = nginx(&library, work.path(), port, true);
        let ng_copy = nginx(&library, work.path(), port2, false);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let file = "Bench/Noise/01%20Noise.flac";
        let nginx_url = format!("http://127.0.0.1:{port}/{file}");
        let copy_url = format!("http://127.0.0.1:{port2}/{file}");

        let mut r = [Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..rounds {
            r[0].push(range_load(&musicd_url, Some(&token), size, secs).await);
            r[1].push(range_load(&nginx_url, None, size, secs).await);
            r[2].push(range_load(&copy_url, None, size, secs).await);
            r[3].push(whole_file(&musicd_url, Some(&token)).await);
            r[4].push(whole_file(&nginx_url, None).await);
            r[5].push(whole_file(&copy_url, None).await);
        }
        let range_spreads = [&r[0], &r[1]].map(|v| spread(v.iter().copied()));
        let [m_range, n_range, c_range, m_whole, n_whole, c_whole] = r.map(median);
        for mut n in [ng, ng_copy] {
            let _ = n.kill();
            let _ = n.wait();
        }

        println!(
            "\nmusicd {} ({}), {} cores; {} MiB upload, {:.1} MB FLAC for serving\n",
            sh("git", &["rev-parse", "--short", "HEAD"]),
            sh("uname", &["-sr"]),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            bytes / 1048576,
            size as f64 / 1e6
        );
        println!("| measure | musicd | reference | ratio | goal |");
        println!("|---|---|---|---|---|");
        let row = |name: &str, m: f64, r: f64, refname: &str| {
            println!(
                "| {name} | {m:.0} MiB/s | {r:.0} MiB/s ({refname}) | {:.2} | ≥ 0.80: {} |",
                m / r,
                if m / r >= 0.8 { "met" } else { "not met" }
            );
        };
        let dd_rate = mib_s(bytes, raw);
        let early_rate = mib_s(bytes, early);
        row("tus upload (one PATCH)", mib_s(bytes, tus), dd_rate, "dd conv=fdatasync");
        row("multipart upload", mib_s(bytes, multipart), dd_rate, "dd conv=fdatasync");
        row("tus upload (one PATCH)", mib_s(bytes, tus), early_rate, "write, early writeback, fdatasync");
        row("multipart upload", mib_s(bytes, multipart), early_rate, "write, early writeback, fdatasync");
        row(
            &format!("1 MiB Range reads, {CONCURRENCY} clients, {secs} s"),
            m_range,
            n_range,
            "nginx",
        );
        row(
            &format!("1 MiB Range reads, {CONCURRENCY} clients, {secs} s"),
            m_range,
            c_range,
            "nginx, sendfile off",
        );
        row("whole-file GET, one client", m_whole, n_whole, "nginx");
        row("whole-file GET, one client", m_whole, c_whole, "nginx, sendfile off");
        println!(
            "| daemon RSS idle → peak (VmHWM) during the uploads | {rss_idle:.1} → {hwm:.1} MiB | | | ≤ 60 MB: {} |",
            if hwm * 1.048576 <= 60.0 { "met" } else { "not met" }
        );
        println!(
            "\nLowest–highest of the {rounds} rounds, MiB/s: dd {}, early writeback {}, tus {}, \
             multipart {}; Range reads: musicd {}, nginx {}",
            spreads[0], spreads[1], spreads[2], spreads[3], range_spreads[0], range_spreads[1]
        );
    });
}
