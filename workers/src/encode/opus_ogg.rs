//! Opus in Ogg: libopus encodes 20 ms frames at 48 kHz; pages carry granule positions that
//! count the pre-skip, and the last page's granule trims the padding of the final frame
//! (RFC 7845). The header's output gain is 0: loudness goes in R128 tags instead.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use ogg::writing::{PacketWriteEndInfo, PacketWriter};

use super::{AudioEncoder, TargetSpec};
use crate::error::{PipelineError, Result};

const FRAME: usize = 960; // 20 ms at 48 kHz
const MAX_PACKET: usize = 4000;

pub(super) struct OpusOggEncoder {
    enc: opus::Encoder,
    w: PacketWriter<'static, BufWriter<File>>,
    serial: u32,
    channels: usize,
    pre_skip: u64,
    pending: Vec<f32>,
    /// Input frames received (48 kHz).
    frames_in: u64,
    /// Frames handed to libopus, including padding.
    frames_encoded: u64,
    packet: Vec<u8>,
    /// The last encoded packet, held back so it can be flagged end-of-stream.
    held: Option<(Vec<u8>, u64)>,
}

fn err(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::encode(format!("Opus: {e}"))
}

impl OpusOggEncoder {
    pub(super) fn create(path: &Path, spec: TargetSpec, bitrate: u32) -> Result<Self> {
        if spec.sample_rate != 48_000 {
            return Err(err("Opus input must be 48 kHz"));
        }
        let ch = match spec.channels {
            1 => opus::Channels::Mono,
            2 => opus::Channels::Stereo,
            _ => return Err(err("Opus output supports 1 or 2 channels")),
        };
        let mut enc = opus::Encoder::new(48_000, ch, opus::Application::Audio).map_err(err)?;
        enc.set_bitrate(opus::Bitrate::Bits(bitrate as i32))
            .map_err(err)?;
        // Unconstrained VBR, as opusenc and ffmpeg's libopus default to: the bitrate is an
        // average, and hard passages get the bits they need.
        enc.set_vbr(true).map_err(err)?;
        enc.set_vbr_constraint(false).map_err(err)?;
        let pre_skip = enc.get_lookahead().map_err(err)?.max(0) as u64;
        let file = File::create(path).map_err(|e| PipelineError::io("create output", e))?;
        let mut w = PacketWriter::new(BufWriter::new(file));
        let serial: u32 = rand::random();

        let mut head = Vec::with_capacity(19);
        head.extend_from_slice(b"OpusHead");
        head.push(1); // version
        head.push(spec.channels as u8);
        head.extend_from_slice(&(pre_skip as u16).to_le_bytes());
        head.extend_from_slice(&48_000u32.to_le_bytes()); // original input rate (informational)
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(0); // mapping family 0: mono/stereo
        w.write_packet(head, serial, PacketWriteEndInfo::EndPage, 0)
            .map_err(|e| PipelineError::io("write Opus", e))?;

        let vendor = format!("musicd (libopus {})", opus::version());
        let mut tags = Vec::new();
        tags.extend_from_slice(b"OpusTags");
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor.as_bytes());
        tags.extend_from_slice(&0u32.to_le_bytes());
        w.write_packet(tags, serial, PacketWriteEndInfo::EndPage, 0)
            .map_err(|e| PipelineError::io("write Opus", e))?;

        Ok(Self {
            enc,
            w,
            serial,
            channels: spec.channels,
            pre_skip,
            pending: Vec::with_capacity(FRAME * spec.channels * 2),
            frames_in: 0,
            frames_encoded: 0,
            packet: vec![0; MAX_PACKET],
            held: None,
        })
    }

    fn encode_frame(&mut self, frame: &[f32]) -> Result<()> {
        let n = self
            .enc
            .encode_float(frame, &mut self.packet)
            .map_err(err)?;
        self.frames_encoded += FRAME as u64;
        let granule = self.frames_encoded;
        if let Some((data, gp)) = self.held.take() {
            self.w
                .write_packet(data, self.serial, PacketWriteEndInfo::NormalPacket, gp)
                .map_err(|e| PipelineError::io("write Opus", e))?;
        }
        self.held = Some((self.packet[..n].to_vec(), granule));
        Ok(())
    }
}

impl AudioEncoder for OpusOggEncoder {
    fn write(&mut self, interleaved: &[f32]) -> Result<()> {
        self.frames_in += (interleaved.len() / self.channels) as u64;
        self.pending.extend_from_slice(interleaved);
        let step = FRAME * self.channels;
        let mut off = 0;
        while self.pending.len() - off >= step {
            let frame: Vec<f32> = self.pending[off..off + step].to_vec();
            self.encode_frame(&frame)?;
            off += step;
        }
        self.pending.drain(..off);
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        // Feed pre-skip worth of silence so the encoder's lookahead releases the real tail.
        let total = self.pre_skip + self.frames_in;
        let step = FRAME * self.channels;
        while self.frames_encoded < total {
            self.pending.resize(step, 0.0);
            let frame = std::mem::take(&mut self.pending);
            self.encode_frame(&frame)?;
        }
        if let Some((data, _)) = self.held.take() {
            // The final granule is the exact sample count: decoders drop the padding.
            self.w
                .write_packet(data, self.serial, PacketWriteEndInfo::EndStream, total)
                .map_err(|e| PipelineError::io("write Opus", e))?;
        }
        let w = self.w.into_inner();
        let f = w
            .into_inner()
            .map_err(|e| PipelineError::io("flush Opus", e.into_error()))?;
        f.sync_all().map_err(|e| PipelineError::io("fsync Opus", e))
    }
}
