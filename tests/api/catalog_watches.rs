//! Watches on catalogs: a Spotify artist watched for albums only and a Deezer playlist take a
//! baseline, show what is new in a dry run without downloading it, then download exactly that,
//! matched and tagged like any catalog track.

use serde_json::{Value, json};

use crate::catalogs::*;
use crate::helpers::*;
use crate::kit::Session;
use crate::ytdlp::require_ytdlp;

fn sid(prefix: &str, n: usize) -> String {
    format!("{prefix}{n:0>width$}", width = 22 - prefix.len())
}

/// A simplified Spotify track (as an album lists it) and its full object for `tracks/{id}`.
fn sp_track(cat: &Catalogs, scratch: &std::path::Path, n: usize, album: &str) -> Value {
    let id = sid("Wtr", n);
    let simple = json!({"id": id, "type": "track", "name": format!("Watched {n}"), "duration_ms": 21000,
        "explicit": false, "disc_number": 1, "track_number": n % 2 + 1, "is_local": false,
        "artists": [{"id": sid("Art", 9), "name": "Watched Artist"}]});
    let mut full = simple.clone();
    full["external_ids"] = json!({"isrc": format!("USWAT26{n:05}")});
    full["album"] = json!({"id": sid("Wal", n / 2), "name": album, "album_type": "album", "total_tracks": 2,
        "release_date": "2026-01-01", "images": [], "artists": [{"name": "Watched Artist"}]});
    cat.spotify(&format!("tracks/{id}"), full);
    cat.ytm(
        &format!("USWAT26{n:05}"),
        true,
        vec![ytm_row(
            &format!("w{n}"),
            &format!("Watched {n}"),
            &["Watched Artist"],
            Some(album),
            21,
            true,
            false,
        )],
    );
    cat.audio(&format!("w{n}"), tone_of(scratch, 21));
    simple
}

/// Album `a` (two tracks) of the watched artist, as its `albums/{id}` answer and list entry.
fn sp_album(cat: &Catalogs, scratch: &std::path::Path, a: usize) -> Value {
    let name = format!("Album {a}");
    let tracks: Vec<Value> = (0..2)
        .map(|k| sp_track(cat, scratch, a * 2 + k, &name))
        .collect();
    let entry = json!({"id": sid("Wal", a), "name": name, "album_type": "album", "total_tracks": 2,
        "release_date": format!("2026-0{}-01", a + 1), "images": []});
    let mut full = entry.clone();
    full["artists"] = json!([{"id": sid("Art", 9), "name": "Watched Artist"}]);
    full["tracks"] = json!({"items": tracks, "total": 2, "limit": 50, "offset": 0, "next": null});
    cat.spotify(&format!("albums/{}", sid("Wal", a)), full);
    entry
}

