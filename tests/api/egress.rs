//! Every connection yt-dlp makes goes through the egress proxy, which checks the address it
//! connects to: a redirect to loopback, an HLS segment on a blocked address and a host name
//! that resolves to loopback all fail with `blocked_address`, and the blocked server sees
//! no request. The native fetcher ignores `HTTP_PROXY` and uses only `fetch.proxy`.

use std::sync::Arc;

use serde_json::json;

use crate::helpers::*;
use crate::upstream::*;
use crate::ytdlp::{audio_page, get, request, require_ytdlp};

/// A daemon that allows one loopback "host" (127.0.0.2, a NAS say) and refuses the rest,
/// an upstream on that host, and a blocked upstream on 127.0.0.1 with audio of its own.
async fn allowed_and_blocked() -> (TestApp, Upstream, Upstream, tempfile::TempDir) {
    require_ytdlp();
    let app = TestApp::start(|c| c.fetch_allow_ips = vec!["127.0.0.2".parse().unwrap()]).await;
    let scratch = tempfile::tempdir().unwrap();
    let allowed = Upstream::start_on("127.0.0.2").await;
    let blocked = Upstream::start_on("127.0.0.1").await;
    let secret = tone(scratch.path(), "secret.mp3", 330, 2);
    blocked.set("secret.mp3", Entry::File(Arc::new(secret), "audio/mpeg"));
    blocked.set(
        "secret.html",
        audio_page("Internal Title", "internal description", "secret.mp3"),
    );
    (app, allowed, blocked, scratch)
}

/// The failed track of a download request.
async fn failed_track(app: &TestApp, token: &str, task: &str) -> serde_json::Value {
    let c = &app.client;
    let t = wait_task_long(c, &app.base, token, task).await;
    let kids = get_json(c, app.url(&format!("/api/v1/tasks/{task}/children")), token).await;
    let kid = kids["data"]["items"][0].clone();
    assert_eq!(kid["status"], json!("failed"), "{t} {kids}");
    kid
}

#[tokio::test]
async fn a_redirect_to_loopback_is_refused_by_the_proxy() {
    let (app, allowed, blocked, _s) = allowed_and_blocked().await;
    let c = &app.client;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    allowed.set("go", Entry::Redirect(blocked.url("secret.html")));

    // Looking the page up (a read-only key could do this) tells nothing of the internal page.
    let encoded: String =
        url::form_urlencoded::byte_serialize(allowed.url("go").as_bytes()).collect();
    let (s, r) = get(
        c,
        app.url(&format!("/api/v1/providers/ytdlp/url/{encoded}")),
        &admin,
    )
    .await;
    assert_ne!(s, 200, "{r}");
    assert_eq!(r["error"]["code"], json!("blocked_address"), "{r}");
    assert!(!r.to_string().contains("Internal Title"), "{r}");

    // Downloading it fails the same way.
    let task = request(c, &app.base, &admin, &allowed.url("go")).await;
    let t = wait_task_long(c, &app.base, &admin, &task).await;
    assert_eq!(t["status"], json!("failed"), "{t}");
    assert_eq!(t["error_code"], json!("blocked_address"), "{t}");
    assert!(allowed.hits("go") >= 1, "the allowed page was asked");
    assert_eq!(blocked.total_hits(), 0, "the blocked server saw a request");
    assert!(library_files(&app.library()).is_empty());
    app.stop().await;
}

/// An HLS media playlist of two segments.
fn manifest(first: &str, second: &str) -> Entry {
    let text = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXTINF:2.0,\n{first}\n#EXTINF:2.0,\n{second}\n#EXT-X-ENDLIST\n"
    );
    Entry::File(Arc::new(text.into_bytes()), "application/vnd.apple.mpegurl")
}

