//! Streaming decode of any supported input into interleaved `f32` frames.
//!
//! Symphonia reads every container and decodes MP3, AAC, ALAC, FLAC, Vorbis and PCM; Opus
//! packets (in Ogg or Matroska/WebM) are decoded with libopus, since symphonia has no Opus
//! decoder. Output arrives in chunks of one packet's worth of audio, so memory stays constant
//! whatever the length of the input.

use std::fs::File;
use std::path::Path;

use symphonia::core::codecs::audio::well_known::{
    CODEC_ID_AAC, CODEC_ID_ALAC, CODEC_ID_FLAC, CODEC_ID_MP3, CODEC_ID_OPUS, CODEC_ID_VORBIS,
};
use symphonia::core::codecs::audio::{AudioCodecId, AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

use crate::error::{ErrorCode, PipelineError, Result};
use crate::probe::{Container, sniff_file, sniff_reader};

/// Upper bounds that keep hostile headers from driving allocations.
const MAX_CHANNELS: usize = 32;
const MAX_SAMPLE_RATE: u32 = 768_000;
/// Consecutive undecodable packets tolerated before the file is declared corrupt.
const MAX_CONSECUTIVE_ERRORS: u32 = 16;

/// The codec of the decoded stream, as far as the pipeline cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// MPEG-1/2 Layer III.
    Mp3,
    /// AAC (any profile symphonia decodes).
    Aac,
    /// Apple Lossless.
    Alac,
    /// FLAC.
    Flac,
    /// Vorbis.
    Vorbis,
    /// Opus.
    Opus,
    /// Uncompressed PCM (WAV, AIFF).
    Pcm,
    /// Anything else symphonia can decode.
    Other,
}

impl Codec {
    fn from_id(id: AudioCodecId) -> Codec {
        match id {
            CODEC_ID_MP3 => Codec::Mp3,
            CODEC_ID_AAC => Codec::Aac,
            CODEC_ID_ALAC => Codec::Alac,
            CODEC_ID_FLAC => Codec::Flac,
            CODEC_ID_VORBIS => Codec::Vorbis,
            CODEC_ID_OPUS => Codec::Opus,
            // All PCM codec ids live in one block (0x100..0x200) of the registry; the id has no
            // accessor, but its Display form is the hex value.
            id => {
                let s = id.to_string();
                match u32::from_str_radix(s.trim_start_matches("0x"), 16) {
                    Ok(v) if (0x100..0x200).contains(&v) => Codec::Pcm,
                    _ => Codec::Other,
                }
            }
        }
    }
}

/// What the decoder produces.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    /// Container sniffed from the content.
    pub container: Container,
    /// Codec of the selected audio track.
    pub codec: Codec,
    /// Output sample rate in Hz.
    pub sample_rate: u32,
    /// Output channel count (the source's own count; see [`crate::dsp`] for mapping).
    pub channels: usize,
    /// Bits per sample of the source when it is integer PCM-like (FLAC, ALAC, WAV, AIFF).
    pub bits_per_sample: Option<u32>,
    /// Total frames, when the container says.
    pub total_frames: Option<u64>,
    /// Symphonia channel position bitmask when the source has positioned channels.
    pub channel_positions: Option<u64>,
}

enum Inner {
    Symphonia(Box<dyn AudioDecoder>),
    Opus(OpusState),
}

struct OpusState {
    dec: opus::Decoder,
    channels: usize,
    /// Decoded frames still to drop at the start (the encoder's pre-skip).
    skip: usize,
    scratch: Vec<f32>,
}

/// A streaming decoder over one file.
pub struct AudioDecoderStream {
    format: Box<dyn FormatReader + 'static>,
    track_id: u32,
    inner: Inner,
    info: StreamInfo,
    buf: Vec<f32>,
    frames_out: u64,
    /// Decoding past this many frames is an error (see [`AudioDecoderStream::limit_frames`]).
    max_frames: u64,
    consecutive_errors: u32,
}

/// Probe the file and report its stream parameters without decoding audio.
pub fn probe(path: &Path) -> Result<StreamInfo> {
    Ok(AudioDecoderStream::open(path)?.info.clone())
}

impl AudioDecoderStream {
    /// Open `path`, identify it by content and prepare a decoder for its first audio track.
    pub fn open(path: &Path) -> Result<Self> {
        // Demuxers are written for well-formed files; a panic on a hostile header must fail
        // this file, not the worker.
        std::panic::catch_unwind(|| Self::open_inner(path))
            .unwrap_or_else(|_| Err(PipelineError::decode("malformed input crashed the demuxer")))
    }

    /// Like [`Self::open`], over bytes in memory (the fuzz targets use this; it runs the same
    /// sniffing, demuxing and decoding code as a file does).
    pub fn open_bytes(data: Vec<u8>) -> Result<Self> {
        std::panic::catch_unwind(move || {
            let mut cursor = std::io::Cursor::new(data);
            let len = cursor.get_ref().len() as u64;
            let container = sniff_reader(&mut cursor, len)?;
            cursor.set_position(0);
            Self::open_source(Box::new(cursor), container)
        })
        .unwrap_or_else(|_| Err(PipelineError::decode("malformed input crashed the demuxer")))
    }

