//! `ping`: a built-in job that proves the queue round trip. It sleeps for `sleep_ms` in small
//! steps, reporting progress, and can be told to fail transiently on its first attempts.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{JobCtx, JobError};
use crate::failure::code;

/// The ledger kind.
pub const KIND: &str = "ping";

/// Options of a ping job.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PingOptions {
    /// How long the job works, in milliseconds (at most 10 minutes).
    #[serde(default)]
    #[schema(maximum = 600000)]
    pub sleep_ms: u64,
    /// Fail with a transient error on attempts up to this number.
    #[serde(default)]
    pub fail_attempts: u32,
}

#[async_trait::async_trait]
impl super::Job for PingOptions {
    const KIND: &'static str = KIND;
    const POOL: crate::queue::Pool = crate::queue::Pool::Io;

    async fn run(self, ctx: &JobCtx) -> Result<super::Outcome, JobError> {
        run(ctx, self).await.map(|()| super::Outcome::Done)
    }
}

/// Runs a ping job.
async fn run(ctx: &JobCtx, opts: PingOptions) -> Result<(), JobError> {
    if (ctx.task.attempts as u32) <= opts.fail_attempts {
        return Err(JobError::transient(
            code::SIMULATED_FAILURE,
            format!(
                "simulated transient failure on attempt {}",
                ctx.task.attempts
            ),
        ));
    }
    let total = Duration::from_millis(opts.sleep_ms.min(600_000));
    let step = Duration::from_millis(100).min(total.max(Duration::from_millis(1)));
    let mut slept = Duration::ZERO;
    ctx.progress("working", 0.0).await?;
    while slept < total {
        tokio::select! {
            _ = ctx.stop.cancelled() => return Err(JobError::Interrupted),
            _ = tokio::time::sleep(step) => {}
        }
        slept += step;
        if slept.as_millis() % 1000 < step.as_millis() {
            ctx.progress("working", slept.as_secs_f64() / total.as_secs_f64())
                .await?;
        }
    }
    Ok(())
}
