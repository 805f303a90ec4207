//! Loopback stand-ins for the catalogs and the audio source, answering in the upstreams' real
//! shapes: Deezer's public API (`/deezer/…`, errors as HTTP 200 with an `error` body), the
//! Spotify Web API (`/spotify/v1/…`, bearer tokens, `/playlists/{id}/items` with `item`) and
//! its accounts service (`/spotify-accounts/…`: client credentials, PKCE authorize and code
//! exchange, refresh), YouTube Music's `youtubei` search (`/ytm/youtubei/v1/search`) and the
//! watch pages yt-dlp downloads (`/watch/<id>.mp3`).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;

/// A fault the next answers of a path prefix give.
#[derive(Clone, Debug)]
pub enum Fault {
    /// HTTP 5xx.
    ServerError,
    /// 429 with `Retry-After` in seconds.
    Limited(u64),
    /// A 200 whose body is not JSON.
    Malformed,
    /// Spotify: 401 "The access token expired" (the token is forgotten).
    Expired,
}

#[derive(Default)]
struct Inner {
    deezer: HashMap<String, Value>,
    deezer_lists: HashMap<String, Vec<Value>>,
    spotify: HashMap<String, Value>,
    spotify_lists: HashMap<String, Vec<Value>>,
    mb: HashMap<String, Value>,
    jamendo: HashMap<String, Vec<Value>>,
    images: HashMap<String, Arc<Vec<u8>>>,
    ytm: HashMap<(String, bool), Vec<Value>>,
    audio: HashMap<String, Arc<Vec<u8>>>,
    faults: Vec<(String, Fault, u32)>,
    hits: HashMap<String, usize>,
    searches: Vec<String>,
    app_tokens: HashSet<String>,
    user_tokens: HashSet<String>,
    refresh_tokens: HashSet<String>,
    /// code -> (challenge, redirect)
    codes: HashMap<String, (String, String)>,
    client: Option<(String, String)>,
    revoked: bool,
}

/// The stand-in server.
#[derive(Clone)]
pub struct Catalogs {
    inner: Arc<Mutex<Inner>>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Catalogs {
    /// Starts on a free loopback port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let me = Self {
            inner: Arc::default(),
            addr: listener.local_addr().unwrap(),
        };
        let router = axum::Router::new()
            .route("/deezer/{*path}", get(deezer))
            .route("/spotify/v1/{*path}", get(spotify))
            .route("/spotify-accounts/api/token", post(token))
            .route("/spotify-accounts/authorize", get(authorize))
            .route("/ytm/youtubei/v1/search", post(ytm_search))
            .route("/watch/{file}", get(watch))
            .route("/mb/ws/2/{*path}", get(musicbrainz))
            .route("/jamendo/v3.0/tracks/", get(jamendo_tracks))
            .route("/caa/release/{id}/front", get(front))
            .route("/img/{id}", get(image))
            .with_state(me.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        me
    }

