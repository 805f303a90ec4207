//! Atomic placement into the library: staged temp file → fsync → verify → rename → fsync of
//! the directory. The library never holds a partial file. An existing file at the target path
//! is skipped only when it is the same track (source id, ISRC or identical content) and still
//! decodes; a zero-length or broken file there is replaced when the caller allows it (else, and
//! for a different track, the new file gets a numbered name).

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::decode::AudioDecoderStream;
use crate::error::{ErrorCode, PipelineError, Result};
use crate::naming::contained_path;
use crate::tags::read_tags;

/// Name of the staging directory created inside the library (same file system, so renames
/// are atomic). Media servers skip dot-directories.
pub const STAGING_DIR_NAME: &str = ".musicd-staging";

/// A temp file that is deleted on drop unless it was handed over.
#[derive(Debug)]
pub struct StagedFile {
    path: PathBuf,
    keep: bool,
}

impl StagedFile {
    /// A fresh, unused path in `staging_dir` ending in `.ext`.
    pub fn new(staging_dir: &Path, ext: &str) -> Result<Self> {
        fs::create_dir_all(staging_dir).map_err(|e| PipelineError::io("create staging dir", e))?;
        let name = format!(".tmp-{:016x}.{ext}", rand::random::<u64>());
        Ok(Self {
            path: staging_dir.join(name),
            keep: false,
        })
    }

    /// Where the staged file lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keep the file (it is no longer deleted on drop) and return its path.
    pub fn keep(self) -> PathBuf {
        self.disarm()
    }

    fn disarm(mut self) -> PathBuf {
        self.keep = true;
        std::mem::take(&mut self.path)
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// What identifies a track for duplicate detection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// Provider's id for the track.
    pub source_id: Option<String>,
    /// ISRC.
    pub isrc: Option<String>,
}

/// Result of placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceOutcome {
    /// Final path inside the library.
    pub path: PathBuf,
    /// True when an identical track was already there and nothing was written.
    pub skipped: bool,
}

/// fsync a file by path.
pub fn fsync_file(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| PipelineError::io("fsync staged file", e))
}

fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| PipelineError::io("fsync directory", e))
}

