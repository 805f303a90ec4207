//! The entry points the daemon calls: one file ([`process_file`]) or an album
//! ([`process_album`], which adds album gain). Each runs decode → (channel map, resample) →
//! encode + loudness → tags → verify → place, with decode on one thread and the rest on
//! another, joined by a bounded channel so memory stays constant and two cores overlap.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;

use serde::{Deserialize, Serialize};

use crate::decode::{AudioDecoderStream, Codec, StreamInfo};
use crate::dsp::{ChannelMapper, StreamResampler};
use crate::encode::{
    EncoderSettings, OutputFormat, TargetSpec, copy_extension, create_encoder, plan_target,
};
use crate::error::{ErrorCode, PipelineError, Result};
use crate::loudness::{AlbumLoudness, LoudnessMeter, TrackLoudness};
use crate::naming::{DEFAULT_TEMPLATE, PathTemplate};
use crate::place::{Identity, STAGING_DIR_NAME, StagedFile, fsync_file, place, write_side_file};
use crate::tags::{GainTags, TagOptions, TrackMeta, read_tags, write_tags};

/// A pipeline stage, reported with progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Identifying the input.
    Probe,
    /// Decoding, converting, encoding and measuring loudness.
    Transcode,
    /// Writing tags.
    Tag,
    /// Decoding the output end to end and reading tags back.
    Verify,
    /// Moving into the library.
    Place,
}

/// How to process a file.
#[derive(Debug, Clone)]
pub struct ProcessOptions {
    /// Output format.
    pub format: OutputFormat,
    /// Encoder settings (from a preset or exact values).
    pub settings: EncoderSettings,
    /// Library layout.
    pub template: PathTemplate,
    /// Tag writing options.
    pub tags: TagOptions,
    /// Measure loudness and write ReplayGain / R128 tags.
    pub loudness: bool,
    /// Also write `cover.jpg` (or `cover.png`) beside the tracks.
    pub cover_file: bool,
    /// Refuse inputs larger than this many bytes.
    pub max_input_bytes: u64,
    /// Staging directory; must be on the library's file system. Default:
    /// `<library>/.musicd-staging`.
    pub staging_dir: Option<PathBuf>,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        Self {
            format: OutputFormat::Mp3,
            settings: EncoderSettings::default(),
            template: PathTemplate::parse(DEFAULT_TEMPLATE).unwrap_or_else(|_| unreachable!()),
            tags: TagOptions::default(),
            loudness: true,
            cover_file: true,
            max_input_bytes: 4 * 1024 * 1024 * 1024,
            staging_dir: None,
        }
    }
}

/// Loudness numbers of a placed track.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoudnessSummary {
    /// Integrated loudness, LUFS.
    pub integrated_lufs: f64,
    /// True peak, linear.
    pub true_peak: f64,
    /// ReplayGain 2.0 track gain, dB.
    pub track_gain_db: f64,
    /// ReplayGain 2.0 album gain, dB, when processed as an album.
    pub album_gain_db: Option<f64>,
}

/// What the pipeline produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Placed {
    /// Final path inside the library.
    pub path: PathBuf,
    /// An identical track was already there; nothing was written.
    pub skipped: bool,
    /// Output format actually written (`copy` keeps the source's).
    pub format: OutputFormat,
    /// Output sample rate.
    pub sample_rate: u32,
    /// Output channels.
    pub channels: usize,
    /// Output duration in seconds.
    pub duration_secs: f64,
    /// Loudness, when measured.
    pub loudness: Option<LoudnessSummary>,
    /// `cover.jpg` written by this call, if any.
    pub cover_path: Option<PathBuf>,
    /// The metadata written (after merging source tags).
    pub meta_title: Option<String>,
}

/// A track transcoded into the staging area, tagged and placed by [`finish_track`].
pub struct StagedTrack {
    staged: StagedFile,
    ext: &'static str,
    format: OutputFormat,
    spec: TargetSpec,
    frames: u64,
    loudness: Option<TrackLoudness>,
    meta: TrackMeta,
    copy: bool,
}

fn check_cancel(cancel: &AtomicBool) -> Result<()> {
    if cancel.load(Ordering::Relaxed) {
        Err(PipelineError::cancelled())
    } else {
        Ok(())
    }
}

