//! `jamendo`: Jamendo's public API v3 (Creative Commons music). Tracks, albums, artists
//! (their albums, filterable by release type) and playlists; search. The `client_id` is a
//! stored credential; the base URL is configurable (tests point it at a loopback server).

use serde::Deserialize;

use super::{
    AudioQuery, Candidate, Discography, Fetcher, Provider, ProviderInfo, ProviderLimits, Release,
    Resolved, SearchItem, TrackInfo,
};
use crate::config::JamendoConfig;
use crate::failure::JobError;
use crate::failure::code;

/// Largest API answer read.
const MAX_ANSWER: u64 = 8 * 1024 * 1024;

/// Albums with fewer tracks than this count as singles (Jamendo has no release types).
const SINGLE_MAX_TRACKS: usize = 3;

/// The Jamendo provider.
pub struct Jamendo {
    base: String,
    limits: ProviderLimits,
}

impl Jamendo {
    /// From its configuration.
    pub fn new(config: &JamendoConfig) -> Self {
        Self {
            base: config.base_url.trim_end_matches('/').to_string(),
            limits: ProviderLimits {
                requests_per_minute: Some(config.requests_per_minute).filter(|n| *n > 0),
                concurrency: Some(config.concurrency).filter(|n| *n > 0),
                burst: None,
            },
        }
    }

    /// Calls `path` with `query`, returning the `results` array.
    async fn call(
        &self,
        path: &str,
        query: &[(&str, &str)],
        fetch: &Fetcher,
    ) -> Result<Vec<serde_json::Value>, JobError> {
        let client_id = fetch.credential("jamendo", "client_id").await?;
        let mut url = url::Url::parse(&format!("{}/{path}/", self.base)).map_err(|e| {
            JobError::permanent(
                code::INVALID_OPTIONS,
                format!("providers.jamendo.base_url: {e}"),
            )
        })?;
        url.query_pairs_mut()
            .append_pair("client_id", &client_id)
            .append_pair("format", "json")
            .extend_pairs(query);
        // The client id travels in the query (Jamendo's design): keep it out of messages.
        let hide = |m: String| m.replace(&client_id, "<client_id>");
        let (body, _) = fetch
            .call("jamendo", url.as_str(), MAX_ANSWER)
            .await
            .map_err(|e| match e {
                JobError::Permanent { code, message } => JobError::permanent(code, hide(message)),
                JobError::Transient {
                    code,
                    message,
                    retry_after,
                } => JobError::Transient {
                    code,
                    message: hide(message),
                    retry_after,
                },
                other => other,
            })?;
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| {
            JobError::transient(
                code::UPSTREAM_ERROR,
                format!("Jamendo answered with bad JSON: {e}"),
            )
        })?;
        if answer.headers.status != "success" {
            let msg = answer.headers.error_message.unwrap_or_default();
            // Codes 5 and 6 are about the client id (invalid, or not allowed).
            return Err(if matches!(answer.headers.code, 5 | 6) {
                JobError::permanent(
                    code::CREDENTIALS_REJECTED,
                    format!("Jamendo rejected the client id: {msg}"),
                )
            } else {
                JobError::permanent(
                    code::UPSTREAM_ERROR,
                    format!("Jamendo error {}: {msg}", answer.headers.code),
                )
            });
        }
        Ok(answer.results)
    }

    async fn one(
        &self,
        path: &str,
        id: &str,
        what: &str,
        fetch: &Fetcher,
    ) -> Result<serde_json::Value, JobError> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            return Err(JobError::permanent(
                code::VALIDATION_ERROR,
                format!("a Jamendo {what} id is a number, not `{id}`"),
            ));
        }
        self.call(path, &[("id", id)], fetch)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| JobError::permanent(code::NOT_FOUND, format!("no Jamendo {what} {id}")))
    }

    async fn album_tracks(&self, id: &str, fetch: &Fetcher) -> Result<Album, JobError> {
        let v = self.one("albums/tracks", id, "album", fetch).await?;
        serde_json::from_value(v)
            .map_err(|e| JobError::permanent(code::UPSTREAM_ERROR, format!("album {id}: {e}")))
    }

    /// An artist's name and albums, each with its tracks (release types need the count).
    async fn artist_albums(
        &self,
        id: &str,
        fetch: &Fetcher,
    ) -> Result<(Option<String>, Vec<Album>), JobError> {
        let v = self.one("artists/albums", id, "artist", fetch).await?;
        let name = v["name"].as_str().map(str::to_string);
        let mut albums = Vec::new();
        for a in v["albums"].as_array().cloned().unwrap_or_default() {
            let Some(aid) = a["id"]
                .as_str()
                .map(str::to_string)
                .or_else(|| a["id"].as_u64().map(|n| n.to_string()))
            else {
                continue;
            };
            albums.push(self.album_tracks(&aid, fetch).await?);
        }
        Ok((name, albums))
    }
}

