//! The entry points the daemon calls: one file ([`process_file`]) or an album
//! ([`process_album`], which adds album gain). Each runs decode → (channel map, resample) →
//! encode + loudness → tags → verify → place. By default ([`ProcessOptions::pipelined`])
//! decode runs on one thread and the rest on another, joined by a bounded channel so memory
//! stays constant and two cores overlap; with `pipelined: false` everything runs on the
//! calling thread (for `--threads 1`, and for callers that run many files at once).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
    /// Refuse inputs that play longer than this many seconds (before transcoding when the
    /// header says the length, else as soon as decoding passes it).
    pub max_duration_secs: f64,
    /// Refuse to place an output larger than this many bytes (a quota's room).
    pub max_output_bytes: u64,
    /// A broken or empty file already at the target path may be replaced (default `true`).
    /// `false` never touches an existing file: the new one takes a numbered name.
    pub replace_broken: bool,
    /// Staging directory; must be on the library's file system. Default:
    /// `<library>/.musicd-staging`.
    pub staging_dir: Option<PathBuf>,
    /// Decode on a second thread while this one converts, measures and encodes (default
    /// `true`). `false` keeps the whole file on the calling thread: one core per file.
    pub pipelined: bool,
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
            max_duration_secs: 12.0 * 3600.0,
            max_output_bytes: u64::MAX,
            replace_broken: true,
            staging_dir: None,
            pipelined: true,
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
    let mut decoder = AudioDecoderStream::open(input)?;
    let info = decoder.info().clone();
    let max_frames = (opts.max_duration_secs * f64::from(info.sample_rate.max(1))) as u64;
    if let Some(total) = info.total_frames
        && total > max_frames
    {
        return Err(PipelineError::new(
            ErrorCode::TooLong,
            format!(
                "the input plays {}, longer than the cap of {}",
                clock(total as f64 / f64::from(info.sample_rate.max(1))),
                clock(opts.max_duration_secs)
            ),
        ));
    }
    decoder.limit_frames(max_frames);

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
    let plan = EncodePlan {
        info: &info,
        format,
        copy,
        settings: &opts.settings,
        spec,
        measure: opts.loudness,
        out_path: staged.path(),
    };
    let (frames, loudness) = if opts.pipelined {
        transcode_pipelined(decoder, &plan, progress, cancel)?
    } else {
        transcode_inline(decoder, &plan, progress, cancel)?
    };
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

/// `1 h 02 min 05 s`-style length for messages.
fn clock(secs: f64) -> String {
    let s = secs.round() as u64;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, sec) => format!("{sec} s"),
        (0, m, sec) => format!("{m} min {sec:02} s"),
        (h, m, sec) => format!("{h} h {m:02} min {sec:02} s"),
    }
}

/// What the encode side of a transcode needs to know.
struct EncodePlan<'a> {
    info: &'a StreamInfo,
    format: OutputFormat,
    copy: bool,
    settings: &'a EncoderSettings,
    spec: TargetSpec,
    measure: bool,
    out_path: &'a Path,
}

/// Channel map → resample → loudness meter, fed chunk by chunk; what comes out is what the
/// encoder gets. In the pipelined mode this runs on the decode thread, so the encoder has a
/// core to itself.
struct Prep {
    mapper: ChannelMapper,
    resampler: Option<StreamResampler>,
    meter: Option<LoudnessMeter>,
    out_channels: usize,
    frames: u64,
}

type Sink<'s> = dyn FnMut(&[f32]) -> Result<()> + 's;

impl Prep {
    /// `decoded_channels` is the count the decoder actually produced (some containers only
    /// state it at the first packet).
    fn new(plan: &EncodePlan<'_>, decoded_channels: usize) -> Result<Self> {
        let info = plan.info;
        let spec = plan.spec;
        let in_channels = if decoded_channels == 0 {
            spec.channels.max(1)
        } else {
            decoded_channels
        };
        let out_channels = if plan.copy {
            in_channels
        } else {
            spec.channels
        };
        let mapper = ChannelMapper::new(in_channels, out_channels, info.channel_positions)?;
        let resampler = if !plan.copy && spec.sample_rate != info.sample_rate {
            Some(StreamResampler::new(
                info.sample_rate,
                spec.sample_rate,
                out_channels,
            )?)
        } else {
            None
        };
        let out_rate = if plan.copy {
            info.sample_rate
        } else {
            spec.sample_rate
        };
        let meter = if plan.measure {
            Some(LoudnessMeter::new(out_channels, out_rate)?)
        } else {
            None
        };
        Ok(Self {
            mapper,
            resampler,
            meter,
            out_channels,
            frames: 0,
        })
    }

