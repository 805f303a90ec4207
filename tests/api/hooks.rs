//! Webhooks, notification presets, media-server rescans and lyrics, against loopback
//! stand-ins. Signatures are checked by Python's `hmac`, tags by mutagen, files by ffprobe.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::browser::Browser;
use crate::catalogs::mutagen_tags;
use crate::helpers::*;
use crate::kit::{Session, eventually};
use crate::queue::daemon_env;
use crate::receiver::{Got, Receiver, Reply};
use crate::upstream::{Entry, Upstream, library_files, tone};

const WAIT: Duration = Duration::from_secs(90);

fn ok_reply() -> Reply {
    Reply(200, "application/json", "{}".into())
}

/// Python's `hmac` checks a Standard Webhooks message as a receiver would: the signature over
/// `id.timestamp.body` with the secret's bytes, and a timestamp within five minutes of `now`.
/// Prints `ok` or why not.
fn python_verify(secret: &str, g: &Got, timestamp: &str, now: i64) -> String {
    let script = r#"
import base64, hashlib, hmac, sys
secret, msg_id, ts, sig, body_path, now = sys.argv[1:7]
key = base64.b64decode(secret.split("_", 1)[1])
body = open(body_path, "rb").read()
if abs(int(now) - int(ts)) > 300:
    print("timestamp outside tolerance"); sys.exit()
want = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
given = [s.split(",", 1)[1] for s in sig.split(" ") if s.startswith("v1,")]
print("ok" if any(hmac.compare_digest(want, s) for s in given) else "bad signature")
"#;
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    std::fs::write(&body, &g.body).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-c", script, secret, &g.headers["webhook-id"], timestamp])
        .arg(&g.headers["webhook-signature"])
        .arg(&body)
        .arg(now.to_string())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A feed of `n` short episodes on `up`; returns its URL.
fn feed(up: &Upstream, dir: &std::path::Path, title: &str, n: usize) -> String {
    let bytes = Arc::new(tone(dir, "ep.mp3", 440, 2));
    let episodes: Vec<_> = (1..=n)
        .map(|i| {
            let path = format!("{title}-{i}.mp3");
            up.set(&path, Entry::File(bytes.clone(), "audio/mpeg"));
            (
                format!("{title}-g{i}"),
                format!("Episode {i}"),
                up.url(&path),
            )
        })
        .collect();
    let path = format!("{title}.xml");
    up.set_feed(&path, title, &episodes);
    up.url(&path)
}

#[tokio::test]
async fn signed_webhooks_retry_with_backoff_and_a_failing_hook_is_disabled() {
    let rx = Receiver::start().await;
    let up = Upstream::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let app = TestApp::start(|c| {
        c.fetch_allow_private = true;
        c.notify.backoff_base = Duration::from_secs(1);
        c.notify.backoff_max = Duration::from_secs(4);
        c.notify.disable_after = 2;
        c.notify.public_url = "https://music.example.org".into();
    })
    .await;
    let admin = Session::admin(&app).await;
    admin
        .post(
            "/users",
            json!({"username": "bob", "password": "bob-password-1"}),
        )
        .await
        .good::<Value>();
    let bob = Session::sign_in(&app, "bob", "bob-password-1").await;

    // Three 500s, then a 200.
    rx.first("/hook", vec![Reply(500, "text/plain", "down".into()); 3]);
    rx.always("/hook", ok_reply());
    rx.always("/bob", ok_reply());
    let hook: Value = admin
        .post("/webhooks", json!({"url": rx.url("/hook"), "name": "mine"}))
        .await
        .good();
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{hook}");
    let hook_id = hook["id"].as_str().unwrap().to_string();
    let listed: Value = admin.get(&format!("/webhooks/{hook_id}")).await.good();
    assert!(listed.get("secret").is_none(), "the secret is shown once");
    let bobs: Value = bob
        .post("/webhooks", json!({"url": rx.url("/bob")}))
        .await
        .good();
    assert_eq!(bob.get(&format!("/webhooks/{hook_id}")).await.status, 404);
    assert_eq!(
        bob.post(
            "/webhooks",
            json!({"url": rx.url("/bob"), "events": ["disk.low"]})
        )
        .await
        .status,
        403,
        "system events are for admins"
    );

    let url = feed(&up, tmp.path(), "Hooked", 2);
    let id = admin.download(&url).await;
    admin.wait_done(&id).await;
    let got = eventually(WAIT, "four attempts, the last answered 200", || async {
        let g = rx.got("/hook");
        (g.len() >= 4).then_some(g)
    })
    .await;
    assert_eq!(got.len(), 4, "no attempt after the delivered one");
    let msg_id = &got[0].headers["webhook-id"];
    assert!(got.iter().all(|g| &g.headers["webhook-id"] == msg_id));
    let body = got[3].json();
    assert_eq!(body["type"], "task.completed");
    assert_eq!(body["data"]["task"]["id"], json!(id));
    assert_eq!(body["data"]["task"]["children"]["done"], 2);
    assert_eq!(
        body["data"]["link"],
        json!(format!("https://music.example.org/#/tasks/{id}"))
    );
    // Backoff: the waits grow (the embedded queue schedules in whole seconds).
    let gap = |a: usize| got[a + 1].at - got[a].at;
    assert!(
        gap(2) > gap(0),
        "waits {:?} {:?} {:?}",
        gap(0),
        gap(1),
        gap(2)
    );

    // Python's hmac agrees with the signature; a replay with an old timestamp is refused, and
    // so is one whose timestamp was changed to look fresh.
    let now = chrono::Utc::now().timestamp();
    let ts = got[3].headers["webhook-timestamp"].clone();
    assert_eq!(python_verify(&secret, &got[3], &ts, now), "ok");
    assert_eq!(
        python_verify(&secret, &got[3], &ts, now + 3600),
        "timestamp outside tolerance"
    );
    assert_eq!(
        python_verify(&secret, &got[3], &(now + 3600).to_string(), now + 3600),
        "bad signature"
    );

    // The log: three retries and a delivery, with codes and latencies.
    let log: Vec<Value> = admin
        .get(&format!("/webhooks/{hook_id}/deliveries"))
        .await
        .good();
    let codes: Vec<i64> = log
        .iter()
        .rev()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, vec![500, 500, 500, 200], "{log:?}");
    assert_eq!(log[0]["outcome"], "delivered");
    assert!(log.iter().all(|a| a["latency_ms"].as_i64().is_some()));
    // Bob's hook heard nothing of the admin's work; deliveries are not tasks anyone sees.
    assert!(rx.got("/bob").is_empty());
    assert_eq!(
        bobs["events"].as_array().unwrap().len(),
        6,
        "the defaults: {bobs}"
    );
    // Bob's own upload: his hook hears it, once.
    let (s, r) = crate::library::multipart(
        &app.client,
        &app,
        &bob.token,
        "mine.mp3",
        tone(tmp.path(), "mine.mp3", 550, 2),
        &[("title", "Mine")],
    )
    .await;
    assert_eq!(s, 202, "{r}");
    let heard = eventually(WAIT, "bob's hook hears his upload", || async {
        let g = rx.got("/bob");
        (!g.is_empty()).then_some(g)
    })
    .await;
    assert_eq!(heard[0].json()["type"], "upload.completed");
    assert_eq!(heard[0].json()["data"]["task"]["status"], "done");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rx.got("/bob").len(), 1, "one message for one upload");
    let tasks: Value = admin.get("/tasks?limit=100").await.good();
    assert!(
        tasks["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["kind"] != "deliver")
    );

    // A hook that always refuses is disabled after two messages in a row, with the reason.
    rx.always("/dead", Reply(410, "text/plain", "gone".into()));
    let dead: Value = admin
        .post("/webhooks", json!({"url": rx.url("/dead")}))
        .await
        .good();
    let dead_id = dead["id"].as_str().unwrap();
    for _ in 0..2 {
        admin
            .post(&format!("/webhooks/{dead_id}/test"), json!({}))
            .await
            .good::<Value>();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let h: Value = eventually(WAIT, "the hook disabled", || async {
        let h: Value = admin.get(&format!("/webhooks/{dead_id}")).await.good();
        (h["state"] == "disabled").then_some(h)
    })
    .await;
    assert_eq!(h["enabled"], false);
    let reason = h["disabled_reason"].as_str().unwrap();
    assert!(
        reason.contains("2 deliveries in a row failed") && reason.contains("HTTP 410"),
        "{reason}"
    );
    assert_eq!(rx.got("/dead").len(), 2, "a 4xx is not retried");
    app.stop().await;
}

#[tokio::test]
async fn pending_deliveries_survive_a_restart() {
    let rx = Receiver::start().await;
    rx.always("/hook", Reply(503, "text/plain", "busy".into()));
    let dirs = Dirs::new();
    let port = free_port();
    let env = daemon_env(
        &dirs,
        &unique_prefix(),
        port,
        &[
            ("MUSICD_FETCH_ALLOW_PRIVATE", "true".into()),
            ("MUSICD_NOTIFY__BACKOFF_BASE", "1s".into()),
            ("MUSICD_NOTIFY__BACKOFF_MAX", "2s".into()),
        ],
    );
    let mut d = Daemon::spawn(&["serve"], &env, dirs.tmp.path(), "first.log");
    d.wait_ready().await;
    let admin = Session::sign_in_at(&d.base, ADMIN, ADMIN_PW).await;
    let hook: Value = admin
        .post("/webhooks", json!({"url": rx.url("/hook")}))
        .await
        .good();
    let hook_id = hook["id"].as_str().unwrap();
    for _ in 0..3 {
        admin.ping(json!({})).await;
    }
    eventually(WAIT, "each message tried once", || async {
        let ids: std::collections::HashSet<String> = rx
            .got("/hook")
            .iter()
            .map(|g| g.headers["webhook-id"].clone())
            .collect();
        (ids.len() == 3).then_some(())
    })
    .await;
    d.kill9();
    rx.always("/hook", ok_reply());
    let mut d2 = Daemon::spawn(&["serve"], &env, dirs.tmp.path(), "second.log");
    d2.wait_ready().await;
    let admin = Session::sign_in_at(&d2.base, ADMIN, ADMIN_PW).await;
    let log = eventually(WAIT, "all three delivered after the restart", || async {
        let log: Vec<Value> = admin
            .get(&format!("/webhooks/{hook_id}/deliveries?limit=100"))
            .await
            .good();
        let delivered: std::collections::HashSet<&str> = log
            .iter()
            .filter(|a| a["outcome"] == "delivered")
            .filter_map(|a| a["message_id"].as_str())
            .collect();
        (delivered.len() == 3).then_some(log.clone())
    })
    .await;
    let delivered = log.iter().filter(|a| a["outcome"] == "delivered").count();
    assert_eq!(delivered, 3, "each message delivered once: {log:?}");
}

#[tokio::test]
async fn presets_and_media_servers_hear_one_message_and_one_rescan_per_request() {
    let rx = Receiver::start().await;
    let up = Upstream::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let lib = tempfile::tempdir().unwrap();
    let lib_path = lib.path().display().to_string();
    // The services' answers, in their documented shapes.
    rx.always(
        "/",
        Reply(
            200,
            "application/json",
            r#"{"id":"x1","event":"message"}"#.into(),
        ),
    );
    rx.always(
        "/gotify/message",
        Reply(200, "application/json", r#"{"id":7}"#.into()),
    );
    rx.always(
        "/discord/api/webhooks/999/tok",
        Reply(204, "text/plain", String::new()),
    );
    rx.always(
        "/navidrome/rest/startScan",
        Reply(200, "application/json",
            r#"{"subsonic-response":{"status":"ok","version":"1.16.1","type":"navidrome","serverVersion":"0.53.3","openSubsonic":true,"scanStatus":{"scanning":true,"count":0}}}"#.into()),
    );
    rx.always(
        "/jellyfin/Library/Refresh",
        Reply(204, "text/plain", String::new()),
    );
    rx.always(
        "/plex/library/sections",
        Reply(200, "application/json", json!({"MediaContainer": {"size": 2, "Directory": [
            {"key": "1", "type": "movie", "title": "Movies", "Location": [{"id": 1, "path": "/movies"}]},
            {"key": "3", "type": "artist", "title": "Music", "Location": [{"id": 3, "path": lib_path}]}
        ]}}).to_string()),
    );
    rx.always(
        "/plex/library/sections/3/refresh",
        Reply(200, "text/plain", String::new()),
    );
    let base = rx.url("");
    let app = TestApp::start(|c| {
        c.fetch_allow_private = true;
        c.library_dir = lib.path().to_path_buf();
        c.notify.discord_url = format!("{base}/discord");
        c.notify.public_url = "https://music.example.org".into();
        c.integrations.rescan_debounce = Duration::from_secs(1);
        c.integrations.navidrome.url = format!("{base}/navidrome");
        c.integrations.jellyfin.url = format!("{base}/jellyfin");
        c.integrations.plex.url = format!("{base}/plex");
    })
    .await;
    let admin = Session::admin(&app).await;
    for (p, n, v) in [
        ("navidrome", "username", "nd-user"),
        ("navidrome", "password", "nd-pass"),
        ("jellyfin", "api_key", "jf-key"),
        ("plex", "token", "plex-token"),
    ] {
        admin
            .put(&format!("/credentials/{p}/{n}"), json!({"value": v}))
            .await
            .good::<Value>();
    }
    let host = rx.addr.to_string();
    for url in [
        format!("ntfy://tk_secret@{host}/musicd"),
        format!("gotify://{host}/gotify/APPTOKEN"),
        "discord://999/tok".to_string(),
    ] {
        let h: Value = admin.post("/webhooks", json!({"url": url})).await.good();
        assert!(h["url"].as_str().unwrap().starts_with("http"), "{h}");
        assert!(
            !h["url"].as_str().unwrap().contains("tok"),
            "no token shown: {h}"
        );
    }

    let url = feed(&up, tmp.path(), "Five", 5);
    let id = admin.download(&url).await;
    admin.wait_done(&id).await;
    eventually(WAIT, "three messages and three rescans", || async {
        (rx.got("/").iter().any(|g| g.uri == "/")
            && !rx.got("/gotify/message").is_empty()
            && !rx.got("/discord/").is_empty()
            && rx.got("/plex/library/sections/3/refresh").len() == 1
            && rx.got("/navidrome").len() == 1
            && rx.got("/jellyfin").len() == 1)
            .then_some(())
    })
    .await;
    // Long enough for a second rescan, were one coming.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // ntfy: JSON published to the server's root, with the topic, title, click link and token.
    let ntfy: Vec<Got> = rx.got("/").into_iter().filter(|g| g.uri == "/").collect();
    assert_eq!(ntfy.len(), 1);
    let n = ntfy[0].json();
    assert_eq!(n["topic"], "musicd");
    assert_eq!(n["title"], "Downloaded: Five");
    assert_eq!(n["message"], "5 done");
    assert_eq!(
        n["click"],
        json!(format!("https://music.example.org/#/tasks/{id}"))
    );
    assert_eq!(ntfy[0].headers["authorization"], "Bearer tk_secret");
    // Gotify: POST /message with the app token header.
    let g = rx.got("/gotify/message");
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].headers["x-gotify-key"], "APPTOKEN");
    assert_eq!(g[0].json()["title"], "Downloaded: Five");
    assert!(g[0].json()["priority"].is_number());
    // Discord: execute webhook with one embed.
    let dc = rx.got("/discord/api/webhooks/999/tok");
    assert_eq!(dc.len(), 1);
    let e = &dc[0].json()["embeds"][0];
    assert_eq!(e["title"], "Downloaded: Five");
    assert_eq!(e["description"], "5 done");

    // Navidrome: one startScan, posted as a form with the salted MD5 token.
    let nd = rx.got("/navidrome");
    assert_eq!(nd.len(), 1, "one rescan for the request");
    assert_eq!(nd[0].method, "POST");
    let form: std::collections::HashMap<String, String> = url::form_urlencoded::parse(&nd[0].body)
        .into_owned()
        .collect();
    assert_eq!(form["u"], "nd-user");
    let md5 = std::process::Command::new("python3")
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.md5(sys.argv[1].encode()).hexdigest())",
        ])
        .arg(format!("nd-pass{}", form["s"]))
        .output()
        .unwrap();
    assert_eq!(form["t"], String::from_utf8_lossy(&md5.stdout).trim());
    assert!(!nd[0].uri.contains("t="), "no token in the URL");
    // Jellyfin: one refresh with the API key; Plex: the music section, refreshed for the path.
    let jf = rx.got("/jellyfin");
    assert_eq!(jf.len(), 1);
    assert_eq!(
        jf[0].headers["authorization"],
        "MediaBrowser Token=\"jf-key\""
    );
    let plex = rx.got("/plex/library/sections/3/refresh");
    assert_eq!(plex.len(), 1);
    assert_eq!(plex[0].headers["x-plex-token"], "plex-token");
    assert!(plex[0].uri.contains("path="), "{}", plex[0].uri);
    let integrations: Vec<Value> = admin.get("/integrations").await.good();
    assert_eq!(integrations.len(), 3);
    for i in &integrations {
        assert_eq!(i["last_rescan"]["ok"], true, "{i}");
        assert_eq!(i["credentials_set"], true);
    }
    assert_eq!(library_files(lib.path()).len(), 5);
    app.stop().await;
}