#[tokio::test]
async fn an_hls_segment_on_a_blocked_address_never_reaches_the_library() {
    let (app, allowed, blocked, scratch) = allowed_and_blocked().await;
    let c = &app.client;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    // Packed-audio segments (ADTS AAC), which concatenate into one stream.
    for (i, freq) in [(0, 440), (1, 550)] {
        let seg = tone(scratch.path(), &format!("seg{i}.aac"), freq, 2);
        allowed.set(
            &format!("seg{i}.aac"),
            Entry::File(Arc::new(seg.clone()), "audio/aac"),
        );
        blocked.set(
            &format!("seg{i}.aac"),
            Entry::File(Arc::new(seg), "audio/aac"),
        );
    }
    // The control: both segments on the allowed host make a file.
    allowed.set(
        "fine.m3u8",
        manifest(&allowed.url("seg0.aac"), &allowed.url("seg1.aac")),
    );
    let fine = request(c, &app.base, &admin, &allowed.url("fine.m3u8")).await;
    let t = wait_task_long(c, &app.base, &admin, &fine).await;
    let kids = get_json(
        c,
        app.url(&format!("/api/v1/tasks/{fine}/children")),
        &admin,
    )
    .await;
    assert_eq!(t["status"], json!("done"), "{kids}");
    assert_eq!(library_files(&app.library()).len(), 1);

    // The second segment on 127.0.0.1: refused, and nothing more lands.
    allowed.set(
        "mixed.m3u8",
        manifest(&allowed.url("seg0.aac"), &blocked.url("seg1.aac")),
    );
    let mixed = request(c, &app.base, &admin, &allowed.url("mixed.m3u8")).await;
    let kid = failed_track(&app, &admin, &mixed).await;
    assert_eq!(kid["error_code"], json!("blocked_address"), "{kid}");
    assert!(
        kid["error"].as_str().unwrap().contains("127.0.0.1"),
        "{kid}"
    );
    assert_eq!(blocked.total_hits(), 0, "the blocked server saw a request");
    assert_eq!(library_files(&app.library()).len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_host_name_that_resolves_to_loopback_is_refused() {
    let (app, allowed, blocked, _s) = allowed_and_blocked().await;
    let c = &app.client;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    // The page and its audio URL are on the allowed host; the audio redirects to a host name
    // that resolves to 127.0.0.1 (a check of the URLs before yt-dlp runs never sees it).
    let port = blocked.addr.unwrap().port();
    let target = format!("http://localhost:{port}/secret.mp3");
    allowed.set("moved.mp3", Entry::Redirect(target));
    allowed.set("page.html", audio_page("Named", "", "moved.mp3"));
    let task = request(c, &app.base, &admin, &allowed.url("page.html")).await;
    let kid = failed_track(&app, &admin, &task).await;
    assert_eq!(kid["error_code"], json!("blocked_address"), "{kid}");
    assert!(
        kid["error"].as_str().unwrap().contains("localhost"),
        "{kid}"
    );
    assert_eq!(blocked.total_hits(), 0, "the blocked server saw a request");
    assert!(library_files(&app.library()).is_empty());
    app.stop().await;
}

/// A stand-in forward proxy: answers every request with `body` and counts them.
async fn fake_proxy(body: Vec<u8>) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let body = Arc::new(body);
    let router = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        let body = body.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            ([("content-type", "audio/mpeg")], body.as_ref().clone())
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn the_environments_proxy_is_ignored_and_fetch_proxy_is_used() {
    use std::sync::atomic::Ordering;
    let scratch = tempfile::tempdir().unwrap();
    let song = tone(scratch.path(), "song.mp3", 440, 2);
    let (proxy, seen) = fake_proxy(song).await;

    // A daemon whose environment names a proxy: the host name is resolved and checked by
    // musicd (it does not exist), and the proxy is never asked.
    let dirs = Dirs::new();
    let port = free_port();
    let env = vec![
        ("MUSICD_LISTEN", format!("127.0.0.1:{port}")),
        ("MUSICD_DATA_DIR", dirs.data().display().to_string()),
        ("MUSICD_LIBRARY_DIR", dirs.library().display().to_string()),
        ("MUSICD_JWT_SECRET", JWT_SECRET.to_string()),
        ("MUSICD_ADMIN_USER", ADMIN.to_string()),
        ("MUSICD_ADMIN_PASSWORD", ADMIN_PW.to_string()),
        ("MUSICD_QUEUE__MAX_ATTEMPTS", "1".to_string()),
        ("HTTP_PROXY", proxy.clone()),
        ("http_proxy", proxy.clone()),
        ("ALL_PROXY", proxy.clone()),
    ];
    let mut d = Daemon::spawn(&["serve"], &env, dirs.tmp.path(), "envproxy.log");
    d.wait_ready().await;
    let c = reqwest::Client::new();
    let admin = login(&c, &d.base, ADMIN, ADMIN_PW).await;
    let task = download(&c, &d.base, &admin, "http://music.invalid/song.mp3").await;
    let t = wait_task_long(&c, &d.base, &admin, &task).await;
    assert_eq!(t["status"], json!("failed"), "{t}");
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "the environment's proxy was used"
    );
    drop(d);

    // `fetch.proxy` is used: the name goes to the proxy, which answers with the audio.
    let app = TestApp::start(|c| c.fetch.proxy = proxy.clone()).await;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    let task = download(
        &app.client,
        &app.base,
        &admin,
        "http://music.invalid/song.mp3",
    )
    .await;
    let t = wait_task_long(&app.client, &app.base, &admin, &task).await;
    assert_eq!(t["status"], json!("done"), "{t}");
    assert!(seen.load(Ordering::SeqCst) >= 1);
    let files = library_files(&app.library());
    assert_eq!(files.len(), 1, "{files:?}");
    decodes(&files[0]).unwrap();

    // yt-dlp's connections go through the egress proxy, which hands them to `fetch.proxy`.
    require_ytdlp();
    let before = seen.load(Ordering::SeqCst);
    let task = request(
        &app.client,
        &app.base,
        &admin,
        "http://music.invalid/other.mp3",
    )
    .await;
    let t = wait_task_long(&app.client, &app.base, &admin, &task).await;
    let kids = get_json(
        &app.client,
        app.url(&format!("/api/v1/tasks/{task}/children")),
        &admin,
    )
    .await;
    assert_eq!(t["status"], json!("done"), "{kids}");
    assert!(
        seen.load(Ordering::SeqCst) > before,
        "yt-dlp bypassed fetch.proxy"
    );
    app.stop().await;
}