    fn open_inner(path: &Path) -> Result<Self> {
        let container = sniff_file(path)?;
        let file = File::open(path).map_err(|e| PipelineError::io("open input", e))?;
        Self::open_source(Box::new(file), container)
    }

    fn open_source(source: Box<dyn MediaSource>, container: Container) -> Result<Self> {
        let mss = MediaSourceStream::new(source, Default::default());
        let mut hint = Hint::new();
        hint.with_extension(container.hint_extension());
        let format = symphonia::default::get_probe()
            .probe(
                &hint,
                mss,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
            .map_err(|e| match e {
                SymError::IoError(e) => PipelineError::decode(format!("reading container: {e}")),
                other => PipelineError::unsupported(format!("not a readable audio file: {other}")),
            })?;
        let track = format
            .default_track(TrackType::Audio)
            .ok_or_else(|| PipelineError::unsupported("no audio track"))?;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| PipelineError::unsupported("no audio codec parameters"))?
            .clone();
        let track_id = track.id;
        let total_frames = track.num_frames;
        let codec = Codec::from_id(params.codec);

        let (inner, sample_rate, channels, positions) = if codec == Codec::Opus {
            let head = params
                .extra_data
                .as_deref()
                .ok_or_else(|| PipelineError::decode("Opus track without OpusHead"))?;
            let head = OpusHead::parse(head)?;
            let ch = match head.channels {
                1 => opus::Channels::Mono,
                2 => opus::Channels::Stereo,
                n => {
                    return Err(PipelineError::unsupported(format!(
                        "Opus with {n} channels (multistream) is not supported"
                    )));
                }
            };
            let mut dec =
                opus::Decoder::new(48_000, ch).map_err(|e| PipelineError::decode(e.to_string()))?;
            if head.output_gain != 0 {
                dec.set_gain(i32::from(head.output_gain))
                    .map_err(|e| PipelineError::decode(e.to_string()))?;
            }
            let n = usize::from(head.channels);
            let state = OpusState {
                dec,
                channels: n,
                skip: usize::from(head.pre_skip),
                scratch: vec![0.0; 5760 * n],
            };
            (Inner::Opus(state), 48_000, n, None)
        } else {
            let dec = symphonia::default::get_codecs()
                .make_audio_decoder(&params, &AudioDecoderOptions::default())
                .map_err(|e| PipelineError::unsupported(format!("unsupported codec: {e}")))?;
            let rate = params
                .sample_rate
                .ok_or_else(|| PipelineError::decode("no sample rate"))?;
            let channels = params.channels.as_ref().map(|c| c.count()).unwrap_or(0);
            let positions = match params.channels.as_ref() {
                Some(symphonia::core::audio::Channels::Positioned(p)) => Some(p.bits()),
                _ => None,
            };
            (Inner::Symphonia(dec), rate, channels, positions)
        };
        if sample_rate == 0 || sample_rate > MAX_SAMPLE_RATE {
            return Err(PipelineError::decode(format!(
                "absurd sample rate {sample_rate}"
            )));
        }
        // AAC in MP4 may not declare channels until the first frame; 0 is resolved then.
        if channels > MAX_CHANNELS {
            return Err(PipelineError::decode(format!(
                "absurd channel count {channels}"
            )));
        }
        let bits_per_sample = match codec {
            Codec::Flac | Codec::Alac | Codec::Pcm => params.bits_per_sample,
            _ => None,
        };
        let info = StreamInfo {
            container,
            codec,
            sample_rate,
            channels,
            bits_per_sample,
            total_frames,
            channel_positions: positions,
        };
        Ok(Self {
            format,
            track_id,
            inner,
            info,
            buf: Vec::new(),
            frames_out: 0,
            max_frames: u64::MAX,
            consecutive_errors: 0,
        })
    }

    /// Parameters of the decoded stream.
    pub fn info(&self) -> &StreamInfo {
        &self.info
    }

    /// The container's own tags (the latest revision): media-level ones, then those of the
    /// selected track. This is how Matroska/WebM tags are read, which lofty does not parse.
    pub fn container_tags(&mut self) -> Vec<symphonia::core::meta::Tag> {
        let track_id = self.track_id;
        let mut meta = self.format.metadata();
        let Some(rev) = meta.skip_to_latest() else {
            return Vec::new();
        };
        let mut tags = rev.media.tags.clone();
        for t in rev
            .per_track
            .iter()
            .filter(|t| t.track_id == u64::from(track_id))
        {
            tags.extend(t.metadata.tags.iter().cloned());
        }
        tags
    }

    /// Frames produced so far.
    pub fn frames_out(&self) -> u64 {
        self.frames_out
    }

    /// Makes decoding past `frames` frames an error ([`ErrorCode::TooLong`]), for inputs
    /// whose header does not say how long they are (or says it wrongly).
    pub fn limit_frames(&mut self, frames: u64) {
        self.max_frames = frames;
    }

