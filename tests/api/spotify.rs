//! Spotify through its loopback stand-in: a playlist of 120 items (three pages of
//! `/playlists/{id}/items`, one local file, one item Spotify no longer has) read with a
//! connected account (PKCE) lands in catalog order with the catalog's tags and its two
//! unavailable items reported; tokens that expire are refreshed once, revoked ones are
//! `credentials_rejected`; a 429 makes the request wait, a 5xx is retried.

use std::path::Path;

use serde_json::{Value, json};

use crate::catalogs::*;
use crate::helpers::*;
use crate::kit::{Session, TASK_ENDS_WITHIN};
use crate::ytdlp::require_ytdlp;

const PLAYLIST: &str = "37i9dQZF1DXcBWIGoYBM5M";
const CLIENT: (&str, &str) = ("sp-client-id", "sp-client-secret");

/// A 22-character Spotify id.
fn sid(prefix: &str, n: usize) -> String {
    format!("{prefix}{n:0>width$}", width = 22 - prefix.len())
}

/// A full Spotify track object in the real shape.
fn sp_track(n: usize, secs: u64) -> Value {
    json!({"id": sid("Trk", n), "type": "track", "uri": format!("spotify:track:{}", sid("Trk", n)),
        "name": format!("Tune {n}"), "duration_ms": secs * 1000 + 150, "explicit": false,
        "disc_number": 1, "track_number": n % 12 + 1, "is_local": false,
        "external_ids": {"isrc": format!("USSP1260{n:04}")},
        "artists": [{"id": sid("Art", 1), "name": "Playlist Person", "type": "artist"}],
        "album": {"id": sid("Alb", n / 12), "name": format!("Record {}", n / 12), "album_type": "album",
            "total_tracks": 12, "release_date": "2019-10-04", "release_date_precision": "day",
            "images": [{"url": "https://i.example/64.jpg", "height": 64, "width": 64}],
            "artists": [{"id": sid("Art", 1), "name": "Playlist Person"}]}})
}

/// The playlist: 120 entries; 60 is a local file, 90 is gone (`item: null`).
fn publish(cat: &Catalogs, scratch: &Path) {
    cat.spotify_client(CLIENT.0, CLIENT.1);
    let mut entries = Vec::new();
    for n in 0..120 {
        let secs = 20 + (n % 5) as u64;
        let entry = match n {
            60 => {
                json!({"added_at": "2026-03-02T10:00:00Z", "is_local": true, "item": {"id": null, "type": "track",
                "uri": "spotify:local:Me:Demos:My+Demo:215", "name": "My Demo", "duration_ms": 215000, "is_local": true,
                "album": {"id": null, "name": "Demos", "images": []}, "artists": [{"id": null, "name": "Me"}], "external_ids": {}}})
            }
            90 => json!({"added_at": "2026-03-02T10:00:00Z", "is_local": false, "item": null}),
            _ => {
                let t = sp_track(n, secs);
                cat.ytm(
                    &format!("USSP1260{n:04}"),
                    true,
                    vec![ytm_row(
                        &format!("sp{n}"),
                        &format!("Tune {n}"),
                        &["Playlist Person"],
                        Some(&format!("Record {}", n / 12)),
                        secs,
                        true,
                        false,
                    )],
                );
                cat.audio(&format!("sp{n}"), tone_of(scratch, secs));
                json!({"added_at": "2026-03-01T10:00:00Z", "is_local": false, "item": t.clone(), "track": t})
            }
        };
        entries.push(entry);
    }
    cat.spotify(&format!("playlists/{PLAYLIST}"), json!({"id": PLAYLIST, "type": "playlist", "name": "Hundred And Twenty",
        "owner": {"id": "user1", "display_name": "U", "type": "user"}, "public": false, "collaborative": false}));
    cat.spotify_list(&format!("playlists/{PLAYLIST}/items"), entries);
}

