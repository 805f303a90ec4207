//! The fetch stage of a catalog track (Spotify, Deezer, MusicBrainz): the catalog says what
//! the track is, so this finds where its audio is. A track already in the library (same ISRC
//! or catalog id) is a skip before any search; a person's earlier choice for it is used
//! without searching; otherwise `matching` ranks candidates and the best ones above
//! `providers.match.min_score` are downloaded in turn until one's decoded length agrees with
//! the catalog's. Nothing sure enough ends the track `needs_review` with the ranked list.

use std::path::Path;

use super::track::{self, TrackOptions};
use super::{JobCtx, JobError, Outcome};
use crate::failure::code;
use crate::matching;
use crate::providers::{Candidate, Fetcher, Resolved, TrackInfo};

/// `provider:id`, the key of a person's choice for a catalog track.
pub fn catalog_key(opts: &TrackOptions) -> String {
    format!("{}:{}", opts.provider, opts.track.id)
}

/// Finds, downloads and checks the audio of a catalog track.
pub(super) async fn fetch(
    ctx: &JobCtx,
    mut opts: TrackOptions,
    dir: &Path,
) -> Result<Outcome, JobError> {
    let shared = &ctx.shared;
    let what = opts.track.label();
    if let Some(reason) = &opts.track.unavailable {
        return Err(JobError::permanent(
            code::UNAVAILABLE,
            format!("{what}: {reason}"),
        ));
    }
    let fetcher = Fetcher::new(shared.env.clone(), dir.to_path_buf(), ctx.stop.clone());
    complete(&mut opts, &fetcher).await;
    shared
        .providers
        .musicbrainz()
        .enrich(&mut opts.track, &fetcher)
        .await;
    // Already in the library (by ISRC or catalog id, from any catalog): no search at all.
    let meta = opts.track.meta(&opts.provider);
    if let Ok(Some(existing)) = crate::library::already_present(&shared.db, None, &meta).await {
        super::record_output(ctx, &existing.path).await?;
        return Ok(Outcome::Skipped(format!(
            "already in the library as {}",
            existing.path
        )));
    }
    ctx.progress("matching", 0.0).await?;
    let remembered = match (&opts.chosen, &ctx.task.owner_id) {
        (None, Some(owner)) => crate::db::matches::get(&shared.db, owner, &catalog_key(&opts))
            .await?
            .and_then(|j| serde_json::from_str::<Candidate>(&j).ok()),
        _ => None,
    };
    // A person's choice is downloaded as it is; a search's best are checked by length.
    let (tries, checked): (Vec<Candidate>, bool) = match opts.chosen.clone().or(remembered) {
        Some(c) => (vec![c], false),
        None => {
            let found = matching::find(&opts.track, &fetcher).await?;
            opts.queries = found.queries;
            if found.ranked.is_empty() {
                return Err(JobError::permanent(
                    code::NO_MATCH,
                    format!(
                        "no audio found for {what}; searched {}",
                        opts.queries.join("; ")
                    ),
                ));
            }
            let m = &shared.config.providers.matching;
            let sure: Vec<Candidate> = found
                .ranked
                .iter()
                .filter(|c| c.score >= m.min_score)
                .take(m.max_downloads as usize)
                .cloned()
                .collect();
            opts.candidates = found.ranked;
            if sure.is_empty() {
                let best = &opts.candidates[0];
                let why = format!(
                    "no candidate scored {} or more; the best, \"{}\" by {}, scored {}",
                    m.min_score,
                    best.title,
                    best.artists.join(", "),
                    best.score
                );
                return review(ctx, &opts, why).await;
            }
            (sure, true)
        }
    };
    let mut mismatched = Vec::new();
    for c in tries {
        let audio = TrackInfo {
            id: c.id.clone(),
            url: c.url.clone(),
            ..TrackInfo::default()
        };
        let source = match c.source.as_str() {
            // A link a person gave: yt-dlp understands pages and plain audio files alike.
            "url" => "ytdlp",
            s => s,
        };
        let file = track::download(ctx, source, &audio, dir).await?;
        if checked && let Some(want) = opts.track.duration_ms {
            let f = file.clone();
            let got = tokio::task::spawn_blocking(move || matching::measured_ms(&f))
                .await
                .map_err(|e| JobError::permanent(code::INTERNAL_ERROR, e.to_string()))?;
            let off = got.as_ref().ok().map(|g| g.abs_diff(want));
            if off.is_none_or(|off| off > matching::score::tolerance_ms(want)) {
                let _ = std::fs::remove_file(&file);
                let note = match got {
                    Ok(g) => format!(
                        "downloaded, but {} s long against the catalog's {} s",
                        g / 1000,
                        want / 1000
                    ),
                    Err(e) => format!("downloaded, but it does not decode: {e}"),
                };
                tracing::info!(task_id = ctx.task.id, candidate = c.id, "{note}");
                mismatched.push((c.id.clone(), note));
                continue;
            }
        }
        opts.track.url = c.url.clone();
        opts.matched = Some(c);
        return track::fetched(ctx, opts, dir, &file).await;
    }
    for (id, note) in &mismatched {
        if let Some(c) = opts.candidates.iter_mut().find(|c| &c.id == id) {
            c.reasons.push(note.clone());
        }
    }
    let why = format!(
        "{} candidate(s) downloaded, but none was as long as the catalog's track",
        mismatched.len()
    );
    review(ctx, &opts, why).await
}

/// Fills what a list left out (a Deezer playlist's tracks have no ISRC or numbers) from the
/// catalog's own track, when it has one. Best effort: the track is still matched without.
async fn complete(opts: &mut TrackOptions, fetch: &Fetcher) {
    if opts.track.isrc.is_some() || opts.track.id.is_empty() {
        return;
    }
    let Some(p) = fetch.env.providers.get(&opts.provider) else {
        return;
    };
    if !p.info().kinds.contains(&"track") {
        return;
    }
    match p.resolve("track", &opts.track.id, fetch).await {
        Ok(Resolved::Track { track: full }) => opts.track.fill_from(&full),
        Ok(_) => {}
        Err(e) => tracing::info!(track = opts.track.id, "catalog track not completed: {e}"),
    }
}

/// Ends the track `needs_review`, keeping its candidates for a person to pick from.
async fn review(ctx: &JobCtx, opts: &TrackOptions, why: String) -> Result<Outcome, JobError> {
    let json = serde_json::to_string(opts).unwrap_or_default();
    crate::db::tasks::set_options(&ctx.shared.db, &ctx.task.id, &json).await?;
    Ok(Outcome::NeedsReview(format!(
        "{}: {why}",
        opts.track.label()
    )))
}
