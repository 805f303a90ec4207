//! Runs one file through `process_file`, as `musicd import` does, for benchmarks and
//! profiling without the daemon binary.
//!
//! ```sh
//! cargo run --release -p musicd-media --example transcode -- \
//!     INPUT LIBRARY FORMAT [--vbr N] [--bitrate BPS] [--compression N] [--single] [--no-loudness]
//! ```
//!
//! `--single` sets `pipelined: false` (decode and encode on one thread).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use musicd_media::encode::Mp3Mode;
use musicd_media::{OutputFormat, ProcessOptions, TrackMeta, process_file};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!(
            "usage: transcode INPUT LIBRARY FORMAT [--vbr N] [--bitrate BPS] [--compression N] [--single] [--no-loudness]"
        );
        return ExitCode::from(2);
    }
    let input = PathBuf::from(&args[0]);
    let library = PathBuf::from(&args[1]);
    let mut opts = ProcessOptions {
        format: match OutputFormat::parse(&args[2]) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        },
        ..Default::default()
    };
    let mut rest = args[3..].iter();
    while let Some(flag) = rest.next() {
        let mut value = || -> u32 {
            rest.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--vbr" => opts.settings.mp3 = Mp3Mode::Vbr(value() as u8),
            "--bitrate" => opts.settings.opus_bitrate = value(),
            "--compression" => opts.settings.flac_level = value(),
            "--single" => opts.pipelined = false,
            "--no-loudness" => opts.loudness = false,
            other => {
                eprintln!("unknown flag {other}");
                return ExitCode::from(2);
            }
        }
    }
    let cancel = AtomicBool::new(false);
    match process_file(
        &input,
        &opts,
        &TrackMeta::default(),
        &library,
        &|_, _| {},
        &cancel,
    ) {
        Ok(p) => {
            println!("{}", p.path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", input.display());
            ExitCode::FAILURE
        }
    }
}
