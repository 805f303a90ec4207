//! The ledger, tokens and users on both engines: SQLite files and PostgreSQL.

use musicd::db::tasks::{self, Claim, NewTask};
use musicd::db::{Db, tokens, users};
use serde_json::json;

use crate::helpers::*;

async fn exercise(db: &Db) {
    db.migrate().await.unwrap();
    let user = users_have_unique_names(db).await;
    refresh_tokens_rotate_once_and_reuse_revokes_the_family(db, &user).await;
    let new = NewTask {
        kind: "ping".into(),
        pool: "io".into(),
        owner_id: Some(user.clone()),
        options: json!({ "sleep_ms": 1 }),
        idempotency_key: Some("k1".into()),
        max_attempts: 3,
        ..NewTask::default()
    };
    let first = claims_hold_a_lease_and_requeues_wait(db, &new).await;
    a_lapsed_lease_is_reclaimed_and_finished(db, &new).await;
    ended_tasks_release_the_idempotency_key(db, &first, &new).await;
    lists_page_by_creation(db, &user).await;
    releases_at_once_never_overfill_the_window(db).await;
}

/// Eight releases racing for a window of three (children ending together, the reconciler)
/// release exactly three children between them.
async fn releases_at_once_never_overfill_the_window(db: &Db) {
    let plain = NewTask {
        kind: "ping".into(),
        pool: "io".into(),
        max_attempts: 3,
        ..NewTask::default()
    };
    for round in 0..20 {
        let parent = tasks::insert(db, &plain).await.unwrap().unwrap();
        tasks::insert_children(db, &parent, &vec![plain.clone(); 10], 0)
            .await
            .unwrap();
        // Staggered starts, so one release counts before another's update and selects after.
        let races: Vec<_> = (0..8u64)
            .map(|i| {
                let (db, id) = (db.clone(), parent.id.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_micros(150 * i)).await;
                    tasks::release_held(&db, &id, 3).await.unwrap().len()
                })
            })
            .collect();
        let mut released = 0;
        for r in races {
            released += r.await.unwrap();
        }
        assert_eq!(released, 3, "round {round}: the window is three");
    }
}

/// Users: a second `dana` is refused; the first is found by id. Her id.
async fn users_have_unique_names(db: &Db) -> String {
    let u = users::create(db, "dana", "hash", "user")
        .await
        .unwrap()
        .unwrap();
    assert!(
        users::create(db, "dana", "hash", "user")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        users::by_id(db, &u.id).await.unwrap().unwrap().username,
        "dana"
    );
    u.id
}

/// Refresh tokens: rotate once, reuse revokes the family.
async fn refresh_tokens_rotate_once_and_reuse_revokes_the_family(db: &Db, user: &str) {
    tokens::insert(db, user, "fam", "h1", musicd::db::now_ms() + 60_000)
        .await
        .unwrap();
    assert!(matches!(
        tokens::redeem(db, "h1").await.unwrap(),
        tokens::Redeemed::Valid { .. }
    ));
    tokens::insert(db, user, "fam", "h2", musicd::db::now_ms() + 60_000)
        .await
        .unwrap();
    assert!(matches!(
        tokens::redeem(db, "h1").await.unwrap(),
        tokens::Redeemed::Reused
    ));
    assert!(matches!(
        tokens::redeem(db, "h2").await.unwrap(),
        tokens::Redeemed::Reused
    ));
    assert!(matches!(
        tokens::redeem(db, "nope").await.unwrap(),
        tokens::Redeemed::Invalid
    ));
}