    /// Decode the next chunk of interleaved samples; `None` at the end of the stream.
    pub fn next_chunk(&mut self) -> Result<Option<&[f32]>> {
        let more = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.fill()))
            .unwrap_or_else(|_| {
                Err(PipelineError::decode("malformed input crashed the decoder"))
            })?;
        if self.frames_out > self.max_frames {
            return Err(PipelineError::new(
                ErrorCode::TooLong,
                format!(
                    "the input plays longer than the cap of {} s",
                    self.max_frames / u64::from(self.info.sample_rate.max(1))
                ),
            ));
        }
        Ok(if more { Some(&self.buf) } else { None })
    }

    /// Like [`Self::next_chunk`], with the channel count of the chunk (some containers state
    /// it only at the first packet).
    pub fn next_chunk_with_channels(&mut self) -> Result<Option<(&[f32], usize)>> {
        let channels = match self.next_chunk()? {
            Some(_) => self.info.channels,
            None => return Ok(None),
        };
        Ok(Some((&self.buf, channels)))
    }

    /// Decode into `self.buf`; false at the end of the stream.
    fn fill(&mut self) -> Result<bool> {
        loop {
            let packet = match self.format.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => return self.finish().map(|_| false),
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    // A container that ends mid-packet is truncated.
                    return Err(PipelineError::decode(
                        "input is truncated (unexpected end of file)",
                    ));
                }
                Err(SymError::ResetRequired) => return self.finish().map(|_| false),
                Err(e) => return Err(PipelineError::decode(format!("reading packet: {e}"))),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let produced = match &mut self.inner {
                Inner::Symphonia(dec) => match dec.decode(&packet) {
                    Ok(buf) => {
                        let ch = buf.spec().channels().count();
                        if ch == 0 || ch > MAX_CHANNELS {
                            return Err(PipelineError::decode("decoder produced no channels"));
                        }
                        if self.info.channels == 0 {
                            self.info.channels = ch;
                        } else if ch != self.info.channels {
                            return Err(PipelineError::decode("channel count changed mid-stream"));
                        }
                        buf.copy_to_vec_interleaved::<f32>(&mut self.buf);
                        Ok(())
                    }
                    Err(SymError::DecodeError(e)) => Err(e.to_string()),
                    Err(SymError::IoError(e)) => Err(e.to_string()),
                    Err(e) => return Err(PipelineError::decode(format!("decoding: {e}"))),
                },
                Inner::Opus(st) => {
                    match st.dec.decode_float(&packet.data, &mut st.scratch, false) {
                        Ok(frames) => {
                            let mut start = 0;
                            if st.skip > 0 {
                                start = st.skip.min(frames);
                                st.skip -= start;
                            }
                            let end_trim = (packet.trim_end.get() as usize).min(frames - start);
                            let end = frames - end_trim;
                            self.buf.clear();
                            self.buf.extend_from_slice(
                                &st.scratch[start * st.channels..end * st.channels],
                            );
                            Ok(())
                        }
                        Err(e) => Err(e.to_string()),
                    }
                }
            };
            match produced {
                Ok(()) => {
                    self.consecutive_errors = 0;
                    if self.buf.is_empty() {
                        continue;
                    }
                    self.frames_out += (self.buf.len() / self.info.channels.max(1)) as u64;
                    return Ok(true);
                }
                Err(msg) => {
                    // One bad packet in a long stream is survivable; a run of them is not.
                    self.consecutive_errors += 1;
                    if self.consecutive_errors > MAX_CONSECUTIVE_ERRORS {
                        return Err(PipelineError::decode(format!(
                            "too many bad packets: {msg}"
                        )));
                    }
                }
            }
        }
    }

    fn finish(&mut self) -> Result<()> {
        if self.frames_out == 0 {
            return Err(PipelineError::decode("no audio could be decoded"));
        }
        if let Some(total) = self.info.total_frames {
            // Containers that state their length let us catch truncation that ends cleanly on a
            // packet boundary. A small slack covers encoder delay/padding bookkeeping.
            let slack = u64::from(self.info.sample_rate) / 10 + 4096;
            if self.frames_out + slack < total && self.info.codec != Codec::Opus {
                return Err(PipelineError::decode(format!(
                    "input is truncated: decoded {} of {} frames",
                    self.frames_out, total
                )));
            }
        }
        Ok(())
    }
}

/// The fields of an OpusHead packet we need.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpusHead {
    pub channels: u8,
    pub pre_skip: u16,
    pub output_gain: i16,
}

impl OpusHead {
    pub(crate) fn parse(b: &[u8]) -> Result<Self> {
        if b.len() < 19 || &b[..8] != b"OpusHead" {
            return Err(PipelineError::decode("malformed OpusHead"));
        }
        let channels = b[9];
        if channels == 0 {
            return Err(PipelineError::decode("OpusHead with zero channels"));
        }
        Ok(Self {
            channels,
            pre_skip: u16::from_le_bytes([b[10], b[11]]),
            output_gain: i16::from_le_bytes([b[16], b[17]]),
        })
    }
}
