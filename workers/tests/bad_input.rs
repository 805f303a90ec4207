//! Bad input fails cleanly: an error with a stable code, no panic, nothing in the library.

mod support;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use musicd_media::{OutputFormat, PathTemplate, ProcessOptions, TrackMeta, process_file};
use support::inputs;

fn files_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_in(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn must_fail(input: &Path, expect: &[&str]) {
    for format in [OutputFormat::Mp3, OutputFormat::Flac, OutputFormat::Copy] {
        let lib = tempfile::tempdir().unwrap();
        let opts = ProcessOptions {
            format,
            ..Default::default()
        };
        let r = process_file(
            input,
            &opts,
            &TrackMeta::default(),
            lib.path(),
            &|_, _| {},
            &AtomicBool::new(false),
        );
        let err = r.expect_err(&format!("{input:?} -> {format:?} should fail"));
        assert!(
            expect.contains(&err.code_str()),
            "{input:?}: unexpected {err}"
        );
        assert!(
            files_in(lib.path()).is_empty(),
            "{input:?} left {:?}",
            files_in(lib.path())
        );
    }
}

#[test]
fn zero_length_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.mp3");
    std::fs::write(&p, b"").unwrap();
    must_fail(&p, &["unsupported_media_type"]);
}

#[test]
fn random_bytes_named_mp3() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("noise.mp3");
    let bytes: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    std::fs::write(&p, bytes).unwrap();
    must_fail(&p, &["unsupported_media_type"]);
    std::fs::write(&p, b"<!DOCTYPE html><html>not found</html>").unwrap();
    must_fail(&p, &["unsupported_media_type"]);
}

#[test]
fn truncated_files() {
    for (name, path) in &inputs().files {
        let data = std::fs::read(path).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(format!(
            "cut-{}",
            path.file_name().unwrap().to_str().unwrap()
        ));
        std::fs::write(&p, &data[..data.len() / 2]).unwrap();
        let lib = tempfile::tempdir().unwrap();
        let opts = ProcessOptions {
            format: OutputFormat::Mp3,
            ..Default::default()
        };
        let r = process_file(
            &p,
            &opts,
            &TrackMeta::default(),
            lib.path(),
            &|_, _| {},
            &AtomicBool::new(false),
        );
        // Containers that state their length must fail; the rest may succeed with what is
        // there, but never leave a partial file.
        match r {
            Err(e) => {
                assert!(
                    ["decode_error", "unsupported_media_type", "verify_failed"]
                        .contains(&e.code_str()),
                    "{name}: {e}"
                );
                assert!(files_in(lib.path()).is_empty(), "{name}");
            }
            Ok(placed) => {
                assert!(
                    !matches!(
                        *name,
                        "flac16" | "flac24_96" | "wav" | "aiff" | "mp3_cbr" | "mp3_vbr"
                    ),
                    "{name} truncated was accepted"
                );
                support::ffmpeg_decodes(&placed.path);
            }
        }
    }
}

#[test]
fn absurd_header_sizes() {
    let dir = tempfile::tempdir().unwrap();
    // WAV claiming 65535 channels and a 4 GiB data chunk.
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF\xff\xff\xff\xffWAVEfmt \x10\0\0\0\x01\0\xff\xff\x44\xac\0\0\x10\xb1\x02\0\x04\0\x10\0data\xff\xff\xff\xff");
    wav.extend_from_slice(&[0u8; 4096]);
    let p = dir.path().join("huge.wav");
    std::fs::write(&p, &wav).unwrap();
    must_fail(&p, &["decode_error", "unsupported_media_type"]);
    // ID3v2 tag claiming 256 MiB.
    let mut id3 = b"ID3\x04\0\0\x7f\x7f\x7f\x7f".to_vec();
    id3.extend_from_slice(&[0u8; 1000]);
    let p = dir.path().join("huge-id3.mp3");
    std::fs::write(&p, &id3).unwrap();
    must_fail(&p, &["unsupported_media_type"]);
    // FLAC whose STREAMINFO block length runs past the file.
    let mut flac = b"fLaC\x80\xff\xff\xff".to_vec();
    flac.extend_from_slice(&[0u8; 64]);
    let p = dir.path().join("huge.flac");
    std::fs::write(&p, &flac).unwrap();
    must_fail(&p, &["decode_error", "unsupported_media_type"]);
}

