//! FLAC through libFLAC (built from source by `libflac-sys`). libFLAC computes the STREAMINFO
//! MD5 of the input itself and rewrites STREAMINFO with the exact length when it finishes.

use std::ffi::CString;
use std::path::Path;
use std::ptr::NonNull;

use libflac_sys as ffi;

use super::{AudioEncoder, TargetSpec, f32_to_int};
use crate::error::{PipelineError, Result};

pub(super) struct FlacEncoder {
    enc: NonNull<ffi::FLAC__StreamEncoder>,
    bits: u32,
    channels: usize,
    ints: Vec<i32>,
}

// SAFETY: the encoder is only ever used from the thread that owns this value.
unsafe impl Send for FlacEncoder {}

fn err(msg: &str) -> PipelineError {
    PipelineError::encode(format!("FLAC: {msg}"))
}

impl FlacEncoder {
    pub(super) fn create(
        path: &Path,
        spec: TargetSpec,
        level: u32,
        total_frames: Option<u64>,
    ) -> Result<Self> {
        let cpath = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| err("path contains NUL"))?;
        // SAFETY: plain constructor; checked for null below.
        let raw = unsafe { ffi::FLAC__stream_encoder_new() };
        let enc = NonNull::new(raw).ok_or_else(|| err("allocation failed"))?;
        let this = Self {
            enc,
            bits: spec.bits_per_sample,
            channels: spec.channels,
            ints: Vec::new(),
        };
        let p = this.enc.as_ptr();
        // SAFETY: `p` is a valid encoder in the uninitialised state, as the setters require.
        let ok = unsafe {
            ffi::FLAC__stream_encoder_set_channels(p, spec.channels as u32) != 0
                && ffi::FLAC__stream_encoder_set_bits_per_sample(p, spec.bits_per_sample) != 0
                && ffi::FLAC__stream_encoder_set_sample_rate(p, spec.sample_rate) != 0
                && ffi::FLAC__stream_encoder_set_compression_level(p, level) != 0
                && ffi::FLAC__stream_encoder_set_total_samples_estimate(
                    p,
                    total_frames.unwrap_or(0),
                ) != 0
        };
        if !ok {
            return Err(err("invalid encoder settings"));
        }
        // SAFETY: valid encoder and NUL-terminated path; no progress callback.
        let status = unsafe {
            ffi::FLAC__stream_encoder_init_file(p, cpath.as_ptr(), None, std::ptr::null_mut())
        };
        if status != ffi::FLAC__STREAM_ENCODER_INIT_STATUS_OK {
            return Err(err(&format!("init failed (status {status})")));
        }
        Ok(this)
    }
}

impl AudioEncoder for FlacEncoder {
    fn write(&mut self, interleaved: &[f32]) -> Result<()> {
        self.ints.clear();
        self.ints
            .extend(interleaved.iter().map(|s| f32_to_int(*s, self.bits)));
        let frames = (self.ints.len() / self.channels) as u32;
        // SAFETY: the buffer holds `frames * channels` samples, as libFLAC reads.
        let ok = unsafe {
            ffi::FLAC__stream_encoder_process_interleaved(
                self.enc.as_ptr(),
                self.ints.as_ptr(),
                frames,
            )
        };
        if ok == 0 {
            return Err(err("encoding failed"));
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        // SAFETY: valid, initialised encoder; finish flushes, rewrites STREAMINFO, closes.
        let ok = unsafe { ffi::FLAC__stream_encoder_finish(self.enc.as_ptr()) };
        if ok == 0 {
            return Err(err("finishing failed"));
        }
        Ok(())
    }
}

impl Drop for FlacEncoder {
    fn drop(&mut self) {
        // SAFETY: delete finishes an unfinished encoder and frees it; called once.
        unsafe { ffi::FLAC__stream_encoder_delete(self.enc.as_ptr()) };
    }
}
