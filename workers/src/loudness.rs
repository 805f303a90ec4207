//! EBU R128 loudness with `ebur128`: integrated loudness and true peak per track, merged per
//! album, turned into ReplayGain 2.0 values (-18 LUFS reference) and Opus R128 gains (Q7.8
//! relative to -23 LUFS).

use ebur128::{EbuR128, Mode};

use crate::error::{PipelineError, Result};

/// ReplayGain 2.0 reference loudness.
pub const REPLAYGAIN_REFERENCE_LUFS: f64 = -18.0;
/// Opus R128 tag reference loudness (RFC 7845).
pub const R128_REFERENCE_LUFS: f64 = -23.0;

/// Accumulates loudness of one track while its samples stream past.
pub struct LoudnessMeter {
    state: EbuR128,
}

/// Loudness of one track; keeps the meter state so an album value can be computed.
pub struct TrackLoudness {
    /// Integrated loudness in LUFS (`-inf` for silence).
    pub integrated_lufs: f64,
    /// True peak, linear (1.0 = full scale), the maximum over channels.
    pub true_peak: f64,
    state: EbuR128,
}

impl std::fmt::Debug for TrackLoudness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackLoudness")
            .field("integrated_lufs", &self.integrated_lufs)
            .field("true_peak", &self.true_peak)
            .finish()
    }
}

/// Loudness of a set of tracks measured as one programme.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlbumLoudness {
    /// Integrated loudness of all tracks together, LUFS.
    pub integrated_lufs: f64,
    /// Highest true peak of any track, linear.
    pub true_peak: f64,
}

fn err(e: ebur128::Error) -> PipelineError {
    PipelineError::encode(format!("loudness: {e:?}"))
}

impl LoudnessMeter {
    /// A meter for interleaved audio of `channels` at `rate`.
    pub fn new(channels: usize, rate: u32) -> Result<Self> {
        let state = EbuR128::new(channels as u32, rate, Mode::I | Mode::TRUE_PEAK).map_err(err)?;
        Ok(Self { state })
    }

    /// Add interleaved frames.
    pub fn add(&mut self, interleaved: &[f32]) -> Result<()> {
        self.state.add_frames_f32(interleaved).map_err(err)
    }

    /// Finish the measurement.
    pub fn finish(self) -> Result<TrackLoudness> {
        let integrated_lufs = self.state.loudness_global().map_err(err)?;
        let mut true_peak = 0.0f64;
        for ch in 0..self.state.channels() {
            true_peak = true_peak.max(self.state.true_peak(ch).map_err(err)?);
        }
        Ok(TrackLoudness {
            integrated_lufs,
            true_peak,
            state: self.state,
        })
    }
}

impl TrackLoudness {
    /// ReplayGain 2.0 track gain in dB (0 for silence).
    pub fn replaygain_db(&self) -> f64 {
        gain_db(REPLAYGAIN_REFERENCE_LUFS, self.integrated_lufs)
    }

    /// Opus `R128_TRACK_GAIN` value (Q7.8 dB relative to -23 LUFS).
    pub fn r128_q78(&self) -> i16 {
        q78(gain_db(R128_REFERENCE_LUFS, self.integrated_lufs))
    }
}

impl AlbumLoudness {
    /// Merge tracks' measurements: the album is measured as if the tracks were one programme.
    pub fn from_tracks<'a>(tracks: impl IntoIterator<Item = &'a TrackLoudness>) -> Result<Self> {
        let tracks: Vec<&TrackLoudness> = tracks.into_iter().collect();
        if tracks.is_empty() {
            return Err(PipelineError::encode("album loudness of no tracks"));
        }
        let integrated_lufs =
            EbuR128::loudness_global_multiple(tracks.iter().map(|t| &t.state)).map_err(err)?;
        let true_peak = tracks.iter().map(|t| t.true_peak).fold(0.0, f64::max);
        Ok(Self {
            integrated_lufs,
            true_peak,
        })
    }

    /// ReplayGain 2.0 album gain in dB.
    pub fn replaygain_db(&self) -> f64 {
        gain_db(REPLAYGAIN_REFERENCE_LUFS, self.integrated_lufs)
    }

    /// Opus `R128_ALBUM_GAIN` value.
    pub fn r128_q78(&self) -> i16 {
        q78(gain_db(R128_REFERENCE_LUFS, self.integrated_lufs))
    }
}

fn gain_db(reference: f64, measured: f64) -> f64 {
    if measured.is_finite() {
        reference - measured
    } else {
        0.0
    }
}

fn q78(db: f64) -> i16 {
    (db * 256.0)
        .round()
        .clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16
}

/// Format a gain the way ReplayGain tags spell it: `-6.52 dB`.
pub fn format_gain(db: f64) -> String {
    format!("{db:.2} dB")
}

/// Format a peak the way ReplayGain tags spell it: `0.988553`.
pub fn format_peak(peak: f64) -> String {
    format!("{peak:.6}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_at_minus_20_dbfs() {
        // A 1 kHz sine of peak 0.1 on both channels reads about -20 LUFS.
        let mut m = LoudnessMeter::new(2, 48_000).unwrap();
        let buf: Vec<f32> = (0..48_000 * 5)
            .flat_map(|i| {
                let s = 0.1 * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 48_000.0).sin();
                [s, s]
            })
            .collect();
        m.add(&buf).unwrap();
        let t = m.finish().unwrap();
        assert!((t.integrated_lufs + 20.0).abs() < 0.5, "{t:?}");
        assert_eq!(t.r128_q78(), q78(-23.0 - t.integrated_lufs));
        let album = AlbumLoudness::from_tracks([&t]).unwrap();
        assert!((album.integrated_lufs - t.integrated_lufs).abs() < 1e-9);
    }
}