async fn dry_run_titles(s: &Session, watch: &str) -> Vec<String> {
    let d = s
        .post(&format!("/watches/{watch}/check?dry_run=true"), json!({}))
        .await;
    assert_eq!(d.status, 200, "{}", d.body);
    d.body["data"]["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_string())
        .collect()
}

/// Checks now; the titles of what the check downloaded.
async fn check_now(s: &Session, watch: &str) -> Vec<String> {
    let r = s.post(&format!("/watches/{watch}/check"), json!({})).await;
    assert!(r.status < 300, "{}", r.body);
    let task = r.body["data"]["task_id"].as_str().unwrap().to_string();
    s.wait_done(&task).await;
    let kids = s.children(&task).await;
    for k in &kids {
        assert_eq!(k.status, "done", "{k:?}");
    }
    kids.iter()
        .map(|k| k.title.clone().unwrap_or_default())
        .collect()
}

async fn add_watch(s: &Session, body: Value) -> String {
    let w = s.post("/watches", body).await;
    assert_eq!(w.status, 201, "{}", w.body);
    let first = w.body["data"]["check_task_id"]
        .as_str()
        .unwrap()
        .to_string();
    s.wait_done(&first).await;
    w.body["data"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn catalog_watches_add_only_what_is_new_after_a_dry_run() {
    require_ytdlp();
    let cat = Catalogs::start().await;
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    cat.spotify_client("sp-client-id", "sp-client-secret");
    let artist = sid("Art", 9);
    cat.spotify(
        &format!("artists/{artist}"),
        json!({"id": artist, "name": "Watched Artist", "type": "artist"}),
    );
    let album0 = sp_album(&cat, dir, 0);
    cat.spotify_list(
        &format!("artists/{artist}/albums?album"),
        vec![album0.clone()],
    );
    // A single the watch must never take (albums only).
    let single = sp_album(&cat, dir, 5);
    cat.spotify_list(&format!("artists/{artist}/albums?single"), vec![single]);
    for g in ["compilation", "appears_on"] {
        cat.spotify_list(&format!("artists/{artist}/albums?{g}"), vec![]);
    }
    let deezer_track = |n: u64| {
        json!({"id": 8000 + n, "readable": true, "title": format!("Listed {n}"), "duration": 21,
        "isrc": format!("QZLST26{n:05}"), "artist": {"id": 1, "name": "Lister"}, "album": {"id": 80, "title": "Lists"}})
    };
    for n in 0..3 {
        cat.deezer(&format!("track/{}", 8000 + n), deezer_track(n));
        cat.ytm(
            &format!("QZLST26{n:05}"),
            true,
            vec![ytm_row(
                &format!("l{n}"),
                &format!("Listed {n}"),
                &["Lister"],
                Some("Lists"),
                21,
                true,
                false,
            )],
        );
        cat.audio(&format!("l{n}"), tone_of(dir, 21));
    }
    cat.deezer(
        "playlist/1313",
        json!({"id": 1313, "title": "Growing List", "nb_tracks": 2}),
    );
    cat.deezer_list(
        "playlist/1313/tracks",
        vec![deezer_track(0), deezer_track(1)],
    );
    let app = TestApp::start(|c| cat.configure(c)).await;
    let s = Session::admin(&app).await;
    for (name, value) in [
        ("client_id", "sp-client-id"),
        ("client_secret", "sp-client-secret"),
    ] {
        s.put(
            &format!("/credentials/spotify/{name}"),
            json!({"value": value}),
        )
        .await;
    }

    let sw = add_watch(&s, json!({"url": format!("https://open.spotify.com/artist/{artist}"), "release_types": ["album"], "download_existing": false})).await;
    let dw = add_watch(
        &s,
        json!({"url": "https://www.deezer.com/playlist/1313", "download_existing": false}),
    )
    .await;
    assert!(dry_run_titles(&s, &sw).await.is_empty());

    // A new album and a new playlist entry: shown by a dry run, then downloaded by a check.
    let album1 = sp_album(&cat, dir, 1);
    cat.spotify_list(
        &format!("artists/{artist}/albums?album"),
        vec![album1, album0],
    );
    cat.deezer_list(
        "playlist/1313/tracks",
        vec![deezer_track(0), deezer_track(1), deezer_track(2)],
    );
    assert_eq!(dry_run_titles(&s, &sw).await, ["Watched 2", "Watched 3"]);
    assert_eq!(dry_run_titles(&s, &dw).await, ["Listed 2"]);
    let library: Value = s.get("/library/tracks").await.good();
    assert_eq!(library["items"], json!([]), "a dry run downloads nothing");
    let mut got = check_now(&s, &sw).await;
    got.sort();
    assert_eq!(
        got,
        ["Watched Artist – Watched 2", "Watched Artist – Watched 3"]
    );
    assert_eq!(check_now(&s, &dw).await, ["Lister – Listed 2"]);
    assert_eq!(cat.hits("watch/w10"), 0, "the single was never downloaded");
    failed_items_are_retried_later_unless_ignored(&s, &cat, &dw, deezer_track(3)).await;
    app.stop().await;
}

/// The watch's items say where each stands; a failed one is tried again once
/// `retry_failed_after` has passed, unless a person ignores it.
async fn failed_items_are_retried_later_unless_ignored(
    s: &Session,
    cat: &Catalogs,
    dw: &str,
    fourth: Value,
) {
    let states = |v: &Value| -> Vec<(String, String)> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["track"]["title"].as_str().unwrap().to_string(),
                    i["state"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let items: Value = s.get(&format!("/watches/{dw}/items")).await.good();
    let want = [
        ("Listed 0", "seen"),
        ("Listed 1", "seen"),
        ("Listed 2", "downloaded"),
    ];
    assert_eq!(
        states(&items),
        want.map(|(a, b)| (a.to_string(), b.to_string()))
    );
    // A fourth entry that no search finds: it fails.
    cat.deezer("track/8003", fourth.clone());
    let list: Vec<Value> = (0..3)
        .map(|n| {
            json!({"id": 8000 + n, "title": format!("Listed {n}"), "duration": 21,
        "artist": {"name": "Lister"}, "album": {"title": "Lists"}})
        })
        .chain([fourth])
        .collect();
    cat.deezer_list("playlist/1313/tracks", list);
    let r = s.post(&format!("/watches/{dw}/check"), json!({})).await;
    s.wait_ended(r.body["data"]["task_id"].as_str().unwrap())
        .await;
    let items: Value = s.get(&format!("/watches/{dw}/items")).await.good();
    assert_eq!(
        states(&items)[3],
        ("Listed 3".to_string(), "failed".to_string()),
        "{items}"
    );
    assert!(
        dry_run_titles(s, dw).await.is_empty(),
        "not retried before retry_failed_after"
    );
    let r = s
        .put("/config/watch", json!({"retry_failed_after": "0s"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(dry_run_titles(s, dw).await, ["Listed 3"]);
    let r = s
        .patch(
            &format!("/watches/{dw}/items/8003"),
            json!({"ignored": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        dry_run_titles(s, dw).await.is_empty(),
        "an ignored item is passed over"
    );
    let items: Value = s.get(&format!("/watches/{dw}/items")).await.good();
    assert_eq!(states(&items)[3].1, "ignored");
}
