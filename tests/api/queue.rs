//! The queue round trip on both backends: a job enqueued by the API runs once; retries back
//! off; a second `musicd worker` process takes work from Redis; a worker killed with SIGKILL
//! mid-job is recovered and the job completes once, its attempts counted; SIGTERM hands
//! unfinished jobs back.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn sqlite_round_trip_and_retry_with_backoff() {
    let app = TestApp::start(|_| {}).await;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    let id = ping(&app.client, &app.base, &admin, json!({ "sleep_ms": 50 })).await;
    let t = wait_task(&app.client, &app.base, &admin, &id, |t| {
        t["status"] == "done"
    })
    .await;
    assert_eq!(t["attempts"], json!(1));
    assert_eq!(t["progress"], json!(1.0));

    // Two transient failures, then success on the third attempt.
    let id = ping(
        &app.client,
        &app.base,
        &admin,
        json!({ "fail_attempts": 2 }),
    )
    .await;
    let t = wait_task(&app.client, &app.base, &admin, &id, |t| {
        t["status"] == "done"
    })
    .await;
    assert_eq!(t["attempts"], json!(3));
    assert_eq!(
        t["error"],
        json!(null),
        "a success clears the last retry's error"
    );

    // More failures than attempts: failed, with the reason.
    let id = ping(
        &app.client,
        &app.base,
        &admin,
        json!({ "fail_attempts": 10 }),
    )
    .await;
    let t = wait_task(&app.client, &app.base, &admin, &id, |t| {
        t["status"] == "failed"
    })
    .await;
    assert_eq!(t["attempts"], json!(5));
    assert!(
        t["error"]
            .as_str()
            .unwrap()
            .contains("gave up after 5 attempts"),
        "{t}"
    );

    let bad = app
        .client
        .post(app.url("/api/v1/diagnostics/ping"))
        .bearer_auth(&admin)
        .json(&json!({ "sleep_ms": "soon" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    app.stop().await;
}

pub fn daemon_env(
    dirs: &Dirs,
    prefix: &str,
    port: u16,
    extra: &[(&str, String)],
) -> Vec<(&'static str, String)> {
    let mut env: Vec<(&'static str, String)> = vec![
        ("MUSICD_LISTEN", format!("127.0.0.1:{port}")),
        ("MUSICD_DATA_DIR", dirs.data().display().to_string()),
        ("MUSICD_LIBRARY_DIR", dirs.library().display().to_string()),
        ("MUSICD_ADMIN_USER", ADMIN.into()),
        ("MUSICD_ADMIN_PASSWORD", ADMIN_PW.into()),
        ("MUSICD_QUEUE__PREFIX", prefix.into()),
        ("MUSICD_QUEUE__LEASE", "3s".into()),
        ("MUSICD_QUEUE__HEARTBEAT_INTERVAL", "1s".into()),
        ("MUSICD_QUEUE__SHUTDOWN_TIMEOUT", "2s".into()),
        ("MUSICD_MEDIA__LYRICS", "off".into()),
    ];
    for (k, v) in extra {
        let k: &'static str = Box::leak(k.to_string().into_boxed_str());
        env.push((k, v.clone()));
    }
    env
}

#[tokio::test]
async fn redis_queue_with_a_separate_worker_process() {
    let dirs = Dirs::new();
    let prefix = unique_prefix();
    let port = free_port();
    // The API process runs no workers, so only the worker process can run the job.
    let serve_env = daemon_env(
        &dirs,
        &prefix,
        port,
        &[
            ("MUSICD_REDIS_URL", redis_url()),
            ("MUSICD_WORKERS__ENABLED", "false".into()),
        ],
    );
    let mut serve = Daemon::spawn(&["serve"], &serve_env, dirs.tmp.path(), "serve.log");
    serve.wait_ready().await;
    let client = reqwest::Client::new();
    let admin = login(&client, &serve.base, ADMIN, ADMIN_PW).await;
    let health: Value = client
        .get(format!("{}/api/v1/health/deep", serve.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["data"]["checks"]["queue"]["backend"], json!("redis"));

    let id = ping(&client, &serve.base, &admin, json!({ "sleep_ms": 100 })).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = wait_task(&client, &serve.base, &admin, &id, |_| true).await;
    assert_eq!(t["status"], json!("queued"), "no worker yet");

    let worker_env = daemon_env(
        &dirs,
        &prefix,
        free_port(),
        &[("MUSICD_REDIS_URL", redis_url())],
    );
    let _worker = Daemon::spawn(&["worker"], &worker_env, dirs.tmp.path(), "worker.log");
    let t = wait_task(&client, &serve.base, &admin, &id, |t| t["status"] == "done").await;
    assert_eq!(t["attempts"], json!(1));
    let serve_id = serve.log_text();
    let worker_id = t["worker_id"].as_str().unwrap();
    assert!(
        !serve_id.contains(&format!("worker_id=\"{worker_id}\"")),
        "the worker process ran it"
    );
    assert!(
        std::fs::read_to_string(dirs.tmp.path().join("worker.log"))
            .unwrap()
            .contains("job ended")
    );
}

async fn sigkill_mid_job(extra: &[(&str, String)]) {
    let dirs = Dirs::new();
    let prefix = unique_prefix();
    let port = free_port();
    let env = daemon_env(&dirs, &prefix, port, extra);
    let mut d = Daemon::spawn(&["serve"], &env, dirs.tmp.path(), "first.log");
    d.wait_ready().await;
    let client = reqwest::Client::new();
    let admin = login(&client, &d.base, ADMIN, ADMIN_PW).await;
    let id = ping(&client, &d.base, &admin, json!({ "sleep_ms": 3000 })).await;
    wait_task(&client, &d.base, &admin, &id, |t| t["status"] == "running").await;
    d.kill9();

    let mut d2 = Daemon::spawn(&["serve"], &env, dirs.tmp.path(), "second.log");
    d2.wait_ready().await;
    let admin = login(&client, &d2.base, ADMIN, ADMIN_PW).await;
    let t = wait_task(&client, &d2.base, &admin, &id, |t| t["status"] == "done").await;
    assert_eq!(t["attempts"], json!(2), "the killed run counts: {t}");
    // Give any duplicate delivery (the queue's own orphan recovery) time to arrive: it must
    // find the task done and do nothing.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let t = wait_task(&client, &d2.base, &admin, &id, |_| true).await;
    assert_eq!(t["attempts"], json!(2));
    assert_eq!(
        d2.log_text().matches("job ended").count(),
        1,
        "ran to completion once"
    );
}

#[tokio::test]
async fn sigkill_mid_job_sqlite() {
    sigkill_mid_job(&[]).await;
}

#[tokio::test]
async fn sigkill_mid_job_redis() {
    sigkill_mid_job(&[("MUSICD_REDIS_URL", redis_url())]).await;
}

#[tokio::test]
async fn sigterm_hands_unfinished_jobs_back() {
    let dirs = Dirs::new();
    let env = daemon_env(&dirs, &unique_prefix(), free_port(), &[]);
    let mut d = Daemon::spawn(&["serve"], &env, dirs.tmp.path(), "first.log");
    d.wait_ready().await;
    let client = reqwest::Client::new();
    let admin = login(&client, &d.base, ADMIN, ADMIN_PW).await;
    let id = ping(&client, &d.base, &admin, json!({ "sleep_ms": 20000 })).await;
    wait_task(&client, &d.base, &admin, &id, |t| t["status"] == "running").await;
    let status = d.terminate();
    assert!(status.success(), "graceful exit: {status}");
    assert!(d.log_text().contains("handing unfinished jobs back"));

    let mut d2 = Daemon::spawn(&["serve"], &env, dirs.tmp.path(), "second.log");
    d2.wait_ready().await;
    let admin = login(&client, &d2.base, ADMIN, ADMIN_PW).await;
    let t = wait_task(&client, &d2.base, &admin, &id, |t| t["status"] == "running").await;
    assert_eq!(
        t["attempts"],
        json!(1),
        "a handed-back run does not count: {t}"
    );
}

/// A parent left `processing` after its last child ended (its settle failed: the database was
/// busy) is settled by the reconciler: the request ends instead of waiting forever.
#[tokio::test]
async fn the_reconciler_settles_a_parent_whose_children_have_ended() {
    use musicd::db::tasks::{self, NewTask};
    let app = TestApp::start(|_| {}).await;
    let session = crate::kit::Session::admin(&app).await;
    let db_url = format!("sqlite://{}", app.data().join("musicd.db").display());
    let db = musicd::db::Db::connect(&db_url).await.unwrap();
    let parent = tasks::insert(
        &db,
        &NewTask {
            kind: "ping".into(),
            pool: "io".into(),
            max_attempts: 3,
            ..NewTask::default()
        },
    )
    .await
    .unwrap()
    .unwrap();
    let child = NewTask {
        kind: "ping".into(),
        pool: "io".into(),
        max_attempts: 3,
        ..NewTask::default()
    };
    tasks::insert_children(&db, &parent, &[child.clone(), child], 10)
        .await
        .unwrap();
    // What a failed settle leaves: the parent waits for children that have all ended.
    sqlx::query("UPDATE tasks SET status = 'processing' WHERE id = $1")
        .bind(&parent.id)
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE tasks SET status = 'done', finished_at = 1 WHERE parent_id = $1")
        .bind(&parent.id)
        .execute(&db.pool)
        .await
        .unwrap();
    let t = session.wait_ended(&parent.id).await;
    assert_eq!(t.status, "done", "{t:?}");
    app.stop().await;
}

/// A task whose queue message never arrives (a queue worker that stopped fetching, a lost
/// push) is run directly once it has waited `queue.rescue_after` with room in its pool,
/// instead of waiting for the reconciler's ten-minute re-push.
#[tokio::test]
async fn a_task_the_queue_never_delivers_is_rescued() {
    use musicd::db::tasks::{self, NewTask};
    let app = TestApp::start(|c| c.queue.rescue_after = Duration::from_secs(1)).await;
    let session = crate::kit::Session::admin(&app).await;
    let db_url = format!("sqlite://{}", app.data().join("musicd.db").display());
    let db = musicd::db::Db::connect(&db_url).await.unwrap();
    // Committed to the ledger, never pushed to the queue.
    let t = tasks::insert(
        &db,
        &NewTask {
            kind: "ping".into(),
            pool: "io".into(),
            max_attempts: 3,
            options: serde_json::json!({}),
            ..NewTask::default()
        },
    )
    .await
    .unwrap()
    .unwrap();
    let t = session.wait_ended(&t.id).await;
    assert_eq!(t.status, "done", "{t:?}");
    assert_eq!(t.attempts, 1, "run once: {t:?}");
    app.stop().await;
}
