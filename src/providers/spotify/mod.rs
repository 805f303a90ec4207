//! `spotify`: the Spotify Web API as a catalog (tracks, albums, artists' albums by release
//! type, playlists); audio is found by matching. Catalog reads use a client-credentials token
//! (`client_id` and `client_secret` are stored credentials). Since February 2026 a
//! development-mode app reads a playlist's items only with a signed-in user's token: an admin
//! connects once (`POST /providers/spotify/connect`, Authorization Code with PKCE) and the
//! refresh token is kept in the vault as `spotify/refresh_token`. Playlists are read from
//! `/playlists/{id}/items` (entries carry `item`, the old `track` is read as a fallback);
//! every list is paged by offset to its end. A 401 refreshes the token once; a second 401 is
//! `credentials_rejected`.

mod auth;

use std::sync::Mutex;
use std::time::Instant;

use serde_json::Value;

use super::{
    Discography, Fetcher, Provider, ProviderInfo, ProviderLimits, Release, Resolved, TrackInfo,
    parse_json,
};
use crate::config::SpotifyConfig;
use crate::failure::{JobError, code};

/// Largest answer read.
const MAX_ANSWER: u64 = 8 * 1024 * 1024;
/// How upstream is named in messages.
const LABEL: &str = "Spotify";
/// Most items read from one list.
const MAX_ITEMS: usize = 20_000;
/// Scopes asked for when a user connects: reading their playlists.
pub const SCOPES: &str = "playlist-read-private playlist-read-collaborative";
/// Where an admin sets what this provider needs.
const SETUP: &str = "an admin stores the app's credentials with PUT /api/v1/credentials/spotify/client_id and …/client_secret";

/// Which token a call uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    /// The app's own (client credentials): the catalog.
    App,
    /// The connected user's (PKCE): playlists.
    User,
}

struct Token {
    value: String,
    until: Instant,
}

/// The Spotify catalog.
pub struct Spotify {
    base: String,
    accounts: String,
    market: String,
    limits: ProviderLimits,
    app: Mutex<Option<Token>>,
    user: Mutex<Option<Token>>,
}

impl Spotify {
    /// From its configuration.
    pub fn new(config: &SpotifyConfig) -> Self {
        Self {
            base: config.base_url.trim_end_matches('/').to_string(),
            accounts: config.accounts_url.trim_end_matches('/').to_string(),
            market: config.market.clone(),
            limits: ProviderLimits {
                requests_per_minute: Some(config.requests_per_minute).filter(|n| *n > 0),
                burst: Some(20),
                concurrency: None,
            },
            app: Mutex::new(None),
            user: Mutex::new(None),
        }
    }

    /// One GET of `path` with `who`'s token: a 401 asks for a new token once.
    async fn get(
        &self,
        who: Who,
        path: &str,
        query: &[(&str, String)],
        fetch: &Fetcher,
    ) -> Result<Value, JobError> {
        let mut url = url::Url::parse(&format!("{}/{path}", self.base)).map_err(|e| {
            JobError::permanent(
                code::INVALID_OPTIONS,
                format!("providers.spotify.base_url: {e}"),
            )
        })?;
        {
            let mut q = url.query_pairs_mut();
            q.extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
            if !self.market.is_empty() {
                q.append_pair("market", &self.market);
            }
        }
        if query.is_empty() && self.market.is_empty() {
            url.set_query(None);
        }
        for fresh in [false, true] {
            let token = self.token(who, fresh, fetch).await?;
            let req = musicd_media::request::Request {
                url: url.to_string(),
                headers: vec![("Authorization".into(), format!("Bearer {token}"))],
                ..Default::default()
            };
            let a = fetch.api("spotify", LABEL, req, MAX_ANSWER).await?;
            let message = || {
                serde_json::from_slice::<Value>(&a.bytes)
                    .ok()
                    .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                    .unwrap_or_default()
            };
            match a.status {
                200 => return parse_json(LABEL, &a.bytes),
                401 if !fresh => continue,
                401 => {
                    return Err(JobError::permanent(
                        code::CREDENTIALS_REJECTED,
                        format!("Spotify refused a fresh token ({}); {SETUP}", message()),
                    ));
                }
                403 if who == Who::User => {
                    return Err(JobError::permanent(
                        code::FORBIDDEN,
                        format!(
                            "Spotify refused `{path}` ({}): since February 2026 an app reads only playlists its connected account owns or collaborates on",
                            message()
                        ),
                    ));
                }
                404 => {
                    return Err(JobError::permanent(
                        code::NOT_FOUND,
                        format!("Spotify has no `{path}`"),
                    ));
                }
                s => {
                    return Err(JobError::permanent(
                        code::UPSTREAM_ERROR,
                        format!("Spotify answered HTTP {s} for `{path}`: {}", message()),
                    ));
                }
            }
        }
        unreachable!("the loop returns on its second pass")
    }

