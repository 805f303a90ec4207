//! `musicd import`: runs local files through the media pipeline into the library, with a
//! progress bar and a summary; the exit status is non-zero when any file failed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use indicatif::{ProgressBar, ProgressStyle};
use musicd_media::encode::Mp3Mode;
use musicd_media::{OutputFormat, ProcessOptions, TrackMeta, process_file};

use crate::config::Config;

/// Options of `musicd import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Files or directories (searched recursively).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Output format: copy, mp3, opus, flac, vorbis, wav (default: media.format).
    #[arg(long)]
    pub format: Option<String>,
    /// Quality preset: low, medium, high, lossless (default: media.quality).
    #[arg(long)]
    pub quality: Option<String>,
    /// Path template (default: media.path_template).
    #[arg(long)]
    pub template: Option<String>,
    /// Library directory (default: library_dir).
    #[arg(long)]
    pub library: Option<PathBuf>,
    /// Exact bitrate instead of the preset: MP3 CBR or Opus, e.g. `128k`.
    #[arg(long)]
    pub bitrate: Option<String>,
    /// MP3 VBR level 0 (best) to 9, instead of the preset.
    #[arg(long)]
    pub vbr: Option<u8>,
    /// FLAC compression level 0 to 8, instead of the preset.
    #[arg(long)]
    pub compression: Option<u32>,
    /// Vorbis quality -1 to 10, instead of the preset.
    #[arg(long)]
    pub vorbis_quality: Option<f32>,
    /// Skip loudness measurement and ReplayGain tags.
    #[arg(long)]
    pub no_loudness: bool,
    /// Files processed at once (default: the cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

fn parse_bitrate(s: &str) -> anyhow::Result<u32> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mul) = match t.strip_suffix('k') {
        Some(n) => (n, 1000),
        None => (t.as_str(), 1),
    };
    let v: u32 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("--bitrate: not a bitrate: {s}"))?;
    Ok(v * mul)
}

fn options(config: &Config, a: &ImportArgs) -> anyhow::Result<ProcessOptions> {
    let mut opts = config
        .media
        .process_options(
            a.format.as_deref(),
            a.quality.as_deref(),
            a.template.as_deref(),
        )
        .map_err(|e| anyhow::anyhow!("--{e}"))?;
    if let Some(b) = &a.bitrate {
        let bps = parse_bitrate(b)?;
        match opts.format {
            OutputFormat::Mp3 => {
                let kbps = (bps / 1000) as u16;
                anyhow::ensure!(
                    (32..=320).contains(&kbps),
                    "--bitrate: MP3 takes 32k to 320k"
                );
                opts.settings.mp3 = Mp3Mode::Cbr(kbps);
            }
            OutputFormat::Opus => {
                anyhow::ensure!(
                    (6_000..=512_000).contains(&bps),
                    "--bitrate: Opus takes 6k to 512k"
                );
                opts.settings.opus_bitrate = bps;
            }
            other => anyhow::bail!("--bitrate does not apply to {other:?}"),
        }
    }
    if let Some(v) = a.vbr {
        anyhow::ensure!(v <= 9, "--vbr takes 0 to 9");
        opts.settings.mp3 = Mp3Mode::Vbr(v);
    }
    if let Some(c) = a.compression {
        anyhow::ensure!(c <= 8, "--compression takes 0 to 8");
        opts.settings.flac_level = c;
    }
    if let Some(q) = a.vorbis_quality {
        anyhow::ensure!(
            (-1.0..=10.0).contains(&q),
            "--vorbis-quality takes -1 to 10"
        );
        opts.settings.vorbis_quality = q;
    }
    if a.no_loudness {
        opts.loudness = false;
    }
    // One thread means one: decode and encode then share it, as `ffmpeg -threads 1` does.
    if a.threads == Some(1) {
        opts.pipelined = false;
    }
    Ok(opts)
}

/// Every regular file under the given paths, sorted, skipping hidden entries.
pub fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        let meta = std::fs::symlink_metadata(p)?;
        if meta.is_file() {
            out.push(p.to_path_buf());
        } else if meta.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(p)?.filter_map(|e| e.ok()).collect();
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                if !e.file_name().to_string_lossy().starts_with('.') {
                    walk(&e.path(), out)?;
                }
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    }
    Ok(out)
}

/// Runs the import; prints a summary and each failure with its reason.
pub fn run(config: &Config, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let opts = options(config, &args)?;
    let library = args
        .library
        .clone()
        .unwrap_or_else(|| config.library_dir.clone());
    std::fs::create_dir_all(&library)
        .map_err(|e| anyhow::anyhow!("cannot create library {}: {e}", library.display()))?;
    let files = collect_files(&args.paths)?;
    anyhow::ensure!(!files.is_empty(), "no files found");
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .clamp(1, 64);
    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed_precise} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let next = Mutex::new(files.iter());
    let results = Mutex::new(Vec::new());
    let cancel = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..threads.min(files.len()) {
            scope.spawn(|| {
                loop {
                    let Some(file) = next.lock().expect("queue").next() else {
                        return;
                    };
                    bar.set_message(file.display().to_string());
                    // The input's content hash is its identity: importing it again is a skip.
                    let meta = TrackMeta {
                        source_id: file_hash(file).map(|h| format!("sha256:{h}")),
                        ..TrackMeta::default()
                    };
                    let r = process_file(file, &opts, &meta, &library, &|_, _| {}, &cancel);
                    bar.inc(1);
                    results.lock().expect("results").push((file.clone(), r));
                }
            });
        }
    });
    bar.finish_and_clear();
    let mut results = results.into_inner().expect("results");
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let (mut placed, mut skipped, mut failed) = (0, 0, Vec::new());
    let mut to_index = Vec::new();
    for (file, r) in &results {
        match r {
            Ok(p) if p.skipped => {
                skipped += 1;
                println!(
                    "skipped  {} (already in the library as {})",
                    file.display(),
                    p.path.display()
                );
            }
            Ok(p) => {
                placed += 1;
                println!("imported {} -> {}", file.display(), p.path.display());
                to_index.push((p.path.clone(), file_hash(file)));
            }
            Err(e) => failed.push((file, e)),
        }
    }
    for (file, e) in &failed {
        eprintln!(
            "failed   {}: {} ({})",
            file.display(),
            e.message,
            e.code_str()
        );
    }
    println!(
        "{placed} imported, {skipped} skipped, {} failed",
        failed.len()
    );
    if let Err(e) = index(config, &to_index) {
        eprintln!(
            "warning: the files are in place but not in the library index ({e:#}); `musicd scan` adds them"
        );
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// SHA-256 of a file's content, streamed.
fn file_hash(path: &Path) -> Option<String> {
    crate::library::sha256_file(path).ok()
}

/// Adds placed files (with the hash of the input each was made from) to the library index.
fn index(config: &Config, placed: &[(PathBuf, Option<String>)]) -> anyhow::Result<()> {
    if placed.is_empty() {
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let db = crate::app::open_db(config).await?;
        for (path, hash) in placed {
            let origin = crate::library::Origin {
                source_hash: hash.clone(),
                ..Default::default()
            };
            crate::library::index_file(&db, path, origin).await?;
        }
        anyhow::Ok(())
    })
}
