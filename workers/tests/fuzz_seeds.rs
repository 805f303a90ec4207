//! Runs the fuzz seed corpora (`fuzz/corpus/`) through the fuzz targets' entry points on
//! stable Rust: every seed must parse, and cheap deterministic mutations of every seed
//! (truncations, flipped bytes, absurd lengths) must fail cleanly, never panic. A smoke test
//! for CI where cargo-fuzz (nightly) is not available.

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use musicd_media::fuzz::{probe_decode, read_tags};

/// Panics counted by a hook, since the entry points catch them (as the pipeline does).
static PANICS: AtomicUsize = AtomicUsize::new(0);
static HOOK: Once = Once::new();

fn count_panics() {
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

fn seeds(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(kind);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir:?}: {e}"))
        .map(|e| e.unwrap().path())
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {dir:?}");
    out
}

/// Deterministic variants of a seed: prefixes, single-byte flips across the file, and
/// 0xff runs over header-sized regions (absurd sizes and counts).
fn mutations(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for cut in [
        0,
        1,
        4,
        12,
        64,
        data.len() / 3,
        data.len() / 2,
        data.len() - 1,
    ] {
        out.push(data[..cut.min(data.len())].to_vec());
    }
    let step = (data.len() / 48).max(1);
    for i in (0..data.len()).step_by(step) {
        let mut v = data.to_vec();
        v[i] ^= 0xa5;
        out.push(v);
    }
    for start in [4, 8, 16, 24, 40] {
        if start + 4 <= data.len() {
            let mut v = data.to_vec();
            v[start..start + 4].fill(0xff);
            out.push(v);
        }
    }
    out
}

#[test]
fn decode_seeds_parse_and_mutations_fail_cleanly() {
    count_panics();
    let before = PANICS.load(Ordering::SeqCst);
    for seed in seeds("decode") {
        let data = std::fs::read(&seed).unwrap();
        let o = probe_decode(&data);
        assert!(
            o.opened && o.samples > 0 && !o.failed,
            "{seed:?} does not decode: {o:?}"
        );
        for m in mutations(&data) {
            probe_decode(&m);
            read_tags(&m);
        }
    }
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        before,
        "a decoder panicked (see the output above)"
    );
}

#[test]
fn tag_seeds_parse_and_mutations_fail_cleanly() {
    count_panics();
    let before = PANICS.load(Ordering::SeqCst);
    for seed in seeds("tags") {
        let data = std::fs::read(&seed).unwrap();
        assert!(read_tags(&data), "{seed:?}: tags do not read");
        for m in mutations(&data) {
            read_tags(&m);
        }
    }
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        before,
        "a tag parser panicked (see the output above)"
    );
}
