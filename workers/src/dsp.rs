//! Sample-domain helpers between decode and encode: channel mapping/downmix and streaming
//! sample-rate conversion with rubato.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler as _};

use crate::error::{PipelineError, Result};

// Symphonia's channel position bits (see symphonia_core::audio::Position).
const FL: u64 = 1 << 0;
const FR: u64 = 1 << 1;
const FC: u64 = 1 << 2;
const LFE1: u64 = 1 << 3;

/// Maps interleaved frames of `from` channels to `to` channels (1 or 2 for downmix; equal
/// counts pass through).
#[derive(Debug, Clone)]
pub struct ChannelMapper {
    from: usize,
    to: usize,
    /// Per output channel, the weight of every input channel.
    matrix: Vec<Vec<f32>>,
    out: Vec<f32>,
}

impl ChannelMapper {
    /// Build a mapper. `positions` is the source's symphonia channel bitmask when known, used
    /// to place centre and surround channels sensibly in a stereo downmix.
    pub fn new(from: usize, to: usize, positions: Option<u64>) -> Result<Self> {
        if from == 0 || to == 0 {
            return Err(PipelineError::decode("zero channels"));
        }
        let matrix = if from == to {
            Vec::new()
        } else if to == 1 {
            vec![vec![1.0 / from as f32; from]]
        } else if from == 1 {
            vec![vec![1.0]; to]
        } else if to == 2 {
            stereo_downmix(from, positions)
        } else {
            return Err(PipelineError::encode(format!(
                "cannot map {from} channels to {to}"
            )));
        };
        Ok(Self {
            from,
            to,
            matrix,
            out: Vec::new(),
        })
    }

    /// Whether the mapper changes anything.
    pub fn is_identity(&self) -> bool {
        self.from == self.to
    }

    /// Output channel count.
    pub fn channels(&self) -> usize {
        self.to
    }

    /// Map one chunk of interleaved samples.
    pub fn map<'a>(&'a mut self, input: &'a [f32]) -> &'a [f32] {
        if self.is_identity() {
            return input;
        }
        let frames = input.len() / self.from;
        self.out.clear();
        self.out.reserve(frames * self.to);
        for frame in input.chunks_exact(self.from) {
            for row in &self.matrix {
                let s: f32 = row.iter().zip(frame).map(|(w, x)| w * x).sum();
                self.out.push(s);
            }
        }
        &self.out
    }
}

/// ITU-style stereo downmix weights, normalised so a full-scale input cannot clip.
fn stereo_downmix(from: usize, positions: Option<u64>) -> Vec<Vec<f32>> {
    const C: f32 = std::f32::consts::FRAC_1_SQRT_2;
    let mut left = vec![0.0f32; from];
    let mut right = vec![0.0f32; from];
    match positions {
        Some(bits) if bits.count_ones() as usize == from => {
            // Channels are interleaved in ascending bit order.
            let mut idx = 0;
            for bit in 0..64 {
                let mask = 1u64 << bit;
                if bits & mask == 0 {
                    continue;
                }
                match mask {
                    FL => left[idx] = 1.0,
                    FR => right[idx] = 1.0,
                    FC => {
                        left[idx] = C;
                        right[idx] = C;
                    }
                    LFE1 => {}
                    // Remaining positions alternate left/right by bit parity (L is even).
                    _ if bit % 2 == 0 => left[idx] = C,
                    _ => right[idx] = C,
                }
                idx += 1;
            }
        }
        _ => {
            for i in 0..from {
                if i % 2 == 0 {
                    left[i] = 1.0;
                } else {
                    right[i] = 1.0;
                }
            }
        }
    }
    let norm = left
        .iter()
        .sum::<f32>()
        .max(right.iter().sum::<f32>())
        .max(1.0);
    for w in left.iter_mut().chain(right.iter_mut()) {
        *w /= norm;
    }
    vec![left, right]
}

/// Streaming sample-rate converter (rubato's synchronous FFT resampler) that trims the
/// resampler's delay so output lines up with input, and flushes the tail at the end.
pub struct StreamResampler {
    inner: Fft<f32>,
    channels: usize,
    ratio: f64,
    pending: Vec<f32>,
    out: Vec<f32>,
    to_skip: usize,
    frames_in: u64,
    frames_out: u64,
}

