//! Shared helpers: real audio generated with ffmpeg, checked with ffprobe, ffmpeg's ebur128
//! filter and mutagen — tools that did not write the files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub const TONE_SECS: f64 = 3.0;

pub struct Inputs {
    pub dir: tempfile::TempDir,
    pub cover: PathBuf,
    pub files: Vec<(&'static str, PathBuf)>,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run tool");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (name, file name, ffmpeg output args, sample rate, attach cover)
const INPUTS: &[(&str, &str, &[&str], u32)] = &[
    (
        "mp3_cbr",
        "in_cbr.mp3",
        &["-c:a", "libmp3lame", "-b:a", "192k"],
        44_100,
    ),
    (
        "mp3_vbr",
        "in_vbr.mp3",
        &["-c:a", "libmp3lame", "-q:a", "2"],
        44_100,
    ),
    (
        "aac_m4a",
        "in_aac.m4a",
        &["-c:a", "aac", "-b:a", "160k"],
        44_100,
    ),
    ("alac", "in_alac.m4a", &["-c:a", "alac"], 44_100),
    (
        "flac16",
        "in16.flac",
        &["-c:a", "flac", "-sample_fmt", "s16"],
        44_100,
    ),
    (
        "flac24_96",
        "in24.flac",
        &[
            "-c:a",
            "flac",
            "-sample_fmt",
            "s32",
            "-bits_per_raw_sample",
            "24",
        ],
        96_000,
    ),
    (
        "vorbis",
        "in.ogg",
        &["-c:a", "libvorbis", "-q:a", "5"],
        44_100,
    ),
    (
        "opus_ogg",
        "in.opus",
        &["-c:a", "libopus", "-b:a", "128k"],
        48_000,
    ),
    (
        "opus_webm",
        "in.webm",
        &["-c:a", "libopus", "-b:a", "128k"],
        48_000,
    ),
    ("wav", "in.wav", &["-c:a", "pcm_s16le"], 44_100),
    ("aiff", "in.aiff", &["-c:a", "pcm_s16be"], 44_100),
];

pub fn input_rate(name: &str) -> u32 {
    INPUTS
        .iter()
        .find(|i| i.0 == name)
        .map(|i| i.3)
        .unwrap_or(44_100)
}

pub fn inputs() -> &'static Inputs {
    static INPUTS_CELL: OnceLock<Inputs> = OnceLock::new();
    INPUTS_CELL.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let cover = dir.path().join("cover.jpg");
        run(Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "color=c=red:s=64x64",
                "-frames:v",
                "1",
            ])
            .arg(&cover));
        let mut files = Vec::new();
        for (name, file, args, rate) in INPUTS {
            let path = dir.path().join(file);
            let mut cmd = Command::new("ffmpeg");
            cmd.args(["-v", "error", "-y", "-f", "lavfi", "-i"])
                .arg(format!(
                    "sine=frequency=440:sample_rate={rate}:duration={TONE_SECS}"
                ))
                .args(["-ac", "2", "-af", "volume=-6dB"])
                .args([
                    "-metadata",
                    "title=Source Title",
                    "-metadata",
                    "artist=Source Artist",
                    "-metadata",
                    "album=Tones",
                ])
                .args(*args)
                .arg(&path);
            run(&mut cmd);
            files.push((*name, path));
        }
        Inputs { dir, cover, files }
    })
}

#[derive(Debug)]
pub struct Probe {
    pub duration: f64,
    pub sample_rate: u32,
    pub channels: u32,
}

pub fn ffprobe(path: &Path) -> Probe {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_entries",
            "stream=sample_rate,channels:format=duration",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffprobe failed on {path:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["streams"][0];
    Probe {
        duration: v["format"]["duration"].as_str().unwrap().parse().unwrap(),
        sample_rate: s["sample_rate"].as_str().unwrap().parse().unwrap(),
        channels: s["channels"].as_u64().unwrap() as u32,
    }
}

/// Decode the whole file with ffmpeg; any error output fails.
pub fn ffmpeg_decodes(path: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg decode of {path:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Integrated loudness measured by ffmpeg's ebur128 filter.
pub fn ffmpeg_lufs(path: &Path) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(path)
        .args(["-af", "ebur128=peak=true", "-f", "null", "-"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    let summary = text.rsplit("Summary:").next().unwrap();
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with("I:"))
        .expect("I: line");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

pub fn mutagen_tags(path: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/readtags.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mutagen on {path:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn parse_gain(s: &str) -> f64 {
    s.trim().trim_end_matches("dB").trim().parse().unwrap()
}
