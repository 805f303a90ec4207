//! The [`Job`] trait and the registry of every job kind: the runner dispatches through
//! [`dispatch`], and new tasks are made from a job's typed options with [`new_task`].

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{JobCtx, JobError, Outcome, check_watch, deliver, download, ping, rescan, track};
use crate::db::tasks::NewTask;
use crate::failure::code;
use crate::queue::Pool;

/// A kind of job. The implementing type is its options: stored as the task's JSON, read
/// back before each run.
#[async_trait::async_trait]
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The `kind` of its tasks.
    const KIND: &'static str;
    /// The pool its tasks start in (a job may hand its task on to another).
    const POOL: Pool;

    /// Runs one attempt.
    async fn run(self, ctx: &JobCtx) -> Result<Outcome, JobError>;
}

/// A new ledger row for `job`: its kind, pool and options; the caller adds the rest.
pub fn new_task<J: Job>(job: &J) -> NewTask {
    NewTask {
        kind: J::KIND.into(),
        pool: J::POOL.as_str().into(),
        options: serde_json::to_value(job).unwrap_or_default(),
        ..NewTask::default()
    }
}

async fn run_as<J: Job>(ctx: &JobCtx) -> Result<Outcome, JobError> {
    let job: J = ctx.options()?;
    job.run(ctx).await
}

macro_rules! registry {
    ($($job:ty),+ $(,)?) => {
        /// Every job kind there is.
        pub const KINDS: &[&str] = &[$(<$job as Job>::KIND),+];

        /// Runs a claimed task as the job its kind names.
        pub async fn dispatch(ctx: &JobCtx) -> Result<Outcome, JobError> {
            $(if ctx.task.kind == <$job as Job>::KIND {
                return run_as::<$job>(ctx).await;
            })+
            Err(JobError::permanent(
                code::UNKNOWN_KIND,
                format!("no job handler for kind `{}`", ctx.task.kind),
            ))
        }
    };
}

registry!(
    download::DownloadOptions,
    track::TrackOptions,
    check_watch::CheckOptions,
    ping::PingOptions,
    deliver::DeliverOptions,
    rescan::RescanOptions,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_named_once() {
        let mut kinds = KINDS.to_vec();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), KINDS.len());
        for internal in crate::db::tasks::INTERNAL_KINDS {
            assert!(KINDS.contains(internal), "{internal} is a kind");
        }
        assert_eq!(
            KINDS,
            &[
                "download",
                "track",
                "check_watch",
                "ping",
                "deliver",
                "rescan"
            ],
            "the ledger keeps these names"
        );
    }
}