/// Process one file into the library. See the module docs for the stages.
pub fn process_file(
    input: &Path,
    opts: &ProcessOptions,
    meta: &TrackMeta,
    library: &Path,
    progress: &(dyn Fn(Stage, f64) + Sync),
    cancel: &AtomicBool,
) -> Result<Placed> {
    let staged = stage_track(input, opts, meta, library, progress, cancel)?;
    let gains = staged.gains(None);
    finish_track(staged, gains, None, opts, library, progress, cancel)
}

/// Process several files as one album: every track is staged first, then album gain is
/// computed from all of them, and each is tagged once and placed. Failures are per track.
pub fn process_album(
    inputs: &[(PathBuf, TrackMeta)],
    opts: &ProcessOptions,
    library: &Path,
    progress: &(dyn Fn(usize, Stage, f64) + Sync),
    cancel: &AtomicBool,
) -> Vec<Result<Placed>> {
    let mut staged: Vec<Result<StagedTrack>> = Vec::with_capacity(inputs.len());
    for (i, (path, meta)) in inputs.iter().enumerate() {
        staged.push(stage_track(
            path,
            opts,
            meta,
            library,
            &|s, f| progress(i, s, f),
            cancel,
        ));
    }
    let album = if opts.loudness {
        AlbumLoudness::from_tracks(
            staged
                .iter()
                .filter_map(|s| s.as_ref().ok()?.loudness.as_ref()),
        )
        .ok()
    } else {
        None
    };
    staged
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let s = s?;
            let gains = s.gains(album.as_ref());
            finish_track(
                s,
                gains,
                album.map(|a| a.replaygain_db()),
                opts,
                library,
                &|st, f| progress(i, st, f),
                cancel,
            )
        })
        .collect()
}

impl StagedTrack {
    fn gains(&self, album: Option<&AlbumLoudness>) -> GainTags {
        let Some(t) = self.loudness.as_ref() else {
            return GainTags::default();
        };
        let opus = self.ext == "opus";
        GainTags {
            track: Some((t.replaygain_db(), t.true_peak)),
            album: album.map(|a| (a.replaygain_db(), a.true_peak)),
            r128_track: opus.then(|| t.r128_q78()),
            r128_album: if opus {
                album.map(|a| a.r128_q78())
            } else {
                None
            },
        }
    }
}

/// Decode, convert, encode and measure one input into the staging area.
pub fn stage_track(
    input: &Path,
    opts: &ProcessOptions,
    meta: &TrackMeta,
    library: &Path,
    progress: &(dyn Fn(Stage, f64) + Sync),
    cancel: &AtomicBool,
) -> Result<StagedTrack> {
    opts.settings.validate()?;
    check_cancel(cancel)?;
    progress(Stage::Probe, 0.0);
    let size = std::fs::metadata(input)
        .map_err(|e| PipelineError::io("stat input", e))?
        .len();
    if size > opts.max_input_bytes {
        return Err(PipelineError::new(
            ErrorCode::TooLarge,
            format!(
                "input is {size} bytes, above the cap of {}",
                opts.max_input_bytes
            ),
        ));
    }
    let decoder = AudioDecoderStream::open(input)?;
    let info = decoder.info().clone();

    // Source tags fill whatever the caller did not say (and are the base for `copy`).
    let mut meta = meta.clone();
    if let Ok(src) = read_tags(input) {
        meta.fill_from(&src);
    }

    // `copy` needs a container lofty can tag; otherwise re-encode losslessly or to Opus.
    let (format, copy) = match opts.format {
        OutputFormat::Copy => match copy_extension(&info) {
            Some(_) => (OutputFormat::Copy, true),
            None if matches!(info.codec, Codec::Opus | Codec::Vorbis) => {
                (OutputFormat::Opus, false)
            }
            None => (OutputFormat::Flac, false),
        },
        f => (f, false),
    };
    let ext = if copy {
        copy_extension(&info).unwrap_or("bin")
    } else {
        format.extension().unwrap_or("bin")
    };
    let spec = if copy {
        TargetSpec {
            sample_rate: info.sample_rate,
            channels: info.channels.max(1),
            bits_per_sample: 16,
        }
    } else {
        plan_target(format, &opts.settings, &info)
    };
    let staging_dir = opts
        .staging_dir
        .clone()
        .unwrap_or_else(|| library.join(STAGING_DIR_NAME));
    let staged = StagedFile::new(&staging_dir, ext)?;
    progress(Stage::Transcode, 0.0);
    if copy {
        std::fs::copy(input, staged.path()).map_err(|e| PipelineError::io("copy input", e))?;
    }
    let (frames, loudness) = transcode(
        decoder,
        &info,
        format,
        copy,
        &opts.settings,
        spec,
        opts.loudness,
        staged.path(),
        progress,
        cancel,
    )?;
    check_cancel(cancel)?;
    Ok(StagedTrack {
        staged,
        ext,
        format: if copy { OutputFormat::Copy } else { format },
        spec,
        frames,
        loudness,
        meta,
        copy,
    })
}