    /// Every item of a paging object at `path`, `limit` at a time by `offset`; `first` is a
    /// page already read (an album's embedded tracks).
    async fn all(
        &self,
        who: Who,
        path: &str,
        limit: usize,
        extra: &[(&str, String)],
        first: Option<Value>,
        fetch: &Fetcher,
    ) -> Result<Vec<Value>, JobError> {
        let mut items: Vec<Value> = Vec::new();
        let mut page = first;
        loop {
            let p = match page.take() {
                Some(p) => p,
                None => {
                    let mut q = vec![
                        ("limit", limit.to_string()),
                        ("offset", items.len().to_string()),
                    ];
                    q.extend(extra.iter().cloned());
                    self.get(who, path, &q, fetch).await?
                }
            };
            let got = p["items"].as_array().cloned().unwrap_or_default();
            let n = got.len();
            items.extend(got);
            let more = match p["total"].as_u64() {
                Some(t) => items.len() < t as usize,
                None => p["next"].is_string(),
            };
            if n == 0 || !more || items.len() >= MAX_ITEMS {
                return Ok(items);
            }
        }
    }

    async fn album(
        &self,
        id: &str,
        fetch: &Fetcher,
    ) -> Result<(Option<String>, Vec<TrackInfo>), JobError> {
        check_id(id, "album")?;
        let a = self
            .get(Who::App, &format!("albums/{id}"), &[], fetch)
            .await?;
        let raw = self
            .all(
                Who::App,
                &format!("albums/{id}/tracks"),
                50,
                &[],
                Some(a["tracks"].clone()),
                fetch,
            )
            .await?;
        let discs = raw.iter().filter_map(|t| t["disc_number"].as_u64()).max();
        let tracks = raw
            .iter()
            .map(|t| {
                let mut i = track_info(t, Some(&a));
                i.disc_total = discs.map(|d| d as u32);
                i
            })
            .collect();
        Ok((text(&a["name"]), tracks))
    }

    async fn releases(&self, id: &str, fetch: &Fetcher) -> Result<Discography, JobError> {
        check_id(id, "artist")?;
        let artist = self
            .get(Who::App, &format!("artists/{id}"), &[], fetch)
            .await?;
        let mut releases = Vec::new();
        // `album_group` is gone for development-mode apps: one listing per group says it.
        for group in ["album", "single", "compilation", "appears_on"] {
            let items = self
                .all(
                    Who::App,
                    &format!("artists/{id}/albums"),
                    10,
                    &[("include_groups", group.to_string())],
                    None,
                    fetch,
                )
                .await?;
            for a in items {
                let rid = text(&a["id"]).unwrap_or_default();
                if releases.iter().any(|r: &Release| r.id == rid) {
                    continue;
                }
                releases.push(Release {
                    kind: "album".into(),
                    id: rid,
                    title: text(&a["name"]).unwrap_or_default(),
                    release_type: group.into(),
                    date: text(&a["release_date"]),
                    track_count: a["total_tracks"].as_u64().map(|n| n as u32),
                    image_url: largest_image(&a["images"]),
                });
            }
        }
        releases.sort_by(|a, b| b.date.cmp(&a.date));
        Ok(Discography {
            name: text(&artist["name"]),
            releases,
        })
    }
}

fn check_id(id: &str, what: &str) -> Result<(), JobError> {
    if id.len() != 22 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(JobError::permanent(
            code::VALIDATION_ERROR,
            format!("a Spotify {what} id is 22 letters and digits, not `{id}`"),
        ));
    }
    Ok(())
}

fn text(v: &Value) -> Option<String> {
    v.as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The URL of the widest image of an `images` array.
fn largest_image(images: &Value) -> Option<String> {
    images
        .as_array()?
        .iter()
        .max_by_key(|i| i["width"].as_u64().unwrap_or(0))
        .and_then(|i| text(&i["url"]))
}

/// A Spotify track object (full, or simplified with its `album` given) as musicd's track.
fn track_info(t: &Value, album: Option<&Value>) -> TrackInfo {
    let album = if t["album"].is_object() {
        &t["album"]
    } else {
        album.unwrap_or(&Value::Null)
    };
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().filter_map(|x| text(&x["name"])).collect())
            .unwrap_or_default()
    };
    let local = t["is_local"].as_bool().unwrap_or(false);
    TrackInfo {
        id: text(&t["id"]).unwrap_or_default(),
        url: String::new(),
        title: text(&t["name"]),
        artists: names(&t["artists"]),
        album: text(&album["name"]),
        album_artist: names(&album["artists"]).first().cloned(),
        track_number: t["track_number"].as_u64().map(|n| n as u32),
        track_total: album["total_tracks"].as_u64().map(|n| n as u32),
        disc_number: t["disc_number"].as_u64().map(|n| n as u32),
        date: text(&album["release_date"]),
        genres: album["genres"]
            .as_array()
            .map(|g| g.iter().filter_map(text).collect())
            .unwrap_or_default(),
        cover_url: largest_image(&album["images"]),
        duration_ms: t["duration_ms"].as_u64(),
        isrc: text(&t["external_ids"]["isrc"]),
        explicit: t["explicit"].as_bool(),
        label: text(&album["label"]),
        unavailable: if local {
            Some("a local file on the playlist owner's device, not in Spotify's catalog".into())
        } else if t["is_playable"].as_bool() == Some(false) {
            Some("not playable on Spotify in this market".into())
        } else {
            None
        },
        ..TrackInfo::default()
    }
}

