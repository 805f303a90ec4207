//! Uploads and the library: a 50 MB FLAC through tus with the connection cut twice, served
//! back with `Range`; bad and hostile uploads; the quota and expiry; `musicd scan` and dedup
//! against what it found; tag edits; playback in a real browser through a signed link.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::browser::Browser;
use crate::helpers::*;
use crate::kit::{Session, eventually};
use crate::upstream::*;

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Generated audio of about `secs` seconds of noise as FLAC (noise does not compress).
pub(crate) fn noise_flac(dir: &Path, secs: u32) -> Vec<u8> {
    let out = dir.join("noise.flac");
    let ok = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("anoisesrc=d={secs}:c=white:r=48000:a=0.5"))
        .args(["-ac", "2", "-c:a", "flac"])
        .arg(&out)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    std::fs::read(out).unwrap()
}

/// A raw tus PATCH over its own TCP connection that sends `bytes` and then, when `cut` is
/// set, drops the connection before the announced length has arrived.
pub(crate) async fn patch_raw(
    base: &str,
    token: &str,
    loc: &str,
    offset: usize,
    bytes: &[u8],
    total: usize,
) {
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PATCH {loc} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n\
         Upload-Offset: {offset}\r\nContent-Length: {total}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(bytes).await.unwrap();
    s.flush().await.unwrap();
    if bytes.len() < total {
        // Cut: give the server a moment to read what was sent, then drop the connection.
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(s);
    } else {
        let mut answer = vec![0u8; 4096];
        let n = s.read(&mut answer).await.unwrap();
        let text = String::from_utf8_lossy(&answer[..n]);
        assert!(text.starts_with("HTTP/1.1 204"), "{text}");
    }
}

pub(crate) async fn head_offset(
    c: &reqwest::Client,
    base: &str,
    token: &str,
    loc: &str,
) -> (u16, Option<usize>) {
    let r = c
        .head(format!("{base}{loc}"))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    let off = r
        .headers()
        .get("Upload-Offset")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    (r.status().as_u16(), off)
}

pub(crate) async fn tus_create(
    c: &reqwest::Client,
    base: &str,
    token: &str,
    len: usize,
    name: &str,
) -> reqwest::Response {
    use base64::Engine;
    let meta = format!(
        "filename {}",
        base64::engine::general_purpose::STANDARD.encode(name)
    );
    c.post(format!("{base}/api/v1/uploads/tus"))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", len.to_string())
        .header("Upload-Metadata", meta)
        .send()
        .await
        .unwrap()
}

/// The one track in the library whose `source_hash` is `hash`.
async fn track_by_source(c: &reqwest::Client, app: &TestApp, token: &str, hash: &str) -> Value {
    let page = get_json(c, app.url("/api/v1/library/tracks?limit=500"), token).await;
    page["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["source_hash"] == json!(hash))
        .cloned()
        .unwrap_or_else(|| panic!("no track made from {hash}: {page}"))
}

/// A tus PATCH of `bytes` at `offset`, with `Upload-Checksum: sha256 …` when `checksum`.
async fn tus_patch(
    app: &TestApp,
    token: &str,
    loc: &str,
    offset: usize,
    bytes: &[u8],
    checksum: Option<&[u8]>,
) -> reqwest::Response {
    use base64::Engine;
    let mut req = app
        .client
        .patch(format!("{}{loc}", app.base))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Content-Type", "application/offset+octet-stream")
        .header("Upload-Offset", offset.to_string());
    if let Some(sum_of) = checksum {
        let sum = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(sum_of));
        req = req.header("Upload-Checksum", format!("sha256 {sum}"));
    }
    req.body(bytes.to_vec()).send().await.unwrap()
}