    /// `http://127.0.0.1:<port>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    /// Points a daemon's providers at this stand-in (and lets it reach loopback).
    pub fn configure(&self, c: &mut musicd::config::Config) {
        c.fetch_allow_private = true;
        let p = &mut c.providers;
        p.deezer.base_url = self.url("deezer");
        p.spotify.base_url = self.url("spotify/v1");
        p.spotify.accounts_url = self.url("spotify-accounts");
        p.youtube_music.base_url = self.url("ytm");
        p.youtube_music.watch_url = self.url("watch/{id}.mp3");
        p.matching.sources = vec!["youtube_music".into()];
        p.musicbrainz.base_url = self.url("mb/ws/2");
        p.musicbrainz.cover_art_url = self.url("caa");
        p.musicbrainz.requests_per_minute = 0;
        p.jamendo.base_url = self.url("jamendo/v3.0");
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap())
    }

    /// A Deezer object at `path` (`track/1`, `album/2`).
    pub fn deezer(&self, path: &str, v: Value) {
        self.with(|i| i.deezer.insert(path.into(), v));
    }

    /// A paged Deezer list at `path` (`album/2/tracks`).
    pub fn deezer_list(&self, path: &str, items: Vec<Value>) {
        self.with(|i| i.deezer_lists.insert(path.into(), items));
    }

    /// A Spotify object at `path` (`tracks/ID`).
    pub fn spotify(&self, path: &str, v: Value) {
        self.with(|i| i.spotify.insert(path.into(), v));
    }

    /// A paged Spotify list at `path` (`playlists/ID/items`).
    pub fn spotify_list(&self, path: &str, items: Vec<Value>) {
        self.with(|i| i.spotify_lists.insert(path.into(), items));
    }

    /// The app's client id and secret Spotify accepts.
    pub fn spotify_client(&self, id: &str, secret: &str) {
        self.with(|i| i.client = Some((id.into(), secret.into())));
    }

    /// Revokes every Spotify token and refresh token.
    pub fn spotify_revoke(&self) {
        self.with(|i| {
            i.app_tokens.clear();
            i.user_tokens.clear();
            i.refresh_tokens.clear();
            i.revoked = true;
        });
    }

    /// Search results (rows) for a query; `songs` for the songs filter.
    pub fn ytm(&self, query: &str, songs: bool, rows: Vec<Value>) {
        self.with(|i| i.ytm.insert((query.to_lowercase(), songs), rows));
    }

    /// A MusicBrainz answer at `path` (`release/MBID`, `isrc/ISRC`, `release-group?artist=MBID`).
    pub fn mb(&self, path: &str, v: Value) {
        self.with(|i| i.mb.insert(path.into(), v));
    }

    /// Jamendo's track search results for `search` (tracks in its API v3 shape).
    pub fn jamendo(&self, search: &str, results: Vec<Value>) {
        self.with(|i| i.jamendo.insert(search.to_lowercase(), results));
    }

    /// A release's front cover in the Cover Art Archive.
    pub fn cover(&self, release: &str, jpeg: Arc<Vec<u8>>) {
        self.with(|i| i.images.insert(release.into(), jpeg));
    }

    /// The audio of a video id.
    pub fn audio(&self, id: &str, bytes: Arc<Vec<u8>>) {
        self.with(|i| i.audio.insert(id.into(), bytes));
    }

    /// The next `times` answers under `prefix` (`deezer/track/1`, `spotify/v1/albums`) give `f`.
    pub fn fault(&self, prefix: &str, f: Fault, times: u32) {
        self.with(|i| i.faults.push((prefix.into(), f, times)));
    }

    /// Requests seen under a path prefix.
    pub fn hits(&self, prefix: &str) -> usize {
        self.with(|i| {
            i.hits
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(_, n)| n)
                .sum()
        })
    }

    /// Every search query seen, in order, as `query|songs`.
    pub fn searches(&self) -> Vec<String> {
        self.with(|i| i.searches.clone())
    }

    fn hit(&self, path: &str) -> Option<Fault> {
        self.with(|i| {
            *i.hits.entry(path.to_string()).or_default() += 1;
            let f = i
                .faults
                .iter_mut()
                .find(|(p, _, n)| *n > 0 && path.starts_with(p.as_str()))?;
            f.2 -= 1;
            Some(f.1.clone())
        })
    }
}

fn json_response(status: StatusCode, v: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn fault_response(f: Fault) -> Response {
    match f {
        Fault::ServerError => json_response(StatusCode::BAD_GATEWAY, json!({"error": "upstream"})),
        Fault::Limited(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, secs.to_string())],
            json!({"error": {"status": 429, "message": "API rate limit exceeded"}}).to_string(),
        )
            .into_response(),
        Fault::Malformed => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"data\": [tru",
        )
            .into_response(),
        Fault::Expired => json_response(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"status": 401, "message": "The access token expired"}}),
        ),
    }
}

async fn deezer(
    State(s): State<Catalogs>,
    UrlPath(path): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(f) = s.hit(&format!("deezer/{path}")) {
        return fault_response(f);
    }
    let (one, list) = s.with(|i| {
        (
            i.deezer.get(&path).cloned(),
            i.deezer_lists.get(&path).cloned(),
        )
    });
    if let Some(v) = one {
        return json_response(StatusCode::OK, v);
    }
    let Some(items) = list else {
        // Deezer answers a missing object with HTTP 200 and an error body.
        return json_response(
            StatusCode::OK,
            json!({"error": {"type": "DataException", "message": "no data", "code": 800}}),
        );
    };
    let index: usize = q.get("index").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit: usize = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(25);
    let page: Vec<Value> = items.iter().skip(index).take(limit).cloned().collect();
    let mut body = json!({"data": page, "total": items.len()});
    if index + limit < items.len() {
        body["next"] = json!(s.url(&format!("deezer/{path}?index={}", index + limit)));
    }
    json_response(StatusCode::OK, body)
}

fn bearer(h: &HeaderMap) -> String {
    h.get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string()
}

