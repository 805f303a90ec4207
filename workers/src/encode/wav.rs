//! WAV through `hound`: 16- or 24-bit integer PCM.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use super::{AudioEncoder, TargetSpec, f32_to_int};
use crate::error::{PipelineError, Result};

pub(super) struct WavEncoder {
    w: hound::WavWriter<BufWriter<File>>,
    bits: u32,
}

fn err(e: hound::Error) -> PipelineError {
    PipelineError::encode(format!("WAV: {e}"))
}

impl WavEncoder {
    pub(super) fn create(path: &Path, spec: TargetSpec) -> Result<Self> {
        let channels =
            u16::try_from(spec.channels).map_err(|_| PipelineError::encode("too many channels"))?;
        let hs = hound::WavSpec {
            channels,
            sample_rate: spec.sample_rate,
            bits_per_sample: spec.bits_per_sample as u16,
            sample_format: hound::SampleFormat::Int,
        };
        let w = hound::WavWriter::create(path, hs).map_err(err)?;
        Ok(Self {
            w,
            bits: spec.bits_per_sample,
        })
    }
}

impl AudioEncoder for WavEncoder {
    fn write(&mut self, interleaved: &[f32]) -> Result<()> {
        if self.bits == 16 {
            for s in interleaved {
                self.w
                    .write_sample(f32_to_int(*s, 16) as i16)
                    .map_err(err)?;
            }
        } else {
            for s in interleaved {
                self.w
                    .write_sample(f32_to_int(*s, self.bits))
                    .map_err(err)?;
            }
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        self.w.finalize().map_err(err)
    }
}