impl StreamResampler {
    /// A resampler from `from_rate` to `to_rate` for `channels` interleaved channels.
    pub fn new(from_rate: u32, to_rate: u32, channels: usize) -> Result<Self> {
        let inner = Fft::<f32>::new(
            from_rate as usize,
            to_rate as usize,
            1024,
            channels,
            FixedSync::Input,
        )
        .map_err(|e| PipelineError::encode(format!("resampler: {e}")))?;
        let to_skip = inner.output_delay();
        let out = vec![0.0; inner.output_frames_max() * channels];
        Ok(Self {
            inner,
            channels,
            ratio: f64::from(to_rate) / f64::from(from_rate),
            pending: Vec::new(),
            out,
            to_skip,
            frames_in: 0,
            frames_out: 0,
        })
    }

    /// Feed interleaved input; resampled output is passed to `sink` as it becomes available.
    pub fn process(
        &mut self,
        input: &[f32],
        sink: &mut dyn FnMut(&[f32]) -> Result<()>,
    ) -> Result<()> {
        self.frames_in += (input.len() / self.channels) as u64;
        self.pending.extend_from_slice(input);
        loop {
            let need = self.inner.input_frames_next();
            if self.pending.len() < need * self.channels {
                return Ok(());
            }
            self.run_chunk(need, None, None, sink)?;
            self.pending.drain(..need * self.channels);
        }
    }

    /// Flush what is buffered, padding with silence, and stop at the exact expected length.
    pub fn finish(&mut self, sink: &mut dyn FnMut(&[f32]) -> Result<()>) -> Result<()> {
        let expected = (self.frames_in as f64 * self.ratio).round() as u64;
        // Bounded: each round yields at least one chunk of output once the delay is consumed.
        for _ in 0..64 {
            if self.frames_out >= expected {
                break;
            }
            let need = self.inner.input_frames_next();
            let have = (self.pending.len() / self.channels).min(need);
            self.pending.resize(need * self.channels, 0.0);
            self.run_chunk(need, Some(have), Some(expected), sink)?;
            self.pending.clear();
        }
        Ok(())
    }

    fn run_chunk(
        &mut self,
        need: usize,
        partial: Option<usize>,
        limit: Option<u64>,
        sink: &mut dyn FnMut(&[f32]) -> Result<()>,
    ) -> Result<()> {
        let input = InterleavedSlice::new(&self.pending[..], self.channels, need)
            .map_err(|e| PipelineError::encode(format!("resampler buffer: {e}")))?;
        let out_frames = self.out.len() / self.channels;
        let mut output = InterleavedSlice::new_mut(&mut self.out[..], self.channels, out_frames)
            .map_err(|e| PipelineError::encode(format!("resampler buffer: {e}")))?;
        let indexing = partial.map(|p| Indexing::new().partial_len(p));
        let (_, produced) = self
            .inner
            .process_into_buffer(&input, &mut output, indexing.as_ref())
            .map_err(|e| PipelineError::encode(format!("resampler: {e}")))?;
        self.emit(produced, limit, sink)
    }

    fn emit(
        &mut self,
        produced: usize,
        limit: Option<u64>,
        sink: &mut dyn FnMut(&[f32]) -> Result<()>,
    ) -> Result<()> {
        let mut start = 0;
        if self.to_skip > 0 {
            start = self.to_skip.min(produced);
            self.to_skip -= start;
        }
        let mut end = produced;
        if let Some(limit) = limit {
            let room = limit.saturating_sub(self.frames_out) as usize;
            end = end.min(start + room);
        }
        if end > start {
            self.frames_out += (end - start) as u64;
            sink(&self.out[start * self.channels..end * self.channels])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downmix_51_does_not_clip() {
        // FL FR FC LFE SL SR at full scale.
        let bits = FL | FR | FC | LFE1 | (1 << 9) | (1 << 10);
        let mut m = ChannelMapper::new(6, 2, Some(bits)).unwrap();
        let out = m.map(&[1.0; 12]).to_vec();
        assert_eq!(out.len(), 4);
        assert!(out.iter().all(|s| *s <= 1.0001 && *s > 0.5), "{out:?}");
    }

    #[test]
    fn resampler_keeps_length() {
        let mut r = StreamResampler::new(44_100, 48_000, 2).unwrap();
        let mut total = 0usize;
        let input = vec![0.25f32; 44_100 * 2];
        for chunk in input.chunks(1000 * 2) {
            r.process(chunk, &mut |o| {
                total += o.len() / 2;
                Ok(())
            })
            .unwrap();
        }
        r.finish(&mut |o| {
            total += o.len() / 2;
            Ok(())
        })
        .unwrap();
        assert_eq!(total, 48_000);
    }
}
