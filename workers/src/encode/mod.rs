//! Encoders for every output format, behind one streaming interface.
//!
//! | format | library | settings |
//! |---|---|---|
//! | MP3 | LAME (`mp3lame-encoder`) | CBR 128–320 kbit/s or VBR V0–V9; Xing/LAME header with gapless info |
//! | Opus | libopus (`opus`) in Ogg (`ogg`) | bitrate (unconstrained VBR, as opusenc); 48 kHz; correct pre-skip and granule positions |
//! | FLAC | libFLAC (`libflac-sys`, built from source) | compression level 0–8; bit depth kept up to 24 |
//! | Vorbis | libvorbis/aoTuV (`vorbis_rs`) | quality -1…10 (`q6` = 0.6) |
//! | WAV | `hound` | 16- or 24-bit integer PCM |
//! | copy | — | the source file unchanged (tags only) |
//!
//! ## Quality presets
//!
//! | preset | MP3 | Opus | Vorbis | FLAC |
//! |---|---|---|---|---|
//! | `low` | VBR V5 | 96 kbit/s | q3 | level 5 |
//! | `medium` | VBR V2 | 128 kbit/s | q5 | level 5 |
//! | `high` | VBR V0 | 192 kbit/s | q7 | level 5 |
//! | `lossless` | CBR 320 | 256 kbit/s | q10 | level 8 |
//!
//! `lossless` with a lossy format means "the best that format can do"; only FLAC and WAV are
//! truly lossless. WAV has no settings.

mod flac;
mod mp3;
mod opus_ogg;
mod vorbis;
mod wav;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::decode::{Codec, StreamInfo};
use crate::error::{PipelineError, Result};
use crate::probe::Container;

pub use mp3::Mp3Mode;

/// The output format of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// MPEG-1 Layer III with ID3v2.4 tags.
    Mp3,
    /// Opus in Ogg with Vorbis comments.
    Opus,
    /// Native FLAC with Vorbis comments.
    Flac,
    /// Vorbis in Ogg.
    Vorbis,
    /// RIFF WAVE with an ID3v2 chunk.
    Wav,
    /// Keep the source file as it is; only tags change.
    Copy,
}

impl OutputFormat {
    /// Parse a user-facing name (`mp3`, `opus`, `flac`, `vorbis`/`ogg`, `wav`, `copy`).
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "mp3" => Ok(Self::Mp3),
            "opus" => Ok(Self::Opus),
            "flac" => Ok(Self::Flac),
            "vorbis" | "ogg" => Ok(Self::Vorbis),
            "wav" => Ok(Self::Wav),
            "copy" | "original" => Ok(Self::Copy),
            other => Err(PipelineError::new(
                crate::ErrorCode::InvalidOptions,
                format!("unknown format {other:?}"),
            )),
        }
    }

    /// File extension of encoded output (`None` for copy: it depends on the source).
    pub fn extension(self) -> Option<&'static str> {
        match self {
            Self::Mp3 => Some("mp3"),
            Self::Opus => Some("opus"),
            Self::Flac => Some("flac"),
            Self::Vorbis => Some("ogg"),
            Self::Wav => Some("wav"),
            Self::Copy => None,
        }
    }
}

/// A named quality preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QualityPreset {
    /// Small files.
    Low,
    /// Transparent for most listeners (the default).
    Medium,
    /// Generous.
    High,
    /// Lossless where the format allows, otherwise the format's best.
    Lossless,
}

impl QualityPreset {
    /// Parse `low`, `medium`, `high`, `lossless`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(Self::Low),
            "medium" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            "lossless" => Ok(Self::Lossless),
            other => Err(PipelineError::new(
                crate::ErrorCode::InvalidOptions,
                format!("unknown quality {other:?}"),
            )),
        }
    }
}

/// Exact encoder settings. Fields not relevant to the chosen format are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderSettings {
    /// MP3 rate control.
    pub mp3: Mp3Mode,
    /// Opus bitrate in bit/s.
    pub opus_bitrate: u32,
    /// Vorbis quality, -1.0 … 10.0 (`q6` is 6.0).
    pub vorbis_quality: f32,
    /// FLAC compression level 0–8.
    pub flac_level: u32,
    /// Force an output sample rate (the format's constraints still apply).
    pub sample_rate: Option<u32>,
}

impl EncoderSettings {
    /// The settings of a named preset (see the module docs for the table).
    pub fn preset(q: QualityPreset) -> Self {
        let (mp3, opus_bitrate, vorbis_quality, flac_level) = match q {
            QualityPreset::Low => (Mp3Mode::Vbr(5), 96_000, 3.0, 5),
            QualityPreset::Medium => (Mp3Mode::Vbr(2), 128_000, 5.0, 5),
            QualityPreset::High => (Mp3Mode::Vbr(0), 192_000, 7.0, 5),
            QualityPreset::Lossless => (Mp3Mode::Cbr(320), 256_000, 10.0, 8),
        };
        Self {
            mp3,
            opus_bitrate,
            vorbis_quality,
            flac_level,
            sample_rate: None,
        }
    }

