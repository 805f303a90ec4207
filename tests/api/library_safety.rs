//! Nobody's file is touched by someone else's request, and nothing too big gets in: a watch
//! deletes only what it placed, placement never replaces an indexed file, a tag edit never
//! moves a file through a symbolic link, and feeds, durations and upload outputs have caps.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;
use crate::kit::Session;
use crate::library::multipart;
use crate::upstream::*;

/// FLAC made by ffmpeg from a lavfi source (`sine=f=440:d=2`, `anullsrc=d=60`, …).
fn flac(dir: &Path, name: &str, source: &str, tags: &[(&str, &str)]) -> Vec<u8> {
    let out = dir.join(name);
    let mut cmd = std::process::Command::new("ffmpeg");
    cmd.args(["-v", "error", "-y", "-f", "lavfi", "-i", source, "-ac", "2"]);
    for (k, v) in tags {
        cmd.args(["-metadata", &format!("{k}={v}")]);
    }
    assert!(
        cmd.args(["-c:a", "flac"])
            .arg(&out)
            .status()
            .unwrap()
            .success()
    );
    std::fs::read(out).unwrap()
}

/// Uploads a file and waits for its task to end; returns the task.
async fn upload(
    app: &TestApp,
    token: &str,
    name: &str,
    bytes: Vec<u8>,
    fields: &[(&str, &str)],
) -> Value {
    let (s, r) = multipart(&app.client, app, token, name, bytes, fields).await;
    assert_eq!(s, 202, "{r}");
    let id = r["data"]["tasks"][0]["task_id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_task_long(&app.client, &app.base, token, &id).await
}

#[tokio::test]
async fn over_long_inputs_and_outputs_past_the_quota_are_refused() {
    let app = TestApp::start(|c| {
        c.media.max_duration = Duration::from_secs(30);
        c.uploads.quota = bytesize::ByteSize::mb(3);
    })
    .await;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    let scratch = tempfile::tempdir().unwrap();
    // 40 s of silence: a few KiB of FLAC, refused by its length before any transcoding.
    let long = flac(
        scratch.path(),
        "long.flac",
        "anullsrc=r=44100:cl=stereo:d=40",
        &[],
    );
    let t = upload(&app, &admin, "long.flac", long, &[]).await;
    assert_eq!(t["status"], json!("failed"), "{t}");
    assert_eq!(t["error_code"], json!("too_long"), "{t}");
    // 25 s of silence is short enough, but as WAV it is 4.4 MB, over the 3 MB quota: the
    // output counts at placement, not only the small input.
    let short = flac(
        scratch.path(),
        "short.flac",
        "anullsrc=r=44100:cl=stereo:d=25",
        &[],
    );
    assert!(short.len() < 100_000);
    let t = upload(&app, &admin, "short.flac", short, &[("format", "wav")]).await;
    assert_eq!(t["status"], json!("failed"), "{t}");
    assert_eq!(t["error_code"], json!("quota_exceeded"), "{t}");
    assert!(library_files(&app.library()).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_feed_past_max_feed_size_fails_clearly() {
    let app = TestApp::start(|c| {
        c.fetch_allow_private = true;
        c.media.max_feed_size = bytesize::ByteSize::kib(64);
    })
    .await;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    let up = Upstream::start().await;
    let episodes: Vec<(String, String, String)> = (0..2000)
        .map(|i| {
            (
                format!("g{i}"),
                format!("Episode {i}"),
                up.url(&format!("e{i}.mp3")),
            )
        })
        .collect();
    up.set_feed("big.xml", "Big Cast", &episodes);
    let task = download(&app.client, &app.base, &admin, &up.url("big.xml")).await;
    let t = wait_task_long(&app.client, &app.base, &admin, &task).await;
    assert_eq!(t["status"], json!("failed"), "{t}");
    assert_eq!(t["error_code"], json!("feed_too_large"), "{t}");
    assert!(
        t["error"].as_str().unwrap().contains("media.max_feed_size"),
        "{t}"
    );
    app.stop().await;
}

#[tokio::test]
async fn placement_never_replaces_an_indexed_file() {
    let app = TestApp::start(|_| {}).await;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    let scratch = tempfile::tempdir().unwrap();
    let tags = [
        ("title", "Same Name"),
        ("artist", "Same Artist"),
        ("album", "Same Album"),
    ];
    let first = flac(scratch.path(), "a.flac", "sine=f=440:d=2", &tags);
    let t = upload(&app, &admin, "a.flac", first, &[]).await;
    assert_eq!(t["status"], json!("done"), "{t}");
    let placed = std::path::PathBuf::from(t["output_path"].as_str().unwrap());
    // The indexed file gets damaged on disk (a bad disk, another program).
    let bytes = std::fs::read(&placed).unwrap();
    std::fs::write(&placed, &bytes[..bytes.len() / 3]).unwrap();
    let damaged = std::fs::read(&placed).unwrap();
    // Another track with the same tags: it gets a name of its own.
    let second = flac(scratch.path(), "b.flac", "sine=f=660:d=2", &tags);
    let t = upload(&app, &admin, "b.flac", second, &[]).await;
    assert_eq!(t["status"], json!("done"), "{t}");
    let other = std::path::PathBuf::from(t["output_path"].as_str().unwrap());
    assert_ne!(other, placed);
    assert_eq!(
        std::fs::read(&placed).unwrap(),
        damaged,
        "the indexed file was replaced"
    );
    decodes(&other).unwrap();
    app.stop().await;
}

#[tokio::test]
async fn a_tag_edit_never_moves_a_file_through_a_link() {
    let app = TestApp::start(|_| {}).await;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    let scratch = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let song = flac(
        scratch.path(),
        "s.flac",
        "sine=f=440:d=2",
        &[("title", "Song"), ("artist", "Someone"), ("album", "Album")],
    );
    let t = upload(&app, &admin, "s.flac", song, &[]).await;
    assert_eq!(t["status"], json!("done"), "{t}");
    let path = t["output_path"].as_str().unwrap().to_string();
    std::os::unix::fs::symlink(outside.path(), app.library().join("Elsewhere")).unwrap();
    let page = get_json(&app.client, app.url("/api/v1/library/tracks"), &admin).await;
    let id = page["data"]["items"][0]["id"].as_str().unwrap().to_string();
    let r = app
        .client
        .patch(app.url(&format!("/api/v1/library/tracks/{id}")))
        .bearer_auth(&admin)
        .json(&json!({ "album_artist": "Elsewhere" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("symbolic link"),
        "{body}"
    );
    assert!(
        files_under(outside.path()).is_empty(),
        "a file went out of the library"
    );
    assert!(Path::new(&path).is_file());
    app.stop().await;
}

/// Serves a feed of the given episode numbers (each a tone of its own).
fn serve_feed(up: &Upstream, scratch: &Path, episodes: &[u32]) {
    let mut list = Vec::new();
    for i in episodes {
        let name = format!("ep{i}.mp3");
        if up.hits(&name) == 0 {
            let audio = tone(scratch, &name, 300 + 60 * i, 1);
            up.set(&name, Entry::File(Arc::new(audio), "audio/mpeg"));
        }
        list.push((format!("guid-{i}"), format!("Episode {i}"), up.url(&name)));
    }
    up.set_feed("feed.xml", "Shared Cast", &list);
}

#[tokio::test]
async fn a_watch_deletes_only_the_files_it_placed() {
    let app = TestApp::start(|c| c.fetch_allow_private = true).await;
    let admin = Session::admin(&app).await;
    let s = admin
        .post(
            "/users",
            json!({ "username": "bea", "password": "bea-password-1" }),
        )
        .await
        .status;
    assert_eq!(s, 201);
    let bea = Session::sign_in(&app, "bea", "bea-password-1").await;
    let up = Upstream::start().await;
    let scratch = tempfile::tempdir().unwrap();
    let library = app.library();

    // The admin downloads the feed with episodes 1 and 2.
    serve_feed(&up, scratch.path(), &[1, 2]);
    let task = admin.download(&up.url("feed.xml")).await;
    let t = admin.wait_ended(&task).await;
    assert_eq!(t.status, "done", "{t:?}");
    let theirs = library_files(&library);
    assert_eq!(theirs.len(), 2, "{theirs:?}");

    serve_feed(&up, scratch.path(), &[1, 2, 3]);
    let watch = bea_watches_and_places_only_episode_3(&bea, &up, &library, &theirs).await;
    // The feed drops episodes 1 and 3: her check deletes her own file and keeps the admin's.
    serve_feed(&up, scratch.path(), &[2]);
    her_check_deletes_only_her_own_file(&bea, &watch, &library, &theirs).await;
    the_index_follows_the_files(&admin, &theirs).await;
    app.stop().await;
}

/// Bea watches the feed once it has episode 3 too: 1 and 2 are already there, 3 is hers.
/// The watch's id.
async fn bea_watches_and_places_only_episode_3(
    bea: &Session,
    up: &Upstream,
    library: &Path,
    theirs: &[std::path::PathBuf],
) -> String {
    let w = bea
        .post(
            "/watches",
            json!({ "url": up.url("feed.xml"), "schedule": "0 0 1 1 *", "download_existing": true,
                    "on_removed": "delete" }),
        )
        .await;
    assert_eq!(w.status, 201, "{}", w.body);
    let w = w.body;
    let watch = w["data"]["id"].as_str().unwrap().to_string();
    let t = bea
        .wait_ended(w["data"]["check_task_id"].as_str().unwrap())
        .await;
    assert_eq!(t.status, "done", "{t:?}");
    let all = library_files(library);
    assert_eq!(all.len(), 3, "{all:?}");
    let hers: Vec<_> = all
        .iter()
        .filter(|p| !theirs.contains(p))
        .cloned()
        .collect();
    assert_eq!(hers.len(), 1);
    watch
}

/// Her check deletes her own file, and says it kept episode 1 because it did not place it.
async fn her_check_deletes_only_her_own_file(
    bea: &Session,
    watch: &str,
    library: &Path,
    theirs: &[std::path::PathBuf],
) {
    let r = bea
        .post(&format!("/watches/{watch}/check"), json!({}))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let t = bea
        .wait_ended(r.body["data"]["task_id"].as_str().unwrap())
        .await;
    assert_eq!(t.status, "done", "{t:?}");
    let left = library_files(library);
    assert_eq!(left, theirs, "only her own file goes");
    let w: Value = bea.get(&format!("/watches/{watch}")).await.good();
    let result = &w["last_result"];
    assert_eq!(result["deleted"], json!(1), "{w}");
    assert_eq!(result["kept"][0]["id"], json!("guid-1"), "{w}");
    assert!(
        result["kept"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("did not place"),
        "{w}"
    );
}

/// The index follows the files: the admin's two rows stay, hers is gone.
async fn the_index_follows_the_files(admin: &Session, theirs: &[std::path::PathBuf]) {
    let rows: Value = admin.get("/library/tracks?limit=50").await.good();
    let paths: Vec<&str> = rows["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths.len(), 2, "{rows}");
    for p in theirs {
        assert!(
            paths.iter().any(|x| Path::new(x) == p.as_path()),
            "{p:?} lost its row: {rows}"
        );
    }
}
