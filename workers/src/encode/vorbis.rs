//! Vorbis in Ogg through `vorbis_rs` (aoTuV libvorbis built from source).

use std::fs::File;
use std::io::BufWriter;
use std::num::{NonZeroU8, NonZeroU32};
use std::path::Path;

use vorbis_rs::{VorbisBitrateManagementStrategy, VorbisEncoder, VorbisEncoderBuilder};

use super::{AudioEncoder, TargetSpec};
use crate::error::{PipelineError, Result};

pub(super) struct VorbisOggEncoder {
    enc: VorbisEncoder<BufWriter<File>>,
    channels: usize,
    planes: Vec<Vec<f32>>,
}

fn err(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::encode(format!("Vorbis: {e}"))
}

impl VorbisOggEncoder {
    pub(super) fn create(path: &Path, spec: TargetSpec, quality: f32) -> Result<Self> {
        let file = File::create(path).map_err(|e| PipelineError::io("create output", e))?;
        let rate = NonZeroU32::new(spec.sample_rate).ok_or_else(|| err("zero sample rate"))?;
        let ch = u8::try_from(spec.channels)
            .ok()
            .and_then(NonZeroU8::new)
            .ok_or_else(|| err("bad channel count"))?;
        let mut b = VorbisEncoderBuilder::new(rate, ch, BufWriter::new(file)).map_err(err)?;
        b.bitrate_management_strategy(VorbisBitrateManagementStrategy::QualityVbr {
            // vorbis_rs takes the libvorbis -0.1…1.0 scale; users speak oggenc's q-1…q10.
            target_quality: (quality / 10.0).clamp(-0.1, 1.0),
        });
        let enc = b.build().map_err(err)?;
        Ok(Self {
            enc,
            channels: spec.channels,
            planes: vec![Vec::new(); spec.channels],
        })
    }
}

impl AudioEncoder for VorbisOggEncoder {
    fn write(&mut self, interleaved: &[f32]) -> Result<()> {
        for chunk in interleaved.chunks(1024 * self.channels) {
            for p in &mut self.planes {
                p.clear();
            }
            for frame in chunk.chunks_exact(self.channels) {
                for (p, s) in self.planes.iter_mut().zip(frame) {
                    p.push(*s);
                }
            }
            self.enc.encode_audio_block(&self.planes).map_err(err)?;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        let w = self.enc.finish().map_err(err)?;
        let f = w
            .into_inner()
            .map_err(|e| PipelineError::io("flush Vorbis", e.into_error()))?;
        f.sync_all()
            .map_err(|e| PipelineError::io("fsync Vorbis", e))
    }
}
