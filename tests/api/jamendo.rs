//! The Jamendo provider against a loopback stand-in for its API v3 (answers shaped like the
//! real ones): an album and an artist (albums only) download end to end with track numbers,
//! album artist, dates, licence and covers read back by mutagen; search results download
//! unchanged; a missing client id is a 400 saying what to set, a rejected one a clear task
//! error.

use std::path::Path;
use std::sync::Arc;

use musicd::api::types::Accepted;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::kit::Session;
use crate::upstream::*;

const CLIENT_ID: &str = "test-client-id-0042";

/// Tags as mutagen reads them from an MP3 (a tool that did not write them).
fn mutagen_id3(path: &Path) -> Value {
    let script = r#"
import json, sys
from mutagen.id3 import ID3
t = ID3(sys.argv[1])
g = lambda k: str(t[k].text[0]) if k in t else None
print(json.dumps({"title": g("TIT2"), "artist": g("TPE1"), "album": g("TALB"), "album_artist": g("TPE2"),
  "track": g("TRCK"), "date": g("TDRC"), "genre": g("TCON"),
  "comment": next((str(f.text[0]) for k, f in t.items() if k.startswith("COMM")), None),
  "cover": any(k.startswith("APIC") for k in t.keys())}))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("python3 with mutagen (bash .ci/setup-test)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn answer(results: Value) -> Vec<u8> {
    json!({ "headers": { "status": "success", "code": 0, "error_message": "", "results_count": 1 }, "results": results })
        .to_string()
        .into_bytes()
}

fn api_key(path: &str, query: &str) -> String {
    format!("v3.0/{path}/?client_id={CLIENT_ID}&format=json&{query}")
}

fn track(up: &Upstream, id: u32, pos: u32, name: &str) -> Value {
    json!({ "id": id.to_string(), "position": pos.to_string(), "name": name, "duration": 1,
        "license_ccurl": "http://creativecommons.org/licenses/by-sa/3.0/",
        "audio": up.url(&format!("stream/{id}.mp3")), "audiodownload": up.url(&format!("dl/{id}.mp3")),
        "audiodownload_allowed": true })
}

/// The answer for album 10: four tracks with a cover.
fn album10(up: &Upstream) -> Vec<u8> {
    answer(
        json!([{ "id": "10", "name": "Loopback Sessions", "releasedate": "2024-05-01",
        "artist_id": "7", "artist_name": "The Testers", "image": up.url("img/10.jpg"),
        "tracks": [track(up, 101, 1, "One"), track(up, 102, 2, "Two"), track(up, 103, 3, "Three"), track(up, 104, 4, "Four")] }]),
    )
}

/// The stand-in: artist 7 has album 10 (four tracks) and album 20 (one track: a single).
fn publish(up: &Upstream, scratch: &Path) {
    let audio = Arc::new(tone(scratch, "t.mp3", 440, 1));
    for id in [101, 102, 103, 104, 201, 301] {
        up.set(
            &format!("dl/{id}.mp3"),
            Entry::File(audio.clone(), "audio/mpeg"),
        );
    }
    up.set(
        "img/10.jpg",
        Entry::File(crate::catalogs::jpeg(scratch), "image/jpeg"),
    );
    let album20 = json!([{ "id": "20", "name": "Lone Single", "releasedate": "2025-01-02",
        "artist_id": "7", "artist_name": "The Testers", "image": up.url("img/10.jpg"),
        "tracks": [track(up, 201, 1, "Alone")] }]);
    up.set(
        &api_key("albums/tracks", "id=10"),
        Entry::File(Arc::new(album10(up)), "application/json"),
    );
    up.set(
        &api_key("albums/tracks", "id=20"),
        Entry::File(Arc::new(answer(album20)), "application/json"),
    );
    let artist = json!([{ "id": "7", "name": "The Testers", "albums": [
        { "id": "10", "name": "Loopback Sessions", "releasedate": "2024-05-01" },
        { "id": "20", "name": "Lone Single", "releasedate": "2025-01-02" } ] }]);
    up.set(
        &api_key("artists/albums", "id=7"),
        Entry::File(Arc::new(answer(artist)), "application/json"),
    );
    // Playlist 5: a track of another artist, then one of album 10.
    let mut other = track(up, 301, 7, "Guest");
    other["artist_name"] = json!("Someone Else");
    other["album_name"] = json!("Elsewhere");
    let mut one = track(up, 101, 1, "One");
    one["artist_name"] = json!("The Testers");
    one["album_name"] = json!("Loopback Sessions");
    one["releasedate"] = json!("2024-05-01");
    let playlist = json!([{ "id": "5", "name": "Mixed Bag", "tracks": [other, one] }]);
    up.set(
        &api_key("playlists/tracks", "id=5"),
        Entry::File(Arc::new(answer(playlist)), "application/json"),
    );
    let found = json!([{ "id": "10", "name": "Loopback Sessions", "artist_name": "The Testers", "releasedate": "2024-05-01" }]);
    up.set(
        &api_key("albums", "namesearch=loopback&limit=20&offset=0"),
        Entry::File(Arc::new(answer(found)), "application/json"),
    );
}

/// The audio files in the library (covers sit beside them as `cover.jpg`).
fn mp3s(library: &Path) -> Vec<std::path::PathBuf> {
    library_files(library)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "mp3"))
        .collect()
}

