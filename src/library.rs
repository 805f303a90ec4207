//! The library index: what is on disk, by tags and identity. Every placement (download,
//! upload, `musicd import`) indexes its file; `musicd scan` indexes an existing collection
//! without changing it and forgets files that are gone. Dedup asks the index first.

use std::path::{Path, PathBuf};

use futures::StreamExt;

use crate::db::Db;
use crate::db::library::{self, Track};

/// File extensions a scan looks at.
const AUDIO_EXTENSIONS: &[&str] = &[
    "mp3", "flac", "ogg", "oga", "opus", "m4a", "mp4", "aac", "wav", "aif", "aiff", "wv", "ape",
    "mka", "webm", "caf", "wma",
];

/// Files read at once by a scan.
const SCAN_PARALLEL: usize = 4;

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// Reads a file's tags, duration and identity (blocking).
fn read(path: &Path) -> Result<Track, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    let tags = musicd_media::tags::read_tags(path).map_err(|e| e.to_string())?;
    let duration = musicd_media::tags::read_duration(path).ok();
    let format = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_else(|| "unknown".into());
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64);
    let now = crate::db::now_ms();
    Ok(Track {
        id: String::new(),
        path: path.display().to_string(),
        owner_id: None,
        title: tags.title.clone(),
        artist: (!tags.artists.is_empty()).then(|| tags.artists.join("; ")),
        artist_id: None,
        album_id: None,
        album: tags.album.clone(),
        album_artist: tags.album_artist.clone(),
        track_number: tags.track_number.map(i64::from),
        disc_number: tags.disc_number.map(i64::from),
        year: tags.year().and_then(|y| y.parse().ok()),
        genre: tags.genres.first().cloned(),
        format,
        duration_ms: duration.map(|d| d.as_millis() as i64),
        size: meta.len() as i64,
        mtime,
        content_hash: sha256_file(path).map_err(|e| e.to_string())?,
        source_hash: None,
        source_id: tags.source_id.clone(),
        isrc: tags.isrc.clone(),
        mb_recording_id: tags.musicbrainz_recording_id.clone(),
        mb_release_id: tags.musicbrainz_release_id.clone(),
        added_at: now,
        updated_at: now,
    })
}

/// Where an indexed file came from.
#[derive(Debug, Default, Clone)]
pub struct Origin {
    /// Who added it.
    pub owner: Option<String>,
    /// SHA-256 of the input it was made from.
    pub source_hash: Option<String>,
    /// The provider's identity of the track (`podcast:<guid>`).
    pub source_id: Option<String>,
}

/// Indexes one file with its origin.
pub async fn index_file(db: &Db, path: &Path, origin: Origin) -> anyhow::Result<Track> {
    let path = &path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let p = path.clone();
    let mut t = tokio::task::spawn_blocking(move || read(&p))
        .await?
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    t.owner_id = origin.owner;
    t.source_hash = origin.source_hash;
    t.source_id = origin.source_id.or(t.source_id);
    Ok(library::upsert(db, &t).await?)
}

/// What a scan did.
#[derive(Debug, Default, serde::Serialize)]
pub struct ScanReport {
    /// Files indexed (new or changed).
    pub indexed: usize,
    /// Files already indexed and unchanged.
    pub unchanged: usize,
    /// Rows removed because their file is gone.
    pub removed: usize,
    /// Files that could not be read as audio, with why.
    pub failed: Vec<(String, String)>,
}

/// The audio files under `root` (hidden folders, such as the staging area, are skipped).
fn audio_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            let Ok(ft) = e.file_type() else { continue };
            let p = e.path();
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file()
                && p.extension().is_some_and(|x| {
                    AUDIO_EXTENSIONS.contains(&x.to_string_lossy().to_lowercase().as_str())
                })
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Indexes every audio file under `root` without changing any, and forgets indexed files
/// under it that are gone. `progress` gets (done, total).
pub async fn scan(
    db: &Db,
    root: &Path,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> anyhow::Result<ScanReport> {
    let root = root
        .canonicalize()
        .map_err(|e| anyhow::anyhow!("{}: {e}", root.display()))?;
    let r2 = root.clone();
    let files = tokio::task::spawn_blocking(move || audio_files(&r2)).await?;
    let known: std::collections::HashMap<String, (String, i64, i64)> =
        library::under(db, &root.display().to_string())
            .await?
            .into_iter()
            .map(|(id, path, size, mtime)| (path, (id, size, mtime)))
            .collect();
    let mut report = ScanReport::default();
    let total = files.len();
    let mut todo = Vec::new();
    for f in &files {
        let key = f.display().to_string();
        let same = known.get(&key).is_some_and(|(_, size, mtime)| {
            std::fs::metadata(f).is_ok_and(|m| {
                m.len() as i64 == *size
                    && m.modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .is_some_and(|d| d.as_millis() as i64 == *mtime)
            })
        });
        if same {
            report.unchanged += 1;
        } else {
            todo.push(f.clone());
        }
    }
    let mut done = report.unchanged;
    let mut reads = futures::stream::iter(todo)
        .map(|f| async move {
            let p = f.clone();
            (f, tokio::task::spawn_blocking(move || read(&p)).await)
        })
        .buffer_unordered(SCAN_PARALLEL);
    while let Some((f, r)) = reads.next().await {
        done += 1;
        progress(done, total);
        match r {
            Ok(Ok(t)) => {
                library::upsert(db, &t).await?;
                report.indexed += 1;
            }
            Ok(Err(e)) => report.failed.push((f.display().to_string(), e)),
            Err(e) => report.failed.push((f.display().to_string(), e.to_string())),
        }
    }
    for (path, (id, _, _)) in &known {
        if !Path::new(path).exists() {
            library::delete(db, id).await?;
            report.removed += 1;
        }
    }
    Ok(report)
}

/// An indexed track that is the same as `input` (by its bytes) or as `meta` (provider id,
/// ISRC), and whose file is still there. A row whose file is gone is forgotten.
pub async fn already_present(
    db: &Db,
    input_hash: Option<&str>,
    meta: &musicd_media::TrackMeta,
) -> anyhow::Result<Option<Track>> {
    loop {
        let found = library::find_same(
            db,
            input_hash,
            meta.source_id.as_deref(),
            meta.isrc.as_deref(),
        )
        .await?;
        match found {
            Some(t) if Path::new(&t.path).is_file() => return Ok(Some(t)),
            Some(t) => {
                library::delete(db, &t.id).await?;
            }
            None => return Ok(None),
        }
    }
}
