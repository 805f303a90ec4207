//! Identify a file's media type by its content (magic bytes, then a symphonia probe), never by
//! its name. Anything that is not a container or stream we can decode is
//! `unsupported_media_type`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{PipelineError, Result};

/// The container (or bare stream) a file holds, as seen from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Container {
    /// MPEG audio frames (MP1/2/3), possibly after an ID3v2 tag.
    Mpeg,
    /// ADTS AAC frames.
    Adts,
    /// Native FLAC.
    Flac,
    /// Ogg (Vorbis, Opus, FLAC).
    Ogg,
    /// RIFF WAVE.
    Wav,
    /// AIFF or AIFF-C.
    Aiff,
    /// ISO base media (MP4, M4A).
    Mp4,
    /// Matroska or WebM.
    Matroska,
    /// Core Audio Format.
    Caf,
}

impl Container {
    /// A file extension symphonia understands, used as a probe hint.
    pub fn hint_extension(self) -> &'static str {
        match self {
            Container::Mpeg => "mp3",
            Container::Adts => "aac",
            Container::Flac => "flac",
            Container::Ogg => "ogg",
            Container::Wav => "wav",
            Container::Aiff => "aiff",
            Container::Mp4 => "m4a",
            Container::Matroska => "mka",
            Container::Caf => "caf",
        }
    }
}

/// Largest ID3v2 tag we skip over while sniffing (bigger ones are absurd or hostile).
const MAX_ID3_SKIP: u64 = 64 * 1024 * 1024;

/// Sniff the container of the file at `path` from its first bytes.
///
/// Returns `unsupported_media_type` for empty files and for content that is not a known audio
/// container (images, documents, archives, random bytes ...).
pub fn sniff_file(path: &Path) -> Result<Container> {
    let mut f = File::open(path).map_err(|e| PipelineError::io("open input", e))?;
    let len = f
        .metadata()
        .map_err(|e| PipelineError::io("stat input", e))?
        .len();
    sniff_reader(&mut f, len)
}

/// [`sniff_file`] over any seekable reader of `len` bytes (used for in-memory input).
pub fn sniff_reader<R: Read + Seek>(f: &mut R, len: u64) -> Result<Container> {
    if len == 0 {
        return Err(PipelineError::unsupported("empty file"));
    }
    f.seek(SeekFrom::Start(0))
        .map_err(|e| PipelineError::io("seek input", e))?;
    let mut head = [0u8; 16];
    let n = read_up_to(f, &mut head)?;
    if n >= 10 && &head[..3] == b"ID3" {
        // ID3v2 size is a 28-bit syncsafe integer; a footer adds 10 bytes.
        let size = head[6..10]
            .iter()
            .fold(0u64, |acc, b| (acc << 7) | u64::from(b & 0x7f));
        if head[6..10].iter().any(|b| b & 0x80 != 0) {
            return Err(PipelineError::unsupported("malformed ID3v2 header"));
        }
        let footer = if head[5] & 0x10 != 0 { 10 } else { 0 };
        let offset = 10 + size + footer;
        if offset > MAX_ID3_SKIP || offset >= len {
            return Err(PipelineError::unsupported(
                "ID3v2 tag with no audio after it",
            ));
        }
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| PipelineError::io("seek input", e))?;
        head = [0u8; 16];
        let n2 = read_up_to(f, &mut head)?;
        return sniff_bytes(&head[..n2], true)
            .ok_or_else(|| PipelineError::unsupported("ID3v2 tag followed by unknown data"));
    }
    sniff_bytes(&head[..n], false)
        .ok_or_else(|| PipelineError::unsupported("content is not a supported audio format"))
}

fn read_up_to<R: Read>(f: &mut R, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match f.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PipelineError::io("read input", e)),
        }
    }
    Ok(filled)
}

/// Sniff a container from the first bytes of a stream. `after_id3` allows the formats that are
/// commonly prefixed with an ID3v2 tag (MPEG, ADTS, FLAC).
pub fn sniff_bytes(b: &[u8], after_id3: bool) -> Option<Container> {
    let starts = |m: &[u8]| b.len() >= m.len() && &b[..m.len()] == m;
    if starts(b"fLaC") {
        return Some(Container::Flac);
    }
    if is_mpeg_audio_header(b) {
        return Some(Container::Mpeg);
    }
    if is_adts_header(b) {
        return Some(Container::Adts);
    }
    if after_id3 {
        return None;
    }
    if starts(b"OggS") {
        return Some(Container::Ogg);
    }
    if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WAVE" {
        return Some(Container::Wav);
    }
    if b.len() >= 12 && &b[..4] == b"FORM" && (&b[8..12] == b"AIFF" || &b[8..12] == b"AIFC") {
        return Some(Container::Aiff);
    }
    if b.len() >= 8 && &b[4..8] == b"ftyp" {
        return Some(Container::Mp4);
    }
    if starts(&[0x1a, 0x45, 0xdf, 0xa3]) {
        return Some(Container::Matroska);
    }
    if starts(b"caff") {
        return Some(Container::Caf);
    }
    None
}

