//! Any link: what cannot be used is a 400 saying why, a malformed upstream answer fails
//! naming the upstream, a search that finds nothing says what it tried. From the command line: `musicd login` keeps a key for this machine (mode 0600),
//! `musicd add --dry-run` shows what a Deezer album is and which tracks the library holds,
//! `musicd add <page>` downloads a web page's audio through yt-dlp, `musicd logout` revokes
//! the key.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::json;

use crate::catalogs::*;
use crate::helpers::*;
use crate::kit::Session;
use crate::matching::deezer_track;
use crate::upstream::*;
use crate::ytdlp::{audio_page, require_ytdlp};

/// Runs `musicd args…` with `home` as its home and `stdin` as its input (no key variables).
async fn musicd(home: &std::path::Path, stdin: &str, args: &[&str]) -> (i32, String, String) {
    let (home, stdin) = (home.to_path_buf(), stdin.to_string());
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_musicd"))
            .args(&args)
            .env("HOME", &home)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("MUSICD_API_KEY")
            .env_remove("MUSICD_URL")
            .env_remove("MUSICD_CONFIG")
            .current_dir(&home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_cli_signs_in_once_then_adds_any_link() {
    require_ytdlp();
    let cat = Catalogs::start().await;
    let scratch = tempfile::tempdir().unwrap();
    crate::matching::publish_album(&cat, scratch.path());
    let up = Upstream::start().await;
    up.set(
        "song.mp3",
        Entry::File(
            Arc::new(tone(scratch.path(), "page.mp3", 440, 2)),
            "audio/mpeg",
        ),
    );
    up.set(
        "page.html",
        audio_page("Page Song", "A song on a page.", "song.mp3"),
    );
    let app = TestApp::start(|c| cat.configure(c)).await;
    let home = tempfile::tempdir().unwrap();
    let h = home.path();

    let (code, out, err) = musicd(
        h,
        &format!("{ADMIN_PW}\n"),
        &["login", "--url", &app.base, "--user", ADMIN],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let kept = h.join(".config/musicd/client.toml");
    assert_eq!(
        std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // What a link is, without downloading.
    let (code, out, err) = musicd(
        h,
        "",
        &["add", "--dry-run", "https://www.deezer.com/album/302127"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("deezer album 302127: Loopback LP"), "{out}");
    assert!(out.contains("Loopback Band – Middle Part [0:21]"), "{out}");

    // A web page's audio, through yt-dlp.
    let (code, out, err) = musicd(h, "", &["add", &up.url("page.html"), "--follow"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let s = Session::admin(&app).await;
    let found = s.get("/history?q=Page%20Song").await;
    assert!(
        found.body.to_string().contains("\"status\":\"done\""),
        "{}",
        found.body
    );

    // The library now holds the album's first track: the dry run says so.
    s.wait_done(&s.download("https://www.deezer.com/track/1001").await)
        .await;
    let (_, out, _) = musicd(
        h,
        "",
        &["add", "--dry-run", "https://www.deezer.com/album/302127"],
    )
    .await;
    assert!(out.contains("Opening [0:20]  (in the library)"), "{out}");

    let (code, out, err) = musicd(h, "", &["logout"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(!kept.exists());
    let keys = s.get("/api-keys").await;
    assert_eq!(keys.body["data"], json!([]), "{}", keys.body);
    let (code, _, err) = musicd(h, "", &["tasks"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("musicd login"), "{err}");
    app.stop().await;
}

#[tokio::test]
async fn bad_links_bad_answers_and_empty_searches_say_what_happened() {
    let cat = Catalogs::start().await;
    cat.deezer(
        "track/7001",
        deezer_track(
            7001,
            "Garbled",
            &["Noisy"],
            (70, "Static"),
            1,
            20,
            "QZNOI2600001",
        ),
    );
    cat.fault("deezer/track/7001", Fault::Malformed, 100);
    cat.deezer(
        "track/7002",
        deezer_track(
            7002,
            "Nowhere To Be Found",
            &["Ghost"],
            (70, "Static"),
            1,
            20,
            "QZGHO2600001",
        ),
    );
    let app = TestApp::start(|c| {
        cat.configure(c);
        c.queue.max_attempts = 2;
    })
    .await;
    let s = Session::admin(&app).await;

    // Links nothing can download, and options a provider cannot honour, are 400s saying why.
    for (body, field, says) in [
        (
            json!({"url": "https://open.spotify.com/show/4uLU6hMCjMI75M1A2tKUQC"}),
            "url",
            "RSS feed",
        ),
        (
            json!({"url": "https://musicbrainz.org/work/b1a9c0e9-d987-4042-ae91-78d6a3267d69"}),
            "url",
            "work",
        ),
        (
            json!({"url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "release_types": ["album"]}),
            "release_types",
            "artist",
        ),
        (
            json!({"url": "https://www.deezer.com/album/302127", "release_types": ["album"]}),
            "release_types",
            "deezer album",
        ),
    ] {
        let r = s.post("/downloads", body.clone()).await;
        let text = r.body.to_string();
        assert_eq!(r.error(400), "validation_error", "{body}");
        assert!(
            text.contains(field) && text.contains(says),
            "{body}: {text}"
        );
    }

    // A malformed answer names the upstream; it is retried, then fails.
    let t = s
        .wait_ended(&s.download("https://www.deezer.com/track/7001").await)
        .await;
    assert_eq!(t.status, "failed", "{t:?}");
    assert_eq!(t.error_code.as_deref(), Some("upstream_error"));
    assert!(
        t.error
            .as_deref()
            .unwrap()
            .contains("Deezer answered with malformed JSON"),
        "{t:?}"
    );

    // A search that finds nothing: no_match, with the searches it made.
    let id = s.download("https://www.deezer.com/track/7002").await;
    s.wait_ended(&id).await;
    let child = &s.children(&id).await[0];
    assert_eq!(child.error_code.as_deref(), Some("no_match"), "{child:?}");
    let msg = child.error.as_deref().unwrap();
    assert!(
        msg.contains("QZGHO2600001") && msg.contains("Ghost - Nowhere To Be Found"),
        "{msg}"
    );
    app.stop().await;
}