async fn spotify(
    State(s): State<Catalogs>,
    UrlPath(path): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let token = bearer(&headers);
    if let Some(f) = s.hit(&format!("spotify/v1/{path}")) {
        if matches!(f, Fault::Expired) {
            s.with(|i| {
                i.app_tokens.remove(&token);
                i.user_tokens.remove(&token);
            });
        }
        return fault_response(f);
    }
    let (app, user) = s.with(|i| {
        (
            i.app_tokens.contains(&token),
            i.user_tokens.contains(&token),
        )
    });
    if !app && !user {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"status": 401, "message": "Invalid access token"}}),
        );
    }
    if path.starts_with("playlists/") && path.ends_with("/items") && !user {
        return json_response(
            StatusCode::FORBIDDEN,
            json!({"error": {"status": 403, "message": "Forbidden"}}),
        );
    }
    // Artists' albums: one list per group, as `artists/ID/albums?group`.
    let key = match q.get("include_groups") {
        Some(g) => format!("{path}?{g}"),
        None => path.clone(),
    };
    let (one, list) = s.with(|i| {
        (
            i.spotify.get(&key).cloned(),
            i.spotify_lists.get(&key).cloned(),
        )
    });
    if let Some(v) = one {
        return json_response(StatusCode::OK, v);
    }
    let Some(items) = list else {
        return json_response(
            StatusCode::NOT_FOUND,
            json!({"error": {"status": 404, "message": "Resource not found"}}),
        );
    };
    let offset: usize = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit: usize = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(20);
    let max = if path.contains("/albums") && path.starts_with("artists/") {
        10
    } else {
        50
    };
    if limit == 0 || limit > max {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": {"status": 400, "message": "Invalid limit"}}),
        );
    }
    let page: Vec<Value> = items.iter().skip(offset).take(limit).cloned().collect();
    let next = (offset + limit < items.len()).then(|| {
        s.url(&format!(
            "spotify/v1/{path}?offset={}&limit={limit}",
            offset + limit
        ))
    });
    json_response(
        StatusCode::OK,
        json!({"href": s.url(&format!("spotify/v1/{path}")), "items": page, "limit": limit,
            "offset": offset, "total": items.len(), "next": next, "previous": null}),
    )
}

fn new_token(prefix: &str) -> String {
    format!("{prefix}{:016x}", rand::random::<u64>())
}

fn oauth_error(e: &str, d: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        json!({"error": e, "error_description": d}),
    )
}

async fn token(State(s): State<Catalogs>, headers: HeaderMap, body: String) -> Response {
    if let Some(f) = s.hit("spotify-accounts/api/token") {
        return fault_response(f);
    }
    let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let client = s.with(|i| i.client.clone()).unwrap_or_default();
    let answer = |access: String, refresh: Option<String>| {
        let mut v = json!({"access_token": access, "token_type": "Bearer", "expires_in": 3600});
        if let Some(r) = refresh {
            v["refresh_token"] = json!(r);
            v["scope"] = json!("playlist-read-private playlist-read-collaborative");
        }
        json_response(StatusCode::OK, v)
    };
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {
            let want = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", client.0, client.1));
            let basic = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Basic "))
                .unwrap_or_default();
            if basic != want || s.with(|i| i.revoked) {
                return oauth_error("invalid_client", "Invalid client secret");
            }
            let t = new_token("app-");
            s.with(|i| i.app_tokens.insert(t.clone()));
            answer(t, None)
        }
        Some("authorization_code") => {
            let code = form.get("code").cloned().unwrap_or_default();
            let Some((challenge, redirect)) = s.with(|i| i.codes.remove(&code)) else {
                return oauth_error("invalid_grant", "Invalid authorization code");
            };
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let got = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(verifier.as_bytes()));
            if got != challenge
                || form.get("redirect_uri") != Some(&redirect)
                || form.get("client_id") != Some(&client.0)
            {
                return oauth_error("invalid_grant", "code_verifier was incorrect");
            }
            let (t, r) = (new_token("user-"), new_token("refresh-"));
            s.with(|i| {
                i.user_tokens.insert(t.clone());
                i.refresh_tokens.insert(r.clone());
            });
            answer(t, Some(r))
        }
        Some("refresh_token") => {
            let r = form.get("refresh_token").cloned().unwrap_or_default();
            if !s.with(|i| i.refresh_tokens.contains(&r)) {
                return oauth_error("invalid_grant", "Refresh token revoked");
            }
            let t = new_token("user-");
            s.with(|i| i.user_tokens.insert(t.clone()));
            answer(t, None)
        }
        _ => oauth_error("unsupported_grant_type", "grant_type"),
    }
}