/// A plausible MPEG-1/2/2.5 audio frame header at the start of `b`.
fn is_mpeg_audio_header(b: &[u8]) -> bool {
    if b.len() < 4 || b[0] != 0xff || b[1] & 0xe0 != 0xe0 {
        return false;
    }
    let version = (b[1] >> 3) & 0x03; // 01 is reserved
    let layer = (b[1] >> 1) & 0x03; // 00 is reserved (and used by ADTS)
    let bitrate = b[2] >> 4; // 0000 free format, 1111 invalid
    let rate = (b[2] >> 2) & 0x03; // 11 reserved
    version != 1 && layer != 0 && bitrate != 0 && bitrate != 0x0f && rate != 3
}

/// A plausible ADTS (AAC) frame header at the start of `b`.
fn is_adts_header(b: &[u8]) -> bool {
    b.len() >= 7 && b[0] == 0xff && b[1] & 0xf6 == 0xf0 && ((b[2] >> 2) & 0x0f) < 13
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_common_magics() {
        assert_eq!(sniff_bytes(b"fLaC\0\0\0\x22", false), Some(Container::Flac));
        assert_eq!(sniff_bytes(b"OggS\0\x02", false), Some(Container::Ogg));
        assert_eq!(
            sniff_bytes(b"RIFF\0\0\0\0WAVEfmt ", false),
            Some(Container::Wav)
        );
        assert_eq!(
            sniff_bytes(b"\0\0\0\x20ftypM4A ", false),
            Some(Container::Mp4)
        );
        assert_eq!(
            sniff_bytes(&[0xff, 0xfb, 0x90, 0x64], false),
            Some(Container::Mpeg)
        );
        assert_eq!(sniff_bytes(b"\x89PNG\r\n\x1a\n", false), None);
        assert_eq!(sniff_bytes(b"<!DOCTYPE html>", false), None);
        assert_eq!(sniff_bytes(b"%PDF-1.7", false), None);
    }
}

/// The segment title of a Matroska/WebM file (`Segment/Info/Title`), where ffmpeg writes a
/// track's title. symphonia's demuxer parses it but does not report it, and a Matroska crate
/// would parse the whole file again for one string, so this walks the few EBML elements
/// before the first cluster itself (at most 1 MiB of them).
pub fn matroska_title(path: &Path) -> Option<String> {
    let mut head = Vec::new();
    File::open(path)
        .ok()?
        .take(1 << 20)
        .read_to_end(&mut head)
        .ok()?;
    ebml_title(&head)
}

/// A variable-length EBML integer at `at`: (value, its length). For ids the marker bit is
/// kept; for sizes it is dropped, and all ones means "unknown".
fn vint(b: &[u8], at: usize, keep_marker: bool) -> Option<(u64, usize)> {
    let first = *b.get(at)?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return None;
    }
    let mut v = if keep_marker {
        u64::from(first)
    } else {
        u64::from(first) & ((1u64 << (8 - len)) - 1)
    };
    for i in 1..len {
        v = (v << 8) | u64::from(*b.get(at + i)?);
    }
    Some((v, len))
}

fn ebml_title(b: &[u8]) -> Option<String> {
    const SEGMENT: u64 = 0x1853_8067;
    const INFO: u64 = 0x1549_A966;
    const TITLE: u64 = 0x7BA9;
    const CLUSTER: u64 = 0x1F43_B675;
    let mut at = 0usize;
    let mut end = b.len();
    while at < end {
        let (id, il) = vint(b, at, true)?;
        let (size, sl) = vint(b, at + il, false)?;
        let body = at + il + sl;
        if body > end {
            return None;
        }
        let unknown = size == (1u64 << (7 * sl)) - 1;
        let size = if unknown { (end - body) as u64 } else { size };
        let next = body.checked_add(usize::try_from(size).ok()?)?;
        match id {
            // Containers we look inside: the rest of the walk is their body.
            SEGMENT | INFO => {
                at = body;
                end = end.min(next);
            }
            TITLE => {
                let raw = b.get(body..next)?;
                let t = String::from_utf8_lossy(raw)
                    .trim_end_matches('\0')
                    .trim()
                    .to_string();
                return (!t.is_empty()).then_some(t);
            }
            CLUSTER => return None,
            _ => at = next,
        }
    }
    None
}

#[cfg(test)]
mod ebml_tests {
    use super::ebml_title;

    #[test]
    fn finds_the_title_and_survives_garbage() {
        // Segment (unknown size) > Info > Title "Hi".
        let doc = [
            0x18, 0x53, 0x80, 0x67, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x15, 0x49,
            0xa9, 0x66, 0x85, 0x7b, 0xa9, 0x82, b'H', b'i',
        ];
        assert_eq!(ebml_title(&doc).as_deref(), Some("Hi"));
        for n in 0..doc.len() {
            let _ = ebml_title(&doc[..n]);
        }
        assert_eq!(ebml_title(&[0x00, 0xff, 0x7b]), None);
        assert_eq!(ebml_title(&[0x7b, 0xa9, 0x88, b'x']), None);
    }
}