    fn push(&mut self, chunk: &[f32], out: &mut Sink<'_>) -> Result<()> {
        let Self {
            mapper,
            resampler,
            meter,
            out_channels,
            frames,
        } = self;
        let mut sink = |buf: &[f32]| -> Result<()> {
            *frames += (buf.len() / *out_channels) as u64;
            if let Some(m) = meter.as_mut() {
                m.add(buf)?;
            }
            out(buf)
        };
        let mapped = mapper.map(chunk);
        match resampler.as_mut() {
            Some(r) => r.process(mapped, &mut sink),
            None => sink(mapped),
        }
    }

    fn finish(mut self, out: &mut Sink<'_>) -> Result<(u64, Option<TrackLoudness>)> {
        if let Some(mut r) = self.resampler.take() {
            let Self {
                meter,
                out_channels,
                frames,
                ..
            } = &mut self;
            r.finish(&mut |buf: &[f32]| -> Result<()> {
                *frames += (buf.len() / *out_channels) as u64;
                if let Some(m) = meter.as_mut() {
                    m.add(buf)?;
                }
                out(buf)
            })?;
        }
        let loudness = match self.meter {
            Some(m) => Some(m.finish()?),
            None => None,
        };
        Ok((self.frames, loudness))
    }
}

/// The encoder for `out_channels` of prepared audio (`None` for `copy`).
fn make_encoder(
    plan: &EncodePlan<'_>,
    out_channels: usize,
) -> Result<Option<Box<dyn crate::encode::AudioEncoder>>> {
    if plan.copy {
        return Ok(None);
    }
    let info = plan.info;
    let spec = TargetSpec {
        channels: out_channels,
        ..plan.spec
    };
    let est = info
        .total_frames
        .map(|t| (t as f64 * f64::from(spec.sample_rate) / f64::from(info.sample_rate)) as u64);
    Ok(Some(create_encoder(
        plan.format,
        plan.settings,
        spec,
        est,
        plan.out_path,
    )?))
}

/// Report decode progress about once per percent.
struct ProgressTicker {
    total: Option<u64>,
    last: u64,
}

impl ProgressTicker {
    fn tick(&mut self, done: u64, progress: &(dyn Fn(Stage, f64) + Sync)) {
        if let Some(t) = self.total.filter(|t| *t > 0)
            && done - self.last > t / 100
        {
            self.last = done;
            progress(Stage::Transcode, (done as f64 / t as f64).min(1.0));
        }
    }
}

fn check_decoded(decoded: u64, frames: u64) -> Result<()> {
    if decoded == 0 || frames == 0 {
        return Err(PipelineError::decode("no audio could be decoded"));
    }
    Ok(())
}

/// Decode and encode on the calling thread; no copies between the two.
fn transcode_inline(
    mut decoder: AudioDecoderStream,
    plan: &EncodePlan<'_>,
    progress: &(dyn Fn(Stage, f64) + Sync),
    cancel: &AtomicBool,
) -> Result<(u64, Option<TrackLoudness>)> {
    let mut ticker = ProgressTicker {
        total: plan.info.total_frames,
        last: 0,
    };
    let mut state: Option<(Prep, Option<Box<dyn crate::encode::AudioEncoder>>)> = None;
    loop {
        check_cancel(cancel)?;
        let Some((chunk, channels)) = decoder.next_chunk_with_channels()? else {
            break;
        };
        let (prep, encoder) = match state.as_mut() {
            Some(s) => s,
            None => {
                let prep = Prep::new(plan, channels)?;
                let encoder = make_encoder(plan, prep.out_channels)?;
                state.insert((prep, encoder))
            }
        };
        prep.push(chunk, &mut |buf| match encoder.as_mut() {
            Some(e) => e.write(buf),
            None => Ok(()),
        })?;
        ticker.tick(decoder.frames_out(), progress);
    }
    let Some((prep, mut encoder)) = state else {
        return Err(PipelineError::decode("no audio could be decoded"));
    };
    let (frames, loudness) = prep.finish(&mut |buf| match encoder.as_mut() {
        Some(e) => e.write(buf),
        None => Ok(()),
    })?;
    if let Some(e) = encoder {
        e.finish()?;
    }
    check_decoded(decoder.frames_out(), frames)?;
    Ok((frames, loudness))
}