#[tokio::test]
async fn tus_upload_survives_two_cuts_and_is_served_with_range() {
    let app = TestApp::start(|_| {}).await;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    let scratch = tempfile::tempdir().unwrap();
    let flac = noise_flac(scratch.path(), 380);
    assert!(flac.len() > 50_000_000, "{} bytes", flac.len());
    let total = flac.len();

    let r = tus_create(&app.client, &app.base, &admin, total, "noise.flac").await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    assert_eq!(r.headers()["Tus-Resumable"], "1.0.0");
    assert!(r.headers().contains_key("Upload-Expires"));
    let loc = r.headers()["Location"].to_str().unwrap().to_string();

    let offset = two_cuts_resume_from_the_servers_offset(&app, &admin, &loc, &flac).await;
    stale_and_corrupt_chunks_change_nothing(&app, &admin, &loc, &flac, offset).await;
    // The rest, with its checksum.
    let rest = &flac[offset..];
    let done = tus_patch(&app, &admin, &loc, offset, rest, Some(rest)).await;
    assert_eq!(done.status(), 204);
    assert_eq!(done.headers()["Upload-Offset"], total.to_string().as_str());
    let task = done.headers()["Musicd-Task-Id"]
        .to_str()
        .unwrap()
        .to_string();
    let t = wait_task_long(&app.client, &app.base, &admin, &task).await;
    assert_eq!(t["status"], json!("done"), "{t}");

    let (id, path) = the_track_is_the_original_upload(&app, &admin, &flac).await;
    let on_disk = ranges_and_etags_serve_the_file_on_disk(&app, &admin, &id, &path).await;
    // The upload record no longer holds bytes; the quota counts the library file.
    let q = get_json(&app.client, app.url("/api/v1/uploads/quota"), &admin).await;
    assert_eq!(q["data"]["used"], json!(on_disk), "{q}");
    assert!(files_under(&app.data().join("uploads")).is_empty());
    app.stop().await;
}

/// Cut at about 15 MB, then at about 35 MB; resume each time from the server's offset,
/// which is past the previous one and not past the cut. The offset reached.
async fn two_cuts_resume_from_the_servers_offset(
    app: &TestApp,
    admin: &str,
    loc: &str,
    flac: &[u8],
) -> usize {
    let total = flac.len();
    let mut offset = 0;
    for cut_at in [15_000_000usize, 35_000_000] {
        patch_raw(
            &app.base,
            admin,
            loc,
            offset,
            &flac[offset..cut_at],
            total - offset,
        )
        .await;
        let (s, off) = head_offset(&app.client, &app.base, admin, loc).await;
        assert_eq!(s, 200);
        let off = off.expect("Upload-Offset");
        assert!(
            off > offset && off <= cut_at,
            "{offset} < {off} <= {cut_at}"
        );
        offset = off;
    }
    offset
}

/// A repeated (stale) chunk is refused (409) and a chunk with a wrong checksum is discarded
/// (460): neither moves the offset.
async fn stale_and_corrupt_chunks_change_nothing(
    app: &TestApp,
    admin: &str,
    loc: &str,
    flac: &[u8],
    offset: usize,
) {
    let stale = tus_patch(app, admin, loc, 0, &flac[..1000], None).await;
    assert_eq!(stale.status(), 409);
    assert_eq!(
        head_offset(&app.client, &app.base, admin, loc).await.1,
        Some(offset)
    );
    let chunk = &flac[offset..offset + 1000];
    let bad = tus_patch(app, admin, loc, offset, chunk, Some(b"nope")).await;
    assert_eq!(bad.status().as_u16(), 460);
    assert_eq!(
        head_offset(&app.client, &app.base, admin, loc).await.1,
        Some(offset)
    );
}

/// The assembled upload is the original, byte for byte (its hash is the track's source): a
/// decodable FLAC inside the library, titled by its file name. The track's id and path.
async fn the_track_is_the_original_upload(
    app: &TestApp,
    admin: &str,
    flac: &[u8],
) -> (String, PathBuf) {
    let track = track_by_source(&app.client, app, admin, &sha256(flac)).await;
    let path = PathBuf::from(track["path"].as_str().unwrap());
    assert!(path.starts_with(app.library().canonicalize().unwrap()));
    decodes(&path).unwrap();
    assert_eq!(track["format"], json!("flac"));
    assert_eq!(
        track["title"],
        json!("noise"),
        "the file name is the title fallback"
    );
    (track["id"].as_str().unwrap().to_string(), path)
}

