//! The ledger, tokens and users on both engines: SQLite files and PostgreSQL.

use musicd::db::tasks::{self, Claim, NewTask};
use musicd::db::{Db, tokens, users};
use serde_json::json;

use crate::helpers::*;

async fn exercise(db: &Db) {
    db.migrate().await.unwrap();
    // Users.
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

    // Refresh tokens: rotate once, reuse revokes the family.
    tokens::insert(db, &u.id, "fam", "h1", musicd::db::now_ms() + 60_000)
        .await
        .unwrap();
    assert!(matches!(
        tokens::redeem(db, "h1").await.unwrap(),
        tokens::Redeemed::Valid { .. }
    ));
    tokens::insert(db, &u.id, "fam", "h2", musicd::db::now_ms() + 60_000)
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

    // Ledger: idempotency key, claim with lease, double claim, requeue, finish.
    let new = NewTask {
        kind: "ping".into(),
        pool: "io".into(),
        owner_id: Some(u.id.clone()),
        options: json!({ "sleep_ms": 1 }),
        idempotency_key: Some("k1".into()),
        max_attempts: 3,
        ..NewTask::default()
    };
    let t = tasks::insert(db, &new).await.unwrap().unwrap();
    let dup = tasks::insert(db, &new).await.unwrap();
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
    // A lapsed lease is claimable by another worker, and the crash counts an attempt.
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
    // Ended tasks release the idempotency key.
    tasks::give_up(db, &t.id, "stop").await.unwrap();
    let failed = tasks::get(db, &t.id).await.unwrap().unwrap();
    assert_eq!(failed.status, "failed");
    assert_eq!(failed.error_code.as_deref(), Some("attempts_exhausted"));
    assert!(
        tasks::insert(db, &new).await.unwrap().is_ok(),
        "key free again after the task ended"
    );
    let mine = tasks::Filter {
        owner_id: Some(u.id.clone()),
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

#[tokio::test]
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

#[tokio::test]
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
