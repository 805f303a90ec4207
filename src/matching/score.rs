//! Scoring one audio candidate against a catalog track, from 0 to 100, with the reasons in
//! words. Pure: no I/O, so it is tested on its own and its cost per track is measured.
//!
//! - Length first: a candidate more than max(7 s, 5 %) off the catalog's length is rejected
//!   outright (a lyric video with a long intro, a sped-up edit); closer is better (25).
//! - Title similarity after normalising both (case, punctuation, diacritics, `feat.`/`ft.`/
//!   `with` clauses, `Remastered 2011`-style and `Official Video`-style parts) (35).
//! - Artist overlap: the first artist must be there (25); a wholly different artist is −40.
//! - Album (5), an official upload (10: a YouTube Music song, a Topic channel).
//! - Penalties: variant words the catalog title does not have (live, remix, cover, …: −30),
//!   explicit/clean disagreement (−15), a remaster on one side only (−5).

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::providers::{Candidate, TrackInfo};

/// Variant words: a candidate whose title or album has one that the catalog's title and album
/// lack is another recording (or an edit of it).
const VARIANTS: &[&str] = &[
    "live",
    "remix",
    "cover",
    "instrumental",
    "karaoke",
    "acoustic",
    "sped up",
    "speed up",
    "slowed",
    "reverb",
    "nightcore",
    "8d",
    "edit",
    "extended",
    "demo",
    "mashup",
    "bass boosted",
];

/// Bracketed or dashed parts that say nothing about the recording.
const NOISE: &[&str] = &[
    "official",
    "video",
    "audio",
    "lyric",
    "lyrics",
    "visualizer",
    "visualiser",
    "hd",
    "hq",
    "4k",
    "mv",
    "m v",
    "explicit",
    "remaster",
    "remastered",
    "version",
    "original",
    "mix",
    "stereo",
    "mono",
];