#[allow(clippy::too_many_arguments)]
fn transcode(
    mut decoder: AudioDecoderStream,
    info: &StreamInfo,
    format: OutputFormat,
    copy: bool,
    settings: &EncoderSettings,
    spec: TargetSpec,
    measure: bool,
    out_path: &Path,
    progress: &(dyn Fn(Stage, f64) + Sync),
    cancel: &AtomicBool,
) -> Result<(u64, Option<TrackLoudness>)> {
    let (tx, rx) = sync_channel::<Vec<f32>>(8);
    let src_channels = info.channels;
    let total = info.total_frames;
    std::thread::scope(|scope| {
        let decode_thread = scope.spawn(move || -> Result<u64> {
            let mut last_report = 0u64;
            loop {
                check_cancel(cancel)?;
                match decoder.next_chunk()? {
                    Some(chunk) => {
                        if tx.send(chunk.to_vec()).is_err() {
                            // The encoder side failed; its error is the one to report.
                            return Ok(decoder.frames_out());
                        }
                        let done = decoder.frames_out();
                        if let Some(t) = total.filter(|t| *t > 0)
                            && done - last_report > t / 100
                        {
                            last_report = done;
                            progress(Stage::Transcode, (done as f64 / t as f64).min(1.0));
                        }
                    }
                    None => return Ok(decoder.frames_out()),
                }
            }
        });

        let encode_result = (|| -> Result<(u64, Option<TrackLoudness>)> {
            // The decoder may learn the channel count only at the first packet (AAC in MP4).
            let first = match rx.recv() {
                Ok(c) => c,
                Err(_) => return Ok((0, None)),
            };
            let in_channels = if src_channels == 0 {
                spec.channels.max(1)
            } else {
                src_channels
            };
            let out_channels = if copy { in_channels } else { spec.channels };
            let mut mapper = ChannelMapper::new(in_channels, out_channels, info.channel_positions)?;
            let mut resampler = if !copy && spec.sample_rate != info.sample_rate {
                Some(StreamResampler::new(
                    info.sample_rate,
                    spec.sample_rate,
                    out_channels,
                )?)
            } else {
                None
            };
            let out_rate = if copy {
                info.sample_rate
            } else {
                spec.sample_rate
            };
            let mut meter = if measure {
                Some(LoudnessMeter::new(out_channels, out_rate)?)
            } else {
                None
            };
            let mut encoder = if copy {
                None
            } else {
                let spec = TargetSpec {
                    channels: out_channels,
                    ..spec
                };
                let est = total.map(|t| {
                    (t as f64 * f64::from(spec.sample_rate) / f64::from(info.sample_rate)) as u64
                });
                Some(create_encoder(format, settings, spec, est, out_path)?)
            };
            let mut frames = 0u64;
            let mut sink = |buf: &[f32]| -> Result<()> {
                frames += (buf.len() / out_channels) as u64;
                if let Some(m) = meter.as_mut() {
                    m.add(buf)?;
                }
                if let Some(e) = encoder.as_mut() {
                    e.write(buf)?;
                }
                Ok(())
            };
            let mut chunk = first;
            loop {
                let mapped = mapper.map(&chunk);
                match resampler.as_mut() {
                    Some(r) => r.process(mapped, &mut sink)?,
                    None => sink(mapped)?,
                }
                match rx.recv() {
                    Ok(c) => chunk = c,
                    Err(_) => break,
                }
            }
            if let Some(r) = resampler.as_mut() {
                r.finish(&mut sink)?;
            }
            if let Some(e) = encoder {
                e.finish()?;
            }
            let loudness = match meter {
                Some(m) => Some(m.finish()?),
                None => None,
            };
            Ok((frames, loudness))
        })();
        // Unblock the decoder if the encoder stopped early.
        drop(rx);
        let decoded = decode_thread
            .join()
            .map_err(|_| PipelineError::decode("decoder thread panicked"))?;
        let decoded = decoded?;
        let (frames, loudness) = encode_result?;
        if decoded == 0 || frames == 0 {
            return Err(PipelineError::decode("no audio could be decoded"));
        }
        Ok((frames, loudness))
    })
}