#[derive(Deserialize)]
struct Answer {
    headers: Headers,
    #[serde(default)]
    results: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Headers {
    status: String,
    #[serde(default)]
    code: i64,
    error_message: Option<String>,
}

/// A number or a string of one, as the API sends either.
fn text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Track {
    #[serde(deserialize_with = "text")]
    id: String,
    name: String,
    artist_name: String,
    album_name: Option<String>,
    #[serde(deserialize_with = "text")]
    position: String,
    releasedate: Option<String>,
    album_image: Option<String>,
    image: Option<String>,
    audio: String,
    audiodownload: String,
    audiodownload_allowed: Option<bool>,
    license_ccurl: Option<String>,
    musicinfo: Option<MusicInfo>,
    /// Seconds, as a number or a string.
    duration: serde_json::Value,
}

impl Track {
    fn duration_ms(&self) -> Option<u64> {
        let secs = match &self.duration {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        };
        secs.filter(|s| *s > 0).map(|s| s * 1000)
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct MusicInfo {
    tags: Tags,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Tags {
    genres: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Album {
    #[serde(deserialize_with = "text")]
    id: String,
    name: String,
    artist_name: String,
    releasedate: Option<String>,
    image: Option<String>,
    tracks: Vec<Track>,
}

impl Track {
    /// Our track from Jamendo's, with album fields from `album` when the track lacks them.
    fn info(self, album: Option<&Album>, total: Option<u32>) -> TrackInfo {
        let duration_ms = self.duration_ms();
        let url = if self.audiodownload_allowed != Some(false) && !self.audiodownload.is_empty() {
            self.audiodownload
        } else {
            self.audio
        };
        let album_name = self.album_name.or_else(|| album.map(|a| a.name.clone()));
        let album_artist = album
            .map(|a| a.artist_name.clone())
            .filter(|a| !a.is_empty())
            .or_else(|| Some(self.artist_name.clone()));
        let artist = if self.artist_name.is_empty() {
            album.map(|a| a.artist_name.clone()).unwrap_or_default()
        } else {
            self.artist_name
        };
        TrackInfo {
            id: self.id,
            url,
            title: Some(self.name).filter(|n| !n.is_empty()),
            artists: vec![artist].into_iter().filter(|a| !a.is_empty()).collect(),
            album: album_name.filter(|n| !n.is_empty()),
            album_artist: album_artist.filter(|a| !a.is_empty()),
            track_number: self.position.parse().ok().filter(|n| *n > 0),
            track_total: total,
            date: self
                .releasedate
                .or_else(|| album.and_then(|a| a.releasedate.clone()))
                .filter(|d| !d.is_empty() && !d.starts_with("0000")),
            genres: self.musicinfo.map(|m| m.tags.genres).unwrap_or_default(),
            comment: self.license_ccurl.map(|l| format!("License: {l}")),
            cover_url: self
                .album_image
                .or(self.image)
                .or_else(|| album.and_then(|a| a.image.clone()))
                .filter(|u| !u.is_empty()),
            duration_ms,
            ..TrackInfo::default()
        }
    }
}

impl Album {
    fn release_type(&self) -> &'static str {
        if self.tracks.len() <= SINGLE_MAX_TRACKS {
            "single"
        } else {
            "album"
        }
    }

    fn into_tracks(mut self) -> Vec<TrackInfo> {
        let tracks = std::mem::take(&mut self.tracks);
        let total = Some(tracks.len() as u32);
        tracks
            .into_iter()
            .map(|t| t.info(Some(&self), total))
            .collect()
    }
}

#[async_trait::async_trait]
impl Provider for Jamendo {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: "jamendo",
            kinds: &["track", "album", "artist", "playlist"],
            description: "Jamendo (Creative Commons music) through its API v3; needs the credential `client_id`.",
        }
    }

    async fn resolve(&self, kind: &str, id: &str, fetch: &Fetcher) -> Result<Resolved, JobError> {
        match kind {
            "track" => {
                let v = self.one("tracks", id, "track", fetch).await?;
                let t: Track = serde_json::from_value(v).map_err(|e| {
                    JobError::permanent(code::UPSTREAM_ERROR, format!("track {id}: {e}"))
                })?;
                Ok(Resolved::Track {
                    track: t.info(None, None),
                })
            }
            "album" => {
                let album = self.album_tracks(id, fetch).await?;
                Ok(Resolved::Collection {
                    collection: "album".into(),
                    title: Some(album.name.clone()),
                    tracks: album.into_tracks(),
                })
            }
            "artist" => {
                let (name, albums) = self.artist_albums(id, fetch).await?;
                let wanted = &fetch.release_types;
                let tracks = albums
                    .into_iter()
                    .filter(|a| wanted.is_empty() || wanted.iter().any(|t| t == a.release_type()))
                    .flat_map(Album::into_tracks)
                    .collect();
                Ok(Resolved::Collection {
                    collection: "artist".into(),
                    title: name,
                    tracks,
                })
            }
            "playlist" => {
                let v = self.one("playlists/tracks", id, "playlist", fetch).await?;
                let name = v["name"].as_str().map(str::to_string);
                let raw: Vec<Track> =
                    serde_json::from_value(v["tracks"].clone()).unwrap_or_default();
                let tracks = raw.into_iter().map(|t| t.info(None, None)).collect();
                Ok(Resolved::Collection {
                    collection: "playlist".into(),
                    title: name,
                    tracks,
                })
            }
            other => Err(JobError::permanent(
                code::VALIDATION_ERROR,
                format!("jamendo has no kind `{other}`"),
            )),
        }
    }

    async fn search(
        &self,
        query: &str,
        kind: &str,
        limit: u32,
        offset: u32,
        fetch: &Fetcher,
    ) -> Option<Result<Vec<SearchItem>, JobError>> {
        let path = match kind {
            "track" => "tracks",
            "album" => "albums",
            "artist" => "artists",
            "playlist" => "playlists",
            _ => return Some(Ok(Vec::new())),
        };
        let (limit, offset) = (limit.to_string(), offset.to_string());
        let key = if kind == "track" {
            "search"
        } else {
            "namesearch"
        };
        let q = [(key, query), ("limit", &limit), ("offset", &offset)];
        Some(self.call(path, &q, fetch).await.map(|results| {
            results
                .into_iter()
                .filter_map(|r| {
                    let id = r["id"]
                        .as_str()
                        .map(str::to_string)
                        .or_else(|| r["id"].as_u64().map(|n| n.to_string()))?;
                    Some(SearchItem {
                        provider: "jamendo".into(),
                        kind: kind.into(),
                        id,
                        title: r["name"].as_str().unwrap_or_default().to_string(),
                        artist: r["artist_name"].as_str().map(str::to_string),
                        date: r["releasedate"].as_str().map(str::to_string),
                        image_url: r["image"]
                            .as_str()
                            .or(r["album_image"].as_str())
                            .filter(|s| !s.is_empty())
                            .map(str::to_string),
                    })
                })
                .collect()
        }))
    }

    fn limits(&self) -> ProviderLimits {
        self.limits
    }

    async fn search_audio(
        &self,
        query: &AudioQuery,
        fetch: &Fetcher,
    ) -> Option<Result<Vec<Candidate>, JobError>> {
        if !query.songs {
            return Some(Ok(Vec::new()));
        }
        let q = [("search", query.text.as_str()), ("limit", "10")];
        Some(self.call("tracks", &q, fetch).await.map(|results| {
            results
                .into_iter()
                .filter_map(|r| serde_json::from_value::<Track>(r).ok())
                .filter_map(|t| {
                    let id = t.id.clone();
                    let duration_ms = t.duration_ms();
                    let info = t.info(None, None);
                    (!info.url.is_empty()).then(|| Candidate {
                        source: "jamendo".into(),
                        id,
                        url: info.url.clone(),
                        title: info.title.clone().unwrap_or_default(),
                        artists: info.artists.clone(),
                        album: info.album.clone(),
                        duration_ms,
                        explicit: None,
                        // Jamendo's tracks are the artists' own uploads.
                        official: true,
                        query: query.text.clone(),
                        score: 0.0,
                        reasons: Vec::new(),
                    })
                })
                .collect()
        }))
    }

    async fn discography(
        &self,
        artist: &str,
        fetch: &Fetcher,
    ) -> Option<Result<Discography, JobError>> {
        Some(
            self.artist_albums(artist, fetch)
                .await
                .map(|(name, albums)| {
                    let mut releases: Vec<Release> = albums
                        .iter()
                        .map(|a| Release {
                            kind: "album".into(),
                            id: a.id.clone(),
                            title: a.name.clone(),
                            release_type: a.release_type().into(),
                            date: a.releasedate.clone().filter(|d| !d.starts_with("0000")),
                            track_count: Some(a.tracks.len() as u32),
                            image_url: a.image.clone().filter(|u| !u.is_empty()),
                        })
                        .collect();
                    releases.sort_by(|a, b| b.date.cmp(&a.date));
                    Discography { name, releases }
                }),
        )
    }

    async fn status(&self, fetch: &Fetcher) -> Result<(), String> {
        match fetch.credential("jamendo", "client_id").await {
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}
