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
            JobError::Interrupted => "interrupted",
        }
    }
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        JobError::transient("database_error", format!("database: {e}"))
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