/// Tag, verify and place a staged track.
pub fn finish_track(
    staged: StagedTrack,
    gains: GainTags,
    album_gain_db: Option<f64>,
    opts: &ProcessOptions,
    library: &Path,
    progress: &(dyn Fn(Stage, f64) + Sync),
    cancel: &AtomicBool,
) -> Result<Placed> {
    check_cancel(cancel)?;
    progress(Stage::Tag, 0.0);
    write_tags(
        staged.staged.path(),
        &staged.meta,
        &gains,
        &opts.tags,
        staged.copy,
    )?;
    fsync_file(staged.staged.path())?;

    check_cancel(cancel)?;
    progress(Stage::Verify, 0.0);
    let mut check = AudioDecoderStream::open(staged.staged.path()).map_err(|e| {
        PipelineError::new(
            ErrorCode::VerifyFailed,
            format!("output does not open: {e}"),
        )
    })?;
    let out_info = check.info().clone();
    loop {
        check_cancel(cancel)?;
        match check.next_chunk() {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                return Err(PipelineError::new(
                    ErrorCode::VerifyFailed,
                    format!("output does not decode: {e}"),
                ));
            }
        }
    }
    let out_frames = check.frames_out();
    let expected = staged.frames as f64 / f64::from(staged.spec.sample_rate.max(1));
    let got = out_frames as f64 / f64::from(out_info.sample_rate.max(1));
    // Codec framing may add up to a frame or two; anything more means a broken file.
    if (got - expected).abs() > 0.25 {
        return Err(PipelineError::new(
            ErrorCode::VerifyFailed,
            format!("output lasts {got:.3} s, expected {expected:.3} s"),
        ));
    }
    let back = read_tags(staged.staged.path()).map_err(|e| {
        PipelineError::new(
            ErrorCode::VerifyFailed,
            format!("tags do not read back: {e}"),
        )
    })?;
    if staged.meta.title.is_some() && back.title != staged.meta.title {
        return Err(PipelineError::new(
            ErrorCode::VerifyFailed,
            "title tag did not read back",
        ));
    }

    check_cancel(cancel)?;
    progress(Stage::Place, 0.0);
    let relative = opts.template.render(&staged.meta, staged.ext)?;
    let identity = Identity {
        source_id: staged.meta.source_id.clone(),
        isrc: staged.meta.isrc.clone(),
    };
    let cover = staged.meta.cover.clone();
    let title = staged.meta.title.clone();
    let loudness = staged.loudness.as_ref().map(|t| LoudnessSummary {
        integrated_lufs: t.integrated_lufs,
        true_peak: t.true_peak,
        track_gain_db: t.replaygain_db(),
        album_gain_db,
    });
    let format = staged.format;
    let outcome = place(staged.staged, library, &relative, &identity)?;
    let mut cover_path = None;
    if opts.cover_file
        && let (Some(data), Some(dir)) = (cover.as_ref(), outcome.path.parent())
    {
        let name = match crate::tags::image_mime(data) {
            Some(lofty::picture::MimeType::Png) => Some("cover.png"),
            Some(_) => Some("cover.jpg"),
            None => None,
        };
        if let Some(name) = name {
            cover_path = write_side_file(dir, name, data)?;
        }
    }
    progress(Stage::Place, 1.0);
    Ok(Placed {
        path: outcome.path,
        skipped: outcome.skipped,
        format,
        sample_rate: out_info.sample_rate,
        channels: out_info.channels,
        duration_secs: got,
        loudness,
        cover_path,
        meta_title: title,
    })
}
