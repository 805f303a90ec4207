//! `.m3u8` playlists in the library for watched and downloaded playlists and feeds, so
//! Navidrome, Jellyfin and Plex import them: `Playlists/<title>.m3u8`, UTF-8, paths relative
//! to the playlist file, `#EXTINF` with the duration and `artist - title`, in source order.
//! Written to a temp file beside it, synced, then renamed over the old one.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use crate::providers::TrackInfo;

/// Folder of the playlists, inside the library.
pub const DIR: &str = "Playlists";

/// The playlist's path relative to the library for a source titled `title`.
pub fn relative_path(title: &str) -> PathBuf {
    Path::new(DIR).join(musicd_media::naming::sanitize_file_name(title, "m3u8"))
}

/// Writes the playlist at `relative` (inside `library`) listing `entries` (the track as the
/// source describes it, and its file) in order. Files that are no longer on disk, or are
/// outside the library, are left out. Returns how many entries were written.
pub fn write(
    library: &Path,
    relative: &Path,
    entries: &[(TrackInfo, PathBuf)],
) -> std::io::Result<usize> {
    let path = musicd_media::naming::contained_path(library, relative)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let dir = path.parent().unwrap_or(library).to_path_buf();
    std::fs::create_dir_all(&dir)?;
    let mut text = String::from("#EXTM3U\n");
    let mut written = 0;
    for (track, file) in entries {
        if !file.starts_with(library) || !file.is_file() {
            continue;
        }
        let Some(rel) = relative_to(&dir, file) else {
            continue;
        };
        let secs = musicd_media::tags::read_duration(file)
            .map(|d| d.as_secs_f64().round() as i64)
            .unwrap_or(-1);
        let title = track
            .title
            .clone()
            .or_else(|| file.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let label = match track.artists.is_empty() {
            true => title,
            false => format!("{} - {title}", track.artists.join(", ")),
        };
        // One line each: a newline in a title would start a new entry.
        let label = label.replace(['\r', '\n'], " ");
        text += &format!("#EXTINF:{secs},{label}\n{}\n", rel.display());
        written += 1;
    }
    let tmp = dir.join(format!(".tmp-{:016x}.m3u8", rand::random::<u64>()));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map(|()| written)
}

/// `to` relative to the directory `from` (both inside the library), with `..` as needed.
fn relative_to(from: &Path, to: &Path) -> Option<PathBuf> {
    let a: Vec<Component> = from.components().collect();
    let b: Vec<Component> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..a.len() {
        out.push("..");
    }
    for c in &b[common..] {
        out.push(c.as_os_str());
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_to_the_playlist() {
        let r = relative_to(Path::new("/lib/Playlists"), Path::new("/lib/A/B/01 x.mp3"));
        assert_eq!(r.unwrap(), PathBuf::from("../A/B/01 x.mp3"));
    }

    #[test]
    fn missing_files_are_left_out_and_titles_stay_on_one_line() {
        let lib = tempfile::tempdir().unwrap();
        let song = lib.path().join("A").join("x.mp3");
        std::fs::create_dir_all(song.parent().unwrap()).unwrap();
        std::fs::write(&song, b"not audio").unwrap();
        let t = TrackInfo {
            title: Some("Two\nLines".into()),
            artists: vec!["Ann".into()],
            ..TrackInfo::default()
        };
        let rel = relative_path("My / List");
        let n = write(
            lib.path(),
            &rel,
            &[(t.clone(), song), (t, lib.path().join("gone.mp3"))],
        )
        .unwrap();
        assert_eq!(n, 1);
        let text = std::fs::read_to_string(lib.path().join(&rel)).unwrap();
        assert_eq!(text, "#EXTM3U\n#EXTINF:-1,Ann - Two Lines\n../A/x.mp3\n");
    }
}