/// Range: exactly bytes 1000..=1999 of the file on disk; its ETag answers 304. The file's
/// length.
async fn ranges_and_etags_serve_the_file_on_disk(
    app: &TestApp,
    admin: &str,
    id: &str,
    path: &Path,
) -> usize {
    let url = app.url(&format!("/api/v1/library/tracks/{id}/file"));
    let r = app
        .client
        .get(&url)
        .bearer_auth(admin)
        .header("Range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["Content-Type"], "audio/flac");
    let etag = r.headers()["ETag"].to_str().unwrap().to_string();
    let on_disk = std::fs::read(path).unwrap();
    assert_eq!(
        r.headers()["Content-Range"],
        format!("bytes 1000-1999/{}", on_disk.len()).as_str()
    );
    let got = r.bytes().await.unwrap();
    assert_eq!(got.len(), 1000);
    assert_eq!(&got[..], &on_disk[1000..2000]);
    let r = app
        .client
        .get(&url)
        .bearer_auth(admin)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    on_disk.len()
}

/// `POST /uploads` of one file with optional form fields; the status and body.
pub(crate) async fn multipart(
    c: &reqwest::Client,
    app: &TestApp,
    token: &str,
    name: &str,
    bytes: Vec<u8>,
    fields: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    form = form.part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
    );
    let r = c
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn bad_and_hostile_uploads_and_the_quota() {
    let app = TestApp::start(|c| {
        c.uploads.quota = bytesize::ByteSize::kb(600);
        c.uploads.expiry = Duration::from_secs(2);
    })
    .await;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    let scratch = tempfile::tempdir().unwrap();
    text_named_mp3_fails_by_content(&app, &admin).await;
    a_hostile_name_lands_inside_the_library(&app, &admin, scratch.path()).await;
    over_the_quota_is_413_by_either_route(&app, &admin).await;
    let loc = an_unfinished_upload_expires(&app, &admin).await;
    termination_removes_an_upload_at_once(&app, &admin).await;
    // Discovery.
    let r = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/uploads/tus"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers()["Tus-Extension"],
        "creation,expiration,checksum,termination"
    );
    // Without Tus-Resumable: 412.
    let r = app
        .client
        .head(format!("{}{loc}", app.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    app.stop().await;
}

/// Text named song.mp3: the task fails by content, nothing reaches the library.
async fn text_named_mp3_fails_by_content(app: &TestApp, admin: &str) {
    let c = &app.client;
    let text = b"just some text\n".repeat(100);
    let (s, r) = multipart(c, app, admin, "song.mp3", text, &[]).await;
    assert_eq!(s, 202, "{r}");
    let task = r["data"]["tasks"][0]["task_id"]
        .as_str()
        .unwrap()
        .to_string();
    let t = wait_task_long(c, &app.base, admin, &task).await;
    assert_eq!(t["status"], json!("failed"), "{t}");
    assert_eq!(t["error_code"], json!("unsupported_media_type"), "{t}");
    assert!(library_files(&app.library()).is_empty());
}

/// A hostile name lands inside the library with a clean name; form fields become tags.
async fn a_hostile_name_lands_inside_the_library(app: &TestApp, admin: &str, scratch: &Path) {
    let c = &app.client;
    let flac = {
        let out = scratch.join("t.flac");
        std::process::Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "sine=f=440:d=2",
                "-c:a",
                "flac",
            ])
            .arg(&out)
            .status()
            .unwrap();
        std::fs::read(out).unwrap()
    };
    let fields = [("artist", "Uploader")];
    let (s, r) = multipart(c, app, admin, "../../etc/passwd.flac", flac, &fields).await;
    assert_eq!(s, 202, "{r}");
    let task = r["data"]["tasks"][0]["task_id"].as_str().unwrap();
    let t = wait_task_long(c, &app.base, admin, task).await;
    assert_eq!(t["status"], json!("done"), "{t}");
    let files = library_files(&app.library());
    assert_eq!(files.len(), 1, "{files:?}");
    let placed = files[0].canonicalize().unwrap();
    assert!(
        placed.starts_with(app.library().canonicalize().unwrap()),
        "{placed:?}"
    );
    let rel = placed
        .strip_prefix(app.library().canonicalize().unwrap())
        .unwrap()
        .display()
        .to_string();
    assert!(rel.contains("passwd") && !rel.contains(".."), "{rel}");
    assert!(rel.starts_with("Uploader/"), "{rel}");
    assert!(!Path::new("/etc/passwd.flac").exists());
    decodes(&placed).unwrap();
}

