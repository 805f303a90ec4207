//! How work fails: [`JobError`], permanent (fail now, with a stable code) or transient (retry
//! later, honouring `Retry-After`), shared by providers, jobs and the runner.

use std::time::Duration;

/// A job's failure, classified for the runner.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Bad input or a definitive upstream answer: fail now.
    #[error("{message}")]
    Permanent {
        /// Stable code, e.g. `unsupported_media_type`.
        code: &'static str,
        /// Human-readable reason.
        message: String,
    },
    /// Network trouble, 429, 5xx: retry later.
    #[error("{message}")]
    Transient {
        /// Stable code, e.g. `upstream_unavailable`.
        code: &'static str,
        /// Human-readable reason.
        message: String,
        /// Upstream's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// The run was interrupted (cancel or shutdown); the runner decides what that means.
    #[error("interrupted")]
    Interrupted,
}

impl JobError {
    /// A permanent failure.
    pub fn permanent(code: &'static str, message: impl Into<String>) -> Self {
        JobError::Permanent {
            code,
            message: message.into(),
        }
    }

    /// A transient failure without `Retry-After`.
    pub fn transient(code: &'static str, message: impl Into<String>) -> Self {
        JobError::Transient {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The stable code (`interrupted` for an interruption).
    pub fn code(&self) -> &'static str {
        match self {
            JobError::Permanent { code, .. } | JobError::Transient { code, .. } => code,
            JobError::Interrupted => code::INTERRUPTED,
        }
    }
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        JobError::transient(code::DATABASE_ERROR, format!("database: {e}"))
    }
}

/// Maps a media pipeline error to a job error, keeping its code and whether to retry.
pub fn pipeline_error(e: musicd_media::PipelineError) -> JobError {
    if e.code_str() == "cancelled" {
        JobError::Interrupted
    } else if e.transient {
        JobError::Transient {
            code: e.code_str(),
            message: e.message,
            retry_after: e.retry_after,
        }
    } else {
        JobError::permanent(e.code_str(), e.message)
    }
}

/// Every stable error code, in one registry. Clients branch on them (`error.code` in API
/// answers, `error_code` on tasks and events), so a code is never renamed. The media
/// pipeline's own codes (`unsupported_media_type`, `decode_error`, …) come from
/// `musicd_media::PipelineError`.
pub mod code {
    /// A track is already in the library (a skip, not a failure).
    pub const ALREADY_PRESENT: &str = "already_present";
    /// The worker running the task stopped on every attempt.
    pub const ATTEMPTS_EXHAUSTED: &str = "attempts_exhausted";
    /// An outbound connection was refused by the address guard.
    pub const BLOCKED_ADDRESS: &str = "blocked_address";
    /// A tus chunk does not match its `Upload-Checksum`.
    pub const CHECKSUM_MISMATCH: &str = "checksum_mismatch";
    /// No audio source found anything for a catalog track.
    pub const NO_MATCH: &str = "no_match";
    /// No audio was sure enough for a catalog track: a person picks one.
    pub const NEEDS_REVIEW: &str = "needs_review";
    /// The catalog lists the track but it cannot be had (a local file, not in this market).
    pub const UNAVAILABLE: &str = "unavailable";
    /// The request conflicts with the current state.
    pub const CONFLICT: &str = "conflict";
    /// The provider needs credentials that are not stored.
    pub const CREDENTIALS_MISSING: &str = "credentials_missing";
    /// The provider refused the stored credentials.
    pub const CREDENTIALS_REJECTED: &str = "credentials_rejected";
    /// The stored credentials cannot be decrypted.
    pub const CREDENTIALS_UNREADABLE: &str = "credentials_unreadable";
    /// The state database failed (retried).
    pub const DATABASE_ERROR: &str = "database_error";
    /// The same request is already active.
    pub const DUPLICATE_REQUEST: &str = "duplicate_request";
    /// A feed is over `media.max_feed_size`.
    pub const FEED_TOO_LARGE: &str = "feed_too_large";
    /// The credential lacks the role or scope.
    pub const FORBIDDEN: &str = "forbidden";
    /// The server failed; the log has the cause.
    pub const INTERNAL_ERROR: &str = "internal_error";
    /// The run was cancelled or the daemon stopped.
    pub const INTERRUPTED: &str = "interrupted";
    /// A feed does not parse.
    pub const INVALID_FEED: &str = "invalid_feed";
    /// A job's options do not fit its kind.
    pub const INVALID_OPTIONS: &str = "invalid_options";
    /// A file operation failed (retried).
    pub const IO_ERROR: &str = "io_error";
    /// The route exists, the method does not.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// The task is not queued or running.
    pub const NOT_ACTIVE: &str = "not_active";
    /// The task has not ended.
    pub const NOT_FINISHED: &str = "not_finished";
    /// No such resource.
    pub const NOT_FOUND: &str = "not_found";
    /// No failed or cancelled task to retry.
    pub const NOTHING_TO_RETRY: &str = "nothing_to_retry";
    /// The body is over the limit.
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// The provider cannot be used now (retried).
    pub const PROVIDER_UNAVAILABLE: &str = "provider_unavailable";
    /// The user's upload quota is used up.
    pub const QUOTA_EXCEEDED: &str = "quota_exceeded";
    /// Too many requests; `Retry-After` says when to come back.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// The daemon is stopping.
    pub const SHUTTING_DOWN: &str = "shutting_down";
    /// A `ping` job failing on purpose.
    pub const SIMULATED_FAILURE: &str = "simulated_failure";
    /// The task is still queued or running.
    pub const STILL_ACTIVE: &str = "still_active";
    /// The request or an upstream took too long.
    pub const TIMEOUT: &str = "timeout";
    /// A download is over the size limit.
    pub const TOO_LARGE: &str = "too_large";
    /// No valid credential.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// No job handles the task's kind.
    pub const UNKNOWN_KIND: &str = "unknown_kind";
    /// Not a content type the route takes.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    /// A tus request without `Tus-Resumable: 1.0.0`.
    pub const UNSUPPORTED_TUS_VERSION: &str = "unsupported_tus_version";
    /// An upstream answered with an error.
    pub const UPSTREAM_ERROR: &str = "upstream_error";
    /// The request or an input is not valid (the details name the field).
    pub const VALIDATION_ERROR: &str = "validation_error";
}