/// The user consents at once: back to `redirect_uri` with a code.
async fn authorize(
    State(s): State<Catalogs>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let code = new_token("code-");
    let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
    let challenge = q.get("code_challenge").cloned().unwrap_or_default();
    s.with(|i| i.codes.insert(code.clone(), (challenge, redirect.clone())));
    let state = q.get("state").cloned().unwrap_or_default();
    let to = format!("{redirect}?code={code}&state={state}");
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

async fn ytm_search(State(s): State<Catalogs>, body: String) -> Response {
    if let Some(f) = s.hit("ytm/search") {
        return fault_response(f);
    }
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    let query = v["query"].as_str().unwrap_or_default().to_lowercase();
    // The songs filter's params carry `II` at the filter's place; videos `IQ`.
    let songs = v["params"]
        .as_str()
        .unwrap_or_default()
        .starts_with("EgWKAQII");
    s.with(|i| i.searches.push(format!("{query}|{songs}")));
    let rows = s
        .with(|i| i.ytm.get(&(query, songs)).cloned())
        .unwrap_or_default();
    let shelf = json!({"musicShelfRenderer": {
        "title": {"runs": [{"text": if songs { "Songs" } else { "Videos" }}]},
        "contents": rows.into_iter().map(|r| json!({"musicResponsiveListItemRenderer": r})).collect::<Vec<_>>()}});
    json_response(
        StatusCode::OK,
        json!({"responseContext": {"maxAgeSeconds": 300}, "contents": {"tabbedSearchResultsRenderer": {"tabs": [
            {"tabRenderer": {"title": "YT Music", "selected": true, "content": {"sectionListRenderer": {"contents": [shelf]}}}}]}}}),
    )
}

async fn watch(State(s): State<Catalogs>, UrlPath(file): UrlPath<String>) -> Response {
    let id = file.trim_end_matches(".mp3").to_string();
    s.hit(&format!("watch/{id}"));
    match s.with(|i| i.audio.get(&id).cloned()) {
        Some(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "audio/mpeg")],
            bytes.to_vec(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// MusicBrainz: lookups by path; a browse by its `artist`; a User-Agent is required.
async fn musicbrainz(
    State(s): State<Catalogs>,
    UrlPath(path): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    s.hit(&format!("mb/{path}"));
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !ua.contains("musicd/") || !ua.contains('(') {
        return json_response(
            StatusCode::FORBIDDEN,
            json!({"error": "Your requests are being throttled by MusicBrainz because the application you are using has not identified itself."}),
        );
    }
    let key = match q.get("artist") {
        Some(a) => format!("{path}?artist={a}"),
        None => path,
    };
    match s.with(|i| i.mb.get(&key).cloned()) {
        Some(v) => json_response(StatusCode::OK, v),
        None => json_response(
            StatusCode::NOT_FOUND,
            json!({"error": "Not Found", "help": "For usage, please see: https://musicbrainz.org/development/mmd"}),
        ),
    }
}

/// Jamendo's `tracks/?search=`: results by the search text, in its `headers`/`results` shape.
async fn jamendo_tracks(
    State(s): State<Catalogs>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    s.hit("jamendo/tracks");
    let search = q.get("search").cloned().unwrap_or_default().to_lowercase();
    let results = s
        .with(|i| i.jamendo.get(&search).cloned())
        .unwrap_or_default();
    json_response(
        StatusCode::OK,
        json!({"headers": {"status": "success", "code": 0, "error_message": "", "warnings": "", "results_count": results.len()},
            "results": results}),
    )
}

/// The Cover Art Archive's `/release/{mbid}/front`: a 307 to the image.
async fn front(State(s): State<Catalogs>, UrlPath(id): UrlPath<String>) -> Response {
    if s.with(|i| i.images.contains_key(&id)) {
        (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, s.url(&format!("img/{id}")))],
        )
            .into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

async fn image(State(s): State<Catalogs>, UrlPath(id): UrlPath<String>) -> Response {
    match s.with(|i| i.images.get(&id).cloned()) {
        Some(b) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "image/jpeg")],
            b.to_vec(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A small JPEG (a red square) made by ffmpeg.
pub fn jpeg(dir: &Path) -> Arc<Vec<u8>> {
    let out = dir.join("cover.jpg");
    let ok = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=c=red:s=64x64",
            "-frames:v",
            "1",
        ])
        .arg(&out)
        .status()
        .expect("ffmpeg")
        .success();
    assert!(ok);
    Arc::new(std::fs::read(out).unwrap())
}

/// One YouTube Music result row in the real shape: a song (`ATV`, artists • album •
/// length) or a video (`OMV`/`UGC`, channel • views • length).
pub fn ytm_row(
    id: &str,
    title: &str,
    artists: &[&str],
    album: Option<&str>,
    secs: u64,
    song: bool,
    explicit: bool,
) -> Value {
    let video_type = if song {
        "MUSIC_VIDEO_TYPE_ATV"
    } else {
        "MUSIC_VIDEO_TYPE_UGC"
    };
    let watch = json!({"videoId": id, "watchEndpointMusicSupportedConfigs": {"watchEndpointMusicConfig": {"musicVideoType": video_type}}});
    let mut runs = Vec::new();
    for (n, a) in artists.iter().enumerate() {
        if n > 0 {
            runs.push(json!({"text": " & "}));
        }
        runs.push(json!({"text": a, "navigationEndpoint": {"browseEndpoint": {"browseId": format!("UC{:022}", n),
            "browseEndpointContextSupportedConfigs": {"browseEndpointContextMusicConfig": {"pageType": "MUSIC_PAGE_TYPE_ARTIST"}}}}}));
    }
    runs.push(json!({"text": " • "}));
    match (song, album) {
        (true, Some(al)) => runs.push(json!({"text": al, "navigationEndpoint": {"browseEndpoint": {"browseId": "MPREb_test",
            "browseEndpointContextSupportedConfigs": {"browseEndpointContextMusicConfig": {"pageType": "MUSIC_PAGE_TYPE_ALBUM"}}}}})),
        _ => runs.push(json!({"text": "1.2M views"})),
    }
    runs.push(json!({"text": " • "}));
    runs.push(json!({"text": format!("{}:{:02}", secs / 60, secs % 60)}));
    let mut row = json!({
        "overlay": {"musicItemThumbnailOverlayRenderer": {"content": {"musicPlayButtonRenderer": {"playNavigationEndpoint": {"watchEndpoint": watch}}}}},
        "flexColumns": [
            {"musicResponsiveListItemFlexColumnRenderer": {"text": {"runs": [{"text": title, "navigationEndpoint": {"watchEndpoint": watch}}]}}},
            {"musicResponsiveListItemFlexColumnRenderer": {"text": {"runs": runs}}}
        ],
        "playlistItemData": {"videoId": id}
    });
    if explicit {
        row["badges"] = json!([{"musicInlineBadgeRenderer": {"icon": {"iconType": "MUSIC_EXPLICIT_BADGE"},
            "accessibilityData": {"accessibilityData": {"label": "Explicit"}}}}]);
    }
    row
}

/// A small MP3 tone of `secs` seconds (mono, 32 kb/s: a few KB a second), cached by length.
pub fn tone_of(dir: &Path, secs: u64) -> Arc<Vec<u8>> {
    let out = dir.join(format!("tone-{secs}.mp3"));
    if !out.exists() {
        let ok = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!(
                "sine=frequency={}:duration={secs}:sample_rate=22050",
                200 + secs * 10
            ))
            .args(["-ac", "1", "-b:a", "32k"])
            .arg(&out)
            .status()
            .expect("ffmpeg (bash .ci/setup-test)")
            .success();
        assert!(ok, "ffmpeg made a tone");
    }
    Arc::new(std::fs::read(out).unwrap())
}

/// Tags of any audio file as mutagen reads them (easy keys), with its length in seconds.
pub fn mutagen_tags(path: &Path) -> Value {
    let script = r#"
import json, sys, mutagen
f = mutagen.File(sys.argv[1], easy=True)
tags = {k: (v[0] if isinstance(v, list) and v else v) for k, v in (f.tags or {}).items()}
raw = mutagen.File(sys.argv[1])
src = None
for k, v in (raw.tags or {}).items():
    if k.upper() in ("SOURCE_URL", "WOAS", "WXXX:SOURCE_URL") or k.startswith("WOAS"):
        src = str(v[0] if isinstance(v, list) else getattr(v, "url", v))
tags["source_url"] = src
tags["cover"] = any(k.startswith("APIC") or k == "covr" for k in (raw.tags or {}).keys()) or bool(getattr(raw, "pictures", []))
for k, v in (raw.tags or {}).items():
    if "MusicBrainz" in k or k.startswith("UFID"):
        tags["raw:" + k] = str(getattr(v, "data", v))
tags["length"] = f.info.length
print(json.dumps(tags))
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
