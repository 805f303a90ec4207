//! Accounts and what they may see: password changes (self, admin, command line), logout of
//! one's own login only, event streams that follow a demotion or deletion, admin-only
//! operations routes, private files on disk, and internal errors without their text.

use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};

use crate::events::{Msg, read_events};
use crate::helpers::*;
use crate::library::tus_create;

/// A login's access and refresh tokens.
async fn tokens(app: &TestApp, user: &str, pw: &str) -> (String, String) {
    let (s, r) = post_json(
        &app.client,
        app.url("/api/v1/auth/login"),
        "",
        json!({ "username": user, "password": pw }),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    (
        r["data"]["access_token"].as_str().unwrap().to_string(),
        r["data"]["refresh_token"].as_str().unwrap().to_string(),
    )
}

/// The status of `GET /auth/me` with `token`.
async fn me(app: &TestApp, token: &str) -> u16 {
    app.client
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn put_json(app: &TestApp, path: &str, token: &str, body: Value) -> (u16, Value) {
    let r = app
        .client
        .put(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn new_user(app: &TestApp, admin: &str, name: &str, pw: &str) -> String {
    let (s, r) = post_json(
        &app.client,
        app.url("/api/v1/users"),
        admin,
        json!({ "username": name, "password": pw }),
    )
    .await;
    assert_eq!(s, 201, "{r}");
    r["data"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn passwords_change_and_other_logins_end() {
    // Many logins from one address: more than the default burst allows.
    let app = TestApp::start(|c| c.security.login_burst = 50).await;
    let (admin, _) = tokens(&app, ADMIN, ADMIN_PW).await;
    let id = new_user(&app, &admin, "dan", "dan-password-1").await;
    let (here, _) = tokens(&app, "dan", "dan-password-1").await;
    let (elsewhere, _) = tokens(&app, "dan", "dan-password-1").await;
    bad_password_changes_are_refused(&app, &here).await;
    own_change_ends_the_other_logins(&app, &here, &elsewhere).await;
    admin_reset_ends_every_login(&app, &admin, &id, &here).await;
    command_line_sets_the_password(&app).await;
    app.stop().await;
}

/// A change with the wrong current password is 401; a too-short new one is a validation
/// error naming `new_password`.
async fn bad_password_changes_are_refused(app: &TestApp, here: &str) {
    let (s, r) = put_json(
        app,
        "/api/v1/auth/password",
        here,
        json!({ "current_password": "wrong-password", "new_password": "dan-password-2" }),
    )
    .await;
    assert_eq!(s, 401, "{r}");
    let (s, r) = put_json(
        app,
        "/api/v1/auth/password",
        here,
        json!({ "current_password": "dan-password-1", "new_password": "short" }),
    )
    .await;
    assert_eq!(s, 400, "{r}");
    assert_eq!(
        r["error"]["details"][0]["field"],
        json!("new_password"),
        "{r}"
    );
}

/// Dan changes his own password: the changing login stays, his other login ends, and only
/// the new password signs in.
async fn own_change_ends_the_other_logins(app: &TestApp, here: &str, elsewhere: &str) {
    let (s, r) = put_json(
        app,
        "/api/v1/auth/password",
        here,
        json!({ "current_password": "dan-password-1", "new_password": "dan-password-2" }),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(me(app, here).await, 200, "the changing login stays");
    assert_eq!(me(app, elsewhere).await, 401, "other logins end");
    let (s, _) = post_json(
        &app.client,
        app.url("/api/v1/auth/login"),
        "",
        json!({ "username": "dan", "password": "dan-password-1" }),
    )
    .await;
    assert_eq!(s, 401);
    tokens(app, "dan", "dan-password-2").await;
}

/// An admin sets it: every login of the account ends, so Dan's old login cannot use the
/// admin route either.
async fn admin_reset_ends_every_login(app: &TestApp, admin: &str, id: &str, here: &str) {
    let (s, r) = put_json(
        app,
        &format!("/api/v1/users/{id}/password"),
        admin,
        json!({ "new_password": "dan-password-3" }),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(me(app, here).await, 401);
    let (s, _) = put_json(
        app,
        &format!("/api/v1/users/{id}/password"),
        here,
        json!({ "new_password": "dan-password-4" }),
    )
    .await;
    assert_eq!(s, 401);
}

/// `musicd user passwd` sets it on the command line, against the daemon's database.
async fn command_line_sets_the_password(app: &TestApp) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_musicd"))
        .args(["user", "passwd", "dan", "--password-stdin"])
        .env_remove("MUSICD_CONFIG")
        .env("MUSICD_DATA_DIR", app.data())
        .env("MUSICD_LIBRARY_DIR", app.library())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"dan-password-5\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tokens(app, "dan", "dan-password-5").await;
}

#[tokio::test]
async fn logout_ends_only_the_callers_own_login() {
    let app = TestApp::start(|_| {}).await;
    let (admin, _) = tokens(&app, ADMIN, ADMIN_PW).await;
    new_user(&app, &admin, "eli", "eli-password-1").await;
    new_user(&app, &admin, "fay", "fay-password-1").await;
    let (eli_a, eli_a_refresh) = tokens(&app, "eli", "eli-password-1").await;
    let (eli_b, _) = tokens(&app, "eli", "eli-password-1").await;
    let (fay, _) = tokens(&app, "fay", "fay-password-1").await;

    // Fay cannot sign Eli out with Eli's refresh token.
    let (s, r) = post_json(
        &app.client,
        app.url("/api/v1/auth/logout"),
        &fay,
        json!({ "refresh_token": eli_a_refresh }),
    )
    .await;
    assert_eq!(s, 403, "{r}");
    assert_eq!(me(&app, &eli_a).await, 200);
    let (s, _) = post_json(
        &app.client,
        app.url("/api/v1/auth/refresh"),
        "",
        json!({ "refresh_token": eli_a_refresh }),
    )
    .await;
    assert_eq!(s, 200, "Eli's refresh token still works");

    // Eli signs out login A: its access token stops working at once; login B goes on.
    let (eli_a, eli_a_refresh) = tokens(&app, "eli", "eli-password-1").await;
    let (s, r) = post_json(
        &app.client,
        app.url("/api/v1/auth/logout"),
        &eli_a,
        json!({ "refresh_token": eli_a_refresh }),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(me(&app, &eli_a).await, 401);
    assert_eq!(me(&app, &eli_b).await, 200);
    assert_eq!(me(&app, &fay).await, 200);
    app.stop().await;
}

fn task_ids(msgs: &[Msg]) -> Vec<String> {
    msgs.iter()
        .filter(|m| m.event == "task.created")
        .filter_map(|m| m.data["task_id"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn event_streams_follow_demotion_and_deletion() {
    let app = TestApp::start(|_| {}).await;
    let c = &app.client;
    let (admin, _) = tokens(&app, ADMIN, ADMIN_PW).await;
    let gus = new_user(&app, &admin, "gus", "gus-password-1").await;
    let hal = new_user(&app, &admin, "hal", "hal-password-1").await;
    let (s, _) = put_json(
        &app,
        &format!("/api/v1/users/{gus}/role"),
        &admin,
        json!({ "role": "admin" }),
    )
    .await;
    assert_eq!(s, 200);
    let (gus_token, _) = tokens(&app, "gus", "gus-password-1").await;
    let (hal_token, _) = tokens(&app, "hal", "hal-password-1").await;
    // Gus opens a stream as an admin, and sees the admin's tasks.
    let stream = c
        .get(app.url("/api/v1/events"))
        .bearer_auth(&gus_token)
        .send()
        .await
        .unwrap();
    let hal_stream = c
        .get(app.url("/api/v1/events"))
        .bearer_auth(&hal_token)
        .send()
        .await
        .unwrap();
    let before = ping(c, &app.base, &admin, json!({})).await;
    // Demoted while the stream is open (his logins end; the open stream follows the role).
    let (s, _) = put_json(
        &app,
        &format!("/api/v1/users/{gus}/role"),
        &admin,
        json!({ "role": "user" }),
    )
    .await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = ping(c, &app.base, &admin, json!({})).await;
    let marker = ping(c, &app.base, &admin, json!({})).await;
    // Hal is deleted while his stream is open: it ends.
    let (s, _) = {
        let r = c
            .delete(app.url(&format!("/api/v1/users/{hal}")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), ())
    };
    assert_eq!(s, 200);
    let seen = read_events(stream, Duration::from_secs(8), |m| {
        task_ids(m).contains(&marker)
    })
    .await;
    let ids = task_ids(&seen);
    assert!(ids.contains(&before), "{ids:?}");
    assert!(
        !ids.contains(&after),
        "a demoted user still saw another user's task"
    );
    assert!(!ids.contains(&marker));
    let started = tokio::time::Instant::now();
    read_events(hal_stream, Duration::from_secs(15), |_| false).await;
    assert!(
        started.elapsed() < Duration::from_secs(14),
        "a deleted user's stream stayed open"
    );
    app.stop().await;
}

#[tokio::test]
async fn operations_routes_are_for_admins_and_files_are_private() {
    let app = TestApp::start(|_| {}).await;
    let (admin, _) = tokens(&app, ADMIN, ADMIN_PW).await;
    new_user(&app, &admin, "ivy", "ivy-password-1").await;
    let (ivy, _) = tokens(&app, "ivy", "ivy-password-1").await;
    for path in ["/api/v1/metrics", "/api/v1/health/deep"] {
        let r = app
            .client
            .get(app.url(path))
            .bearer_auth(&ivy)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
        let r = app
            .client
            .get(app.url(path))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    for path in ["/api/v1/health", "/healthz", "/readyz"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&app.data()), 0o700);
    for name in ["musicd.db", "queue.db"] {
        assert_eq!(mode(&app.data().join(name)), 0o600, "{name}");
    }
    app.stop().await;
}

#[tokio::test]
async fn internal_errors_keep_their_text_to_the_log() {
    let app = TestApp::start(|_| {}).await;
    let c = &app.client;
    let (admin, _) = tokens(&app, ADMIN, ADMIN_PW).await;
    let created = tus_create(c, &app.base, &admin, 1000, "x.flac").await;
    let loc = created.headers()["location"].to_str().unwrap().to_string();
    // The upload's bytes cannot be written: its file is a directory now.
    let id = loc.rsplit('/').next().unwrap();
    let file = app.data().join("uploads").join(id);
    let _ = std::fs::remove_file(&file);
    std::fs::create_dir_all(&file).unwrap();
    let r = c
        .patch(app.url(&loc))
        .bearer_auth(&admin)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .body(vec![0u8; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], json!("internal_error"), "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        !msg.contains("os error") && !msg.contains("directory"),
        "{msg}"
    );

    // IPv4-compatible IPv6 reaches the IPv4 address: refused like it.
    let (s, r) = post_json(
        c,
        app.url("/api/v1/downloads"),
        &admin,
        json!({ "url": "http://[::127.0.0.1]:9/song.mp3" }),
    )
    .await;
    let code = if s == 202 {
        wait_task_long(c, &app.base, &admin, r["data"]["task_id"].as_str().unwrap()).await
            ["error_code"]
            .clone()
    } else {
        r["error"]["code"].clone()
    };
    assert_eq!(code, json!("blocked_address"), "{r}");
    app.stop().await;
}
