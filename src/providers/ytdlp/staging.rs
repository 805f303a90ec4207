//! The files yt-dlp writes into a task's staging directory: which one is the audio, and
//! removing its partial and temporary files.

use super::*;

/// Whether a file name is one of yt-dlp's partial or temporary files.
pub(super) fn is_partial(name: &str) -> bool {
    name.ends_with(".part")
        || name.ends_with(".ytdl")
        || name.ends_with(".temp")
        || name.ends_with(".tmp")
        || name.contains(".part-Frag")
        || name.contains(".temp.")
}

pub(super) fn ours(name: &str) -> bool {
    name.strip_prefix(OUT_STEM)
        .is_some_and(|r| r.starts_with('.'))
}

/// The finished file yt-dlp wrote (the largest, should there be several).
pub(super) fn produced(staging: &Path) -> Option<PathBuf> {
    std::fs::read_dir(staging)
        .ok()?
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            ours(&n) && !is_partial(&n) && e.file_type().is_ok_and(|t| t.is_file())
        })
        .max_by_key(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .map(|e| e.path())
}

/// Removes what yt-dlp wrote into `staging` (partial files, fragments), except `keep`.
pub(super) fn remove_ours(staging: &Path, keep: Option<&Path>) {
    let Ok(rd) = std::fs::read_dir(staging) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if !ours(&e.file_name().to_string_lossy()) || keep == Some(p.as_path()) {
            continue;
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(&p);
        } else {
            let _ = std::fs::remove_file(&p);
        }
    }
}
