//! yt-dlp's JSON (`--dump-single-json --flat-playlist`) mapped to tracks and collections,
//! in source order.

use super::*;
use crate::failure::code;

pub(super) fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)?
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

pub(super) fn texts(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A list yt-dlp joined with `", "`.
pub(super) fn split_list(s: &str) -> Vec<String> {
    s.split(", ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `YYYYMMDD` → `YYYY-MM-DD`.
pub(super) fn ymd(s: &str) -> Option<String> {
    (s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{}-{}-{}", &s[..4], &s[4..6], &s[6..]))
}

pub(super) fn http_url(s: &str) -> Option<String> {
    check_id(s).ok().map(|u| u.to_string())
}

/// One track from a yt-dlp info dict or flat playlist entry; `None` without a usable URL.
pub(super) fn track_from(v: &Value, page: Option<&str>) -> Option<TrackInfo> {
    let url = ["webpage_url", "url", "original_url"]
        .iter()
        .filter_map(|k| text(v, k))
        .chain(page)
        .find_map(http_url)?;
    // The generic extractors' ids are file names, not identities.
    let generic = matches!(
        text(v, "extractor_key").or(text(v, "ie_key")),
        Some("Generic" | "HTML5MediaEmbed")
    );
    let id = match v.get("id") {
        _ if generic => url.clone(),
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => url.clone(),
    };
    let mut artists = texts(v, "artists");
    for key in ["artist", "creators", "creator", "uploader", "channel"] {
        if !artists.is_empty() {
            break;
        }
        artists = match key {
            "creators" => texts(v, key),
            "artist" | "creator" => text(v, key).map(split_list).unwrap_or_default(),
            _ => text(v, key)
                .map(|s| vec![s.to_string()])
                .unwrap_or_default(),
        };
    }
    let mut genres = texts(v, "genres");
    if genres.is_empty() {
        genres = text(v, "genre").map(split_list).unwrap_or_default();
    }
    let date = ["release_date", "upload_date"]
        .iter()
        .filter_map(|k| text(v, k))
        .find_map(ymd)
        .or_else(|| {
            v.get("release_year")
                .and_then(Value::as_u64)
                .filter(|y| (1000..=9999).contains(y))
                .map(|y| y.to_string())
        });
    let cover_url = text(v, "thumbnail").and_then(http_url).or_else(|| {
        v.get("thumbnails")?
            .as_array()?
            .iter()
            .rev()
            .filter_map(|t| text(t, "url"))
            .find_map(http_url)
    });
    let album_artists = texts(v, "album_artists");
    Some(TrackInfo {
        id,
        title: text(v, "track")
            .or_else(|| text(v, "title"))
            .map(str::to_string)
            .or_else(|| crate::providers::url_stem(&url)),
        url,
        artists,
        album: text(v, "album").map(str::to_string),
        album_artist: text(v, "album_artist")
            .map(str::to_string)
            .or_else(|| (!album_artists.is_empty()).then(|| album_artists.join(", "))),
        track_number: v
            .get("track_number")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok()),
        track_total: None,
        date,
        genres,
        comment: text(v, "description")
            .map(|d| d.chars().take(MAX_COMMENT_CHARS).collect::<String>())
            .map(|d| d.trim().to_string()),
        cover_url,
        duration_ms: v
            .get("duration")
            .and_then(Value::as_f64)
            .filter(|d| *d > 0.0)
            .map(|d| (d * 1000.0).round() as u64),
        ..TrackInfo::default()
    })
}

/// Entries of a playlist dict in source order, nested playlists flattened.
pub(super) fn entries<'a>(v: &'a Value, depth: u8, out: &mut Vec<&'a Value>) {
    for e in v
        .get("entries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if e.get("entries").is_some_and(Value::is_array) && depth < 4 {
            entries(e, depth + 1, out);
        } else if e.is_object() {
            out.push(e);
        }
    }
}

/// Whether a playlist dict is a channel or uploader page.
pub(super) fn is_channel(v: &Value) -> bool {
    let id = text(v, "id");
    id.is_some() && (id == text(v, "channel_id") || id == text(v, "uploader_id"))
        || text(v, "extractor_key")
            .is_some_and(|k| k.ends_with("User") || k.ends_with("Channel") || k.ends_with("Artist"))
}

/// Maps yt-dlp's `--dump-single-json --flat-playlist` document to what `kind` asked for.
pub(super) fn to_resolved(kind: &str, v: &Value, page: &str) -> Result<Resolved, JobError> {
    let is_list =
        text(v, "_type") == Some("playlist") || v.get("entries").is_some_and(Value::is_array);
    if !is_list {
        let track = track_from(v, Some(page)).ok_or_else(|| {
            JobError::permanent(
                code::UPSTREAM_ERROR,
                format!("yt-dlp found no URL for {page}"),
            )
        })?;
        return Ok(match kind {
            "playlist" | "artist" => Resolved::Collection {
                collection: kind.to_string(),
                title: track.title.clone(),
                tracks: vec![track],
            },
            _ => Resolved::Track { track },
        });
    }
    if kind == "track" {
        return Err(JobError::permanent(
            code::VALIDATION_ERROR,
            format!("{page} is a playlist, not one track: ask for kind `playlist` or `url`"),
        ));
    }
    let collection = match kind {
        "artist" | "playlist" => kind,
        _ if is_channel(v) => "artist",
        _ => "playlist",
    };
    let owner = text(v, "uploader")
        .or_else(|| text(v, "channel"))
        .or_else(|| text(v, "artist"));
    let mut list = Vec::new();
    entries(v, 0, &mut list);
    let pages = [text(v, "webpage_url").and_then(http_url), http_url(page)];
    let tracks = list
        .into_iter()
        .filter_map(|e| Some((e, track_from(e, None)?)))
        .map(|(e, mut t)| {
            // Several media on one page (HTML5 `<audio>` elements) share the page's URL:
            // each is fetched by its own media URL instead.
            if pages.contains(&Some(t.url.clone()))
                && let Some(own) = text(e, "url").and_then(http_url)
            {
                if t.id == t.url {
                    t.id = own.clone();
                }
                t.url = own;
            }
            if collection == "artist"
                && t.artists.is_empty()
                && let Some(o) = owner
            {
                t.artists = vec![o.to_string()];
            }
            t
        })
        .collect();
    Ok(Resolved::Collection {
        collection: collection.to_string(),
        title: text(v, "title").map(str::to_string),
        tracks,
    })
}
