//! MP3 through LAME. The Xing/LAME info frame is rewritten at the end so players and decoders
//! get the exact length and gapless delay/padding.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::mem::MaybeUninit;
use std::num::NonZeroU32;
use std::path::Path;

use mp3lame_encoder::{Bitrate, Builder, FlushNoGap, InterleavedPcm, MonoPcm, Quality, VbrMode};
use serde::{Deserialize, Serialize};

use super::{AudioEncoder, TargetSpec};
use crate::error::{PipelineError, Result};

/// Constant bitrates LAME accepts for MPEG-1, in kbit/s.
pub const CBR_RATES: [u16; 8] = [128, 160, 192, 224, 256, 320, 112, 96];

/// MP3 rate control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mp3Mode {
    /// Constant bitrate in kbit/s.
    Cbr(u16),
    /// LAME VBR level, 0 (best) to 9.
    Vbr(u8),
}

pub(super) struct Mp3Encoder {
    enc: mp3lame_encoder::Encoder,
    out: BufWriter<File>,
    buf: Vec<u8>,
    channels: usize,
}

fn lame_err(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::encode(format!("LAME: {e}"))
}

impl Mp3Encoder {
    pub(super) fn create(path: &Path, spec: TargetSpec, mode: Mp3Mode) -> Result<Self> {
        let mut b = Builder::new().ok_or_else(|| PipelineError::encode("LAME init failed"))?;
        let ch = u8::try_from(spec.channels).map_err(lame_err)?;
        b.set_num_channels(ch).map_err(lame_err)?;
        b.set_sample_rate(spec.sample_rate).map_err(lame_err)?;
        b.set_output_sample_rate(NonZeroU32::new(spec.sample_rate))
            .map_err(lame_err)?;
        match mode {
            Mp3Mode::Cbr(k) => {
                let br = match k {
                    96 => Bitrate::Kbps96,
                    112 => Bitrate::Kbps112,
                    128 => Bitrate::Kbps128,
                    160 => Bitrate::Kbps160,
                    192 => Bitrate::Kbps192,
                    224 => Bitrate::Kbps224,
                    256 => Bitrate::Kbps256,
                    320 => Bitrate::Kbps320,
                    other => return Err(lame_err(format!("unsupported CBR bitrate {other}"))),
                };
                b.set_vbr_mode(VbrMode::Off).map_err(lame_err)?;
                b.set_brate(br).map_err(lame_err)?;
            }
            Mp3Mode::Vbr(v) => {
                let q = match v {
                    0 => Quality::Best,
                    1 => Quality::SecondBest,
                    2 => Quality::NearBest,
                    3 => Quality::VeryNice,
                    4 => Quality::Nice,
                    5 => Quality::Good,
                    6 => Quality::Decent,
                    7 => Quality::Ok,
                    8 => Quality::SecondWorst,
                    _ => Quality::Worst,
                };
                b.set_vbr_mode(VbrMode::Mtrh).map_err(lame_err)?;
                b.set_vbr_quality(q).map_err(lame_err)?;
            }
        }
        b.set_to_write_vbr_tag(true).map_err(lame_err)?;
        let enc = b.build().map_err(lame_err)?;
        let file = File::create(path).map_err(|e| PipelineError::io("create output", e))?;
        Ok(Self {
            enc,
            out: BufWriter::new(file),
            buf: Vec::new(),
            channels: spec.channels,
        })
    }
}

impl AudioEncoder for Mp3Encoder {
    fn write(&mut self, interleaved: &[f32]) -> Result<()> {
        // LAME wants room for 1.25 * samples + 7200 bytes.
        for chunk in interleaved.chunks(8192 * self.channels) {
            let frames = chunk.len() / self.channels;
            self.buf.clear();
            self.buf.reserve(frames * 5 / 4 + 7200);
            let res = if self.channels == 1 {
                self.enc.encode_to_vec(MonoPcm(chunk), &mut self.buf)
            } else {
                self.enc.encode_to_vec(InterleavedPcm(chunk), &mut self.buf)
            };
            res.map_err(lame_err)?;
            self.out
                .write_all(&self.buf)
                .map_err(|e| PipelineError::io("write MP3", e))?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.buf.clear();
        self.buf.reserve(7200);
        self.enc
            .flush_to_vec::<FlushNoGap>(&mut self.buf)
            .map_err(lame_err)?;
        self.out
            .write_all(&self.buf)
            .map_err(|e| PipelineError::io("write MP3", e))?;
        // The first frame LAME emitted is a placeholder for the info tag; fill it in now.
        let mut tag = vec![MaybeUninit::<u8>::uninit(); self.enc.lame_tag_size().max(1)];
        if let Some(n) = self.enc.lame_tag_encode(&mut tag) {
            let bytes: Vec<u8> = tag[..n.get()]
                .iter()
                // SAFETY: lame_tag_encode initialised the first `n` bytes.
                .map(|b| unsafe { b.assume_init() })
                .collect();
            self.out
                .seek(SeekFrom::Start(0))
                .map_err(|e| PipelineError::io("seek MP3", e))?;
            self.out
                .write_all(&bytes)
                .map_err(|e| PipelineError::io("write MP3", e))?;
        }
        let f = self
            .out
            .into_inner()
            .map_err(|e| PipelineError::io("flush MP3", e.into_error()))?;
        f.sync_all()
            .map_err(|e| PipelineError::io("fsync MP3", e))?;
        Ok(())
    }
}