/// Stores the app's credentials and connects an account the way a browser would.
async fn connect(s: &Session) {
    for (name, value) in [("client_id", CLIENT.0), ("client_secret", CLIENT.1)] {
        let r = s
            .put(
                &format!("/credentials/spotify/{name}"),
                json!({"value": value}),
            )
            .await;
        assert!(r.status < 300, "{}", r.body);
    }
    let c: Value = s.post("/providers/spotify/connect", json!({})).await.good();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let consent = browser
        .get(c["authorize_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let back = consent.headers()["location"].to_str().unwrap().to_string();
    assert!(
        back.starts_with(c["redirect_uri"].as_str().unwrap()),
        "{back}"
    );
    let done = browser.get(&back).send().await.unwrap();
    assert_eq!(done.status(), 200, "{}", done.text().await.unwrap());
}

#[tokio::test]
async fn a_spotify_playlist_of_120_lands_in_order_with_its_unavailable_items_reported() {
    require_ytdlp();
    let cat = Catalogs::start().await;
    let scratch = tempfile::tempdir().unwrap();
    publish(&cat, scratch.path());
    let app = TestApp::start(|c| {
        cat.configure(c);
        c.providers.ytdlp.requests_per_minute = 0;
        c.providers.ytdlp.concurrency = 4;
        // The Redis queue: 118 hand-offs to the cpu pool in a minute is where the embedded
        // SQLite queue's worker can park (ARCHITECTURE, "Queue backends"; issue 18).
        c.redis_url = redis_url();
    })
    .await;
    let s = Session::admin(&app).await;
    let link = format!("https://open.spotify.com/playlist/{PLAYLIST}?si=0123456789abcdef");

    // Without the app's credentials: a 400 that says what to set.
    let r = s.post("/downloads", json!({"url": link})).await;
    assert!(r.error(400) == "validation_error");
    // With them but no connected account: the request fails saying how to connect.
    for (name, value) in [("client_id", CLIENT.0), ("client_secret", CLIENT.1)] {
        s.put(
            &format!("/credentials/spotify/{name}"),
            json!({"value": value}),
        )
        .await;
    }
    let early = s.wait_ended(&s.download(&link).await).await;
    assert_eq!(
        early.error_code.as_deref(),
        Some("credentials_missing"),
        "{early:?}"
    );
    assert!(
        early
            .error
            .as_deref()
            .unwrap_or("")
            .contains("providers/spotify/connect")
    );

    connect(&s).await;
    let id = s.download(&link).await;
    let parent = s.wait_ended(&id).await;
    assert_eq!(parent.status, "done", "{parent:?}");
    assert!(
        parent
            .error
            .as_deref()
            .unwrap_or("")
            .starts_with("2 of 120 failed"),
        "{parent:?}"
    );
    assert_eq!(
        cat.hits(&format!("spotify/v1/playlists/{PLAYLIST}/items")),
        3,
        "three pages of 50"
    );
    let kids = s.children(&id).await;
    assert_eq!(kids.len(), 120);
    for (n, k) in kids.iter().enumerate() {
        if matches!(n, 60 | 90) {
            assert_eq!(
                (k.status.as_str(), k.error_code.as_deref()),
                ("failed", Some("unavailable")),
                "{k:?}"
            );
            continue;
        }
        assert_eq!(k.status, "done", "{k:?}");
    }
    assert!(kids[60].error.as_deref().unwrap().contains("local file"));
    let first = mutagen_tags(Path::new(kids[0].output_path.as_deref().unwrap()));
    assert_eq!(first["title"], json!("Tune 0"));
    assert_eq!(first["album"], json!("Record 0"));
    assert_eq!(first["isrc"], json!("USSP12600000"));
    // The playlist file lists the 118 in catalog order.
    let m3u = std::fs::read_to_string(parent.output_path.as_deref().unwrap()).unwrap();
    let lines: Vec<&str> = m3u
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 118, "{m3u}");
    let order: Vec<&str> = m3u
        .lines()
        .filter_map(|l| l.split_once(" - Tune "))
        .map(|(_, t)| t)
        .collect();
    let want: Vec<String> = (0..120)
        .filter(|n| !matches!(n, 60 | 90))
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        order,
        want.iter().map(String::as_str).collect::<Vec<_>>(),
        "{m3u}"
    );
    app.stop().await;
}

#[tokio::test]
async fn spotify_tokens_refresh_once_then_fail_clearly_and_upstream_trouble_waits_or_retries() {
    require_ytdlp();
    let cat = Catalogs::start().await;
    let scratch = tempfile::tempdir().unwrap();
    cat.spotify_client(CLIENT.0, CLIENT.1);
    for n in 0..4 {
        cat.spotify(&format!("tracks/{}", sid("Trk", n)), sp_track(n, 20));
        cat.ytm(
            &format!("USSP1260{n:04}"),
            true,
            vec![ytm_row(
                &format!("sp{n}"),
                &format!("Tune {n}"),
                &["Playlist Person"],
                Some("Record 0"),
                20,
                true,
                false,
            )],
        );
        cat.audio(&format!("sp{n}"), tone_of(scratch.path(), 20));
    }
    let app = TestApp::start(|c| cat.configure(c)).await;
    let s = Session::admin(&app).await;
    connect(&s).await;
    let track = |n: usize| format!("spotify:track:{}", sid("Trk", n));

    // An expired token: refreshed once, the request goes on.
    let tokens = cat.hits("spotify-accounts/api/token");
    cat.fault(
        &format!("spotify/v1/tracks/{}", sid("Trk", 0)),
        Fault::Expired,
        1,
    );
    s.wait_done(&s.download(&track(0)).await).await;
    assert_eq!(
        cat.hits("spotify-accounts/api/token"),
        tokens + 2,
        "one token, one refreshed token"
    );

    // 429 with Retry-After: the request waits (shown as `waiting`), then runs.
    cat.fault(
        &format!("spotify/v1/tracks/{}", sid("Trk", 1)),
        Fault::Limited(2),
        1,
    );
    let mut events = s.events("").await;
    let id = s.download(&track(1)).await;
    let seen = events
        .read(TASK_ENDS_WITHIN, |m| {
            m.iter()
                .any(|e| e.data["task_id"] == json!(id) && e.data["status"] == json!("waiting"))
        })
        .await;
    let waiting = seen
        .iter()
        .find(|e| e.data["status"] == json!("waiting"))
        .expect("a waiting event");
    assert!(
        waiting.data["error"]
            .as_str()
            .unwrap_or("")
            .contains("Spotify asked us to wait"),
        "{:?}",
        waiting.data
    );
    s.wait_done(&id).await;

    // A 5xx is retried.
    cat.fault(
        &format!("spotify/v1/tracks/{}", sid("Trk", 2)),
        Fault::ServerError,
        1,
    );
    let t = s.wait_done(&s.download(&track(2)).await).await;
    assert!(t.attempts >= 2, "{t:?}");

    // Revoked credentials: one refresh, then a clear error.
    cat.spotify_revoke();
    let t = s.wait_ended(&s.download(&track(3)).await).await;
    assert_eq!(t.status, "failed");
    assert_eq!(
        t.error_code.as_deref(),
        Some("credentials_rejected"),
        "{t:?}"
    );
    assert!(t.error.as_deref().unwrap().contains("Spotify"), "{t:?}");
    app.stop().await;
}
