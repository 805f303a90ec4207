//! `musicbrainz`: the MusicBrainz web service (ws/2, JSON, no key) as a catalog: recordings,
//! releases, release groups (their first official release) and artists' release groups by
//! type; covers from the Cover Art Archive. It also adds MusicBrainz ids to other catalogs'
//! tracks whose ISRC it knows ([`MusicBrainz::enrich`]). Its rules: about one request a second
//! and a User-Agent that names the application and a contact (`providers.musicbrainz.contact`).

use serde_json::Value;

use super::{
    Discography, Fetcher, MbIds, Provider, ProviderInfo, ProviderLimits, Release, Resolved,
    TrackInfo, parse_json,
};
use crate::config::MusicBrainzConfig;
use crate::failure::{JobError, code};

/// Largest answer read.
const MAX_ANSWER: u64 = 8 * 1024 * 1024;
/// How upstream is named in messages.
const LABEL: &str = "MusicBrainz";
/// Release groups per browse page (its maximum).
const PAGE: usize = 100;

/// The MusicBrainz catalog.
pub struct MusicBrainz {
    base: String,
    covers: String,
    user_agent: String,
    enrich: bool,
    limits: ProviderLimits,
}

impl MusicBrainz {
    /// From its configuration.
    pub fn new(config: &MusicBrainzConfig) -> Self {
        let contact = if config.contact.trim().is_empty() {
            "a self-hosted musicd; set providers.musicbrainz.contact".to_string()
        } else {
            config.contact.trim().to_string()
        };
        Self {
            base: config.base_url.trim_end_matches('/').to_string(),
            covers: config.cover_art_url.trim_end_matches('/').to_string(),
            user_agent: format!("musicd/{} ( {contact} )", env!("CARGO_PKG_VERSION")),
            enrich: config.enrich,
            limits: ProviderLimits {
                requests_per_minute: Some(config.requests_per_minute).filter(|n| *n > 0),
                burst: Some(1),
                concurrency: None,
            },
        }
    }