/// Classifies any error as a job failure with a code: `.permanent(code::X)?`,
/// `.transient_while(code::IO_ERROR, "keep download")?`.
pub trait Classify<T> {
    /// A permanent failure with this code and the error as the message.
    fn permanent(self, code: &'static str) -> Result<T, JobError>;
    /// A transient failure with this code and the error as the message.
    fn transient(self, code: &'static str) -> Result<T, JobError>;
    /// A permanent failure: "`what`: error".
    fn permanent_while(self, code: &'static str, what: &str) -> Result<T, JobError>;
    /// A transient failure: "`what`: error".
    fn transient_while(self, code: &'static str, what: &str) -> Result<T, JobError>;
}

impl<T, E: std::fmt::Display> Classify<T> for Result<T, E> {
    fn permanent(self, code: &'static str) -> Result<T, JobError> {
        self.map_err(|e| JobError::permanent(code, e.to_string()))
    }

    fn transient(self, code: &'static str) -> Result<T, JobError> {
        self.map_err(|e| JobError::transient(code, e.to_string()))
    }

    fn permanent_while(self, code: &'static str, what: &str) -> Result<T, JobError> {
        self.map_err(|e| JobError::permanent(code, format!("{what}: {e}")))
    }

    fn transient_while(self, code: &'static str, what: &str) -> Result<T, JobError> {
        self.map_err(|e| JobError::transient(code, format!("{what}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A code is a name from the registry, never a literal at the call site.
    #[test]
    fn failures_name_their_code_from_the_registry() {
        let mut literal = Vec::new();
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut dirs = vec![src];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                    continue;
                }
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                let flat: String = text.split_whitespace().collect();
                for call in ["JobError::permanent(\"", "JobError::transient(\""] {
                    if flat.contains(call) {
                        literal.push(format!("{}: {call}", p.display()));
                    }
                }
            }
        }
        assert!(literal.is_empty(), "literal codes: {literal:?}");
        assert_eq!(
            Ok::<(), &str>(())
                .permanent(code::NOT_FOUND)
                .map_err(|e| e.code())
                .ok(),
            Some(())
        );
        let e = Err::<(), _>("disk full").transient_while(code::IO_ERROR, "keep download");
        assert!(
            matches!(e, Err(JobError::Transient { code: "io_error", ref message, .. }) if message == "keep download: disk full")
        );
    }
}