/// Decode, map, resample and measure on a scoped thread, encode here, joined by a bounded
/// channel. Buffers travel back on a second channel and are reused, so the steady state
/// allocates nothing.
fn transcode_pipelined(
    mut decoder: AudioDecoderStream,
    plan: &EncodePlan<'_>,
    progress: &(dyn Fn(Stage, f64) + Sync),
    cancel: &AtomicBool,
) -> Result<(u64, Option<TrackLoudness>)> {
    // Each message carries at least this many samples (a few packets), so the channel
    // hand-off costs little per sample.
    const MIN_BATCH_SAMPLES: usize = 16 * 1024;
    const DEPTH: usize = 4;
    let (tx, rx) = sync_channel::<Vec<f32>>(DEPTH);
    let (back_tx, back_rx) = sync_channel::<Vec<f32>>(DEPTH + 2);
    // The prepared channel count, set before the first send.
    let out_channels = AtomicUsize::new(0);
    let total = plan.info.total_frames;
    std::thread::scope(|scope| {
        let out_channels = &out_channels;
        let prep_thread = scope.spawn(move || -> Result<(u64, u64, Option<TrackLoudness>)> {
            let mut ticker = ProgressTicker { total, last: 0 };
            let mut batch: Vec<f32> = Vec::new();
            let mut prep: Option<Prep> = None;
            // Appends prepared audio to the batch and sends full batches; false once the
            // encoder side has hung up.
            let hung_up = std::cell::Cell::new(false);
            let mut send = |buf: &[f32], flush: bool| {
                if hung_up.get() {
                    return;
                }
                if batch.capacity() == 0 {
                    batch = back_rx.try_recv().unwrap_or_default();
                    batch.clear();
                }
                batch.extend_from_slice(buf);
                if !batch.is_empty()
                    && (flush || batch.len() >= MIN_BATCH_SAMPLES)
                    && tx.send(std::mem::take(&mut batch)).is_err()
                {
                    hung_up.set(true);
                }
            };
            loop {
                check_cancel(cancel)?;
                if hung_up.get() {
                    // The encoder side failed; its error is the one to report.
                    return Ok((decoder.frames_out(), 0, None));
                }
                let Some((chunk, channels)) = decoder.next_chunk_with_channels()? else {
                    break;
                };
                let p = match prep.as_mut() {
                    Some(p) => p,
                    None => {
                        let p = Prep::new(plan, channels)?;
                        out_channels.store(p.out_channels, Ordering::Release);
                        prep.insert(p)
                    }
                };
                p.push(chunk, &mut |buf| {
                    send(buf, false);
                    Ok(())
                })?;
                ticker.tick(decoder.frames_out(), progress);
            }
            let Some(p) = prep else {
                return Ok((decoder.frames_out(), 0, None));
            };
            let (frames, loudness) = p.finish(&mut |buf| {
                send(buf, false);
                Ok(())
            })?;
            send(&[], true);
            Ok((decoder.frames_out(), frames, loudness))
        });

        let encode_result = (|| -> Result<()> {
            let mut encoder: Option<Box<dyn crate::encode::AudioEncoder>> = None;
            let mut created = false;
            while let Ok(batch) = rx.recv() {
                if !created {
                    encoder = make_encoder(plan, out_channels.load(Ordering::Acquire))?;
                    created = true;
                }
                if let Some(e) = encoder.as_mut() {
                    e.write(&batch)?;
                }
                // The preparing side may have finished; a full return channel drops it.
                let _ = back_tx.try_send(batch);
            }
            match encoder {
                Some(e) => e.finish(),
                None => Ok(()),
            }
        })();
        // Unblock the preparing thread if the encoder stopped early.
        drop(rx);
        let prepared = prep_thread
            .join()
            .map_err(|_| PipelineError::decode("decoder thread panicked"))?;
        let (decoded, frames, loudness) = prepared?;
        encode_result?;
        check_decoded(decoded, frames)?;
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

    let size = std::fs::metadata(staged.staged.path())
        .map_err(|e| PipelineError::io("stat output", e))?
        .len();
    if size > opts.max_output_bytes {
        return Err(PipelineError::new(
            ErrorCode::TooLarge,
            format!(
                "the output is {size} bytes, more than the {} bytes allowed",
                opts.max_output_bytes
            ),
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
    let outcome = place(
        staged.staged,
        library,
        &relative,
        &identity,
        opts.replace_broken,
    )?;
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
