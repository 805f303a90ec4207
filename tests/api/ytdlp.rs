//! The `ytdlp` provider end to end with the real yt-dlp (installed by `.ci/setup`) against a
//! loopback upstream: an HTML5 `<audio>` page and a direct MP3 become verified, tagged files
//! with byte progress over SSE; cancel kills yt-dlp and leaves no files; option-like and
//! non-http ids are refused; a missing program fails as `provider_unavailable`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::events::Msg;
use crate::helpers::*;
use crate::kit::{Session, TASK_ENDS_WITHIN, eventually};
use crate::upstream::*;

/// Fails clearly when yt-dlp is missing, as the tests need the real program.
pub(crate) fn require_ytdlp() {
    let ok = std::process::Command::new("yt-dlp")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "yt-dlp must be installed (bash .ci/setup)");
}

pub(crate) async fn get(c: &reqwest::Client, url: String, token: &str) -> (u16, Value) {
    let res = c.get(url).bearer_auth(token).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// `POST /downloads` for a ytdlp `url`; asserts the 202 and returns the task id.
pub(crate) async fn request(c: &reqwest::Client, base: &str, token: &str, id: &str) -> String {
    let (s, body) = post_json(
        c,
        format!("{base}/api/v1/downloads"),
        token,
        json!({ "provider": "ytdlp", "kind": "url", "id": id }),
    )
    .await;
    assert_eq!(s, 202, "{body}");
    body["data"]["task_id"].as_str().unwrap().to_string()
}

/// A page whose media yt-dlp's generic extractor finds in an HTML5 `<audio>` element.
pub(crate) fn audio_page(title: &str, description: &str, src: &str) -> Entry {
    let html = format!(
        "<!DOCTYPE html><html><head><title>{title}</title>\
         <meta property=\"og:title\" content=\"{title}\">\
         <meta property=\"og:description\" content=\"{description}\"></head>\
         <body><h1>{title}</h1><audio controls><source src=\"{src}\" type=\"audio/mpeg\"></audio>\
         </body></html>"
    );
    Entry::File(Arc::new(html.into_bytes()), "text/html; charset=utf-8")
}

/// Command lines of running processes that mention `part`.
fn processes_with(part: &str) -> String {
    let out = std::process::Command::new("pgrep")
        .args(["-a", "-f", part])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `POST /downloads` for a ytdlp `url`; the task id.
async fn ytdlp(s: &Session, url: &str) -> String {
    s.request(json!({ "provider": "ytdlp", "kind": "url", "id": url }))
        .await
}

#[tokio::test]
async fn ytdlp_page_and_direct_url_become_verified_tagged_files() {
    require_ytdlp();
    let app = TestApp::start(|c| c.fetch_allow_private = true).await;
    let admin = Session::admin(&app).await;
    let scratch = tempfile::tempdir().unwrap();
    let up = Upstream::start().await;
    publish_a_page_a_file_and_a_two_song_page(&up, scratch.path());

    let mut stream = admin.events("").await;
    let page = ytdlp(&admin, &up.url("yt/page.html")).await;
    let file = ytdlp(&admin, &up.url("yt/direct-tone.mp3")).await;
    let two = ytdlp(&admin, &up.url("yt/two.html")).await;
    let parents = [page.clone(), file.clone(), two.clone()];
    let ended = |m: &[Msg]| {
        parents.iter().all(|p| {
            m.iter().any(|e| {
                e.data["task_id"] == json!(p)
                    && matches!(e.event.as_str(), "task.completed" | "task.failed")
            })
        })
    };
    let events = stream.read(Duration::from_secs(180), ended).await;
    for p in &parents {
        let t = admin.task(p).await;
        let kids = admin.children(p).await;
        assert_eq!(t.status, "done", "{t:?} children: {kids:?}");
    }
    the_page_reports_yt_dlps_byte_progress(&events, &page);
    let kids = admin.children(&two).await;
    assert_eq!(kids.len(), 2, "{kids:?}");
    the_library_holds_four_tagged_files(&app);
    app.stop().await;
}

/// A page with an `<audio>` element (its song served slowly, in a few chunks with pauses,
/// so byte progress shows while yt-dlp downloads), a direct MP3, and a page with two
/// `<audio>` elements: a playlist of two tracks.
fn publish_a_page_a_file_and_a_two_song_page(up: &Upstream, scratch: &std::path::Path) {
    let song = tone(scratch, "song.mp3", 440, 12);
    up.set(
        "yt/song.mp3",
        Entry::Slow(Arc::new(song), "audio/mpeg", Duration::from_millis(300)),
    );
    up.set(
        "yt/page.html",
        audio_page("Loopback Song", "A tone served over loopback.", "song.mp3"),
    );
    let direct = tone(scratch, "direct-tone.mp3", 660, 2);
    up.set(
        "yt/direct-tone.mp3",
        Entry::File(Arc::new(direct), "audio/mpeg"),
    );
    for (name, freq) in [("one.mp3", 330), ("two.mp3", 550)] {
        let bytes = tone(scratch, name, freq, 2);
        up.set(
            &format!("yt/{name}"),
            Entry::File(Arc::new(bytes), "audio/mpeg"),
        );
    }
    let html = "<!DOCTYPE html><html><head><title>Two Songs</title></head><body>\
                <audio controls src=\"one.mp3\"></audio><audio controls src=\"two.mp3\"></audio>\
                </body></html>";
    up.set(
        "yt/two.html",
        Entry::File(Arc::new(html.as_bytes().to_vec()), "text/html"),
    );
}

/// The page's child reports its download, with bytes from yt-dlp's progress.
fn the_page_reports_yt_dlps_byte_progress(events: &[Msg], page: &str) {
    let downloading: Vec<&Msg> = events
        .iter()
        .filter(|e| {
            e.event == "task.progress"
                && e.data["parent_id"] == json!(page)
                && e.data["stage"] == json!("downloading")
        })
        .collect();
    assert!(
        !downloading.is_empty(),
        "the child reports its download: {events:#?}"
    );
    assert!(
        downloading
            .iter()
            .any(|e| e.data["bytes_done"].as_u64().unwrap_or(0) > 0),
        "with bytes from yt-dlp's progress: {downloading:#?}"
    );
}

/// Four decodable files: the direct file titled by its name, the page's song with the
/// page's description as its comment, the two songs of the second page; no staging left.
fn the_library_holds_four_tagged_files(app: &TestApp) {
    let files = library_files(&app.library());
    assert_eq!(files.len(), 4, "{files:?}");
    let mut titles = Vec::new();
    for f in &files {
        decodes(f).unwrap();
        let t = tags(f);
        let title = t["title"].as_str().unwrap_or_default().to_string();
        if title.starts_with("Loopback Song") {
            assert!(
                t["comment"]
                    .as_str()
                    .is_some_and(|c| c.contains("served over loopback")),
                "the page's description is the comment: {t}"
            );
        }
        titles.push(title);
    }
    assert!(titles.iter().any(|t| t == "direct-tone"), "{titles:?}");
    assert!(
        titles.iter().any(|t| t.starts_with("Loopback Song")),
        "{titles:?}"
    );
    assert_eq!(
        titles.iter().filter(|t| t.starts_with("Two Songs")).count(),
        2,
        "{titles:?}"
    );
    assert!(files_under(&app.data().join("staging")).is_empty());
}

#[tokio::test]
async fn ytdlp_cancel_kills_the_process_and_leaves_no_files() {
    require_ytdlp();
    let app = TestApp::start(|c| c.fetch_allow_private = true).await;
    let admin = Session::admin(&app).await;
    let up = Upstream::start().await;
    let marker = format!("cancel-{}", uuid::Uuid::new_v4().simple());
    // 8 MiB at 64 KiB per 250 ms: about half a minute, far longer than the test waits.
    let body: Vec<u8> = (0..8u32 * 1024 * 1024)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    up.set(
        &format!("{marker}/slow.mp3"),
        Entry::Slow(Arc::new(body), "audio/mpeg", Duration::from_millis(250)),
    );
    up.set(
        &format!("{marker}/page.html"),
        audio_page("Slow Song", "Slow.", "slow.mp3"),
    );
    let parent = ytdlp(&admin, &up.url(&format!("{marker}/page.html"))).await;
    // Wait for the child to be downloading through yt-dlp.
    let child = eventually(
        Duration::from_secs(60),
        "the child started downloading",
        || async {
            let kids = admin.children(&parent).await;
            kids.first()
                .filter(|k| k.bytes_done > 0)
                .map(|k| k.id.clone())
        },
    )
    .await;
    assert!(
        !processes_with(&marker).is_empty(),
        "yt-dlp runs with the page URL"
    );
    cancel_kills_yt_dlp_and_leaves_nothing(&app, &admin, &parent, &child, &marker).await;
    app.stop().await;
}

/// Cancelling the parent cancels the child, ends yt-dlp and leaves no file in staging or
/// the library.
async fn cancel_kills_yt_dlp_and_leaves_nothing(
    app: &TestApp,
    admin: &Session,
    parent: &str,
    child: &str,
    marker: &str,
) {
    let r = admin
        .post(&format!("/tasks/{parent}/cancel"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t = eventually(TASK_ENDS_WITHIN, "the child is cancelled", || async {
        let t = admin.task(child).await;
        (t.status == "cancelled").then_some(t)
    })
    .await;
    assert_eq!(t.status, "cancelled", "{t:?}");
    let mut procs = String::new();
    let mut left = Vec::new();
    for _ in 0..100 {
        procs = processes_with(marker);
        left = files_under(&app.data().join("staging"));
        if procs.is_empty() && left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(procs.is_empty(), "yt-dlp still runs: {procs}");
    assert!(left.is_empty(), "files left in staging: {left:?}");
    assert!(library_files(&app.library()).is_empty());
}

#[tokio::test]
async fn ytdlp_timeout_kills_the_process_and_fails_the_track() {
    require_ytdlp();
    let app = TestApp::start(|c| {
        c.fetch_allow_private = true;
        c.providers.ytdlp.timeout = Duration::from_secs(4);
        c.queue.max_attempts = 1;
    })
    .await;
    let c = &app.client;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    let up = Upstream::start().await;
    let marker = format!("timeout-{}", uuid::Uuid::new_v4().simple());
    up.set(
        &format!("{marker}/slow.mp3"),
        Entry::Slow(
            Arc::new(vec![0u8; 4 * 1024 * 1024]),
            "audio/mpeg",
            Duration::from_millis(250),
        ),
    );
    up.set(
        &format!("{marker}/page.html"),
        audio_page("Slow Song", "Slow.", "slow.mp3"),
    );
    let parent = request(
        c,
        &app.base,
        &admin,
        &up.url(&format!("{marker}/page.html")),
    )
    .await;
    let t = wait_task(c, &app.base, &admin, &parent, |t| {
        matches!(t["status"].as_str(), Some("failed" | "done"))
    })
    .await;
    assert_eq!(t["status"], json!("failed"), "{t}");
    let (_, kids) = get(
        c,
        app.url(&format!("/api/v1/tasks/{parent}/children")),
        &admin,
    )
    .await;
    let errors: Vec<String> = std::iter::once(&t)
        .chain(kids["data"]["items"].as_array().into_iter().flatten())
        .filter_map(|k| k["error"].as_str().map(str::to_string))
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("providers.ytdlp.timeout")),
        "{errors:?} {kids}"
    );
    let mut procs = String::new();
    let mut left = Vec::new();
    for _ in 0..50 {
        procs = processes_with(&marker);
        left = files_under(&app.data().join("staging"));
        if procs.is_empty() && left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(procs.is_empty(), "yt-dlp still runs: {procs}");
    assert!(left.is_empty(), "files left in staging: {left:?}");
    assert!(library_files(&app.library()).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn ytdlp_refuses_option_like_and_non_http_ids() {
    // The default configuration: private targets refused.
    let app = TestApp::start(|_| {}).await;
    let c = &app.client;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    let marker = std::env::temp_dir().join(format!(
        "musicd-ytdlp-injected-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let injected = format!("--exec=touch {}", marker.display());

    // The provider's own check (resolving without a download task).
    let encoded: String = url::form_urlencoded::byte_serialize(injected.as_bytes()).collect();
    let (s, r) = get(
        c,
        app.url(&format!("/api/v1/providers/ytdlp/url/{encoded}")),
        &admin,
    )
    .await;
    assert_eq!(s, 400, "{r}");
    assert_eq!(r["error"]["code"], json!("validation_error"), "{r}");

    // A URL request is validated on arrival.
    let (s, r) = post_json(
        c,
        app.url("/api/v1/downloads"),
        &admin,
        json!({ "url": "file:///etc/passwd" }),
    )
    .await;
    assert_eq!(s, 400, "{r}");
    assert_eq!(r["error"]["code"], json!("validation_error"), "{r}");

    // A private target is refused before yt-dlp runs.
    let blocked = request(c, &app.base, &admin, "http://127.0.0.1:9/page.html").await;
    let t = wait_task(c, &app.base, &admin, &blocked, |t| t["status"] == "failed").await;
    assert_eq!(t["error_code"], json!("blocked_address"), "{t}");

    // So is a ytdlp id that is not an http(s) URL.
    for id in [injected.as_str(), "file:///etc/passwd", "-o/tmp/x"] {
        let (s, r) = post_json(
            c,
            app.url("/api/v1/downloads"),
            &admin,
            json!({ "provider": "ytdlp", "kind": "url", "id": id }),
        )
        .await;
        assert_eq!(s, 400, "{id}: {r}");
        assert_eq!(r["error"]["code"], json!("validation_error"), "{id}: {r}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!marker.exists(), "yt-dlp ran the injected command");
    app.stop().await;
}

#[tokio::test]
async fn ytdlp_missing_program_is_provider_unavailable() {
    let app = TestApp::start(|c| {
        c.fetch_allow_private = true;
        c.providers.ytdlp.path = "/nonexistent/yt-dlp".into();
    })
    .await;
    let c = &app.client;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    let (s, list) = get(c, app.url("/api/v1/providers"), &admin).await;
    assert_eq!(s, 200, "{list}");
    let item = list["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == json!("ytdlp"))
        .cloned()
        .expect("ytdlp is listed");
    assert_eq!(item["available"], json!(false), "{item}");
    assert!(
        item["problem"]
            .as_str()
            .is_some_and(|p| p.contains("not found at /nonexistent/yt-dlp")),
        "{item}"
    );

    let up = Upstream::start().await;
    up.set("p.html", audio_page("P", "P.", "p.mp3"));
    // Named directly, the request is refused at once, saying what is missing.
    let (s, body) = post_json(
        c,
        format!("{}/api/v1/downloads", app.base),
        &admin,
        json!({ "provider": "ytdlp", "kind": "url", "id": up.url("p.html") }),
    )
    .await;
    assert_eq!(s, 400, "{body}");
    let text = body.to_string();
    assert!(
        text.contains("not set up") && text.contains("/nonexistent/yt-dlp"),
        "{text}"
    );
    // A page that turns out to need yt-dlp only once fetched fails its task the same way.
    let parent = download(c, &app.base, &admin, &up.url("p.html")).await;
    let t = wait_task(c, &app.base, &admin, &parent, |t| t["status"] == "failed").await;
    assert_eq!(t["error_code"], json!("provider_unavailable"), "{t}");
    assert!(
        t["error"]
            .as_str()
            .is_some_and(|e| e.contains("providers.ytdlp.path")),
        "{t}"
    );
    app.stop().await;
}

#[tokio::test]
async fn ytdlp_media_urls_are_checked_like_the_page() {
    require_ytdlp();
    // Private targets refused, but the stand-in's own address allowed (a NAS on the LAN).
    let app = TestApp::start(|c| c.fetch_allow_ips = vec!["127.0.0.1".parse().unwrap()]).await;
    let c = &app.client;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    let scratch = tempfile::tempdir().unwrap();
    let up = Upstream::start().await;
    let song = tone(scratch.path(), "song.mp3", 440, 2);
    up.set("ok/song.mp3", Entry::File(Arc::new(song), "audio/mpeg"));
    up.set("ok/page.html", audio_page("Allowed Song", "", "song.mp3"));
    // The page is on an allowed address; its audio is on another loopback address.
    let port = url::Url::parse(&up.url("")).unwrap().port().unwrap();
    let elsewhere = format!("http://127.0.0.2:{port}/ok/song.mp3");
    up.set("bad/page.html", audio_page("Elsewhere", "", &elsewhere));

    let fine = request(c, &app.base, &admin, &up.url("ok/page.html")).await;
    let t = wait_task_long(c, &app.base, &admin, &fine).await;
    assert_eq!(t["status"], json!("done"), "{t}");
    let files = library_files(&app.library());
    assert_eq!(files.len(), 1, "{files:?}");
    decodes(&files[0]).unwrap();

    let hits = up.hits("ok/song.mp3");
    let bad = request(c, &app.base, &admin, &up.url("bad/page.html")).await;
    let t = wait_task_long(c, &app.base, &admin, &bad).await;
    let (_, kids) = get(c, app.url(&format!("/api/v1/tasks/{bad}/children")), &admin).await;
    let kid = &kids["data"]["items"][0];
    assert_eq!(kid["error_code"], json!("blocked_address"), "{t} {kids}");
    assert!(
        kid["error"].as_str().unwrap().contains("127.0.0.2"),
        "{kid}"
    );
    assert_eq!(
        up.hits("ok/song.mp3"),
        hits,
        "the refused audio was not fetched"
    );
    assert_eq!(library_files(&app.library()).len(), 1);
    app.stop().await;
}
