//! Queue benchmark: enqueue-to-start latency (p50/p99) and no-op jobs per second, on the
//! embedded SQLite queue and on Redis, through the real ledger and worker pools.
//!
//! Run: `cargo bench --bench queue` (needs Redis at MUSICD_TEST_REDIS_URL or 127.0.0.1:6379).
//! Prints a Markdown table for docs/BENCHMARKS.md.

use std::time::{Duration, Instant};

use musicd::app::{Application, Role};
use musicd::config::Config;
use musicd::db::tasks::{self, NewTask};
use musicd::jobs;
use tokio_util::sync::CancellationToken;

const LATENCY_JOBS: usize = 200;
const THROUGHPUT_JOBS: usize = 2000;

fn config(dir: &std::path::Path, redis: Option<String>) -> Config {
    let mut c = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        library_dir: dir.join("library"),
        jwt_secret: "bench-secret-0123456789-0123456789-0123456789".into(),
        redis_url: redis.unwrap_or_default(),
        log_level: "warn".into(),
        ..Config::default()
    };
    c.queue.prefix = format!("bench{}", std::process::id());
    c
}

fn ping() -> NewTask {
    NewTask {
        kind: "ping".into(),
        pool: "io".into(),
        options: serde_json::json!({}),
        max_attempts: 3,
        ..NewTask::default()
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

async fn done_count(db: &musicd::db::Db) -> usize {
    let rows = tasks::count_by_status(db).await.unwrap();
    rows.iter()
        .filter(|(s, _)| s == "done")
        .map(|(_, n)| *n as usize)
        .sum()
}

async fn wait_done(db: &musicd::db::Db, target: usize) {
    loop {
        if done_count(db).await >= target {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn run(name: &str, redis: Option<String>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), redis);
    let app = Application::build(cfg.clone(), Role::Serve).await.unwrap();
    let db = musicd::app::open_db(&cfg).await.unwrap();
    let queue = musicd::queue::Queue::connect(&cfg).await.unwrap();
    let events = musicd::events::EventBus::local();
    let stop = CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(stop.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Latency: one job at a time, spaced so the workers are idle when each arrives.
    let mut lat = Vec::new();
    for _ in 0..LATENCY_JOBS {
        let t = jobs::submit(&db, &queue, &events, &ping())
            .await
            .unwrap()
            .unwrap();
        loop {
            let row = tasks::get(&db, &t.id).await.unwrap().unwrap();
            if let Some(started) = row.started_at {
                lat.push(started - row.created_at);
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lat.sort_unstable();

    // Throughput: a burst of no-op jobs, first enqueue to last completion.
    let before = done_count(&db).await;
    let start = Instant::now();
    for _ in 0..THROUGHPUT_JOBS {
        jobs::submit(&db, &queue, &events, &ping())
            .await
            .unwrap()
            .unwrap();
    }
    let enqueued = start.elapsed();
    wait_done(&db, before + THROUGHPUT_JOBS).await;
    let total = start.elapsed();
    stop.cancel();
    let _ = handle.await;
    format!(
        "| {name} | {} ms | {} ms | {} ms | {:.0} jobs/s | {:.0} jobs/s |",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat[lat.len() - 1],
        THROUGHPUT_JOBS as f64 / enqueued.as_secs_f64(),
        THROUGHPUT_JOBS as f64 / total.as_secs_f64(),
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let redis =
        std::env::var("MUSICD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    println!(
        "no-op `ping` jobs through ledger + queue + io pool (8 workers), poll interval 100 ms"
    );
    println!(
        "latency: {LATENCY_JOBS} jobs one at a time; throughput: a burst of {THROUGHPUT_JOBS}\n"
    );
    println!("| backend | enqueue→start p50 | p99 | max | enqueue rate | end-to-end throughput |");
    println!("|---|---|---|---|---|---|");
    println!("{}", rt.block_on(run("SQLite (embedded)", None)));
    println!("{}", rt.block_on(run("Redis", Some(redis))));
}