/// One playlist entry: its track, or why there is none.
fn playlist_entry(e: &Value, position: usize) -> TrackInfo {
    let item = if e["item"].is_object() {
        &e["item"]
    } else {
        &e["track"]
    };
    if !item.is_object() {
        return TrackInfo {
            id: format!("unavailable-{position}"),
            title: Some(format!("item {} of the playlist", position + 1)),
            unavailable: Some("Spotify no longer has this item (removed from its catalog)".into()),
            ..TrackInfo::default()
        };
    }
    if item["type"].as_str() == Some("episode") {
        let mut t = track_info(item, None);
        t.unavailable = Some("a podcast episode: add the podcast's RSS feed instead".into());
        return t;
    }
    let mut t = track_info(item, None);
    if e["is_local"].as_bool() == Some(true) && t.unavailable.is_none() {
        t.unavailable =
            Some("a local file on the playlist owner's device, not in Spotify's catalog".into());
    }
    if t.id.is_empty() {
        t.id = format!("local-{position}");
    }
    t
}

#[async_trait::async_trait]
impl Provider for Spotify {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: "spotify",
            kinds: &["track", "album", "playlist", "artist"],
            description: "Spotify's catalog (Web API): tracks, albums, playlists (a connected \
                          account), artists' releases; audio is matched from the audio sources. \
                          Needs the credentials `client_id` and `client_secret`.",
        }
    }

    fn is_catalog(&self) -> bool {
        true
    }

    async fn resolve(&self, kind: &str, id: &str, fetch: &Fetcher) -> Result<Resolved, JobError> {
        match kind {
            "track" => {
                check_id(id, "track")?;
                let t = self
                    .get(Who::App, &format!("tracks/{id}"), &[], fetch)
                    .await?;
                Ok(Resolved::Track {
                    track: track_info(&t, None),
                })
            }
            "album" => {
                let (title, tracks) = self.album(id, fetch).await?;
                Ok(Resolved::Collection {
                    collection: "album".into(),
                    title,
                    tracks,
                })
            }
            "playlist" => {
                check_id(id, "playlist")?;
                let p = self
                    .get(
                        Who::User,
                        &format!("playlists/{id}"),
                        &[("fields", "name,description".into())],
                        fetch,
                    )
                    .await?;
                let entries = self
                    .all(
                        Who::User,
                        &format!("playlists/{id}/items"),
                        50,
                        &[("additional_types", "track".into())],
                        None,
                        fetch,
                    )
                    .await?;
                Ok(Resolved::Collection {
                    collection: "playlist".into(),
                    title: text(&p["name"]),
                    tracks: entries
                        .iter()
                        .enumerate()
                        .map(|(i, e)| playlist_entry(e, i))
                        .collect(),
                })
            }
            "artist" => {
                let d = self.releases(id, fetch).await?;
                d.collect(&fetch.release_types, |album| async move {
                    Ok(self.album(&album, fetch).await?.1)
                })
                .await
            }
            other => Err(JobError::permanent(
                code::VALIDATION_ERROR,
                format!("spotify has no kind `{other}`"),
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
        Some(self.releases(artist, fetch).await)
    }

    async fn status(&self, fetch: &Fetcher) -> Result<(), String> {
        for name in ["client_id", "client_secret"] {
            fetch
                .credential("spotify", name)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playlist_entries_read_item_then_track_and_report_what_cannot_be_had() {
        let full = serde_json::json!({"id": "4uLU6hMCjMI75M1A2tKUQC", "name": "Song", "duration_ms": 215000,
            "explicit": true, "disc_number": 1, "track_number": 3, "external_ids": {"isrc": "GBAAA2600001"},
            "artists": [{"name": "Ann"}, {"name": "Bea"}],
            "album": {"name": "Record", "total_tracks": 10, "release_date": "2024-05-01",
                "artists": [{"name": "Ann"}], "images": [{"url": "s", "width": 64}, {"url": "l", "width": 640}]}});
        let t = playlist_entry(&serde_json::json!({"is_local": false, "item": full}), 0);
        assert_eq!(t.isrc.as_deref(), Some("GBAAA2600001"));
        assert_eq!(t.artists, vec!["Ann", "Bea"]);
        assert_eq!(t.cover_url.as_deref(), Some("l"));
        assert_eq!(t.label(), "Ann, Bea – Song");
        let old = playlist_entry(&serde_json::json!({"is_local": false, "track": full}), 1);
        assert_eq!(old.title.as_deref(), Some("Song"));
        let local = playlist_entry(
            &serde_json::json!({"is_local": true, "item": {"id": null, "name": "Mine", "is_local": true, "artists": [{"name": "Me"}]}}),
            2,
        );
        assert!(local.unavailable.is_some());
        assert_eq!(local.id, "local-2");
        let gone = playlist_entry(&serde_json::json!({"is_local": false, "item": null}), 3);
        assert!(gone.unavailable.is_some());
    }
}
