//! `deezer`: Deezer's public API (no key), a catalog: tracks (with ISRC, track and disc
//! numbers, release date), albums, playlists and artists' albums. Audio is found by matching.
//! Deezer answers errors with HTTP 200 and an `{"error": {type, message, code}}` body; code 4
//! is its quota (documented as 50 requests per 5 seconds), code 800 "no data".

use serde_json::Value;

use super::{
    Discography, Fetcher, Provider, ProviderInfo, ProviderLimits, Release, Resolved, TrackInfo,
    parse_json,
};
use crate::config::DeezerConfig;
use crate::failure::{JobError, code};

/// Largest answer read.
const MAX_ANSWER: u64 = 8 * 1024 * 1024;
/// Items per page asked for.
const PAGE: usize = 100;
/// Most items read from one list (a playlist of this many is Deezer's own cap).
const MAX_ITEMS: usize = 10_000;
/// How upstream is named in messages.
const LABEL: &str = "Deezer";

/// The Deezer catalog.
pub struct Deezer {
    base: String,
    limits: ProviderLimits,
}

impl Deezer {
    /// From its configuration.
    pub fn new(config: &DeezerConfig) -> Self {
        Self {
            base: config.base_url.trim_end_matches('/').to_string(),
            limits: ProviderLimits {
                requests_per_minute: Some(config.requests_per_minute).filter(|n| *n > 0),
                burst: Some(5),
                concurrency: None,
            },
        }
    }

    /// One GET of `path`; Deezer's error body becomes a clear error.
    async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        fetch: &Fetcher,
    ) -> Result<Value, JobError> {
        let mut url = url::Url::parse(&format!("{}/{path}", self.base)).map_err(|e| {
            JobError::permanent(
                code::INVALID_OPTIONS,
                format!("providers.deezer.base_url: {e}"),
            )
        })?;
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let req = musicd_media::request::Request {
            url: url.to_string(),
            follow: true,
            ..Default::default()
        };
        let a = fetch.api("deezer", LABEL, req, MAX_ANSWER).await?;
        if a.status == 404 {
            return Err(JobError::permanent(
                code::NOT_FOUND,
                format!("Deezer has no `{path}`"),
            ));
        }
        if a.status != 200 {
            return Err(JobError::permanent(
                code::UPSTREAM_ERROR,
                format!("Deezer answered HTTP {} for `{path}`", a.status),
            ));
        }
        let v: Value = parse_json(LABEL, &a.bytes)?;
        if let Some(err) = v.get("error").filter(|e| e.is_object()) {
            let n = err["code"].as_i64().unwrap_or_default();
            let msg = err["message"].as_str().unwrap_or_default();
            return Err(match n {
                4 => {
                    let wait = std::time::Duration::from_secs(5);
                    fetch
                        .env
                        .limits
                        .pause_host(&super::provider_key("deezer"), wait);
                    JobError::Transient {
                        code: code::RATE_LIMITED,
                        message: format!("Deezer's quota is used up for now ({msg})"),
                        retry_after: Some(wait),
                    }
                }
                800 => JobError::permanent(code::NOT_FOUND, format!("Deezer has no `{path}`")),
                _ => JobError::permanent(
                    code::UPSTREAM_ERROR,
                    format!("Deezer error {n} for `{path}`: {msg}"),
                ),
            });
        }
        Ok(v)
    }

    /// Every item of a paged list (`data`, `total`), read `PAGE` at a time by `index`.
    async fn all(&self, path: &str, fetch: &Fetcher) -> Result<Vec<Value>, JobError> {
        let mut items: Vec<Value> = Vec::new();
        loop {
            let q = [
                ("index", items.len().to_string()),
                ("limit", PAGE.to_string()),
            ];
            let page = self.get(path, &q, fetch).await?;
            let data = page["data"].as_array().cloned().unwrap_or_default();
            let total = page["total"].as_u64().map(|t| t as usize);
            let got = data.len();
            items.extend(data);
            let more = match total {
                Some(t) => items.len() < t,
                None => page["next"].is_string(),
            };
            if got == 0 || !more || items.len() >= MAX_ITEMS {
                return Ok(items);
            }
        }
    }

    async fn album(&self, id: &str, fetch: &Fetcher) -> Result<(Value, Vec<TrackInfo>), JobError> {
        check_id(id, "album")?;
        let album = self.get(&format!("album/{id}"), &[], fetch).await?;
        let raw = self.all(&format!("album/{id}/tracks"), fetch).await?;
        let ctx = AlbumCtx::from_album(&album, &raw);
        let tracks = raw.iter().map(|t| track_info(t, Some(&ctx))).collect();
        Ok((album, tracks))
    }

    async fn artist_albums(&self, id: &str, fetch: &Fetcher) -> Result<Discography, JobError> {
        check_id(id, "artist")?;
        let artist = self.get(&format!("artist/{id}"), &[], fetch).await?;
        let albums = self.all(&format!("artist/{id}/albums"), fetch).await?;
        let mut releases: Vec<Release> = albums
            .iter()
            .map(|a| Release {
                kind: "album".into(),
                id: id_of(&a["id"]),
                title: text(&a["title"]).unwrap_or_default(),
                release_type: release_type(a["record_type"].as_str().unwrap_or("album")).into(),
                date: text(&a["release_date"]),
                track_count: a["nb_tracks"].as_u64().map(|n| n as u32),
                image_url: text(&a["cover_xl"]),
            })
            .collect();
        releases.sort_by(|a, b| b.date.cmp(&a.date));
        Ok(Discography {
            name: text(&artist["name"]),
            releases,
        })
    }
}

