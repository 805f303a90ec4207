//! The one error type of the pipeline, with a stable machine-readable code and a
//! transient/permanent flag so the daemon knows whether a job should be retried.

use std::fmt;

/// Stable error codes. The string forms are a contract with the daemon and its API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The input is not audio we can read (checked by content, not by name).
    UnsupportedMediaType,
    /// The input looked like audio but could not be decoded.
    DecodeError,
    /// An encoder refused the audio or failed.
    EncodeError,
    /// Reading or writing a local file failed.
    IoError,
    /// The input is larger than the configured cap.
    TooLarge,
    /// The input plays longer than the configured cap.
    TooLong,
    /// The upstream server answered with an error or broke the transfer.
    UpstreamError,
    /// The target address is loopback, private, link-local or otherwise refused.
    BlockedAddress,
    /// The caller cancelled the work.
    Cancelled,
    /// The options given are invalid (bad template, bad bitrate, ...).
    InvalidOptions,
    /// The finished file failed verification before placement.
    VerifyFailed,
    /// Tags could not be read or written.
    TagError,
}

impl ErrorCode {
    /// The stable string form, e.g. `unsupported_media_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::DecodeError => "decode_error",
            ErrorCode::EncodeError => "encode_error",
            ErrorCode::IoError => "io_error",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::TooLong => "too_long",
            ErrorCode::UpstreamError => "upstream_error",
            ErrorCode::BlockedAddress => "blocked_address",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::InvalidOptions => "invalid_options",
            ErrorCode::VerifyFailed => "verify_failed",
            ErrorCode::TagError => "tag_error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from any pipeline stage.
#[derive(Debug, Clone)]
pub struct PipelineError {
    /// What kind of failure this is.
    pub code: ErrorCode,
    /// A human-readable explanation (safe to show to the user).
    pub message: String,
    /// Whether retrying the same job later may succeed.
    pub transient: bool,
    /// For upstream throttling: how long the server asked us to wait.
    pub retry_after: Option<std::time::Duration>,
}

impl PipelineError {
    /// A permanent error with the given code.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            transient: false,
            retry_after: None,
        }
    }

    /// A transient error (worth retrying) with the given code.
    pub fn transient(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            transient: true,
            retry_after: None,
        }
    }

    /// The stable string code.
    pub fn code_str(&self) -> &'static str {
        self.code.as_str()
    }

    /// Whether retrying may help.
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    pub(crate) fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnsupportedMediaType, message)
    }

    pub(crate) fn decode(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::DecodeError, message)
    }

    pub(crate) fn encode(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::EncodeError, message)
    }

    pub(crate) fn cancelled() -> Self {
        Self::new(ErrorCode::Cancelled, "cancelled")
    }

    pub(crate) fn io(context: &str, err: std::io::Error) -> Self {
        // Local disk errors such as ENOSPC may clear up; let the queue retry them.
        Self::transient(ErrorCode::IoError, format!("{context}: {err}"))
    }
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for PipelineError {}

/// Result alias for the pipeline.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
