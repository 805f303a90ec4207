//! Matching a catalog track (Spotify, Deezer, MusicBrainz) to audio: the audio sources of
//! `providers.match.sources` are searched in order (by ISRC first, then `artist - title` among
//! songs, then among videos, then with the album), every candidate is scored
//! ([`score::score`]), and the search stops as soon as one is sure. The track job downloads the
//! best candidate above `providers.match.min_score`, checks the decoded length, and otherwise
//! ends the track `needs_review` with the ranked list.

pub mod score;

use std::path::Path;

use crate::failure::{JobError, code};
use crate::providers::{AudioQuery, Candidate, Fetcher, TrackInfo};

/// A score at which searching stops: nothing later would be chosen over it.
const SURE: f64 = 90.0;
/// Candidates kept for review.
const KEEP: usize = 10;

/// What a search found.
#[derive(Debug, Default)]
pub struct Found {
    /// Every candidate, best first.
    pub ranked: Vec<Candidate>,
    /// The searches made, as `source: words`.
    pub queries: Vec<String>,
}

/// Whether `s` looks like an ISRC (`CC-XXX-YY-NNNNN` without dashes).
fn is_isrc(s: &str) -> bool {
    s.len() == 12 && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The searches for a track, in order.
pub fn queries(t: &TrackInfo) -> Vec<AudioQuery> {
    let mut out = Vec::new();
    let title = t.title.clone().unwrap_or_default();
    if title.is_empty() {
        return out;
    }
    if let Some(isrc) = t.isrc.as_deref().filter(|i| is_isrc(i)) {
        out.push(AudioQuery {
            text: isrc.to_uppercase(),
            songs: true,
        });
    }
    let line = match t.artists.first() {
        Some(a) => format!("{a} - {title}"),
        None => title.clone(),
    };
    out.push(AudioQuery {
        text: line.clone(),
        songs: true,
    });
    out.push(AudioQuery {
        text: line,
        songs: false,
    });
    if let (Some(album), Some(a)) = (&t.album, t.artists.first())
        && album != &title
    {
        out.push(AudioQuery {
            text: format!("{a} {title} {album}"),
            songs: true,
        });
    }
    out
}

/// Searches the configured sources for `t` and ranks what they offer.
pub async fn find(t: &TrackInfo, fetch: &Fetcher) -> Result<Found, JobError> {
    let env = &fetch.env;
    let mut found = Found::default();
    let plan = queries(t);
    'sources: for name in &env.config.providers.matching.sources {
        let Some(source) = env.providers.get(name) else {
            continue;
        };
        for q in &plan {
            if name == "jamendo" && (!q.songs || is_isrc(&q.text)) {
                // Jamendo has no videos and no ISRC search.
                continue;
            }
            let Some(answer) = source.search_audio(q, fetch).await else {
                continue 'sources;
            };
            found.queries.push(format!(
                "{name}: {}{}",
                q.text,
                if q.songs { "" } else { " (videos)" }
            ));
            let items = match answer {
                Ok(items) => items,
                // A source that is not set up (Jamendo without its key) is passed over.
                Err(JobError::Permanent {
                    code: code::CREDENTIALS_MISSING,
                    ..
                }) => {
                    found.queries.pop();
                    continue 'sources;
                }
                Err(e) => return Err(e),
            };
            for mut c in items {
                score::score(t, &mut c);
                match found
                    .ranked
                    .iter_mut()
                    .find(|k| k.source == c.source && k.id == c.id)
                {
                    Some(k) if k.score >= c.score => {}
                    Some(k) => *k = c,
                    None => found.ranked.push(c),
                }
            }
            if found.ranked.iter().any(|c| c.score >= SURE) {
                break 'sources;
            }
        }
    }
    // Best first; ties keep the order found (songs before videos).
    found.ranked.sort_by(|a, b| {
        b.score
            .partial_cmp(&a.score)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    found.ranked.truncate(KEEP);
    Ok(found)
}

/// The decoded length of a downloaded file in milliseconds: from the container when it says,
/// else by decoding it whole.
pub fn measured_ms(path: &Path) -> Result<u64, JobError> {
    let decode = |e: musicd_media::PipelineError| crate::failure::pipeline_error(e);
    let mut d = musicd_media::decode::AudioDecoderStream::open(path).map_err(decode)?;
    let rate = u64::from(d.info().sample_rate.max(1));
    if let Some(frames) = d.info().total_frames.filter(|f| *f > 0) {
        return Ok(frames * 1000 / rate);
    }
    while d.next_chunk().map_err(decode)?.is_some() {}
    Ok(d.frames_out() * 1000 / rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_go_isrc_songs_videos_album() {
        let t = TrackInfo {
            title: Some("Song".into()),
            artists: vec!["Ann".into(), "Bea".into()],
            album: Some("Record".into()),
            isrc: Some("GBAYE0601498".into()),
            ..TrackInfo::default()
        };
        let q: Vec<(String, bool)> = queries(&t).into_iter().map(|q| (q.text, q.songs)).collect();
        assert_eq!(
            q,
            vec![
                ("GBAYE0601498".to_string(), true),
                ("Ann - Song".to_string(), true),
                ("Ann - Song".to_string(), false),
                ("Ann Song Record".to_string(), true),
            ]
        );
    }
}