/// An MP3 whose own tags name it.
fn tagged_mp3(dir: &std::path::Path, name: &str, artist: &str, title: &str) -> Vec<u8> {
    let out = dir.join(name);
    let ok = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("sine=frequency=330:duration=3:sample_rate=44100")
        .args(["-metadata", &format!("artist={artist}")])
        .args(["-metadata", &format!("title={title}")])
        .args(["-metadata", "album=Loopback Sessions"])
        .arg(&out)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    std::fs::read(out).unwrap()
}

#[tokio::test]
async fn lyrics_from_lrclib_go_beside_the_track_and_into_its_tags() {
    let rx = Receiver::start().await;
    let up = Upstream::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let synced = "[00:00.50] First line\n[00:01.80] Second line";
    rx.first(
        "/api/get",
        vec![Reply(
            200,
            "application/json",
            json!({
                "id": 3396226, "trackName": "Sung", "artistName": "Loopback Choir",
                "albumName": "Loopback Sessions", "duration": 3.0, "instrumental": false,
                "plainLyrics": "First line\nSecond line", "syncedLyrics": synced
            })
            .to_string(),
        )],
    );
    rx.always(
        "/api/get",
        Reply(
            404,
            "application/json",
            r#"{"code":404,"name":"TrackNotFound","message":"Failed to find specified track"}"#
                .into(),
        ),
    );
    let base = rx.url("");
    let app = TestApp::start(|c| {
        c.fetch_allow_private = true;
        c.providers.lrclib.base_url = base;
        c.media.lyrics = "synced".into();
    })
    .await;
    let admin = Session::admin(&app).await;
    up.set(
        "sung.mp3",
        Entry::File(
            Arc::new(tagged_mp3(tmp.path(), "a.mp3", "Loopback Choir", "Sung")),
            "audio/mpeg",
        ),
    );
    up.set(
        "unknown.mp3",
        Entry::File(
            Arc::new(tagged_mp3(tmp.path(), "b.mp3", "Nobody", "Unknown")),
            "audio/mpeg",
        ),
    );

    let id = admin.download(&up.url("sung.mp3")).await;
    admin.wait_done(&id).await;
    let asked = rx.got("/api/get");
    assert_eq!(asked.len(), 1);
    let q: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(asked[0].uri.split_once('?').unwrap().1.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(q["artist_name"], "Loopback Choir");
    assert_eq!(q["track_name"], "Sung");
    assert_eq!(q["album_name"], "Loopback Sessions");
    assert_eq!(q["duration"], "3");
    let files = library_files(&app.library());
    let track = files
        .iter()
        .find(|p| p.to_string_lossy().contains("Sung") && p.extension().is_some_and(|e| e == "mp3"))
        .unwrap();
    let lrc = track.with_extension("lrc");
    assert_eq!(std::fs::read_to_string(&lrc).unwrap(), synced);
    let tags = mutagen_tags(track);
    let raw = std::process::Command::new("python3")
        .args(["-c", "import mutagen,sys; t=mutagen.File(sys.argv[1]).tags; print(next((str(v) for k,v in t.items() if k.startswith('USLT')), 'no USLT in ' + repr(list(t.keys()))))"])
        .arg(track)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&raw.stdout).trim(),
        "First line\nSecond line",
        "{tags}"
    );

    // LRCLIB has nothing: the track is done, without lyrics.
    let id = admin.download(&up.url("unknown.mp3")).await;
    let t = admin.wait_done(&id).await;
    assert_eq!(t.status, "done");
    let files = library_files(&app.library());
    let other = files
        .iter()
        .find(|p| {
            p.to_string_lossy().contains("Unknown") && p.extension().is_some_and(|e| e == "mp3")
        })
        .unwrap();
    assert!(!other.with_extension("lrc").exists());
    assert!(!other.to_string_lossy().ends_with(".lrc"));
    let raw = std::process::Command::new("python3")
        .args(["-c", "import mutagen,sys; t=mutagen.File(sys.argv[1]).tags; print(any(k.startswith('USLT') for k in t.keys()))"])
        .arg(other)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&raw.stdout).trim(), "False");
    assert_eq!(rx.got("/api/get").len(), 2);

    // An instrumental: no lyrics, and the language tag says "no linguistic content".
    rx.first(
        "/api/get",
        vec![Reply(200, "application/json", json!({
            "id": 1, "trackName": "Hum", "artistName": "Nobody", "albumName": "Loopback Sessions",
            "duration": 3.0, "instrumental": true, "plainLyrics": null, "syncedLyrics": null
        }).to_string())],
    );
    up.set(
        "hum.mp3",
        Entry::File(
            Arc::new(tagged_mp3(tmp.path(), "c.mp3", "Nobody", "Hum")),
            "audio/mpeg",
        ),
    );
    let id = admin.download(&up.url("hum.mp3")).await;
    admin.wait_done(&id).await;
    let files = library_files(&app.library());
    let hum = files
        .iter()
        .find(|p| p.to_string_lossy().contains("Hum") && p.extension().is_some_and(|e| e == "mp3"))
        .unwrap();
    assert!(!hum.with_extension("lrc").exists());
    let raw = std::process::Command::new("python3")
        .args(["-c", "import mutagen,sys; t=mutagen.File(sys.argv[1]).tags; print(t['TLAN'].text[0], any(k.startswith('USLT') for k in t.keys()))"])
        .arg(hum)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&raw.stdout).trim(), "zxx False");
    app.stop().await;
}

