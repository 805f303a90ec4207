//! Every input codec × every output format through `process_file`, checked by ffprobe, ffmpeg
//! (decode and ebur128) and mutagen.

mod support;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use musicd_media::encode::Mp3Mode;
use musicd_media::{
    EncoderSettings, OutputFormat, PathTemplate, ProcessOptions, QualityPreset, TrackMeta,
    process_file,
};
use support::*;

fn meta(input: &str) -> TrackMeta {
    TrackMeta {
        title: Some(format!("Tone {input}")),
        artists: vec!["Tester".into(), "Second".into()],
        album: Some("Matrix".into()),
        track_number: Some(1),
        track_total: Some(1),
        date: Some("2024-01-02".into()),
        isrc: Some("USX9P0000001".into()),
        cover: Some(std::fs::read(&inputs().cover).unwrap()),
        ..Default::default()
    }
}

fn expected_rate(format: OutputFormat, input: &str) -> u32 {
    let src = input_rate(input);
    match format {
        OutputFormat::Opus => 48_000,
        OutputFormat::Mp3 | OutputFormat::Vorbis if src > 48_000 => 48_000,
        _ => src,
    }
}

fn run_output(label: &str, format: OutputFormat, settings: EncoderSettings) {
    run_output_with(label, format, settings, true);
}

/// `pipelined: false` runs decode and encode on the test thread; some rows use it so both
/// paths see every input codec.
fn run_output_with(label: &str, format: OutputFormat, settings: EncoderSettings, pipelined: bool) {
    let ins = inputs();
    let mut failures = Vec::new();
    for (name, path) in &ins.files {
        let lib = tempfile::tempdir().unwrap();
        let opts = ProcessOptions {
            format,
            settings: settings.clone(),
            template: PathTemplate::parse("{artist}/{album}/{track:02} {title}.{ext}").unwrap(),
            pipelined,
            ..Default::default()
        };
        let cancel = AtomicBool::new(false);
        let placed = match process_file(path, &opts, &meta(name), lib.path(), &|_, _| {}, &cancel) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{label} <- {name}: {e}"));
                continue;
            }
        };
        if let Err(msg) = check(format, name, path, &placed.path, lib.path()) {
            failures.push(format!("{label} <- {name}: {msg}"));
        }
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

fn check(
    format: OutputFormat,
    name: &str,
    input: &Path,
    out: &Path,
    lib: &Path,
) -> Result<(), String> {
    if !out.starts_with(lib) {
        return Err(format!("{out:?} outside library"));
    }
    ffmpeg_decodes(out);
    let pin = ffprobe(input);
    let pout = ffprobe(out);
    if (pin.duration - pout.duration).abs() > 0.060 {
        return Err(format!(
            "duration {} vs input {}",
            pout.duration, pin.duration
        ));
    }
    if pout.channels != 2 {
        return Err(format!("channels {}", pout.channels));
    }
    let want_rate = expected_rate(format, name);
    if pout.sample_rate != want_rate {
        return Err(format!("sample rate {} want {want_rate}", pout.sample_rate));
    }
    let tags = mutagen_tags(out);
    if tags["title"].as_str() != Some(&format!("Tone {name}")) {
        return Err(format!("title tag {:?}", tags["title"]));
    }
    if tags["artist"].as_str() != Some("Tester; Second") {
        return Err(format!("artist tag {:?}", tags["artist"]));
    }
    if tags["cover"].as_bool() != Some(true) {
        return Err("no embedded cover".into());
    }
    let gain = if let Some(r128) = tags["r128_track_gain"].as_str() {
        r128.parse::<f64>().map_err(|e| e.to_string())? / 256.0 + 5.0
    } else {
        parse_gain(tags["rg_track_gain"].as_str().ok_or("no ReplayGain tag")?)
    };
    let measured = -18.0 - ffmpeg_lufs(out);
    if (gain - measured).abs() > 0.5 {
        return Err(format!(
            "track gain {gain:.2} dB vs ffmpeg {measured:.2} dB"
        ));
    }
    if !out.parent().unwrap().join("cover.jpg").exists() {
        return Err("no cover.jpg".into());
    }
    Ok(())
}

#[test]
fn to_mp3_v0() {
    let s = EncoderSettings {
        mp3: Mp3Mode::Vbr(0),
        ..EncoderSettings::default()
    };
    run_output("mp3 V0", OutputFormat::Mp3, s);
}