/// Over the quota: 413 before anything is written, by either route.
async fn over_the_quota_is_413_by_either_route(app: &TestApp, admin: &str) {
    let c = &app.client;
    let big = vec![7u8; 700_000];
    let (s, r) = multipart(c, app, admin, "big.flac", big.clone(), &[]).await;
    assert_eq!(s, 413, "{r}");
    let r = tus_create(c, &app.base, admin, big.len(), "big.flac").await;
    assert_eq!(r.status(), 413);
    assert!(files_under(&app.data().join("uploads")).is_empty());
    let q = get_json(c, app.url("/api/v1/uploads/quota"), admin).await;
    assert_eq!(q["data"]["limit"], json!(600_000), "{q}");
}

/// An upload never finished is gone after its expiry (2 s here), bytes and all. Its
/// location.
async fn an_unfinished_upload_expires(app: &TestApp, admin: &str) -> String {
    let c = &app.client;
    let r = tus_create(c, &app.base, admin, 1000, "never.flac").await;
    assert_eq!(r.status(), 201);
    let loc = r.headers()["Location"].to_str().unwrap().to_string();
    let r = tus_patch(app, admin, &loc, 0, &[1u8; 400], None).await;
    assert_eq!(r.status(), 204);
    assert_eq!(files_under(&app.data().join("uploads")).len(), 1);
    eventually(
        Duration::from_secs(10),
        "the expired upload was removed",
        || async {
            (head_offset(c, &app.base, admin, &loc).await.0 == 404
                && files_under(&app.data().join("uploads")).is_empty())
            .then_some(())
        },
    )
    .await;
    loc
}

/// Termination: an upload abandoned on purpose goes at once.
async fn termination_removes_an_upload_at_once(app: &TestApp, admin: &str) {
    let c = &app.client;
    let r = tus_create(c, &app.base, admin, 100, "dropped.flac").await;
    let loc2 = r.headers()["Location"].to_str().unwrap().to_string();
    let r = c
        .delete(format!("{}{loc2}", app.base))
        .bearer_auth(admin)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(head_offset(c, &app.base, admin, &loc2).await.0, 404);
    assert!(files_under(&app.data().join("uploads")).is_empty());
}

/// Tags every `NNN.mp3` in `dir` with mutagen: title `Song N`, artist `Scan Artist`, album
/// `Album N/10`, year 2020 (so each file differs).
fn tag_collection(dir: &Path) {
    let script = r#"
import sys, os
from mutagen.id3 import ID3, TIT2, TPE1, TALB, TDRC, TCON, TRCK
d = sys.argv[1]
for name in os.listdir(d):
    i = int(name.split('.')[0])
    t = ID3()
    t.add(TIT2(encoding=3, text=f"Song {i}"))
    t.add(TPE1(encoding=3, text="Scan Artist"))
    t.add(TALB(encoding=3, text=f"Album {i // 10}"))
    t.add(TRCK(encoding=3, text=str(i % 10 + 1)))
    t.add(TDRC(encoding=3, text="2020"))
    t.add(TCON(encoding=3, text="Test"))
    t.save(os.path.join(d, name))
"#;
    let ok = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mutagen tagged the collection");
}