/// SHA-256 of a file's content.
pub fn hash_file(path: &Path) -> Result<[u8; 32]> {
    let mut f = File::open(path).map_err(|e| PipelineError::io("open for hashing", e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| PipelineError::io("read for hashing", e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// Decode `path` end to end; returns the number of frames. Any error means "broken".
pub fn decode_fully(path: &Path) -> Result<u64> {
    let mut d = AudioDecoderStream::open(path)?;
    while d.next_chunk()?.is_some() {}
    Ok(d.frames_out())
}

fn existing_identity(path: &Path) -> Identity {
    match read_tags(path) {
        Ok(m) => Identity {
            source_id: read_source_id(path),
            isrc: m.isrc,
        },
        Err(_) => Identity::default(),
    }
}

/// Read the `MUSICD_SOURCE_ID` tag we write, if any (a custom key, so format-specific).
fn read_source_id(path: &Path) -> Option<String> {
    use lofty::config::ParseOptions;
    use lofty::file::{AudioFile, FileType};
    let ft = lofty::probe::Probe::open(path)
        .ok()?
        .guess_file_type()
        .ok()?
        .file_type()?;
    let mut r = std::io::BufReader::new(File::open(path).ok()?);
    let opts = ParseOptions::new().read_properties(false);
    const KEY: &str = "MUSICD_SOURCE_ID";
    let v = match ft {
        FileType::Mpeg => lofty::mpeg::MpegFile::read_from(&mut r, opts)
            .ok()?
            .id3v2()?
            .get_user_text(KEY)?
            .to_owned(),
        FileType::Wav => lofty::iff::wav::WavFile::read_from(&mut r, opts)
            .ok()?
            .id3v2()?
            .get_user_text(KEY)?
            .to_owned(),
        FileType::Flac => lofty::flac::FlacFile::read_from(&mut r, opts)
            .ok()?
            .vorbis_comments()?
            .get(KEY)?
            .to_owned(),
        FileType::Opus => lofty::ogg::OpusFile::read_from(&mut r, opts)
            .ok()?
            .vorbis_comments()
            .get(KEY)?
            .to_owned(),
        FileType::Vorbis => lofty::ogg::VorbisFile::read_from(&mut r, opts)
            .ok()?
            .vorbis_comments()
            .get(KEY)?
            .to_owned(),
        _ => return None,
    };
    Some(v)
}

fn same_track(existing: &Path, staged: &Path, identity: &Identity) -> Result<bool> {
    let theirs = existing_identity(existing);
    let matches = |a: &Option<String>, b: &Option<String>| matches!((a, b), (Some(x), Some(y)) if !x.is_empty() && x == y);
    if matches(&identity.source_id, &theirs.source_id) || matches(&identity.isrc, &theirs.isrc) {
        return Ok(true);
    }
    Ok(hash_file(existing)? == hash_file(staged)?)
}

/// Move a verified staged file to `relative` inside `library`. With `replace_broken`, a
/// zero-length or undecodable file at the target is replaced; without, it is left alone.
pub fn place(
    staged: StagedFile,
    library: &Path,
    relative: &Path,
    identity: &Identity,
    replace_broken: bool,
) -> Result<PlaceOutcome> {
    let mut dest = contained_path(library, relative)?;
    let parent = dest
        .parent()
        .ok_or_else(|| PipelineError::new(ErrorCode::InvalidOptions, "no parent"))?
        .to_path_buf();
    fs::create_dir_all(&parent).map_err(|e| PipelineError::io("create album directory", e))?;
    // A symlinked directory inside the library must not lead outside it.
    let lib_real =
        fs::canonicalize(library).map_err(|e| PipelineError::io("resolve library", e))?;
    let parent_real =
        fs::canonicalize(&parent).map_err(|e| PipelineError::io("resolve album directory", e))?;
    if !parent_real.starts_with(&lib_real) {
        return Err(PipelineError::new(
            ErrorCode::InvalidOptions,
            "target directory resolves outside the library",
        ));
    }

    for attempt in 1..=100u32 {
        match fs::symlink_metadata(&dest) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => return Err(PipelineError::io("inspect target", e)),
            Ok(md) if md.is_file() && md.len() > 0 => {
                if same_track(&dest, staged.path(), identity)? {
                    if decode_fully(&dest).is_ok() {
                        // Same track, intact: nothing to do.
                        return Ok(PlaceOutcome {
                            path: dest,
                            skipped: true,
                        });
                    }
                    if replace_broken {
                        break; // same track but broken: replace it
                    }
                } else if replace_broken && decode_fully(&dest).is_err() {
                    break; // a broken file of another origin: replace it
                }
            }
            Ok(md) if md.is_file() && replace_broken => break, // zero-length: replace
            Ok(_) => {} // a directory or symlink: never touch it
        }
        // A different track owns this name: try "name (2).ext" and so on.
        dest = numbered(&contained_path(library, relative)?, attempt + 1);
    }
    let staged_path = staged.disarm();
    if let Err(e) = fs::rename(&staged_path, &dest) {
        let _ = fs::remove_file(&staged_path);
        return Err(PipelineError::io("rename into library", e));
    }
    fsync_dir(&parent)?;
    Ok(PlaceOutcome {
        path: dest,
        skipped: false,
    })
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("_");
    let ext = path.extension().and_then(|s| s.to_str()).unwrap_or("");
    let suffix = format!(" ({n}).{ext}");
    let mut end = stem.len().min(255 - suffix.len());
    while !stem.is_char_boundary(end) {
        end -= 1;
    }
    path.with_file_name(format!("{}{suffix}", &stem[..end]))
}

/// Write `data` as `name` (e.g. `cover.jpg`) in `dir` atomically, unless a non-empty file is
/// already there.
pub fn write_side_file(dir: &Path, name: &str, data: &[u8]) -> Result<Option<PathBuf>> {
    let dest = dir.join(name);
    if fs::metadata(&dest).map(|m| m.len() > 0).unwrap_or(false) {
        return Ok(None);
    }
    let tmp = dir.join(format!(".tmp-{:016x}-{name}", rand::random::<u64>()));
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, &dest)
    })();
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(PipelineError::io("write side file", e));
    }
    fsync_dir(dir)?;
    Ok(Some(dest))
}