#[tokio::test]
async fn the_web_app_adds_a_target_tests_it_and_shows_the_delivery() {
    let rx = Receiver::start().await;
    rx.always(
        "/",
        Reply(
            200,
            "application/json",
            r#"{"id":"x","event":"message"}"#.into(),
        ),
    );
    let app = TestApp::start(|c| c.fetch_allow_private = true).await;
    let b = Browser::start().await;
    b.sign_in(&app.base, ADMIN, ADMIN_PW).await;
    b.route(&app.base, "#/notifications").await;
    b.type_into("input[name=hook_url]", &format!("ntfy://{}/phone", rx.addr))
        .await;
    b.click("#hook-form button[type=submit]").await;
    b.until_text("#hooks", "ntfy").await;
    b.click("#hooks button.link").await; // "Test", the first action
    let got = eventually(WAIT, "the ntfy stand-in got the test", || async {
        let g: Vec<Got> = rx.got("/").into_iter().filter(|g| g.uri == "/").collect();
        (!g.is_empty()).then_some(g)
    })
    .await;
    assert_eq!(got[0].json()["topic"], "phone");
    assert_eq!(got[0].json()["title"], "musicd test message");
    b.until_text("#hooks .deliveries", "delivered").await;
    b.until_text("#hooks .deliveries", "HTTP 200").await;
    b.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_hook_reaches_a_private_address_only_when_allowed() {
    let rx = Receiver::start().await;
    rx.always("/hook", ok_reply());
    let app = TestApp::start(|_| {}).await;
    let admin = Session::admin(&app).await;
    let refused = admin
        .post("/webhooks", json!({"url": rx.url("/hook")}))
        .await;
    assert_eq!(refused.status, 400);
    let msg = refused.body["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(msg.contains("fetch_allow_ips"), "{}", refused.body);
    assert!(webhooks_of(&admin).await.is_empty(), "nothing stored");
    app.stop().await;

    let app = TestApp::start(|c| c.fetch_allow_ips = vec!["127.0.0.1".parse().unwrap()]).await;
    let admin = Session::admin(&app).await;
    let h: Value = admin
        .post("/webhooks", json!({"url": rx.url("/hook")}))
        .await
        .good();
    let id = h["id"].as_str().unwrap();
    admin
        .post(&format!("/webhooks/{id}/test"), json!({}))
        .await
        .good::<Value>();
    eventually(WAIT, "delivered to the allowed address", || async {
        (!rx.got("/hook").is_empty()).then_some(())
    })
    .await;
    app.stop().await;
}

async fn webhooks_of(s: &Session) -> Vec<Value> {
    s.get("/webhooks").await.good()
}

#[tokio::test]
async fn an_admins_hook_hears_that_the_disk_is_nearly_full() {
    let rx = Receiver::start().await;
    rx.always("/sys", ok_reply());
    let app = TestApp::start(|c| {
        c.fetch_allow_private = true;
        c.notify.system_check_interval = Duration::from_secs(1);
        // Every disk is "nearly full" under this floor.
        c.notify.disk_low = bytesize::ByteSize::b(u64::MAX / 2);
    })
    .await;
    let admin = Session::admin(&app).await;
    admin
        .post(
            "/webhooks",
            json!({"url": rx.url("/sys"), "events": ["disk.low", "system.health"]}),
        )
        .await
        .good::<Value>();
    let got = eventually(WAIT, "disk.low arrives", || async {
        let g = rx.got("/sys");
        (!g.is_empty()).then_some(g)
    })
    .await;
    let m = got[0].json();
    assert_eq!(m["type"], "disk.low");
    assert_eq!(m["data"]["ok"], false);
    assert!(
        m["data"]["message"]
            .as_str()
            .unwrap()
            .contains("notify.disk_low"),
        "{m}"
    );
    // Told once per directory, not at every look; healthy database and queue say nothing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = rx.got("/sys");
    assert!(all.len() <= 2, "{} messages", all.len());
    assert!(all.iter().all(|g| g.json()["type"] == "disk.low"));
    app.stop().await;
}
