//! The musicd media pipeline: verified resumable fetch, probe, decode, resample, encode,
//! loudness, tags, naming and atomic placement. No HTTP server and no queue live here: the
//! daemon calls these functions from blocking threads or tokio tasks.

pub mod decode;
pub mod error;
pub mod fetch;
pub mod fuzz;
pub mod probe;
pub mod request;

pub use error::{ErrorCode, PipelineError};
pub mod dsp;
pub mod encode;
pub mod loudness;
pub mod naming;
pub mod pipeline;
pub mod place;
pub mod tags;

pub use encode::{EncoderSettings, OutputFormat, QualityPreset};
pub use naming::PathTemplate;
pub use pipeline::{Placed, ProcessOptions, Stage, process_album, process_file};
pub use tags::{TagOptions, TrackMeta};
