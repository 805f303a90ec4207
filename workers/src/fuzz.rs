//! Entry points for the fuzz targets in `workers/fuzz/` and for the seed-corpus test
//! (`tests/fuzz_seeds.rs`): untrusted bytes through the same sniffing, demuxing, decoding and
//! tag-parsing code that files take, with the same limits. They return what they saw so a
//! test can check seeds are parsed, and never panic on their own.

use crate::decode::AudioDecoderStream;
use crate::tags::read_tags_bytes;

/// Decoding stops after this many samples, so one input cannot keep the fuzzer busy.
const MAX_SAMPLES: u64 = 16 * 1024 * 1024;

/// What [`probe_decode`] got out of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DecodeOutcome {
    /// The input was recognised and a decoder opened.
    pub opened: bool,
    /// Interleaved samples decoded before the end, an error or the cap.
    pub samples: u64,
    /// Decoding ended in an error (after `samples`).
    pub failed: bool,
}

/// Sniff, probe and decode `data` to the end (or to a cap).
pub fn probe_decode(data: &[u8]) -> DecodeOutcome {
    let mut out = DecodeOutcome::default();
    let Ok(mut dec) = AudioDecoderStream::open_bytes(data.to_vec()) else {
        return out;
    };
    out.opened = true;
    while out.samples < MAX_SAMPLES {
        match dec.next_chunk() {
            Ok(Some(chunk)) => out.samples += chunk.len() as u64,
            Ok(None) => break,
            Err(_) => {
                out.failed = true;
                break;
            }
        }
    }
    out
}

/// Read tags from `data`; `true` when a tag was parsed (even an empty one).
pub fn read_tags(data: &[u8]) -> bool {
    read_tags_bytes(data).is_ok()
}