/// Ledger: idempotency key, claim with lease, double claim, requeue. The task's id.
async fn claims_hold_a_lease_and_requeues_wait(db: &Db, new: &NewTask) -> String {
    let t = tasks::insert(db, new).await.unwrap().unwrap();
    let dup = tasks::insert(db, new).await.unwrap();
    assert_eq!(
        dup.unwrap_err(),
        t.id,
        "same active request names the existing task"
    );
    let Claim::Claimed(c) = tasks::claim(db, &t.id, "w1", 60_000).await.unwrap() else {
        panic!("first claim")
    };
    assert_eq!(c.attempts, 1);
    assert!(matches!(
        tasks::claim(db, &t.id, "w2", 60_000).await.unwrap(),
        Claim::NotClaimable
    ));
    assert!(tasks::renew_lease(db, &t.id, "w1", 60_000).await.unwrap());
    assert!(!tasks::renew_lease(db, &t.id, "w2", 60_000).await.unwrap());
    tasks::progress(db, &t.id, Some("working"), 0.5, Some((10, Some(20))))
        .await
        .unwrap();
    let due = musicd::db::now_ms() + 60_000;
    assert!(
        tasks::requeue(db, &t.id, "w1", Some(due), Some(("x", "boom")), false)
            .await
            .unwrap()
    );
    assert!(
        matches!(
            tasks::claim(db, &t.id, "w2", 60_000).await.unwrap(),
            Claim::NotDue(..)
        ),
        "not due yet"
    );
    t.id
}

/// A lapsed lease is claimable by another worker, and the crash counts an attempt; the
/// second worker finishes it.
async fn a_lapsed_lease_is_reclaimed_and_finished(db: &Db, new: &NewTask) {
    let t2 = tasks::insert(
        db,
        &NewTask {
            idempotency_key: None,
            ..new.clone()
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert!(matches!(
        tasks::claim(db, &t2.id, "w1", -1).await.unwrap(),
        Claim::Claimed(_)
    ));
    let orphans = tasks::orphans(db, 0, 10).await.unwrap();
    assert!(orphans.iter().any(|(id, _)| *id == t2.id));
    assert!(tasks::reclaim_for_queue(db, &t2.id, 0).await.unwrap());
    let Claim::Claimed(c2) = tasks::claim(db, &t2.id, "w2", 60_000).await.unwrap() else {
        panic!("reclaim")
    };
    assert_eq!(c2.attempts, 2);
    assert!(tasks::finish(db, &t2.id, "w2", "done", None).await.unwrap());
    let done = tasks::get(db, &t2.id).await.unwrap().unwrap();
    assert_eq!(done.status, "done");
    assert_eq!(done.progress, 1.0);
    assert!(done.finished_at.is_some());
}

/// Ended tasks release the idempotency key: after giving up on `first`, the same request
/// makes a new task.
async fn ended_tasks_release_the_idempotency_key(db: &Db, first: &str, new: &NewTask) {
    tasks::give_up(db, first, "stop").await.unwrap();
    let failed = tasks::get(db, first).await.unwrap().unwrap();
    assert_eq!(failed.status, "failed");
    assert_eq!(failed.error_code.as_deref(), Some("attempts_exhausted"));
    assert!(
        tasks::insert(db, new).await.unwrap().is_ok(),
        "key free again after the task ended"
    );
}

/// The owner's three tasks list in pages: two, then the one before the last of them.
async fn lists_page_by_creation(db: &Db, user: &str) {
    let mine = tasks::Filter {
        owner_id: Some(user.to_string()),
        ..Default::default()
    };
    assert_eq!(tasks::list(db, &mine, 10).await.unwrap().len(), 3);
    let page = tasks::list(db, &mine, 2).await.unwrap();
    let last = page.last().unwrap();
    let rest = tasks::Filter {
        before: Some((last.created_at, last.id.clone())),
        ..mine
    };
    assert_eq!(tasks::list(db, &rest, 10).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ledger_on_sqlite() {
    let dirs = Dirs::new();
    std::fs::create_dir_all(dirs.data()).unwrap();
    let db = Db::connect(&format!(
        "sqlite://{}?mode=rwc",
        dirs.data().join("t.db").display()
    ))
    .await
    .unwrap();
    exercise(&db).await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ledger_on_postgres() {
    let url = fresh_postgres().await;
    let db = Db::connect(&url).await.unwrap();
    exercise(&db).await;
}

#[tokio::test]
async fn daemon_on_postgres_runs_jobs() {
    let url = fresh_postgres().await;
    let app = TestApp::start(|c| c.database_url = url).await;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    let id = ping(&app.client, &app.base, &admin, json!({ "sleep_ms": 10 })).await;
    let t = wait_task(&app.client, &app.base, &admin, &id, |t| {
        t["status"] == "done"
    })
    .await;
    assert_eq!(t["attempts"], json!(1));
    app.stop().await;
}
