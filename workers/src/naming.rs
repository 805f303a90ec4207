//! Library paths from templates such as
//! `{albumartist|artist|Unknown Artist}/{album} ({year})/{disc}-{track:02} {title}.{ext}`.
//!
//! ## Syntax
//!
//! - `/` separates path components. Text outside braces is kept as written.
//! - `{field}` inserts a field: `title`, `artist` (all artists joined with `, `), `albumartist`,
//!   `album`, `track`, `tracktotal`, `disc`, `disctotal`, `year`, `date`, `genre`, `isrc`,
//!   `label`, `source_id`, `ext`.
//! - `{field:02}` zero-pads a number to the given width.
//! - `{a|b|Text}` tries `a`, then `b`; an alternative that is not a field name is literal
//!   text, so `{albumartist|artist|Unknown Artist}` ends in a fixed fallback. A missing field
//!   with no fallback renders as nothing.
//! - `{{` and `}}` are literal braces.
//!
//! Every rendered component is sanitized: `/`, `\`, NUL, control characters and
//! `< > : " | ? *` become `_`; leading dots and trailing dots and spaces are removed; `.` and
//! `..` and empty components become `_`; Windows device names (`CON`, `NUL`, `COM1`, …) get a
//! `_` prefix; each component is cut to 255 bytes on a character boundary (the extension is
//! kept). The file name always ends in an allowed extension.

use std::path::{Component, Path, PathBuf};

use crate::error::{ErrorCode, PipelineError, Result};
use crate::tags::TrackMeta;

/// Extensions the library accepts.
pub const ALLOWED_EXTENSIONS: [&str; 9] = [
    "mp3", "opus", "ogg", "flac", "wav", "m4a", "aiff", "aac", "jpg",
];

/// The default layout (Navidrome/Jellyfin/Plex friendly).
pub const DEFAULT_TEMPLATE: &str = "{albumartist|artist|Unknown Artist}/{album|Unknown Album} ({year})/{disc}-{track:02} {title|Unknown Title}.{ext}";

const MAX_COMPONENT_BYTES: usize = 255;

const FIELDS: [&str; 15] = [
    "title",
    "artist",
    "albumartist",
    "album",
    "track",
    "tracktotal",
    "disc",
    "disctotal",
    "year",
    "date",
    "genre",
    "isrc",
    "label",
    "source_id",
    "ext",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field {
        alternatives: Vec<String>,
        width: Option<usize>,
    },
}

/// A parsed path template. Parse once (at the edge), render per track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    components: Vec<Vec<Piece>>,
}

fn invalid(msg: impl Into<String>) -> PipelineError {
    PipelineError::new(ErrorCode::InvalidOptions, msg)
}