    async fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
        fetch: &Fetcher,
    ) -> Result<Value, JobError> {
        let mut url = url::Url::parse(&format!("{}/{path}", self.base)).map_err(|e| {
            JobError::permanent(
                code::INVALID_OPTIONS,
                format!("providers.musicbrainz.base_url: {e}"),
            )
        })?;
        url.query_pairs_mut()
            .extend_pairs(query)
            .append_pair("fmt", "json");
        let req = musicd_media::request::Request {
            url: url.to_string(),
            headers: vec![
                ("User-Agent".into(), self.user_agent.clone()),
                ("Accept".into(), "application/json".into()),
            ],
            follow: true,
            ..Default::default()
        };
        let a = fetch.api("musicbrainz", LABEL, req, MAX_ANSWER).await?;
        match a.status {
            200 => parse_json(LABEL, &a.bytes),
            404 => Err(JobError::permanent(
                code::NOT_FOUND,
                format!("MusicBrainz has no `{path}`"),
            )),
            s => {
                let v: Value = serde_json::from_slice(&a.bytes).unwrap_or_default();
                Err(JobError::permanent(
                    code::UPSTREAM_ERROR,
                    format!(
                        "MusicBrainz answered HTTP {s} for `{path}`: {}",
                        v["error"].as_str().unwrap_or("")
                    ),
                ))
            }
        }
    }

    /// A release's tracks with the release's tags.
    async fn release(
        &self,
        id: &str,
        fetch: &Fetcher,
    ) -> Result<(Option<String>, Vec<TrackInfo>), JobError> {
        check_id(id)?;
        let r = self
            .get(
                &format!("release/{id}"),
                &[(
                    "inc",
                    "recordings+artist-credits+labels+isrcs+release-groups",
                )],
                fetch,
            )
            .await?;
        let cover = r["cover-art-archive"]["front"]
            .as_bool()
            .unwrap_or(false)
            .then(|| format!("{}/release/{id}/front", self.covers));
        let media = r["media"].as_array().cloned().unwrap_or_default();
        let discs = media.len() as u32;
        let mut tracks = Vec::new();
        for m in &media {
            for t in m["tracks"].as_array().into_iter().flatten() {
                let rec = &t["recording"];
                let credit = if t["artist-credit"].is_array() {
                    &t["artist-credit"]
                } else {
                    &rec["artist-credit"]
                };
                tracks.push(TrackInfo {
                    id: text(&rec["id"]).unwrap_or_default(),
                    title: text(&t["title"]).or_else(|| text(&rec["title"])),
                    artists: names(credit),
                    album: text(&r["title"]),
                    album_artist: Some(credit_line(&r["artist-credit"])).filter(|s| !s.is_empty()),
                    track_number: t["position"].as_u64().map(|n| n as u32),
                    track_total: m["track-count"].as_u64().map(|n| n as u32),
                    disc_number: m["position"].as_u64().map(|n| n as u32),
                    disc_total: Some(discs),
                    date: text(&r["date"]),
                    cover_url: cover.clone(),
                    duration_ms: t["length"].as_u64().or(rec["length"].as_u64()),
                    isrc: rec["isrcs"]
                        .as_array()
                        .and_then(|i| i.first())
                        .and_then(text),
                    label: r["label-info"]
                        .as_array()
                        .and_then(|l| l.first())
                        .and_then(|l| text(&l["label"]["name"])),
                    musicbrainz: MbIds {
                        recording: text(&rec["id"]),
                        release: Some(id.to_string()),
                        release_group: text(&r["release-group"]["id"]),
                        artist: credit
                            .as_array()
                            .and_then(|c| c.first())
                            .and_then(|c| text(&c["artist"]["id"])),
                        track: text(&t["id"]),
                    },
                    ..TrackInfo::default()
                });
            }
        }
        Ok((text(&r["title"]), tracks))
    }

    /// The release to take for a release group: its first official one by date.
    async fn group_release(&self, id: &str, fetch: &Fetcher) -> Result<String, JobError> {
        check_id(id)?;
        let g = self
            .get(
                &format!("release-group/{id}"),
                &[("inc", "releases")],
                fetch,
            )
            .await?;
        let mut releases: Vec<&Value> = g["releases"]
            .as_array()
            .map(|r| r.iter().collect())
            .unwrap_or_default();
        releases.sort_by_key(|r| {
            (
                r["status"].as_str() != Some("Official"),
                text(&r["date"]).unwrap_or_else(|| "9999".into()),
            )
        });
        releases
            .first()
            .and_then(|r| text(&r["id"]))
            .ok_or_else(|| {
                JobError::permanent(
                    code::NOT_FOUND,
                    format!("the MusicBrainz release group {id} has no release"),
                )
            })
    }

    async fn groups(&self, artist: &str, fetch: &Fetcher) -> Result<Discography, JobError> {
        check_id(artist)?;
        let a = self.get(&format!("artist/{artist}"), &[], fetch).await?;
        let mut releases = Vec::new();
        loop {
            let offset = releases.len().to_string();
            let limit = PAGE.to_string();
            let page = self
                .get(
                    "release-group",
                    &[("artist", artist), ("limit", &limit), ("offset", &offset)],
                    fetch,
                )
                .await?;
            let got = page["release-groups"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let n = got.len();
            releases.extend(got.iter().map(|g| Release {
                kind: "release-group".into(),
                id: text(&g["id"]).unwrap_or_default(),
                title: text(&g["title"]).unwrap_or_default(),
                release_type: release_type(g).into(),
                date: text(&g["first-release-date"]),
                track_count: None,
                image_url:
                    text(&g["id"]).map(|id| format!("{}/release-group/{id}/front", self.covers)),
            }));
            let total = page["release-group-count"].as_u64().unwrap_or(0) as usize;
            if n == 0 || releases.len() >= total {
                break;
            }
        }
        releases.sort_by(|a, b| b.date.cmp(&a.date));
        Ok(Discography {
            name: text(&a["name"]),
            releases,
        })
    }

    /// Adds MusicBrainz ids to a track whose ISRC MusicBrainz knows. Best effort: a track
    /// is never failed for it.
    pub async fn enrich(&self, t: &mut TrackInfo, fetch: &Fetcher) {
        let Some(isrc) = t
            .isrc
            .clone()
            .filter(|_| self.enrich && t.musicbrainz.recording.is_none())
        else {
            return;
        };
        match self
            .get(&format!("isrc/{isrc}"), &[("inc", "artist-credits")], fetch)
            .await
        {
            Ok(v) => {
                if let Some(rec) = v["recordings"].as_array().and_then(|r| r.first()) {
                    t.musicbrainz.recording = text(&rec["id"]);
                    t.musicbrainz.artist = rec["artist-credit"]
                        .as_array()
                        .and_then(|c| c.first())
                        .and_then(|c| text(&c["artist"]["id"]));
                }
            }
            Err(e) => tracing::debug!(isrc, "no MusicBrainz ids: {e}"),
        }
    }
}