#[test]
fn hostile_titles_stay_inside_the_library() {
    let (_, input) = &inputs().files.iter().find(|(n, _)| *n == "wav").unwrap();
    for title in [
        "../../etc/passwd".to_owned(),
        "x".repeat(10_000),
        "CON".to_owned(),
        "..".to_owned(),
    ] {
        let lib = tempfile::tempdir().unwrap();
        let opts = ProcessOptions {
            format: OutputFormat::Flac,
            template: PathTemplate::parse("{artist|Unknown}/{title}.{ext}").unwrap(),
            ..Default::default()
        };
        let meta = TrackMeta {
            title: Some(title.clone()),
            artists: vec!["../..".into()],
            ..Default::default()
        };
        let placed = process_file(
            input,
            &opts,
            &meta,
            lib.path(),
            &|_, _| {},
            &AtomicBool::new(false),
        )
        .unwrap();
        let real = placed.path.canonicalize().unwrap();
        assert!(
            real.starts_with(lib.path().canonicalize().unwrap()),
            "{real:?}"
        );
        for c in placed.path.strip_prefix(lib.path()).unwrap().components() {
            let s = c.as_os_str().to_str().unwrap();
            assert!(
                s.len() <= 255 && s != ".." && s != "." && !s.contains('/'),
                "{s}"
            );
        }
        // The tag keeps the real title even though the file name does not.
        let back = musicd_media::tags::read_tags(&placed.path).unwrap();
        assert_eq!(back.title.as_deref(), Some(title.as_str()));
    }
}

#[test]
fn existing_files_are_skipped_only_when_identical() {
    let (_, input) = &inputs().files.iter().find(|(n, _)| *n == "flac16").unwrap();
    let lib = tempfile::tempdir().unwrap();
    let opts = ProcessOptions {
        format: OutputFormat::Flac,
        template: PathTemplate::parse("{title}.{ext}").unwrap(),
        ..Default::default()
    };
    let meta = TrackMeta {
        title: Some("Same".into()),
        source_id: Some("src-1".into()),
        ..Default::default()
    };
    let run = |m: &TrackMeta| {
        process_file(
            input,
            &opts,
            m,
            lib.path(),
            &|_, _| {},
            &AtomicBool::new(false),
        )
        .unwrap()
    };
    let first = run(&meta);
    assert!(!first.skipped);
    let again = run(&meta);
    assert!(again.skipped, "same source id should be skipped");
    assert_eq!(again.path, first.path);
    // Another track with the same name gets its own file.
    let other = run(&TrackMeta {
        source_id: Some("src-2".into()),
        ..meta.clone()
    });
    assert!(!other.skipped);
    assert_ne!(other.path, first.path);
    // A zero-length file at the path is replaced.
    std::fs::write(&first.path, b"").unwrap();
    let fixed = run(&meta);
    assert!(!fixed.skipped);
    assert_eq!(fixed.path, first.path);
    assert!(std::fs::metadata(&first.path).unwrap().len() > 0);
    // A truncated file at the path is replaced.
    let data = std::fs::read(&first.path).unwrap();
    std::fs::write(&first.path, &data[..data.len() / 3]).unwrap();
    let fixed = run(&meta);
    assert!(!fixed.skipped);
    assert_eq!(std::fs::read(&first.path).unwrap().len(), data.len());
}

#[test]
fn cancellation_leaves_nothing() {
    let (_, input) = &inputs().files[0];
    let lib = tempfile::tempdir().unwrap();
    let r = process_file(
        input,
        &ProcessOptions::default(),
        &TrackMeta::default(),
        lib.path(),
        &|_, _| {},
        &AtomicBool::new(true),
    );
    assert_eq!(r.unwrap_err().code_str(), "cancelled");
    assert!(files_in(lib.path()).is_empty());
}