/// The jamendo entry of `/providers`.
async fn jamendo_provider(admin: &Session) -> Value {
    let p: Value = admin.get("/providers").await.good();
    p["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == json!("jamendo"))
        .unwrap()
        .clone()
}

/// The admin stores the client id.
async fn store_client_id(admin: &Session) -> u16 {
    admin
        .put(
            "/credentials/jamendo/client_id",
            json!({ "value": CLIENT_ID }),
        )
        .await
        .status
}

#[tokio::test]
async fn jamendo_album_artist_and_search_end_to_end() {
    let up = Upstream::start().await;
    let base = up.url("v3.0");
    let app = TestApp::start(move |c| {
        c.fetch_allow_private = true;
        c.providers.jamendo.base_url = base;
    })
    .await;
    let scratch = tempfile::tempdir().unwrap();
    publish(&up, scratch.path());
    let admin = Session::admin(&app).await;
    let library = app.library();
    without_the_credential_the_task_says_so(&admin).await;
    assert_eq!(store_client_id(&admin).await, 200);
    a_search_result_downloads_unchanged(&admin).await;
    album_10_is_tagged_from_the_api(&library);
    the_artist_albums_only_leaves_out_the_single(&admin, &up, &library).await;
    all_release_types_bring_the_single(&admin, &library).await;
    the_artists_releases_are_newest_first_and_paged(&admin).await;
    a_playlist_takes_only_its_new_track(&admin, &library).await;
    // The provider declares its limits.
    let j = jamendo_provider(&admin).await;
    assert_eq!(j["limits"]["requests_per_minute"], json!(60), "{j}");
    assert_eq!(j["limits"]["concurrency"], json!(4), "{j}");
    a_rejected_client_id_is_named_as_such(&admin, &up).await;
    app.stop().await;
}

/// Without the credential: the request is a 400 that says what to set, and /providers says
/// so.
async fn without_the_credential_the_task_says_so(admin: &Session) {
    let r = admin
        .post(
            "/downloads",
            json!({ "provider": "jamendo", "kind": "album", "id": "10" }),
        )
        .await;
    let text = r.body.to_string();
    assert_eq!(r.error(400), "validation_error");
    assert!(
        text.contains("not set up") && text.contains("/credentials/jamendo/client_id"),
        "{text}"
    );
    let j = jamendo_provider(admin).await;
    assert_eq!(j["available"], json!(false), "{j}");
}

/// Search returns ids that POST /downloads accepts unchanged; the album downloads.
async fn a_search_result_downloads_unchanged(admin: &Session) {
    let found = admin.get("/search?q=loopback&type=album").await.body;
    let item = found["data"]["items"][0].clone();
    assert_eq!(item["provider"], json!("jamendo"), "{found}");
    assert_eq!(item["id"], json!("10"));
    let req = json!({ "provider": item["provider"], "kind": item["kind"], "id": item["id"] });
    let id = admin.request(req).await;
    let t = admin.wait_ended(&id).await;
    assert_eq!(t.status, "done", "{t:?}");
    assert_eq!(t.error, None, "{t:?}");
}

/// Album 10's four files decode and carry, as mutagen reads them, track numbers, album,
/// album artist, date, cover and licence.
fn album_10_is_tagged_from_the_api(library: &Path) {
    let files = mp3s(library);
    assert_eq!(files.len(), 4, "{files:?}");
    for (i, f) in files.iter().enumerate() {
        decodes(f).unwrap();
        let tags = mutagen_id3(f);
        assert_eq!(tags["track"], json!(format!("{}/4", i + 1)), "{tags}");
        assert_eq!(tags["album"], json!("Loopback Sessions"));
        assert_eq!(tags["album_artist"], json!("The Testers"));
        assert_eq!(tags["artist"], json!("The Testers"));
        assert!(
            tags["date"].as_str().unwrap().starts_with("2024-05-01"),
            "{tags}"
        );
        assert_eq!(tags["cover"], json!(true), "{tags}");
        assert!(
            tags["comment"]
                .as_str()
                .unwrap_or("")
                .contains("creativecommons.org"),
            "{tags}"
        );
    }
}

/// The artist, albums only: the single is left out (its album is already there: skipped).
async fn the_artist_albums_only_leaves_out_the_single(
    admin: &Session,
    up: &Upstream,
    library: &Path,
) {
    let id = admin
        .request(
            json!({ "provider": "jamendo", "kind": "artist", "id": "7", "release_types": ["album"] }),
        )
        .await;
    let t = admin.wait_ended(&id).await;
    assert_eq!(t.status, "done", "{t:?}");
    let kids = admin.children(&id).await;
    assert_eq!(kids.len(), 4, "only the album's tracks: {kids:#?}");
    assert!(kids.iter().all(|k| k.status == "skipped"), "{kids:#?}");
    assert_eq!(up.hits("dl/201.mp3"), 0, "the single was not fetched");
    assert_eq!(mp3s(library).len(), 4);
}

/// All release types: the single arrives too, dated from its release.
async fn all_release_types_bring_the_single(admin: &Session, library: &Path) {
    let id = admin
        .request(json!({ "provider": "jamendo", "kind": "artist", "id": "7" }))
        .await;
    let t = admin.wait_ended(&id).await;
    assert_eq!(t.status, "done", "{t:?}");
    let files = mp3s(library);
    assert_eq!(files.len(), 5);
    let single = files
        .iter()
        .find(|f| f.to_string_lossy().contains("Lone Single"))
        .expect("the single");
    assert!(
        mutagen_id3(single)["date"]
            .as_str()
            .unwrap()
            .starts_with("2025-01-02")
    );
}

/// The artist's releases: newest first, filterable by type, paginated.
async fn the_artists_releases_are_newest_first_and_paged(admin: &Session) {
    let page: Value = admin
        .get("/providers/jamendo/artist/7?limit=1")
        .await
        .good();
    let rel = &page["releases"];
    assert_eq!(page["name"], json!("The Testers"), "{page}");
    assert_eq!(rel["total"], json!(2), "{page}");
    assert_eq!(rel["items"][0]["id"], json!("20"), "{page}");
    assert_eq!(rel["items"][0]["release_type"], json!("single"));
    let next = rel["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let page: Value = admin
        .get(&format!(
            "/providers/jamendo/artist/7?limit=1&cursor={next}"
        ))
        .await
        .good();
    let rel = &page["releases"];
    assert_eq!(rel["items"][0]["id"], json!("10"), "{page}");
    assert_eq!(rel["items"][0]["track_count"], json!(4));
    assert_eq!(rel["next_cursor"], Value::Null);
    let albums: Value = admin
        .get("/providers/jamendo/artist/7?release_types=album")
        .await
        .good();
    let items = albums["releases"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{albums}");
    assert_eq!(items[0]["kind"], json!("album"));
    assert_eq!(items[0]["id"], json!("10"));
    let bad = admin
        .get("/providers/jamendo/artist/7?release_types=bootleg")
        .await;
    assert_eq!(bad.status, 400);
}

/// A playlist: its new track lands with its own artist and album; the known one is skipped.
async fn a_playlist_takes_only_its_new_track(admin: &Session, library: &Path) {
    let id = admin
        .request(json!({ "provider": "jamendo", "kind": "playlist", "id": "5" }))
        .await;
    let t = admin.wait_ended(&id).await;
    assert_eq!(t.status, "done", "{t:?}");
    let kids = admin.children(&id).await;
    let states: Vec<_> = kids.iter().map(|k| k.status.clone()).collect();
    assert_eq!(states.len(), 2, "{kids:?}");
    assert!(states.contains(&"skipped".to_string()), "{states:?}");
    let guest = mp3s(library)
        .into_iter()
        .find(|f| f.to_string_lossy().contains("Guest"))
        .expect("the playlist's new track");
    let tags = mutagen_id3(&guest);
    assert_eq!(tags["artist"], json!("Someone Else"), "{tags}");
    assert_eq!(tags["album"], json!("Elsewhere"), "{tags}");
}

/// A rejected client id is named as such, and the client id never shows.
async fn a_rejected_client_id_is_named_as_such(admin: &Session, up: &Upstream) {
    up.set(
        &api_key("albums/tracks", "id=10"),
        Entry::File(
            Arc::new(json!({ "headers": { "status": "failed", "code": 5, "error_message": "Your credential is not authorized." }, "results": [] }).to_string().into_bytes()),
            "application/json",
        ),
    );
    let id = admin
        .request(json!({ "provider": "jamendo", "kind": "album", "id": "10", "format": "opus" }))
        .await;
    let t = admin.wait_ended(&id).await;
    assert_eq!(
        t.error_code.as_deref(),
        Some("credentials_rejected"),
        "{t:?}"
    );
    assert!(
        !t.error.as_deref().unwrap().contains(CLIENT_ID),
        "the client id never shows"
    );
}

#[tokio::test]
async fn jamendo_rate_limit_shows_the_request_waiting() {
    let up = Upstream::start().await;
    let base = up.url("v3.0");
    let app = TestApp::start(move |c| {
        c.fetch_allow_private = true;
        c.providers.jamendo.base_url = base;
    })
    .await;
    let scratch = tempfile::tempdir().unwrap();
    publish(&up, scratch.path());
    // The album answer is refused once with 429 and `Retry-After: 3`.
    let body = album10(&up);
    up.set(
        &api_key("albums/tracks", "id=10"),
        Entry::Limited(
            Arc::new(body),
            "application/json",
            3,
            Arc::new(std::sync::Mutex::new(1)),
        ),
    );
    let c = &app.client;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    c.put(app.url("/api/v1/credentials/jamendo/client_id"))
        .bearer_auth(&admin)
        .json(&json!({ "value": CLIENT_ID }))
        .send()
        .await
        .unwrap();
    let (s, r) = post_json(
        c,
        app.url("/api/v1/downloads"),
        &admin,
        json!({ "provider": "jamendo", "kind": "album", "id": "10" }),
    )
    .await;
    assert_eq!(s, 202, "{r}");
    let id = r["data"]["task_id"].as_str().unwrap().to_string();
    let waiting = wait_task(c, &app.base, &admin, &id, |t| {
        t["stage"] == json!("waiting")
    })
    .await;
    assert!(
        waiting["run_after"].as_i64().unwrap() > musicd::db::now_ms() + 500,
        "{waiting}"
    );
    // The provider as a whole is paused, and says until when.
    let p = get_json(c, app.url("/api/v1/providers"), &admin).await;
    let j = p["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == json!("jamendo"))
        .unwrap()
        .clone();
    assert!(
        j["paused_until"].as_i64().unwrap_or(0) > musicd::db::now_ms(),
        "{j}"
    );
    let t = wait_task_long(&app.client, &app.base, &admin, &id).await;
    assert_eq!(t["status"], json!("done"), "{t}");
    assert_eq!(mp3s(&app.library()).len(), 4);
    app.stop().await;
}

#[tokio::test]
async fn jamendo_artist_watch_takes_new_albums_and_ignores_singles() {
    let up = Upstream::start().await;
    let base = up.url("v3.0");
    let app = TestApp::start(move |c| {
        c.fetch_allow_private = true;
        c.providers.jamendo.base_url = base;
    })
    .await;
    let scratch = tempfile::tempdir().unwrap();
    publish(&up, scratch.path());
    let admin = Session::admin(&app).await;
    store_client_id(&admin).await;
    let id = an_albums_only_watch_takes_a_baseline(&admin, &app.library()).await;
    publish_a_new_album_and_a_new_single(&up, scratch.path());
    let task = admin.post(&format!("/watches/{id}/check"), json!({})).await;
    assert_eq!(task.status, 202, "{}", task.body);
    let task = task.good::<Accepted>().task_id;
    let t = admin.wait_ended(&task).await;
    assert_eq!(t.status, "done", "{t:?}");
    let files = mp3s(&app.library());
    assert_eq!(files.len(), 4, "{files:?}");
    for f in &files {
        decodes(f).unwrap();
        let tags = mutagen_id3(f);
        assert_eq!(tags["album"], json!("Fresh Album"), "{tags}");
        assert_eq!(tags["album_artist"], json!("The Testers"));
    }
    assert_eq!(up.hits("dl/501.mp3"), 0, "the single is ignored");
    assert_eq!(up.hits("dl/101.mp3"), 0, "what was there is not downloaded");
    let w: Value = admin.get(&format!("/watches/{id}")).await.good();
    assert_eq!(w["last_result"]["added"], json!(4), "{w}");
    app.stop().await;
}

/// A watch of the artist's albums, checked by hand only (the schedule is once a year): its
/// first check is a baseline of album 10's four tracks and downloads nothing. Its id.
async fn an_albums_only_watch_takes_a_baseline(admin: &Session, library: &Path) -> String {
    let w = admin
        .post(
            "/watches",
            json!({ "provider": "jamendo", "kind": "artist", "id": "7", "release_types": ["album"],
                    "schedule": "0 0 1 1 *" }),
        )
        .await;
    assert_eq!(w.status, 201, "{}", w.body);
    let w = w.body;
    let id = w["data"]["id"].as_str().unwrap().to_string();
    let t = admin
        .wait_ended(w["data"]["check_task_id"].as_str().unwrap())
        .await;
    assert_eq!(t.status, "done", "{t:?}");
    let w: Value = admin.get(&format!("/watches/{id}")).await.good();
    assert_eq!(w["last_result"]["baseline"], json!(true), "{w}");
    assert_eq!(w["last_result"]["total"], json!(4), "album 10 only: {w}");
    assert!(mp3s(library).is_empty());
    id
}

/// A new album (four tracks) and a new single appear on the artist.
fn publish_a_new_album_and_a_new_single(up: &Upstream, scratch: &Path) {
    let audio = Arc::new(tone(scratch, "n.mp3", 550, 1));
    for tid in [401, 402, 403, 404, 501] {
        up.set(
            &format!("dl/{tid}.mp3"),
            Entry::File(audio.clone(), "audio/mpeg"),
        );
    }
    let album30 = json!([{ "id": "30", "name": "Fresh Album", "releasedate": "2026-11-20",
        "artist_id": "7", "artist_name": "The Testers", "image": up.url("img/10.jpg"),
        "tracks": [track(up, 401, 1, "New One"), track(up, 402, 2, "New Two"),
                   track(up, 403, 3, "New Three"), track(up, 404, 4, "New Four")] }]);
    let single40 = json!([{ "id": "40", "name": "Fresh Single", "releasedate": "2026-11-21",
        "artist_id": "7", "artist_name": "The Testers", "tracks": [track(up, 501, 1, "Just One")] }]);
    up.set(
        &api_key("albums/tracks", "id=30"),
        Entry::File(Arc::new(answer(album30)), "application/json"),
    );
    up.set(
        &api_key("albums/tracks", "id=40"),
        Entry::File(Arc::new(answer(single40)), "application/json"),
    );
    let artist = json!([{ "id": "7", "name": "The Testers", "albums": [
        { "id": "10" }, { "id": "20" }, { "id": "30" }, { "id": "40" } ] }]);
    up.set(
        &api_key("artists/albums", "id=7"),
        Entry::File(Arc::new(answer(artist)), "application/json"),
    );
}