/// A release group's type as one of musicd's release types.
fn release_type(g: &Value) -> &'static str {
    let secondary: Vec<&str> = g["secondary-types"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if secondary.contains(&"Compilation") {
        return "compilation";
    }
    match g["primary-type"].as_str() {
        Some("Single" | "EP") => "single",
        _ => "album",
    }
}

fn check_id(id: &str) -> Result<(), JobError> {
    uuid::Uuid::parse_str(id).map(|_| ()).map_err(|_| {
        JobError::permanent(
            code::VALIDATION_ERROR,
            format!("a MusicBrainz id is a UUID, not `{id}`"),
        )
    })
}

fn text(v: &Value) -> Option<String> {
    v.as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The artists' names of an `artist-credit` array.
fn names(credit: &Value) -> Vec<String> {
    credit
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|a| text(&a["name"]).or_else(|| text(&a["artist"]["name"])))
                .collect()
        })
        .unwrap_or_default()
}

/// An `artist-credit` array as one line, with its join phrases ("A feat. B").
fn credit_line(credit: &Value) -> String {
    credit
        .as_array()
        .map(|c| {
            c.iter()
                .map(|a| {
                    format!(
                        "{}{}",
                        a["name"].as_str().unwrap_or_default(),
                        a["joinphrase"].as_str().unwrap_or_default()
                    )
                })
                .collect::<String>()
        })
        .unwrap_or_default()
}

#[async_trait::async_trait]
impl Provider for MusicBrainz {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: "musicbrainz",
            kinds: &["recording", "release", "release-group", "artist", "track"],
            description: "MusicBrainz (no key): recordings, releases, release groups and artists' \
                          release groups; covers from the Cover Art Archive; audio is matched from \
                          the audio sources.",
        }
    }

    fn is_catalog(&self) -> bool {
        true
    }

    async fn resolve(&self, kind: &str, id: &str, fetch: &Fetcher) -> Result<Resolved, JobError> {
        match kind {
            "recording" | "track" => {
                check_id(id)?;
                let r = self
                    .get(
                        &format!("recording/{id}"),
                        &[("inc", "artist-credits+releases+isrcs")],
                        fetch,
                    )
                    .await?;
                let release = r["releases"].as_array().and_then(|a| a.first());
                let track = TrackInfo {
                    id: id.to_string(),
                    title: text(&r["title"]),
                    artists: names(&r["artist-credit"]),
                    album: release.and_then(|x| text(&x["title"])),
                    date: text(&r["first-release-date"]),
                    duration_ms: r["length"].as_u64(),
                    isrc: r["isrcs"].as_array().and_then(|i| i.first()).and_then(text),
                    musicbrainz: MbIds {
                        recording: Some(id.to_string()),
                        release: release.and_then(|x| text(&x["id"])),
                        artist: r["artist-credit"]
                            .as_array()
                            .and_then(|c| c.first())
                            .and_then(|c| text(&c["artist"]["id"])),
                        ..MbIds::default()
                    },
                    ..TrackInfo::default()
                };
                Ok(Resolved::Track { track })
            }
            "release" | "release-group" => {
                let release = if kind == "release" {
                    id.to_string()
                } else {
                    self.group_release(id, fetch).await?
                };
                let (title, tracks) = self.release(&release, fetch).await?;
                Ok(Resolved::Collection {
                    collection: "album".into(),
                    title,
                    tracks,
                })
            }
            "artist" => {
                let d = self.groups(id, fetch).await?;
                d.collect(&fetch.release_types, |group| async move {
                    let release = self.group_release(&group, fetch).await?;
                    Ok(self.release(&release, fetch).await?.1)
                })
                .await
            }
            other => Err(JobError::permanent(
                code::VALIDATION_ERROR,
                format!("musicbrainz has no kind `{other}`"),
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
        Some(self.groups(artist, fetch).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_groups_map_to_release_types_and_credits_read_as_lines() {
        assert_eq!(
            release_type(&serde_json::json!({"primary-type": "EP", "secondary-types": []})),
            "single"
        );
        assert_eq!(
            release_type(
                &serde_json::json!({"primary-type": "Album", "secondary-types": ["Compilation"]})
            ),
            "compilation"
        );
        assert_eq!(
            release_type(&serde_json::json!({"primary-type": "Album"})),
            "album"
        );
        let c = serde_json::json!([{"name": "Ann", "joinphrase": " feat. "}, {"name": "Bea", "joinphrase": ""}]);
        assert_eq!(credit_line(&c), "Ann feat. Bea");
        assert_eq!(names(&c), vec!["Ann", "Bea"]);
    }
}