#[test]
fn to_mp3_320() {
    let s = EncoderSettings {
        mp3: Mp3Mode::Cbr(320),
        ..EncoderSettings::default()
    };
    run_output_with("mp3 320 (one thread)", OutputFormat::Mp3, s, false);
}

#[test]
fn to_opus_128k() {
    let s = EncoderSettings {
        opus_bitrate: 128_000,
        ..EncoderSettings::default()
    };
    run_output("opus 128k", OutputFormat::Opus, s);
}

#[test]
fn to_flac() {
    run_output(
        "flac",
        OutputFormat::Flac,
        EncoderSettings::preset(QualityPreset::Lossless),
    );
}

#[test]
fn to_vorbis_q6() {
    let s = EncoderSettings {
        vorbis_quality: 6.0,
        ..EncoderSettings::default()
    };
    run_output("vorbis q6", OutputFormat::Vorbis, s);
}

#[test]
fn to_wav() {
    run_output_with(
        "wav (one thread)",
        OutputFormat::Wav,
        EncoderSettings::default(),
        false,
    );
}

#[test]
fn to_copy() {
    run_output("copy", OutputFormat::Copy, EncoderSettings::default());
}

#[test]
fn album_gain_is_written_for_every_track() {
    let ins = inputs();
    let pick = |n: &str| {
        ins.files
            .iter()
            .find(|(name, _)| *name == n)
            .unwrap()
            .1
            .clone()
    };
    let lib = tempfile::tempdir().unwrap();
    let opts = ProcessOptions {
        format: OutputFormat::Flac,
        template: PathTemplate::parse("{album}/{track:02} {title}.{ext}").unwrap(),
        ..Default::default()
    };
    let tracks: Vec<_> = ["wav", "mp3_cbr"]
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                pick(n),
                TrackMeta {
                    title: Some(format!("T{i}")),
                    album: Some("A".into()),
                    track_number: Some(i as u32 + 1),
                    ..Default::default()
                },
            )
        })
        .collect();
    let placed = musicd_media::process_album(
        &tracks,
        &opts,
        lib.path(),
        &|_, _, _| {},
        &AtomicBool::new(false),
    );
    for p in placed {
        let p = p.unwrap();
        let l = p.loudness.unwrap();
        let album = l.album_gain_db.expect("album gain");
        assert!((album - l.track_gain_db).abs() < 1.0, "{l:?}");
        let out = std::process::Command::new("python3")
            .args(["-c", "import mutagen,sys; f=mutagen.File(sys.argv[1]); print(f.tags['replaygain_album_gain'][0])"])
            .arg(&p.path)
            .output()
            .unwrap();
        let tag = parse_gain(&String::from_utf8_lossy(&out.stdout));
        assert!((tag - album).abs() < 0.01, "{tag} vs {album}");
    }
}

#[test]
fn every_inputs_own_tags_are_read_and_kept() {
    // ffmpeg tagged every input (Matroska/WebM too, which lofty cannot parse).
    for (name, path) in &inputs().files {
        let m = musicd_media::tags::read_tags(path).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(m.title.as_deref(), Some("Source Title"), "{name}: {m:?}");
        if *name == "aiff" {
            // AIFF's text chunks have a name (read) but no album, and its author chunk is not
            // taken as the artist.
            continue;
        }
        assert_eq!(m.artists, ["Source Artist"], "{name}: {m:?}");
        assert_eq!(m.album.as_deref(), Some("Tones"), "{name}: {m:?}");
    }
    // A WebM import with nothing said about it keeps its own tags (read back by mutagen).
    let (_, webm) = inputs()
        .files
        .iter()
        .find(|(n, _)| *n == "opus_webm")
        .unwrap();
    let lib = tempfile::tempdir().unwrap();
    let opts = ProcessOptions {
        format: OutputFormat::Opus,
        ..Default::default()
    };
    let placed = process_file(
        webm,
        &opts,
        &TrackMeta::default(),
        lib.path(),
        &|_, _| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    let tags = mutagen_tags(&placed.path);
    assert_eq!(tags["title"], serde_json::json!("Source Title"), "{tags}");
    assert_eq!(tags["artist"], serde_json::json!("Source Artist"), "{tags}");
    assert_eq!(tags["album"], serde_json::json!("Tones"), "{tags}");
}