impl PathTemplate {
    /// Parse a template; errors name what is wrong.
    pub fn parse(template: &str) -> Result<Self> {
        if template.len() > 4096 {
            return Err(invalid("path template is too long"));
        }
        let mut components = vec![Vec::new()];
        let mut text = String::new();
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut inner = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some('{') | None => {
                                return Err(invalid("unclosed '{' in path template"));
                            }
                            Some(ch) => inner.push(ch),
                        }
                    }
                    let (alts, width) = match inner.rsplit_once(':') {
                        Some((a, w)) if !w.is_empty() && w.chars().all(|c| c.is_ascii_digit()) => {
                            let w: usize = w.parse().map_err(|_| invalid("bad width"))?;
                            if w > 16 {
                                return Err(invalid("field width above 16"));
                            }
                            (a, Some(w))
                        }
                        _ => (inner.as_str(), None),
                    };
                    let alternatives: Vec<String> =
                        alts.split('|').map(|s| s.trim().to_owned()).collect();
                    if !alternatives
                        .iter()
                        .any(|a| FIELDS.contains(&a.to_ascii_lowercase().as_str()))
                    {
                        return Err(invalid(format!(
                            "unknown field {{{inner}}} in path template"
                        )));
                    }
                    flush_text(&mut components, &mut text);
                    if let Some(c) = components.last_mut() {
                        c.push(Piece::Field {
                            alternatives,
                            width,
                        });
                    }
                }
                '}' => return Err(invalid("unmatched '}' in path template")),
                '/' | '\\' => {
                    flush_text(&mut components, &mut text);
                    components.push(Vec::new());
                }
                ch => text.push(ch),
            }
        }
        flush_text(&mut components, &mut text);
        components.retain(|c| !c.is_empty());
        if components.is_empty() {
            return Err(invalid("empty path template"));
        }
        Ok(Self { components })
    }

    /// Render a relative path for `meta` with file extension `ext` (from the allowlist).
    pub fn render(&self, meta: &TrackMeta, ext: &str) -> Result<PathBuf> {
        let ext = ext.to_ascii_lowercase();
        if !ALLOWED_EXTENSIONS.contains(&ext.as_str()) {
            return Err(invalid(format!("extension {ext:?} is not allowed")));
        }
        let mut out = PathBuf::new();
        let last = self.components.len() - 1;
        for (i, comp) in self.components.iter().enumerate() {
            let mut s = String::new();
            for piece in comp {
                match piece {
                    Piece::Text(t) => s.push_str(t),
                    Piece::Field {
                        alternatives,
                        width,
                    } => {
                        s.push_str(&resolve(alternatives, *width, meta, &ext));
                    }
                }
            }
            if i == last {
                out.push(sanitize_file_name(&s, &ext));
            } else {
                out.push(sanitize_component(&s));
            }
        }
        Ok(out)
    }
}

fn flush_text(components: &mut [Vec<Piece>], text: &mut String) {
    if !text.is_empty()
        && let Some(c) = components.last_mut()
    {
        c.push(Piece::Text(std::mem::take(text)));
    }
}

fn field(name: &str, meta: &TrackMeta, ext: &str) -> Option<String> {
    let num = |n: Option<u32>| n.map(|v| v.to_string());
    let v = match name {
        "title" => meta.title.clone(),
        "artist" => (!meta.artists.is_empty()).then(|| meta.artists.join(", ")),
        "albumartist" => meta.album_artist.clone(),
        "album" => meta.album.clone(),
        "track" => num(meta.track_number),
        "tracktotal" => num(meta.track_total),
        "disc" => num(meta.disc_number),
        "disctotal" => num(meta.disc_total),
        "year" => meta.year(),
        "date" => meta.date.clone(),
        "genre" => meta.genres.first().cloned(),
        "isrc" => meta.isrc.clone(),
        "label" => meta.label.clone(),
        "source_id" => meta.source_id.clone(),
        "ext" => Some(ext.to_owned()),
        _ => None,
    };
    v.filter(|s| !s.trim().is_empty())
}

fn resolve(alternatives: &[String], width: Option<usize>, meta: &TrackMeta, ext: &str) -> String {
    for alt in alternatives {
        let lower = alt.to_ascii_lowercase();
        let value = if FIELDS.contains(&lower.as_str()) {
            field(&lower, meta, ext)
        } else {
            Some(alt.clone())
        };
        if let Some(v) = value {
            return match (width, v.parse::<u64>()) {
                (Some(w), Ok(n)) => format!("{n:0w$}"),
                _ => v,
            };
        }
    }
    String::new()
}

