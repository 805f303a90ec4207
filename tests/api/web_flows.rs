//! The web app's flows in headless Chromium: a track that needs review is picked in the
//! page; a watch is previewed, added, dry-run and checked; a 50 MB upload survives a reload
//! half way and a dropped file uploads too; a library track plays and seeks, and another
//! user cannot edit it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::browser::Browser;
use crate::catalogs::*;
use crate::helpers::*;
use crate::kit::{Session, eventually};
use crate::matching::{deezer_track, tags_of};
use crate::proxy::Proxy;
use crate::upstream::{Entry, Upstream, decodes, library_files, tone};
use crate::ytdlp::require_ytdlp;

#[tokio::test]
async fn a_track_that_needs_review_is_picked_in_the_page() {
    require_ytdlp();
    let cat = Catalogs::start().await;
    let scratch = tempfile::tempdir().unwrap();
    cat.deezer(
        "track/7001",
        deezer_track(
            7001,
            "Seldom Heard",
            &["Quiet Duo"],
            (700, "Rarities"),
            1,
            21,
            "QZRAR2700001",
        ),
    );
    cat.deezer("album/700", json!({"id": 700, "title": "Rarities", "nb_tracks": 1, "artist": {"id": 100, "name": "Quiet Duo"}}));
    cat.ytm(
        "Quiet Duo - Seldom Heard",
        true,
        vec![
            ytm_row(
                "live7",
                "Seldom Heard (Live)",
                &["Quiet Duo"],
                None,
                25,
                true,
                false,
            ),
            ytm_row(
                "fan7",
                "seldom heard",
                &["Someone Else"],
                None,
                21,
                false,
                false,
            ),
        ],
    );
    cat.audio("live7", tone_of(scratch.path(), 25));
    cat.audio("fan7", tone_of(scratch.path(), 21));
    let app = TestApp::start(|c| cat.configure(c)).await;
    let s = Session::admin(&app).await;
    let id = s.download("https://www.deezer.com/track/7001").await;
    assert_eq!(s.wait_ended(&id).await.status, "needs_review");

    let b = Browser::start().await;
    b.sign_in(&app.base, ADMIN, ADMIN_PW).await;
    b.route(&app.base, &format!("#/task/{id}")).await;
    b.click("button.review").await;
    let listed = b
        .until(
            "the candidates are listed with scores and reasons",
            "const c = [...document.querySelectorAll('li.candidate')]; return c.length === 2 && c.every(x => x.querySelector('.score') && x.querySelector('ul li')) ? c.map(x => x.innerText) : null;",
        )
        .await;
    assert!(
        listed.to_string().contains("Seldom Heard (Live)"),
        "{listed}"
    );
    // Hear the second candidate in the page before picking it.
    b.click("li.candidate:nth-child(2) button.preview").await;
    b.until(
        "the preview plays",
        "const a = document.querySelector('audio.preview-player'); return a && !a.paused && a.currentTime > 0.2 && a.duration > 15;",
    )
    .await;
    b.screenshot("review", 1280).await;
    b.screenshot("review", 360).await;
    let index = b
        .eval("return [...document.querySelectorAll('li.candidate')].find(x => x.innerText.includes('Someone Else')).dataset.index;")
        .await;
    b.click(&format!(
        "li.candidate[data-index=\"{}\"] button.use",
        index.as_str().unwrap()
    ))
    .await;
    b.until_text("#task-status", "Done").await;
    let child = &s.children(&id).await[0];
    assert_eq!(child.status, "done");
    let tags = tags_of(child);
    assert!(
        tags["source_url"]
            .as_str()
            .unwrap()
            .ends_with("/watch/fan7.mp3"),
        "the picked recording: {tags}"
    );
    b.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_watch_is_previewed_added_dry_run_and_checked_in_the_page() {
    let up = Upstream::start().await;
    let scratch = tempfile::tempdir().unwrap();
    let episode = |i: u32| {
        let name = format!("w{i}.mp3");
        up.set(
            &name,
            Entry::File(
                Arc::new(tone(scratch.path(), &name, 200 + 50 * i, 3)),
                "audio/mpeg",
            ),
        );
        (format!("wg{i}"), format!("Show Episode {i}"), up.url(&name))
    };
    let mut eps = vec![episode(1), episode(2)];
    up.set_feed("show.xml", "Watched Show", &eps);
    let app = TestApp::start(|c| c.fetch_allow_private = true).await;
    let b = Browser::start().await;
    b.sign_in(&app.base, ADMIN, ADMIN_PW).await;
    b.route(&app.base, "#/watches").await;
    b.type_into("input[name=watch_url]", &up.url("show.xml"))
        .await;
    b.type_into("#new-schedule", "0 */6 * * *").await;
    b.until_text("#watch-form", "every 6 hours at minute 0")
        .await;
    b.click("#watch-preview").await;
    b.until_text("#watch-form", "2 items now").await;
    b.click("#watch-add").await;
    b.until_text("tr[data-watch] .last-result", "baseline of 2")
        .await;
    assert!(
        library_files(&app.library()).is_empty(),
        "a baseline downloads nothing"
    );

    // A new episode: the dry run shows it and downloads nothing; confirming checks.
    eps.push(episode(3));
    up.set_feed("show.xml", "Watched Show", &eps);
    b.click("tr[data-watch] button.dry-run").await;
    b.until_text("#dry-run", "+ Show Episode 3").await;
    let diff = b.text("#dry-run ul.diff").await;
    assert!(!diff.contains("Episode 1"), "only what is new: {diff}");
    assert!(
        library_files(&app.library()).is_empty(),
        "a dry run downloads nothing"
    );
    b.screenshot("watch-dry-run", 1280).await;
    b.screenshot("watch-dry-run", 360).await;
    b.click("#confirm-check").await;
    b.until_text("tr[data-watch] .last-result", "1 added").await;
    let files = eventually(Duration::from_secs(60), "the new episode lands", || {
        let lib = app.library();
        async move {
            let f = library_files(&lib);
            (f.len() == 1).then_some(f)
        }
    })
    .await;
    assert!(
        files[0].to_string_lossy().contains("Show Episode 3"),
        "{files:?}"
    );
    b.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_50_mb_upload_resumes_after_a_reload_and_a_dropped_file_uploads() {
    let scratch = tempfile::tempdir().unwrap();
    // 5 minutes of 16-bit stereo WAV: about 53 MB.
    let big = scratch.path().join("long take.wav");
    std::fs::write(&big, tone(scratch.path(), "gen.wav", 440, 300)).unwrap();
    let size = std::fs::metadata(&big).unwrap().len();
    assert!(size > 50_000_000, "{size}");
    let app = TestApp::start(|c| c.fetch_allow_private = true).await;
    let proxy = Proxy::start(app.base.trim_start_matches("http://")).await;
    let base = proxy.base.clone();
    let b = Browser::start().await;
    b.sign_in(&base, ADMIN, ADMIN_PW).await;
    b.route(&base, "#/uploads").await;
    // Slow enough to reload half way.
    proxy.throttle(6_000_000);
    b.find("#upload-files")
        .await
        .send_keys(&big.display().to_string())
        .await
        .expect("choose the file");
    b.until(
        "a third of the upload has gone",
        &format!("const li = document.querySelector('li[data-file]'); return li && Number(li.dataset.sent) > {};", size / 3),
    )
    .await;
    b.client.refresh().await.unwrap();
    b.until_text("#unfinished", "long take.wav").await;
    b.screenshot("uploads-unfinished", 1280).await;
    b.screenshot("uploads-unfinished", 360).await;
    proxy.throttle(0);
    b.find("#upload-files")
        .await
        .send_keys(&big.display().to_string())
        .await
        .expect("choose the file again");
    let done = b
        .until(
            "the upload finishes",
            "const li = document.querySelector('li[data-file][data-done]'); return li ? {task: li.dataset.task, resumed: Number(li.dataset.resumedAt || 0)} : null;",
        )
        .await;
    let resumed = done["resumed"].as_u64().unwrap();
    assert!(
        resumed > size / 4,
        "resumed from where it was, not from 0: {done}"
    );
    let s = Session::admin(&app).await;
    let task = s.wait_done(done["task"].as_str().unwrap()).await;
    let placed = task.output_path.expect("placed");
    decodes(std::path::Path::new(&placed)).unwrap();
    // All five minutes arrived (musicd adds tags, so the size is not the upload's).
    let probe = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(&placed)
        .output()
        .unwrap();
    let secs: f64 = String::from_utf8_lossy(&probe.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!((secs - 300.0).abs() < 0.5, "ffprobe reads {secs} s");

    // A file dropped on the page (a real drop event with a generated WAV) uploads too.
    b.eval(
        "const rate = 8000, n = rate * 2, buf = new ArrayBuffer(44 + n * 2), v = new DataView(buf);
         const s = (o, t) => [...t].forEach((c, i) => v.setUint8(o + i, c.charCodeAt(0)));
         s(0, 'RIFF'); v.setUint32(4, 36 + n * 2, true); s(8, 'WAVEfmt '); v.setUint32(16, 16, true);
         v.setUint16(20, 1, true); v.setUint16(22, 1, true); v.setUint32(24, rate, true);
         v.setUint32(28, rate * 2, true); v.setUint16(32, 2, true); v.setUint16(34, 16, true);
         s(36, 'data'); v.setUint32(40, n * 2, true);
         for (let i = 0; i < n; i++) v.setInt16(44 + i * 2, Math.sin(i / 4) * 12000, true);
         const dt = new DataTransfer();
         dt.items.add(new File([buf], 'dropped.wav', {type: 'audio/wav'}));
         const zone = document.getElementById('drop-zone');
         zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
         zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
         return true;",
    )
    .await;
    let dropped = b
        .until(
            "the dropped file uploads",
            "const li = document.querySelector('li[data-file=\"dropped.wav\"][data-done]'); return li ? li.dataset.task : null;",
        )
        .await;
    let t = s.wait_done(dropped.as_str().unwrap()).await;
    decodes(std::path::Path::new(&t.output_path.unwrap())).unwrap();
    b.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_library_track_plays_and_seeks_and_another_user_cannot_edit_it() {
    let up = Upstream::start().await;
    let scratch = tempfile::tempdir().unwrap();
    up.set(
        "song.mp3",
        Entry::File(Arc::new(with_cover(scratch.path())), "audio/mpeg"),
    );
    let app = TestApp::start(|c| c.fetch_allow_private = true).await;
    let s = Session::admin(&app).await;
    s.wait_done(&s.download(&up.url("song.mp3")).await).await;
    let tracks: Value = s.get("/library/tracks").await.good();
    let track = tracks["items"][0]["id"].as_str().unwrap().to_string();
    let r = s
        .post(
            "/users",
            json!({"username": "bob", "password": "bob-password-1", "role": "user"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    let b = Browser::start().await;
    b.sign_in(&app.base, ADMIN, ADMIN_PW).await;
    b.route(&app.base, "#/library").await;
    b.click(&format!("tr[data-track=\"{track}\"] button.play"))
        .await;
    b.until(
        "the track plays",
        "const a = document.getElementById('player'); return a && !a.paused && a.currentTime > 0.2 && a.duration > 30;",
    )
    .await;
    b.eval(
        "const a = document.getElementById('player'); a.currentTime = a.duration / 2; return true;",
    )
    .await;
    let at = b
        .until(
            "playback goes on from the middle",
            "const a = document.getElementById('player'); return !a.paused && !a.seeking && a.currentTime > a.duration / 2 + 0.3 ? a.currentTime : null;",
        )
        .await;
    assert!(at.as_f64().unwrap() > 20.0, "{at}");
    // The album shows the cover its file carries, served by the library.
    let album = tracks["items"][0]["album_id"].as_str().unwrap().to_string();
    let res = app
        .client
        .get(app.url(&format!("/api/v1/library/albums/{album}/cover")))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    assert!(res.bytes().await.unwrap().starts_with(&[0xFF, 0xD8]));
    b.route(&app.base, "#/library/albums").await;
    b.until(
        "the album's cover shows",
        "const i = document.querySelector('.tile img.cover'); return i && i.complete && i.naturalWidth === 64;",
    )
    .await;
    // The owner (an admin here) may open the edit page.
    b.route(&app.base, &format!("#/library/track/{track}"))
        .await;
    b.find("#tag-form").await;
    b.screenshot("track-edit", 1280).await;
    b.screenshot("track-edit", 360).await;

    // Another user sees the library but not the edit form, and the API refuses an edit.
    b.route(&app.base, "#/account").await;
    b.click("#sign-out").await;
    b.sign_in(&app.base, "bob", "bob-password-1").await;
    b.route(&app.base, "#/library").await;
    let row = b.text(&format!("tr[data-track=\"{track}\"]")).await;
    assert!(!row.contains("Edit"), "{row}");
    b.route(&app.base, &format!("#/library/track/{track}"))
        .await;
    b.until_text("#not-yours", "someone else's").await;
    assert_eq!(
        b.eval("return document.getElementById('tag-form') === null;")
            .await,
        json!(true)
    );
    let bob = Session::sign_in(&app, "bob", "bob-password-1").await;
    let r = bob
        .patch(
            &format!("/library/tracks/{track}"),
            json!({"title": "Mine now"}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    b.stop().await;
    app.stop().await;
}

/// Forty seconds of tone in an MP3 tagged with an album and carrying a front cover (a 64 px
/// JPEG), as ffmpeg writes them.
fn with_cover(dir: &std::path::Path) -> Vec<u8> {
    tone(dir, "plain.mp3", 523, 40);
    std::fs::write(dir.join("front.jpg"), jpeg(dir).as_slice()).unwrap();
    let out = dir.join("covered.mp3");
    let ok = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(dir.join("plain.mp3"))
        .arg("-i")
        .arg(dir.join("front.jpg"))
        .args([
            "-map",
            "0:a",
            "-map",
            "1",
            "-c",
            "copy",
            "-id3v2_version",
            "3",
        ])
        .args([
            "-metadata",
            "title=Covered Song",
            "-metadata",
            "artist=Cover Band",
        ])
        .args([
            "-metadata",
            "album=With Art",
            "-disposition:v",
            "attached_pic",
        ])
        .arg(&out)
        .status()
        .expect("ffmpeg")
        .success();
    assert!(ok, "ffmpeg attached the cover");
    std::fs::read(out).unwrap()
}
