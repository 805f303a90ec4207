//! Jobs run directly, next to the end-to-end tests: a ledger row in, `jobs::run` (the runner
//! a worker pool would call) and the row and the library out. No HTTP, no queue consumer.

use std::sync::Arc;

use musicd::app::{Application, Role};
use musicd::db::tasks::{self, NewTask};
use musicd::jobs::{self, Job, JobEnv, track::TrackOptions};
use musicd::providers::TrackInfo;
use musicd::queue::Pool;

use crate::helpers::*;
use crate::upstream::*;

/// A worker-only daemon that is never started: its job environment.
async fn job_env(dirs: &Dirs) -> Arc<JobEnv> {
    let mut config = test_config(dirs);
    config.fetch_allow_private = true;
    Application::build(config, Role::Worker)
        .await
        .expect("build")
        .job_env()
}

/// A `track` job fetches on the io pool, hands its task to the cpu pool, and there places a
/// file that decodes with the provider's tags; the row says where.
#[tokio::test]
async fn a_track_job_fetches_then_places_a_tagged_file() {
    let dirs = Dirs::new();
    let env = job_env(&dirs).await;
    let up = Upstream::start().await;
    let audio = Arc::new(tone(dirs.tmp.path(), "song.mp3", 550, 2));
    up.set("song.mp3", Entry::File(audio, "audio/mpeg"));
    let track = TrackInfo {
        id: "song-1".into(),
        url: up.url("song.mp3"),
        title: Some("Direct Run".into()),
        artists: vec!["The Runners".into()],
        ..TrackInfo::default()
    };
    let job = TrackOptions::new(track, "http", &Default::default());
    assert_eq!(TrackOptions::POOL, Pool::Io);
    let new = NewTask {
        max_attempts: 3,
        ..jobs::new_task(&job)
    };
    let task = tasks::insert(&env.db, &new).await.unwrap().unwrap();

    jobs::run(env.clone(), task.id.clone(), Pool::Io)
        .await
        .unwrap();
    let fetched = tasks::get(&env.db, &task.id).await.unwrap().unwrap();
    assert_eq!(
        (fetched.status.as_str(), fetched.pool.as_str()),
        ("queued", "cpu")
    );

    jobs::run(env.clone(), task.id.clone(), Pool::Cpu)
        .await
        .unwrap();
    let done = tasks::get(&env.db, &task.id).await.unwrap().unwrap();
    assert_eq!(done.status, "done", "{done:?}");
    let path = std::path::PathBuf::from(done.output_path.expect("an output path"));
    assert!(path.starts_with(dirs.library()), "{path:?}");
    decodes(&path).unwrap();
    let tags = tags(&path);
    assert_eq!(tags["title"], serde_json::json!("Direct Run"), "{tags}");
    assert_eq!(tags["artist"], serde_json::json!("The Runners"), "{tags}");
}

/// A row whose options do not fit its kind fails at once with `validation_error`, naming
/// the field, and is not retried.
#[tokio::test]
async fn a_job_with_options_of_the_wrong_shape_fails_for_good() {
    let dirs = Dirs::new();
    let env = job_env(&dirs).await;
    let new = NewTask {
        kind: "track".into(),
        pool: "io".into(),
        options: serde_json::json!({ "provider": "http" }),
        max_attempts: 3,
        ..NewTask::default()
    };
    let task = tasks::insert(&env.db, &new).await.unwrap().unwrap();
    jobs::run(env.clone(), task.id.clone(), Pool::Io)
        .await
        .unwrap();
    let t = tasks::get(&env.db, &task.id).await.unwrap().unwrap();
    assert_eq!(t.status, "failed", "{t:?}");
    assert_eq!(t.error_code.as_deref(), Some("validation_error"));
    assert!(
        t.error.unwrap_or_default().contains("track"),
        "names the missing field"
    );
    assert_eq!(t.attempts, 1);
}
