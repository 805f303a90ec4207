//! A track's lyrics (`media.lyrics`): found on LRCLIB while the audio is fetched (io pool),
//! written into the lyrics tag of the temp file before placement, and, when LRCLIB has timed
//! lyrics and the mode is `synced`, as an `.lrc` file beside the placed track (what Navidrome
//! and Jellyfin read), itself written to a temp file and renamed.

use std::path::Path;

use super::JobCtx;
use super::track::TrackOptions;
use crate::config::Config;
use crate::providers::lrclib::{self, Lyrics};

/// Looks the track up on LRCLIB; `None` when lyrics are off, the track is an episode or has
/// no title or artist, or LRCLIB has nothing or fails (logged).
pub async fn find(ctx: &JobCtx, opts: &TrackOptions, audio: &Path) -> Option<Lyrics> {
    let config = &ctx.shared.config;
    if config.media.lyrics == "off" || opts.provider == "podcast" {
        return None;
    }
    let mut t = opts.track.clone();
    if opts.provider == "http" || t.title.is_none() || t.artists.is_empty() {
        // A direct URL names its song in the file's own tags (its file name is a fallback).
        let p = audio.to_path_buf();
        if let Ok(Ok(own)) =
            tokio::task::spawn_blocking(move || musicd_media::tags::read_tags(&p)).await
        {
            t.title = own.title.or(t.title);
            if !own.artists.is_empty() {
                t.artists = own.artists;
            }
            t.album = own.album.or(t.album);
        }
    }
    let title = t.title.as_deref()?;
    let artist = t.artists.first()?;
    let duration_s = match t.duration_ms {
        Some(ms) => ms / 1000,
        None => {
            let p = audio.to_path_buf();
            tokio::task::spawn_blocking(move || musicd_media::tags::read_duration(&p))
                .await
                .ok()?
                .ok()?
                .as_secs()
        }
    };
    let fetcher = crate::providers::Fetcher::new(
        ctx.shared.env.clone(),
        audio.parent()?.to_path_buf(),
        ctx.stop.clone(),
    );
    let q = lrclib::Query {
        artist,
        title,
        album: t.album.as_deref().unwrap_or(title),
        duration_s,
    };
    let cfg = &config.providers.lrclib;
    match tokio::time::timeout(cfg.timeout, lrclib::get(&fetcher, cfg, &q)).await {
        Ok(Ok(found)) => {
            if found.is_none() {
                tracing::info!(task_id = ctx.task.id, "LRCLIB has no lyrics for this track");
            }
            found
        }
        Ok(Err(e)) => {
            tracing::info!(task_id = ctx.task.id, "lyrics not fetched: {e}");
            None
        }
        Err(_) => {
            tracing::info!(
                task_id = ctx.task.id,
                "lyrics not fetched: LRCLIB did not answer in time"
            );
            None
        }
    }
}

/// Puts the plain lyrics in the tags; an instrumental gets the language `zxx` ("no
/// linguistic content") and no lyrics.
pub fn tag(config: &Config, lyrics: Option<&Lyrics>, meta: &mut musicd_media::TrackMeta) {
    let Some(l) = lyrics.filter(|_| config.media.lyrics != "off") else {
        return;
    };
    if l.instrumental {
        meta.language = Some("zxx".into());
        return;
    }
    let plain = l
        .plain
        .clone()
        .or_else(|| l.synced.as_deref().map(strip_times));
    if plain.is_some() {
        meta.lyrics = plain;
    }
}

/// Writes `<track>.lrc` beside the placed file (mode `synced`, timed lyrics found). A failure
/// is logged: the track is placed and stays.
pub fn write_lrc(config: &Config, lyrics: Option<&Lyrics>, placed: &Path) {
    if config.media.lyrics != "synced" {
        return;
    }
    let Some(synced) = lyrics
        .filter(|l| !l.instrumental)
        .and_then(|l| l.synced.as_deref())
    else {
        return;
    };
    let dest = placed.with_extension("lrc");
    let Some(name) = dest.file_name() else {
        return;
    };
    let tmp = dest.with_file_name(format!(".{}.part", name.to_string_lossy()));
    let written =
        std::fs::write(&tmp, synced.as_bytes()).and_then(|()| std::fs::rename(&tmp, &dest));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        tracing::warn!("cannot write {}: {e}", dest.display());
    }
}

/// LRC text without its `[mm:ss.xx]` times.
fn strip_times(lrc: &str) -> String {
    lrc.lines()
        .map(|l| {
            let mut rest = l;
            while rest.starts_with('[') {
                match rest.find(']') {
                    Some(i) => rest = &rest[i + 1..],
                    None => break,
                }
            }
            rest.trim()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_come_off() {
        assert_eq!(
            super::strip_times("[00:01.00] One\n[00:02.50][00:09.00]Two"),
            "One\nTwo"
        );
    }
}