/// Deezer's `record_type` as one of musicd's release types.
fn release_type(record_type: &str) -> &'static str {
    match record_type {
        "single" | "ep" => "single",
        "compile" | "compilation" => "compilation",
        _ => "album",
    }
}

fn check_id(id: &str, what: &str) -> Result<(), JobError> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(JobError::permanent(
            code::VALIDATION_ERROR,
            format!("a Deezer {what} id is a number, not `{id}`"),
        ));
    }
    Ok(())
}

fn id_of(v: &Value) -> String {
    v.as_u64()
        .map(|n| n.to_string())
        .or_else(|| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn text(v: &Value) -> Option<String> {
    v.as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "0000-00-00")
        .map(str::to_string)
}

/// What an album tells its tracks.
struct AlbumCtx {
    title: Option<String>,
    artist: Option<String>,
    date: Option<String>,
    label: Option<String>,
    genres: Vec<String>,
    cover: Option<String>,
    total: Option<u32>,
    discs: Option<u32>,
}

impl AlbumCtx {
    fn from_album(a: &Value, tracks: &[Value]) -> Self {
        Self {
            title: text(&a["title"]),
            artist: text(&a["artist"]["name"]),
            date: text(&a["release_date"]),
            label: text(&a["label"]),
            genres: a["genres"]["data"]
                .as_array()
                .map(|g| g.iter().filter_map(|g| text(&g["name"])).collect())
                .unwrap_or_default(),
            cover: text(&a["cover_xl"]).or_else(|| text(&a["cover_big"])),
            total: a["nb_tracks"]
                .as_u64()
                .map(|n| n as u32)
                .or(Some(tracks.len() as u32)),
            discs: tracks
                .iter()
                .filter_map(|t| t["disk_number"].as_u64())
                .max()
                .map(|n| n as u32),
        }
    }
}

/// A Deezer track object as musicd's track.
fn track_info(t: &Value, album: Option<&AlbumCtx>) -> TrackInfo {
    let mut artists: Vec<String> = t["contributors"]
        .as_array()
        .map(|c| c.iter().filter_map(|a| text(&a["name"])).collect())
        .unwrap_or_default();
    if artists.is_empty() {
        artists.extend(text(&t["artist"]["name"]));
    }
    artists.dedup();
    let readable = t["readable"].as_bool().unwrap_or(true);
    TrackInfo {
        id: id_of(&t["id"]),
        url: String::new(),
        title: text(&t["title"]),
        album: text(&t["album"]["title"]).or_else(|| album.and_then(|a| a.title.clone())),
        album_artist: album
            .and_then(|a| a.artist.clone())
            .or_else(|| artists.first().cloned()),
        artists,
        track_number: t["track_position"].as_u64().map(|n| n as u32),
        track_total: album.and_then(|a| a.total),
        disc_number: t["disk_number"].as_u64().map(|n| n as u32),
        disc_total: album.and_then(|a| a.discs),
        date: text(&t["release_date"])
            .or_else(|| text(&t["album"]["release_date"]))
            .or_else(|| album.and_then(|a| a.date.clone())),
        genres: album.map(|a| a.genres.clone()).unwrap_or_default(),
        cover_url: text(&t["album"]["cover_xl"]).or_else(|| album.and_then(|a| a.cover.clone())),
        duration_ms: t["duration"].as_u64().map(|s| s * 1000),
        isrc: text(&t["isrc"]),
        explicit: t["explicit_lyrics"].as_bool(),
        label: album.and_then(|a| a.label.clone()),
        unavailable: (!readable).then(|| "not available on Deezer".to_string()),
        ..TrackInfo::default()
    }
}

#[async_trait::async_trait]
impl Provider for Deezer {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: "deezer",
            kinds: &["track", "album", "playlist", "artist"],
            description: "Deezer's catalog (public API, no key): tracks, albums, playlists, \
                          artists' albums; audio is matched from the audio sources.",
        }
    }

    fn is_catalog(&self) -> bool {
        true
    }

    async fn resolve(&self, kind: &str, id: &str, fetch: &Fetcher) -> Result<Resolved, JobError> {
        match kind {
            "track" => {
                check_id(id, "track")?;
                let t = self.get(&format!("track/{id}"), &[], fetch).await?;
                let mut track = track_info(&t, None);
                // A lone track names its album's artist only through the album object.
                if let Ok(a) = self
                    .get(&format!("album/{}", id_of(&t["album"]["id"])), &[], fetch)
                    .await
                {
                    let ctx = AlbumCtx::from_album(&a, &[]);
                    track.album_artist = ctx.artist.or(track.album_artist);
                    track.track_total = ctx.total;
                    track.label = ctx.label;
                    track.genres = ctx.genres;
                }
                Ok(Resolved::Track { track })
            }
            "album" => {
                let (album, tracks) = self.album(id, fetch).await?;
                Ok(Resolved::Collection {
                    collection: "album".into(),
                    title: text(&album["title"]),
                    tracks,
                })
            }
            "playlist" => {
                check_id(id, "playlist")?;
                let p = self.get(&format!("playlist/{id}"), &[], fetch).await?;
                let raw = self.all(&format!("playlist/{id}/tracks"), fetch).await?;
                Ok(Resolved::Collection {
                    collection: "playlist".into(),
                    title: text(&p["title"]),
                    tracks: raw.iter().map(|t| track_info(t, None)).collect(),
                })
            }
            "artist" => {
                let d = self.artist_albums(id, fetch).await?;
                d.collect(&fetch.release_types, |album| async move {
                    Ok(self.album(&album, fetch).await?.1)
                })
                .await
            }
            other => Err(JobError::permanent(
                code::VALIDATION_ERROR,
                format!("deezer has no kind `{other}`"),
            )),
        }
    }

    fn limits(&self) -> ProviderLimits {
        self.limits
    }

    async fn discography(
        &self,
        artist: &str,
        fetch: &Fetcher,
    ) -> Option<Result<Discography, JobError>> {
        Some(self.artist_albums(artist, fetch).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deezer_track_becomes_a_catalog_track() {
        let t: Value = serde_json::json!({
            "id": 3135556, "readable": true, "title": "Harder, Better, Faster, Stronger",
            "isrc": "GBDUW0000059", "duration": 224, "track_position": 4, "disk_number": 1,
            "release_date": "2001-03-07", "explicit_lyrics": false,
            "contributors": [{"id": 27, "name": "Daft Punk", "role": "Main"}],
            "artist": {"id": 27, "name": "Daft Punk"},
            "album": {"id": 302127, "title": "Discovery", "cover_xl": "https://e/c.jpg"}
        });
        let i = track_info(&t, None);
        assert_eq!(i.id, "3135556");
        assert_eq!(i.isrc.as_deref(), Some("GBDUW0000059"));
        assert_eq!(i.duration_ms, Some(224_000));
        assert_eq!((i.track_number, i.disc_number), (Some(4), Some(1)));
        assert_eq!(i.artists, vec!["Daft Punk"]);
        assert_eq!(i.album.as_deref(), Some("Discovery"));
        assert!(i.unavailable.is_none());
        let gone = track_info(
            &serde_json::json!({"id": 1, "readable": false, "title": "x"}),
            None,
        );
        assert!(gone.unavailable.is_some());
        assert_eq!(release_type("ep"), "single");
        assert_eq!(release_type("compile"), "compilation");
    }
}
