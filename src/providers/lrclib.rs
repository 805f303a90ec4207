//! LRCLIB (lrclib.net): lyrics by artist, title, album and duration (`GET /api/get`), no
//! key. Synced lyrics are LRC text (`[mm:ss.xx] line`); an instrumental has neither kind.
//! Lyrics are a bonus: a miss, a 404 or a failure leaves the track as it is.

use serde::{Deserialize, Serialize};

use super::Fetcher;
use crate::config::LrclibConfig;
use crate::failure::JobError;

/// What LRCLIB knows of a track's lyrics.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Lyrics {
    /// Plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain: Option<String>,
    /// LRC text with timestamps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced: Option<String>,
    /// LRCLIB marks the track instrumental.
    #[serde(default)]
    pub instrumental: bool,
}

/// LRCLIB's record (`/api/get`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    #[serde(default)]
    instrumental: bool,
    #[serde(default)]
    plain_lyrics: Option<String>,
    #[serde(default)]
    synced_lyrics: Option<String>,
}

/// What the search needs; LRCLIB matches the duration within about 2 s.
#[derive(Debug)]
pub struct Query<'a> {
    /// First artist.
    pub artist: &'a str,
    /// Title.
    pub title: &'a str,
    /// Album title.
    pub album: &'a str,
    /// Length in whole seconds.
    pub duration_s: u64,
}

/// Asks LRCLIB; `Ok(None)` when it has no such track (404).
pub async fn get(
    fetcher: &Fetcher,
    cfg: &LrclibConfig,
    q: &Query<'_>,
) -> Result<Option<Lyrics>, JobError> {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("artist_name", q.artist)
        .append_pair("track_name", q.title)
        .append_pair("album_name", q.album)
        .append_pair("duration", &q.duration_s.to_string())
        .finish();
    let req = musicd_media::request::Request {
        url: format!("{}/api/get?{query}", cfg.base_url.trim_end_matches('/')),
        follow: true,
        ..Default::default()
    };
    let a = fetcher
        .api("lrclib", "LRCLIB", req, 2 * 1024 * 1024)
        .await?;
    match a.status {
        200 => {
            let r: Record = super::parse_json("LRCLIB", &a.bytes)?;
            let keep = |s: Option<String>| s.filter(|t| !t.trim().is_empty());
            Ok(Some(Lyrics {
                plain: keep(r.plain_lyrics),
                synced: keep(r.synced_lyrics),
                instrumental: r.instrumental,
            }))
        }
        404 => Ok(None),
        s => Err(JobError::permanent(
            crate::failure::code::UPSTREAM_ERROR,
            format!("LRCLIB answered HTTP {s}"),
        )),
    }
}