const RESERVED: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Make one path component safe on Linux, macOS and Windows file systems.
pub fn sanitize_component(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .map(|c| match c {
            '/' | '\\' | '\0' | '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    s = s
        .trim()
        .trim_start_matches('.')
        .trim_end_matches(['.', ' '])
        .trim()
        .to_owned();
    let stem = s
        .split('.')
        .next()
        .unwrap_or("")
        .trim_end()
        .to_ascii_uppercase();
    if RESERVED.contains(&stem.as_str()) {
        s.insert(0, '_');
    }
    s = truncate_bytes(&s, MAX_COMPONENT_BYTES)
        .trim_end_matches(['.', ' '])
        .to_owned();
    if s.is_empty() { "_".to_owned() } else { s }
}

/// Sanitize a file name and force the extension `ext`, keeping the whole name within 255 bytes.
pub fn sanitize_file_name(raw: &str, ext: &str) -> String {
    let suffix = format!(".{ext}");
    let stem_raw = raw.strip_suffix(&suffix).unwrap_or(raw);
    let stem = sanitize_component(stem_raw);
    let stem = truncate_bytes(&stem, MAX_COMPONENT_BYTES - suffix.len())
        .trim_end_matches(['.', ' '])
        .to_owned();
    let stem = if stem.is_empty() {
        "_".to_owned()
    } else {
        stem
    };
    format!("{stem}{suffix}")
}

fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Join `relative` to `library`, refusing anything that is not a plain relative path.
pub fn contained_path(library: &Path, relative: &Path) -> Result<PathBuf> {
    let mut out = library.to_path_buf();
    let mut depth = 0;
    for c in relative.components() {
        match c {
            Component::Normal(part) => {
                out.push(part);
                depth += 1;
            }
            _ => return Err(invalid(format!("path {relative:?} escapes the library"))),
        }
    }
    if depth == 0 {
        return Err(invalid("empty relative path"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> TrackMeta {
        TrackMeta {
            title: Some("Song".into()),
            artists: vec!["A".into(), "B".into()],
            album: Some("Record".into()),
            track_number: Some(3),
            disc_number: Some(1),
            date: Some("2021-04-05".into()),
            ..Default::default()
        }
    }

    #[test]
    fn renders_with_fallbacks() {
        let t = PathTemplate::parse(DEFAULT_TEMPLATE).unwrap();
        let p = t.render(&meta(), "mp3").unwrap();
        assert_eq!(p, PathBuf::from("A, B/Record (2021)/1-03 Song.mp3"));
        let p = t.render(&TrackMeta::default(), "flac").unwrap();
        assert_eq!(
            p,
            PathBuf::from("Unknown Artist/Unknown Album ()/- Unknown Title.flac")
        );
    }

    #[test]
    fn hostile_titles_stay_inside() {
        let t = PathTemplate::parse("{artist}/{title}.{ext}").unwrap();
        let mut m = meta();
        m.title = Some("../../etc/passwd".into());
        let p = t.render(&m, "mp3").unwrap();
        assert_eq!(p, PathBuf::from("A, B/_.._etc_passwd.mp3"));
        assert!(
            contained_path(Path::new("/lib"), &p)
                .unwrap()
                .starts_with("/lib")
        );
        m.title = Some("é".repeat(6000));
        let p = t.render(&m, "mp3").unwrap();
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(name.len() <= 255 && name.ends_with(".mp3"));
        m.artists = vec!["..".into()];
        m.title = Some("CON".into());
        let p = t.render(&m, "mp3").unwrap();
        assert_eq!(p, PathBuf::from("_/_CON.mp3"));
        m.artists = vec!["a\0b\u{7}c. . ".into()];
        assert_eq!(
            t.render(&m, "mp3").unwrap(),
            PathBuf::from("a_b_c/_CON.mp3")
        );
    }

    #[test]
    fn rejects_bad_templates_and_extensions() {
        assert!(PathTemplate::parse("{nope}").is_err());
        assert!(PathTemplate::parse("{title").is_err());
        let t = PathTemplate::parse("{title}").unwrap();
        assert!(t.render(&meta(), "exe").is_err());
        assert_eq!(
            t.render(&meta(), "opus").unwrap(),
            PathBuf::from("Song.opus")
        );
        assert!(contained_path(Path::new("/lib"), Path::new("../x")).is_err());
        assert!(contained_path(Path::new("/lib"), Path::new("/etc/x")).is_err());
    }
}
