//! The web app in headless Chromium: a first run (initial password, change it, sign in
//! again); the session cookie's flags, CSRF and the security headers; a feed pasted, looked
//! up and downloaded with live progress that survives a cut event stream; and screenshots of
//! every page at 1280 px and 360 px in `target/web-screenshots/`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::browser::Browser;
use crate::helpers::*;
use crate::kit::{Session, eventually};
use crate::proxy::Proxy;
use crate::upstream::{Entry, Upstream, decodes, library_files, tone};

/// The pages, by route, that the screenshots cover.
const PAGES: &[(&str, &str)] = &[
    ("add", "#/add"),
    ("queue", "#/queue"),
    ("watches", "#/watches"),
    ("library", "#/library"),
    ("albums", "#/library/albums"),
    ("uploads", "#/uploads"),
    ("history", "#/history"),
    ("settings", "#/settings"),
    ("account", "#/account"),
    ("notifications", "#/notifications"),
];

#[tokio::test]
async fn a_first_run_signs_in_with_the_initial_password_and_changes_it() {
    // No admin configured: the daemon makes one with a random password in a file.
    let app = TestApp::start(|c| {
        c.admin_user = String::new();
        c.admin_password = String::new();
    })
    .await;
    let file = app.data().join("initial-admin-password");
    let initial = std::fs::read_to_string(&file).unwrap().trim().to_string();
    let b = Browser::start().await;
    b.goto(&app.base).await;
    let hint = b.text("#first-run").await;
    assert!(hint.contains(&file.display().to_string()), "{hint}");
    assert!(
        !hint.contains(&initial),
        "the page never shows the password"
    );
    b.screenshot("login", 1280).await;
    b.screenshot("login", 360).await;

    // A wrong password says so and stays on the form.
    b.type_into("input[name=username]", "admin").await;
    b.type_into("input[name=password]", "not-the-password")
        .await;
    b.click("form.login button[type=submit]").await;
    b.until_text("form.login [role=alert]", "wrong username or password")
        .await;

    b.sign_in(&app.base, "admin", &initial).await;
    b.route(&app.base, "#/account").await;
    b.type_into("input[name=current_password]", &initial).await;
    b.type_into("input[name=new_password]", "my own long password")
        .await;
    b.type_into("input[name=new_password_again]", "my own long password")
        .await;
    b.click("#password-form button[type=submit]").await;
    b.until_text("#password-form [role=status]", "Password changed")
        .await;
    assert!(!file.exists(), "the initial password's file is gone");

    b.click("#sign-out").await;
    b.find("form.login").await;
    assert!(
        b.eval("return document.getElementById('first-run') === null;")
            .await
            .as_bool()
            .unwrap(),
        "no more first-run hint"
    );
    b.type_into("input[name=username]", "admin").await;
    b.type_into("input[name=password]", &initial).await;
    b.click("form.login button[type=submit]").await;
    b.until_text("form.login [role=alert]", "wrong username or password")
        .await;
    b.sign_in(&app.base, "admin", "my own long password").await;
    assert_eq!(b.text("#account-link").await, "admin");
    // Reloads, each a new document with its own event stream: a left page must give its
    // connection back (a browser has six per host), or the eighth would hang.
    for i in 0..8 {
        b.goto(&format!("{}/?reload={i}#/queue", app.base)).await;
        b.until(
            &format!("reload {i} renders and goes live"),
            "return document.body.dataset.page === 'queue' && document.getElementById('stream-state').dataset.state === 'live';",
        )
        .await;
    }
    b.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn the_session_cookie_is_strict_and_csrf_and_other_origins_are_refused() {
    let app = TestApp::start(|c| c.http.trust_forwarded_for = true).await;
    let b = Browser::start().await;
    b.sign_in(&app.base, ADMIN, ADMIN_PW).await;
    let cookie = b
        .client
        .get_named_cookie("musicd_session")
        .await
        .expect("the session cookie");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");
    assert_eq!(cookie.path(), Some("/"));
    assert_ne!(cookie.secure(), Some(true), "plain HTTP: not Secure");
    // Behind a TLS proxy that says so, the cookie is Secure.
    let res = app
        .client
        .post(app.url("/api/v1/auth/session"))
        .header("x-forwarded-proto", "https")
        .json(&json!({"username": ADMIN, "password": ADMIN_PW}))
        .send()
        .await
        .unwrap();
    let set = res.headers()["set-cookie"].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(set.contains(flag), "{flag} in {set}");
    }
    let info: Value = res.json().await.unwrap();
    let csrf = info["data"]["csrf_token"].as_str().unwrap().to_string();
    let value = set
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("musicd_session=")
        .to_string();

    // With the cookie alone a change is refused; with the CSRF token it goes through.
    let c = reqwest::Client::new();
    let with_cookie = |path: &str| {
        c.post(app.url(path))
            .header("cookie", format!("musicd_session={value}"))
    };
    let refused = with_cookie("/api/v1/events/ticket").send().await.unwrap();
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("CSRF"),
        "{body}"
    );
    let other = with_cookie("/api/v1/events/ticket")
        .header("x-csrf-token", &csrf)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 403, "another origin, even with the token");
    let fine = with_cookie("/api/v1/events/ticket")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), 201);
    let read = c
        .get(app.url("/api/v1/auth/me"))
        .header("cookie", format!("musicd_session={value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200, "reading needs no token");

    // A form on another origin that posts to musicd with the browser's cookie is refused,
    // and nothing is queued.
    let other_site = Upstream::start().await;
    let form = format!(
        "<!doctype html><form id=f method=post action=\"{}/api/v1/downloads\" enctype=\"text/plain\">\
         <input name='{{\"url\":\"http://example.org/x.mp3\",\"a\":\"' value='\"}}'></form>",
        app.base
    );
    other_site.set(
        "attack.html",
        Entry::File(Arc::new(form.into_bytes()), "text/html"),
    );
    b.goto(&other_site.url("attack.html")).await;
    b.eval("document.getElementById('f').submit(); return true;")
        .await;
    let shown = b
        .until(
            "the browser shows musicd's answer",
            &format!(
                "return location.href.startsWith({:?}) && document.body && document.body.innerText.includes('success') ? document.body.innerText : null;",
                app.base
            ),
        )
        .await;
    assert!(
        shown.as_str().unwrap().contains("forbidden"),
        "refused: {shown}"
    );
    let s = Session::admin(&app).await;
    let page: Value = s.get("/tasks").await.good();
    assert_eq!(page["items"], json!([]), "nothing was queued");

    // Every answer carries the policy; the page has no inline script.
    for path in [
        "/",
        "/assets/js/app.js",
        "/assets/app.css",
        "/api/v1/health",
        "/nope",
    ] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
    }
    b.goto(&app.base).await;
    b.until("the app renders", "return document.body.dataset.ready;")
        .await;
    let inline = b
        .eval("return [...document.scripts].filter(s => !s.src).length;")
        .await;
    assert_eq!(inline, json!(0));
    b.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_feed_is_looked_up_and_downloaded_with_live_progress_through_a_cut_stream() {
    let up = Upstream::start().await;
    let scratch = tempfile::tempdir().unwrap();
    let mut episodes = Vec::new();
    for i in 1..=3u32 {
        let audio = tone(scratch.path(), &format!("ep{i}.mp3"), 300 + 100 * i, 30);
        // Slow enough that the stream is cut while they download.
        up.set(
            &format!("ep{i}.mp3"),
            Entry::Slow(Arc::new(audio), "audio/mpeg", Duration::from_millis(700)),
        );
        episodes.push((
            format!("guid-{i}"),
            format!("Episode {i}"),
            up.url(&format!("ep{i}.mp3")),
        ));
    }
    up.set_feed("feed.xml", "Loopback Radio", &episodes);
    let app = TestApp::start(|c| c.fetch_allow_private = true).await;
    let proxy = Proxy::start(app.base.trim_start_matches("http://")).await;
    let base = proxy.base.clone();
    let b = Browser::start().await;
    b.sign_in(&base, ADMIN, ADMIN_PW).await;

    // Paste the link: the page shows the feed and its episodes.
    b.route(&base, "#/add").await;
    b.type_into("input[name=url]", &up.url("feed.xml")).await;
    b.click("form[role=search] button[type=submit]").await;
    b.until_text("#resolved-title", "Loopback Radio").await;
    let rows = b
        .until(
            "three episodes listed",
            "const r = document.querySelectorAll('#resolved tbody tr'); return r.length === 3 ? [...r].map(x => x.innerText) : null;",
        )
        .await;
    assert!(rows[0].as_str().unwrap().contains("Episode 1"), "{rows}");
    b.screenshot("add-resolved", 1280).await;
    b.screenshot("add-resolved", 360).await;
    b.click("#download").await;

    // The queue shows the tracks moving; the stream is cut while they do.
    b.until(
        "the queue shows a track downloading",
        "return [...document.querySelectorAll('#queue tr[data-parent]')].some(r => r.dataset.status === 'running' && Number(r.querySelector('progress').value) > 0);",
    )
    .await;
    b.until(
        "progress events reached the page",
        "return window.performance && document.getElementById('stream-state').dataset.state === 'live';",
    )
    .await;
    b.screenshot("queue-live", 1280).await;
    b.screenshot("queue-live", 360).await;
    proxy.cut();
    b.until_text("#stream-state", "reconnecting").await;
    // While it is away, tracks end: those state changes must not be lost.
    let s = Session::admin(&app).await;
    eventually(
        Duration::from_secs(60),
        "a track ends while the page is offline",
        || {
            let s = &s;
            async move {
                let page: Value = s.get("/history?include_children=true").await.good();
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t["kind"] == "track" && t["status"] == "done")
                    .then_some(())
            }
        },
    )
    .await;
    proxy.restore();
    b.until_text("#stream-state", "live").await;
    let done = b
        .until(
            "every track shows done",
            "const r = [...document.querySelectorAll('#queue tr[data-parent]')]; return r.length === 3 && r.every(x => x.dataset.status === 'done') ? r.map(x => x.innerText) : null;",
        )
        .await;
    assert!(done.to_string().contains("Done"), "{done}");
    // The files are in the library, and ffprobe reads each.
    let files = library_files(&app.library());
    assert_eq!(files.len(), 3, "{files:?}");
    for f in &files {
        decodes(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }

    // Every page, at a desktop's and a phone's width.
    for (name, hash) in PAGES {
        b.route(&base, hash).await;
        b.screenshot(name, 1280).await;
        b.screenshot(name, 360).await;
    }
    let task: Value = s.get("/tasks").await.good();
    let id = task["items"][0]["id"].as_str().unwrap().to_string();
    b.route(&base, &format!("#/task/{id}")).await;
    b.until_text("#task-status", "Done").await;
    b.screenshot("task", 1280).await;
    b.screenshot("task", 360).await;
    // On a phone the menu folds behind a button that opens it.
    b.client.set_window_size(360, 800).await.unwrap();
    b.click(".menu-toggle").await;
    b.until(
        "the menu opens",
        "return document.getElementById('nav').classList.contains('open');",
    )
    .await;
    b.stop().await;
    app.stop().await;
}