    /// Check ranges so a bad option fails before any work.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(PipelineError::new(crate::ErrorCode::InvalidOptions, m));
        match self.mp3 {
            Mp3Mode::Cbr(k) if !mp3::CBR_RATES.contains(&k) => {
                return bad(format!(
                    "MP3 CBR bitrate {k} kbit/s is not one of {:?}",
                    mp3::CBR_RATES
                ));
            }
            Mp3Mode::Vbr(v) if v > 9 => return bad(format!("MP3 VBR level V{v} is not 0–9")),
            _ => {}
        }
        if !(6_000..=510_000).contains(&self.opus_bitrate) {
            return bad(format!(
                "Opus bitrate {} is not 6–510 kbit/s",
                self.opus_bitrate
            ));
        }
        if !(-1.0..=10.0).contains(&self.vorbis_quality) {
            return bad(format!(
                "Vorbis quality {} is not -1…10",
                self.vorbis_quality
            ));
        }
        if self.flac_level > 8 {
            return bad(format!("FLAC level {} is not 0–8", self.flac_level));
        }
        if let Some(r) = self.sample_rate
            && !(8_000..=384_000).contains(&r)
        {
            return bad(format!("sample rate {r} is out of range"));
        }
        Ok(())
    }
}

impl Default for EncoderSettings {
    fn default() -> Self {
        Self::preset(QualityPreset::Medium)
    }
}

/// The PCM shape an encoder is fed: decided from the source and the format's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetSpec {
    /// Sample rate the encoder receives.
    pub sample_rate: u32,
    /// Channel count the encoder receives.
    pub channels: usize,
    /// Integer bit depth for lossless outputs (16 or 24).
    pub bits_per_sample: u32,
}

const MP3_RATES: [u32; 9] = [
    8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000,
];

/// Decide the PCM shape for `format` given the source stream.
pub fn plan_target(
    format: OutputFormat,
    settings: &EncoderSettings,
    src: &StreamInfo,
) -> TargetSpec {
    let want_rate = settings.sample_rate.unwrap_or(src.sample_rate);
    let family_rate = |r: u32| {
        if r.is_multiple_of(11_025) {
            44_100
        } else {
            48_000
        }
    };
    let sample_rate = match format {
        OutputFormat::Opus => 48_000,
        OutputFormat::Mp3 => {
            if MP3_RATES.contains(&want_rate) {
                want_rate
            } else if want_rate > 48_000 {
                family_rate(want_rate)
            } else {
                MP3_RATES
                    .iter()
                    .copied()
                    .find(|r| *r >= want_rate)
                    .unwrap_or(48_000)
            }
        }
        OutputFormat::Vorbis => {
            if want_rate > 48_000 {
                family_rate(want_rate)
            } else {
                want_rate.max(8_000)
            }
        }
        OutputFormat::Flac | OutputFormat::Wav | OutputFormat::Copy => want_rate,
    };
    let channels = match format {
        OutputFormat::Mp3 | OutputFormat::Opus | OutputFormat::Vorbis => src.channels.min(2),
        OutputFormat::Flac => {
            if src.channels > 8 {
                2
            } else {
                src.channels
            }
        }
        OutputFormat::Wav | OutputFormat::Copy => src.channels,
    };
    let bits_per_sample = match src.bits_per_sample {
        Some(b) if b > 16 => 24,
        _ => 16,
    };
    TargetSpec {
        sample_rate,
        channels: channels.max(1),
        bits_per_sample,
    }
}

/// A streaming encoder writing one output file.
pub trait AudioEncoder {
    /// Encode interleaved frames in `[-1.0, 1.0]` with the [`TargetSpec`] channel count.
    fn write(&mut self, interleaved: &[f32]) -> Result<()>;
    /// Flush and close the file.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// Create an encoder writing to `path` (which must not be the library path: a staging file).
pub fn create_encoder(
    format: OutputFormat,
    settings: &EncoderSettings,
    spec: TargetSpec,
    total_frames: Option<u64>,
    path: &Path,
) -> Result<Box<dyn AudioEncoder>> {
    settings.validate()?;
    Ok(match format {
        OutputFormat::Mp3 => Box::new(mp3::Mp3Encoder::create(path, spec, settings.mp3)?),
        OutputFormat::Opus => Box::new(opus_ogg::OpusOggEncoder::create(
            path,
            spec,
            settings.opus_bitrate,
        )?),
        OutputFormat::Flac => Box::new(flac::FlacEncoder::create(
            path,
            spec,
            settings.flac_level,
            total_frames,
        )?),
        OutputFormat::Vorbis => Box::new(vorbis::VorbisOggEncoder::create(
            path,
            spec,
            settings.vorbis_quality,
        )?),
        OutputFormat::Wav => Box::new(wav::WavEncoder::create(path, spec)?),
        OutputFormat::Copy => {
            return Err(PipelineError::encode("copy has no encoder"));
        }
    })
}

/// File extension for a `copy` of a source with this container and codec, when lofty can
/// tag that container.
pub fn copy_extension(src: &StreamInfo) -> Option<&'static str> {
    Some(match (src.container, src.codec) {
        (Container::Mpeg, _) => "mp3",
        (Container::Flac, _) => "flac",
        (Container::Ogg, Codec::Opus) => "opus",
        (Container::Ogg, _) => "ogg",
        (Container::Mp4, _) => "m4a",
        (Container::Wav, _) => "wav",
        (Container::Aiff, _) => "aiff",
        (Container::Adts, _) => "aac",
        // lofty cannot tag Matroska or CAF.
        (Container::Matroska | Container::Caf, _) => return None,
    })
}

/// Convert a float sample to a signed integer of `bits` bits, clamped.
#[inline]
pub(crate) fn f32_to_int(s: f32, bits: u32) -> i32 {
    let scale = (1u32 << (bits - 1)) as f32;
    let v = (s * scale).round();
    v.clamp(-scale, scale - 1.0) as i32
}