/// Lower case, diacritics removed, punctuation as spaces, spaces collapsed. Letters of every
/// script are kept, so non-Latin titles compare in their own script.
pub fn normalize(s: &str) -> String {
    let folded: String = s
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn words(s: &str) -> Vec<String> {
    normalize(s)
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Whether the normalised `hay` holds `phrase` (normalised) as whole words.
fn has_phrase(hay: &str, phrase: &str) -> bool {
    let hay = format!(" {} ", normalize(hay));
    hay.contains(&format!(" {} ", normalize(phrase)))
}

/// The markers that start a featured-artist clause.
const FEAT: &[&str] = &["feat.", "feat ", "ft.", "ft ", "featuring ", "with "];

/// A title without featured-artist clauses and without bracketed or dashed parts that are only
/// noise (`(Official Video)`, `- Remastered 2011`, `[Lyrics]`); variant parts stay.
pub fn core_title(title: &str) -> String {
    let lower = title.to_lowercase();
    let mut out = String::new();
    let mut rest = lower.as_str();
    // Bracketed parts: dropped when they are a feat. clause or only noise.
    while let Some(open) = rest.find(['(', '[', '{']) {
        out.push_str(&rest[..open]);
        let close_ch = match rest.as_bytes()[open] {
            b'(' => ')',
            b'[' => ']',
            _ => '}',
        };
        let inner_end = rest[open + 1..].find(close_ch).map(|i| open + 1 + i);
        let Some(end) = inner_end else {
            rest = &rest[open + 1..];
            continue;
        };
        let inner = &rest[open + 1..end];
        if !droppable(inner) {
            out.push(' ');
            out.push_str(inner);
            out.push(' ');
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    // Dashed suffixes: ` - Remastered 2011`, ` - Radio Edit` (the latter is kept: a variant).
    let mut parts: Vec<&str> = out.split(" - ").collect();
    while parts.len() > 1 && parts.last().is_some_and(|p| droppable(p)) {
        parts.pop();
    }
    let joined = parts.join(" - ");
    // An unbracketed feat. clause runs to the end.
    let cut = FEAT
        .iter()
        .filter_map(|f| joined.find(&format!(" {f}")))
        .min()
        .unwrap_or(joined.len());
    normalize(&joined[..cut])
}

/// A bracketed or dashed part that can go: a feat. clause, or only noise words and years.
fn droppable(part: &str) -> bool {
    let p = part.trim().to_lowercase();
    if FEAT.iter().any(|f| p.starts_with(f.trim_end())) {
        return true;
    }
    let ws = words(&p);
    !ws.is_empty()
        && ws.iter().all(|w| {
            NOISE.contains(&w.as_str()) || (w.len() == 4 && w.chars().all(|c| c.is_ascii_digit()))
        })
}

/// Similarity of two normalised strings, 0..1: the better of edit distance and word overlap.
fn similarity(a: &str, b: &str) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let lev = strsim::normalized_levenshtein(a, b);
    let wa: std::collections::HashSet<&str> = a.split(' ').collect();
    let wb: std::collections::HashSet<&str> = b.split(' ').collect();
    let common = wa.intersection(&wb).count() as f64;
    let overlap = common / wa.len().max(wb.len()) as f64;
    lev.max(overlap)
}

/// Artist names as a source writes them, split on `,`, `&`, `feat.`, ` x `, ` and `, without a
/// ` - Topic` or `VEVO` suffix.
fn split_artists(names: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for n in names {
        let mut s = format!(" {} ", n.to_lowercase());
        for sep in [
            " feat. ",
            " feat ",
            " ft. ",
            " ft ",
            " featuring ",
            " with ",
            " x ",
            " and ",
            "&",
            ",",
            ";",
            "/",
        ] {
            s = s.replace(sep, "|");
        }
        for part in s.split('|') {
            let part = part.trim();
            let part = part.strip_suffix(" - topic").unwrap_or(part);
            let part = part.strip_suffix("vevo").unwrap_or(part);
            let p = normalize(part);
            if !p.is_empty() {
                out.push(p);
            }
        }
    }
    out
}

/// How well one artist name is found among `pool` (also as words of `title`), 0..1.
fn artist_found(artist: &str, pool: &[String], title: &str) -> f64 {
    let a = normalize(artist);
    if a.is_empty() {
        return 0.0;
    }
    let in_title = if has_phrase(title, &a) { 1.0 } else { 0.0 };
    pool.iter()
        .map(|p| {
            if p == &a || p.contains(&a) && a.len() >= 3 {
                1.0
            } else {
                strsim::normalized_levenshtein(p, &a)
            }
        })
        .fold(in_title, f64::max)
}

fn mmss(ms: u64) -> String {
    let s = ms / 1000;
    format!("{}:{:02}", s / 60, s % 60)
}

/// Longest distance from the catalog's length that a candidate may have: max(7 s, 5 %).
pub fn tolerance_ms(catalog_ms: u64) -> u64 {
    7_000u64.max(catalog_ms / 20)
}

/// Scores `c` against `t`: sets `c.score` and `c.reasons`.
pub fn score(t: &TrackInfo, c: &mut Candidate) {
    let mut reasons = Vec::new();
    let mut total = 0.0;
    // Length.
    match (t.duration_ms, c.duration_ms) {
        (Some(want), Some(got)) => {
            let diff = want.abs_diff(got);
            let tol = tolerance_ms(want);
            if diff > tol {
                reasons.push(format!(
                    "length {} is {} s off the catalog's {}: rejected",
                    mmss(got),
                    diff / 1000,
                    mmss(want)
                ));
                c.score = 0.0;
                c.reasons = reasons;
                return;
            }
            let r = diff as f64 / tol as f64;
            total += 25.0 * (1.0 - r * r);
            reasons.push(format!("length {} vs {}", mmss(got), mmss(want)));
        }
        _ => {
            total += 10.0;
            reasons.push("length unknown".into());
        }
    }
    // Title.
    let catalog_title = t.title.clone().unwrap_or_default();
    let mut cand_title = core_title(&c.title);
    let want_title = core_title(&catalog_title);
    // A video's title often starts with the artist (`Artist - Title`): take it off.
    for a in &t.artists {
        let na = normalize(a);
        if !na.is_empty()
            && !want_title.starts_with(&na)
            && cand_title.starts_with(&format!("{na} "))
        {
            cand_title = cand_title[na.len()..].trim().to_string();
        }
    }
    let title_sim = similarity(&want_title, &cand_title);
    total += 35.0 * title_sim;
    reasons.push(format!("title {:.0} % alike", title_sim * 100.0));
    // Artists.
    let pool = split_artists(&c.artists);
    if let Some(first) = t.artists.first() {
        let first_found = artist_found(first, &pool, &c.title);
        let others = &t.artists[1..];
        let others_found = if others.is_empty() {
            first_found
        } else {
            others
                .iter()
                .map(|a| artist_found(a, &pool, &c.title))
                .sum::<f64>()
                / others.len() as f64
        };
        total += 25.0 * (0.75 * first_found + 0.25 * others_found);
        if first_found < 0.6 {
            total -= 40.0;
            reasons.push(format!("artist differs: {}", c.artists.join(", ")));
        } else {
            reasons.push("artist matches".into());
        }
    }
    // Album.
    if let (Some(a), Some(b)) = (&t.album, &c.album)
        && similarity(&core_title(a), &core_title(b)) >= 0.8
    {
        total += 5.0;
        reasons.push("album matches".into());
    }
    if c.official {
        total += 10.0;
        reasons.push("official upload".into());
    }
    // Variants the catalog does not name.
    let catalog_text = format!("{} {}", catalog_title, t.album.clone().unwrap_or_default());
    let cand_text = format!("{} {}", c.title, c.album.clone().unwrap_or_default());
    for v in VARIANTS {
        if has_phrase(&cand_text, v) && !has_phrase(&catalog_text, v) {
            total -= 30.0;
            reasons.push(format!("says `{v}`, the catalog's title does not"));
        }
    }
    if let (Some(want), Some(got)) = (t.explicit, c.explicit)
        && want != got
    {
        total -= 15.0;
        reasons.push(
            if want {
                "clean version; the catalog's is explicit"
            } else {
                "explicit version; the catalog's is clean"
            }
            .into(),
        );
    }
    let remaster = |s: &str| has_phrase(s, "remaster") || has_phrase(s, "remastered");
    if remaster(&cand_text) != remaster(&catalog_text) {
        total -= 5.0;
        reasons.push("remaster on one side only".into());
    }
    c.score = (total.clamp(0.0, 100.0) * 10.0).round() / 10.0;
    c.reasons = reasons;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(title: &str, artists: &[&str], secs: u64) -> TrackInfo {
        TrackInfo {
            title: Some(title.into()),
            artists: artists.iter().map(|a| a.to_string()).collect(),
            album: Some("The Album".into()),
            duration_ms: Some(secs * 1000),
            ..TrackInfo::default()
        }
    }

    fn cand(title: &str, artists: &[&str], secs: u64, official: bool) -> Candidate {
        Candidate {
            title: title.into(),
            artists: artists.iter().map(|a| a.to_string()).collect(),
            duration_ms: Some(secs * 1000),
            official,
            ..Candidate::default()
        }
    }

    fn scored(t: &TrackInfo, mut c: Candidate) -> f64 {
        score(t, &mut c);
        c.score
    }

    #[test]
    fn titles_normalise() {
        assert_eq!(core_title("Song (feat. B) - Remastered 2011"), "song");
        assert_eq!(core_title("Song [Official Video]"), "song");
        assert_eq!(core_title("Song ft. B & C"), "song");
        assert_eq!(core_title("Song (Live at Wembley)"), "song live at wembley");
        assert_eq!(core_title("Song - Radio Edit"), "song radio edit");
        assert_eq!(normalize("Beyoncé — Déjà Vu!"), "beyonce deja vu");
        assert_eq!(normalize("夜に駆ける"), "夜に駆ける");
    }

    #[test]
    fn the_right_recording_outscores_its_decoys() {
        let t = track("Midnight City", &["M83"], 244);
        let right = scored(&t, cand("Midnight City", &["M83"], 244, true));
        assert!(right >= 95.0, "{right}");
        for (what, decoy) in [
            ("live", cand("Midnight City (Live)", &["M83"], 250, true)),
            (
                "remix",
                cand("Midnight City (Eric Prydz Remix)", &["M83"], 246, true),
            ),
            (
                "cover",
                cand("Midnight City (Cover)", &["Some Band"], 240, false),
            ),
            (
                "another artist",
                cand("Midnight City", &["Someone Else"], 244, true),
            ),
            (
                "sped up",
                cand("Midnight City (Sped Up)", &["M83"], 238, false),
            ),
            (
                "long intro",
                cand(
                    "M83 - Midnight City (Lyric Video)",
                    &["Lyrics Hub"],
                    300,
                    false,
                ),
            ),
        ] {
            let s = scored(&t, decoy);
            assert!(s < 70.0, "{what} scored {s}");
        }
        let video = scored(
            &t,
            cand(
                "M83 - Midnight City (Official Video)",
                &["M83VEVO"],
                243,
                false,
            ),
        );
        assert!(video >= 70.0, "the official video scored {video}");
    }

    #[test]
    fn featuring_is_written_many_ways() {
        let t = track("Song (feat. Bea)", &["Ann", "Bea"], 200);
        for title in [
            "Song (ft. Bea)",
            "Song featuring Bea",
            "Song (with Bea)",
            "Song",
        ] {
            let s = scored(&t, cand(title, &["Ann & Bea"], 201, true));
            assert!(s >= 90.0, "{title}: {s}");
        }
    }

    #[test]
    fn explicit_and_remaster_prefer_the_same_version() {
        let mut t = track("Song", &["Ann"], 200);
        t.explicit = Some(true);
        let mut clean = cand("Song", &["Ann"], 200, true);
        clean.explicit = Some(false);
        let mut dirty = clean.clone();
        dirty.explicit = Some(true);
        assert!(scored(&t, dirty) > scored(&t, clean));
        let t = track("Song", &["Ann"], 200);
        assert!(
            scored(&t, cand("Song", &["Ann"], 200, true))
                > scored(&t, cand("Song (Remastered 2011)", &["Ann"], 200, true))
        );
    }
}