fn musicd_cli(app_data: &Path, library: &Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_musicd"))
        .args(args)
        .env_remove("MUSICD_CONFIG")
        .env("MUSICD_DATA_DIR", app_data)
        .env("MUSICD_LIBRARY_DIR", library)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn scan_indexes_a_collection_and_downloads_of_it_are_skipped() {
    let app = TestApp::start(|c| c.fetch_allow_private = true).await;
    let admin = Session::admin(&app).await;
    let scratch = tempfile::tempdir().unwrap();
    let files = a_tagged_collection_of_500(&app.library(), scratch.path());
    let before: Vec<Vec<u8>> = files
        .iter()
        .take(3)
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    let (ok, out) = musicd_cli(&app.data(), &app.library(), &["scan"]);
    assert!(ok, "{out}");
    assert!(out.contains("500 indexed"), "{out}");
    // Nothing was changed.
    for (f, b) in files.iter().zip(&before) {
        assert_eq!(&std::fs::read(f).unwrap(), b);
    }
    the_library_lists_pages_and_finds_the_collection(&admin).await;
    a_download_of_a_scanned_file_is_skipped(&admin, &files[77]).await;
    assert_eq!(library_files(&app.library()).len(), 500);

    // A file removed from disk is noticed by the next scan.
    std::fs::remove_file(&files[3]).unwrap();
    let (ok, out) = musicd_cli(&app.data(), &app.library(), &["scan"]);
    assert!(ok, "{out}");
    assert!(out.contains("499 unchanged, 1 gone"), "{out}");
    app.stop().await;
}

/// 500 copies of one tone in `<library>/Collection`, each tagged differently. Their paths.
fn a_tagged_collection_of_500(library: &Path, scratch: &Path) -> Vec<PathBuf> {
    let base = tone(scratch, "base.mp3", 500, 1);
    let dir = library.join("Collection");
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for i in 0..500 {
        let p = dir.join(format!("{i:03}.mp3"));
        std::fs::File::create(&p).unwrap().write_all(&base).unwrap();
        files.push(p);
    }
    tag_collection(&dir);
    files
}

/// The 500 tracks page through in pages of 200; a search finds song 421 with its tags; one
/// artist has all 500; there are 50 albums, album 42 with its 10 tracks.
async fn the_library_lists_pages_and_finds_the_collection(admin: &Session) {
    let mut count = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/library/tracks?limit=200&cursor={c}"),
            None => "/library/tracks?limit=200".to_string(),
        };
        let page: Value = admin.get(&path).await.good();
        count += page["items"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(n) => cursor = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(count, 500);
    let found: Value = admin.get("/library/tracks?q=song%20421").await.good();
    let items = found["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{found}");
    assert_eq!(items[0]["artist"], json!("Scan Artist"));
    assert_eq!(items[0]["year"], json!(2020));
    let artists: Value = admin.get("/library/artists").await.good();
    assert_eq!(artists["items"][0]["tracks"], json!(500), "{artists}");
    let albums: Value = admin.get("/library/albums?limit=500").await.good();
    assert_eq!(albums["items"].as_array().unwrap().len(), 50);
    let album_id = items[0]["album_id"].as_str().unwrap();
    let album: Value = admin
        .get(&format!("/library/albums/{album_id}"))
        .await
        .good();
    assert_eq!(album["title"], json!("Album 42"));
    assert_eq!(album["tracks"].as_array().unwrap().len(), 10);
}

/// A download of one of them is skipped as already present.
async fn a_download_of_a_scanned_file_is_skipped(admin: &Session, file: &Path) {
    let up = Upstream::start().await;
    up.set(
        "dup.mp3",
        Entry::File(Arc::new(std::fs::read(file).unwrap()), "audio/mpeg"),
    );
    let id = admin.download(&up.url("dup.mp3")).await;
    admin.wait_ended(&id).await;
    let kids = admin.children(&id).await;
    let kid = &kids[0];
    assert_eq!(kid.status, "skipped", "{kid:?}");
    assert!(
        kid.error
            .as_deref()
            .unwrap()
            .contains("already in the library"),
        "{kid:?}"
    );
}

#[tokio::test]
async fn tag_edits_rewrite_the_file_and_move_it() {
    let app = TestApp::start(|_| {}).await;
    let c = &app.client;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    let scratch = tempfile::tempdir().unwrap();
    let mp3 = tone(scratch.path(), "x.mp3", 440, 1);
    let (s, r) = multipart(
        c,
        &app,
        &admin,
        "x.mp3",
        mp3,
        &[
            ("title", "Old Name"),
            ("artist", "Editor"),
            ("album", "Drafts"),
        ],
    )
    .await;
    assert_eq!(s, 202, "{r}");
    let t = wait_task_long(
        c,
        &app.base,
        &admin,
        r["data"]["tasks"][0]["task_id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(t["status"], json!("done"), "{t}");
    let page = get_json(c, app.url("/api/v1/library/tracks"), &admin).await;
    let track = page["data"]["items"][0].clone();
    assert_eq!(track["title"], json!("Old Name"));
    let old = PathBuf::from(track["path"].as_str().unwrap());
    let id = track["id"].as_str().unwrap();
    let r = c
        .patch(app.url(&format!("/api/v1/library/tracks/{id}")))
        .bearer_auth(&admin)
        .json(&json!({ "title": "New Name", "album": "Finals" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let new = PathBuf::from(body["data"]["path"].as_str().unwrap());
    assert_ne!(new, old);
    assert!(!old.exists() && new.exists());
    assert!(new.to_string_lossy().contains("Finals"), "{new:?}");
    let tags = tags(&new);
    assert_eq!(tags["title"], json!("New Name"), "{tags}");
    assert_eq!(tags["album"], json!("Finals"), "{tags}");
    decodes(&new).unwrap();
    // Another user may not change or delete it.
    post_json(
        c,
        app.url("/api/v1/users"),
        &admin,
        json!({ "username": "eve", "password": "eve-password-1" }),
    )
    .await;
    let eve = app.login("eve", "eve-password-1").await;
    let r = c
        .delete(app.url(&format!("/api/v1/library/tracks/{id}")))
        .bearer_auth(&eve)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .delete(app.url(&format!("/api/v1/library/tracks/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!new.exists());
    app.stop().await;
}

#[tokio::test]
async fn a_browser_plays_and_seeks_through_a_signed_link() {
    let app = TestApp::start(|_| {}).await;
    let c = &app.client;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    let scratch = tempfile::tempdir().unwrap();
    let song = tone(scratch.path(), "long.mp3", 330, 30);
    let (s, r) = multipart(c, &app, &admin, "long.mp3", song, &[("title", "Playable")]).await;
    assert_eq!(s, 202, "{r}");
    let t = wait_task_long(
        c,
        &app.base,
        &admin,
        r["data"]["tasks"][0]["task_id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(t["status"], json!("done"), "{t}");
    let page = get_json(c, app.url("/api/v1/library/tracks"), &admin).await;
    let id = page["data"]["items"][0]["id"].as_str().unwrap().to_string();
    let (s, link) = post_json(
        c,
        app.url(&format!("/api/v1/library/tracks/{id}/link")),
        &admin,
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{link}");
    let src = app.url(link["data"]["url"].as_str().unwrap());
    // Without the signature the file is refused.
    let bare = c
        .get(app.url(&format!("/api/v1/library/stream/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 401);

    // A page served by the test, with an <audio> element pointed at the signed link.
    let up = Upstream::start().await;
    let html = format!(
        "<!DOCTYPE html><html><body><audio id=\"a\" preload=\"auto\" src=\"{src}\"></audio>\
         <script>const a = document.getElementById('a');\
         a.addEventListener('loadedmetadata', () => {{ a.currentTime = a.duration / 2; a.play(); }});\
         </script></body></html>"
    );
    up.set(
        "player.html",
        Entry::File(Arc::new(html.into_bytes()), "text/html"),
    );
    let browser = Browser::start().await;
    browser.goto(&up.url("player.html")).await;
    let probe = "const a = document.getElementById('a'); \
                 return {t: a.currentTime, d: a.duration, paused: a.paused, err: a.error && a.error.code};";
    let mut last = Value::Null;
    let mut played = false;
    for _ in 0..300 {
        last = browser.eval(probe).await;
        let (t, d) = (
            last["t"].as_f64().unwrap_or(0.0),
            last["d"].as_f64().unwrap_or(0.0),
        );
        if d > 20.0 && t > d / 2.0 + 0.5 && last["paused"] == json!(false) {
            played = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        played,
        "the element seeked to the middle and played on: {last}"
    );
    browser.stop().await;
    app.stop().await;
}
