//! The wire contract: the shapes of tasks, pages and events as the API sends them. The server
//! builds them, the CLI client and the tests read them, and the OpenAPI document describes
//! them (`api::types` is the same module under the API's name). They sit this low because
//! jobs publish events and the API is above jobs.
//!
//! Every struct reads with `#[serde(default)]`, so a client still reads a daemon that adds
//! or drops a field.

mod hooks;
pub use hooks::*;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::tasks::{Task, status};

/// A task as the API shows it: one row of the ledger.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct TaskView {
    /// Stable id.
    pub id: String,
    /// Parent task (an album for its tracks), if any.
    pub parent_id: Option<String>,
    /// The user who asked for it.
    pub owner_id: Option<String>,
    /// Job kind: `download`, `track`, `check_watch`, `ping`.
    pub kind: String,
    /// Worker pool that runs it: `io` or `cpu`.
    pub pool: String,
    /// `queued`, `running`, `processing`, `done`, `failed`, `cancelled`, `skipped`,
    /// `needs_review`.
    pub status: String,
    /// Current pipeline stage, if the job reports one.
    pub stage: Option<String>,
    /// 0.0 to 1.0.
    pub progress: f64,
    /// Bytes transferred so far.
    pub bytes_done: i64,
    /// Bytes expected, when known.
    pub bytes_total: Option<i64>,
    /// Starts so far, including starts after a crash.
    pub attempts: i64,
    /// Starts allowed.
    pub max_attempts: i64,
    /// Last error message.
    pub error: Option<String>,
    /// Stable code of the last error.
    pub error_code: Option<String>,
    /// What was asked for (a URL, a path).
    pub source: Option<String>,
    /// What it is, in words: `Artist – Title` for a track, the album's or playlist's title.
    pub title: Option<String>,
    /// The job's options.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
    /// Where the result was placed.
    pub output_path: Option<String>,
    /// Client-supplied or derived key identifying the same request.
    pub idempotency_key: Option<String>,
    /// Worker holding the lease while running.
    pub worker_id: Option<String>,
    /// Lease expiry (Unix ms) while running.
    pub lease_until: Option<i64>,
    /// Earliest start (Unix ms) for a retry.
    pub run_after: Option<i64>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
    /// First start, Unix milliseconds.
    pub started_at: Option<i64>,
    /// End, Unix milliseconds.
    pub finished_at: Option<i64>,
}

impl From<Task> for TaskView {
    fn from(t: Task) -> Self {
        Self {
            options: serde_json::from_str(&t.options).unwrap_or(serde_json::Value::Null),
            id: t.id,
            parent_id: t.parent_id,
            owner_id: t.owner_id,
            kind: t.kind,
            pool: t.pool,
            status: t.status,
            stage: t.stage,
            progress: t.progress,
            bytes_done: t.bytes_done,
            bytes_total: t.bytes_total,
            attempts: t.attempts,
            max_attempts: t.max_attempts,
            error: t.error,
            error_code: t.error_code,
            source: t.source,
            title: t.title,
            output_path: t.output_path,
            idempotency_key: t.idempotency_key,
            worker_id: t.worker_id,
            lease_until: t.lease_until,
            run_after: t.run_after,
            created_at: t.created_at,
            updated_at: t.updated_at,
            started_at: t.started_at,
            finished_at: t.finished_at,
        }
    }
}

/// Every status a task can have.
pub const STATUSES: [&str; 8] = [
    status::QUEUED,
    status::RUNNING,
    status::PROCESSING,
    status::DONE,
    status::FAILED,
    status::CANCELLED,
    status::SKIPPED,
    status::NEEDS_REVIEW,
];

/// Whether a status is final (the task will not run again unless retried).
pub fn is_final(status: &str) -> bool {
    matches!(
        status,
        status::DONE | status::FAILED | status::CANCELLED | status::SKIPPED | status::NEEDS_REVIEW
    )
}

/// A page of a list, with the cursor for the next one.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    /// The items on this page.
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// `GET /tasks/updates`: tasks changed since a time, and where to continue.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Updates {
    /// Changed tasks, oldest change first.
    pub items: Vec<TaskView>,
    /// Pass as `since` next time.
    pub next_since: i64,
}

/// The answer to a new request: the task that records it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Accepted {
    /// The new (or, for a repeated request, the existing) task.
    pub task_id: String,
    /// Its status.
    pub status: String,
}

/// `POST /uploads`: one task per uploaded file.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Uploaded {
    /// The tasks, in the order of the form's files.
    pub tasks: Vec<UploadedFile>,
}

/// One uploaded file and the task that processes it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct UploadedFile {
    /// The task.
    pub task_id: String,
    /// The file's name as sent.
    pub file_name: Option<String>,
}

/// The `data` of every `task.*` event: what a client needs to draw the task.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct TaskEvent {
    /// The task.
    pub task_id: String,
    /// Its parent, if any.
    pub parent_id: Option<String>,
    /// Its job kind.
    pub task_kind: String,
    /// Its status; `waiting` is a queued retry that is not due until `waiting_until`.
    pub status: String,
    /// Current stage.
    pub stage: Option<String>,
    /// 0 to 100, one decimal.
    pub percent: f64,
    /// Bytes transferred so far.
    pub bytes_done: i64,
    /// Bytes expected, when known.
    pub bytes_total: Option<i64>,
    /// Starts so far.
    pub attempts: i64,
    /// Last error message.
    pub error: Option<String>,
    /// Stable code of the last error.
    pub error_code: Option<String>,
    /// Where the result was placed.
    pub output_path: Option<String>,
    /// What was asked for.
    pub source: Option<String>,
    /// What it is, in words (a track's `Artist – Title`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Unix ms when a waiting retry is due.
    pub waiting_until: Option<i64>,
    /// Bytes per second of the current transfer (progress events only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed_bps: Option<u64>,
    /// Seconds left of the current transfer, when its size is known (progress events only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<u64>,
}

impl From<&TaskView> for TaskEvent {
    fn from(t: &TaskView) -> Self {
        Self {
            task_id: t.id.clone(),
            parent_id: t.parent_id.clone(),
            task_kind: t.kind.clone(),
            status: t.status.clone(),
            stage: t.stage.clone(),
            percent: percent(t.progress),
            bytes_done: t.bytes_done,
            bytes_total: t.bytes_total,
            attempts: t.attempts,
            error: t.error.clone(),
            error_code: t.error_code.clone(),
            output_path: t.output_path.clone(),
            source: t.source.clone(),
            title: t.title.clone(),
            waiting_until: t.run_after,
            speed_bps: None,
            eta_seconds: None,
        }
    }
}

impl From<&Task> for TaskEvent {
    /// Straight from the ledger row: events are published often (progress, thousands of
    /// children), so this skips the view's parse of the options JSON.
    fn from(t: &Task) -> Self {
        Self {
            task_id: t.id.clone(),
            parent_id: t.parent_id.clone(),
            task_kind: t.kind.clone(),
            status: t.status.clone(),
            stage: t.stage.clone(),
            percent: percent(t.progress),
            bytes_done: t.bytes_done,
            bytes_total: t.bytes_total,
            attempts: t.attempts,
            error: t.error.clone(),
            error_code: t.error_code.clone(),
            output_path: t.output_path.clone(),
            source: t.source.clone(),
            title: t.title.clone(),
            waiting_until: t.run_after,
            speed_bps: None,
            eta_seconds: None,
        }
    }
}

/// A 0–1 fraction as a percentage with one decimal.
pub fn percent(fraction: f64) -> f64 {
    (fraction * 1000.0).round() / 10.0
}

/// What a watch check found: kept as the watch's `last_result` and sent in `watch.checked`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct WatchCounts {
    /// The source changed since the last check.
    pub changed: bool,
    /// This was the first check: what it found is the baseline, nothing was downloaded.
    pub baseline: bool,
    /// New items.
    pub added: usize,
    /// Items the source no longer lists.
    pub removed: usize,
    /// Items the source lists now.
    pub total: usize,
    /// Files deleted (`on_removed = delete`).
    pub deleted: usize,
    /// Removed items whose file was kept, and why.
    pub kept: Vec<KeptFile>,
}

/// A removed item whose file `on_removed = delete` did not delete.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct KeptFile {
    /// The provider's identity of the item.
    pub id: String,
    /// Why the file stays.
    pub reason: String,
}

/// The `data` of `watch.checked`: the counts of a check, or the error that ended it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct WatchChecked {
    /// The watch.
    pub watch_id: String,
    /// The check's task.
    pub task_id: String,
    /// What the check found (absent when it failed).
    #[serde(flatten)]
    pub counts: Option<WatchCounts>,
    /// Why the check failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An event: its type (the SSE `event:` field) and its body (the SSE `data:`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", content = "data")]
pub enum EventBody {
    /// A task was created and queued.
    #[serde(rename = "task.created")]
    TaskCreated(TaskEvent),
    /// A task was queued again (hand-off to another pool, retry on request).
    #[serde(rename = "task.queued")]
    TaskQueued(TaskEvent),
    /// A worker started a task.
    #[serde(rename = "task.started")]
    TaskStarted(TaskEvent),
    /// A task moved on (stage, bytes, a child ended).
    #[serde(rename = "task.progress")]
    TaskProgress(TaskEvent),
    /// A task failed for now and will run again at `waiting_until`.
    #[serde(rename = "task.retrying")]
    TaskRetrying(TaskEvent),
    /// A task finished.
    #[serde(rename = "task.completed")]
    TaskCompleted(TaskEvent),
    /// A task failed for good.
    #[serde(rename = "task.failed")]
    TaskFailed(TaskEvent),
    /// A task had nothing to do.
    #[serde(rename = "task.skipped")]
    TaskSkipped(TaskEvent),
    /// A task was cancelled.
    #[serde(rename = "task.cancelled")]
    TaskCancelled(TaskEvent),
    /// A catalog track found no audio sure enough to download: a person picks one
    /// (`GET /tasks/{id}/candidates`, `POST /tasks/{id}/match`).
    #[serde(rename = "task.needs_review")]
    TaskNeedsReview(TaskEvent),
    /// A watch was checked.
    #[serde(rename = "watch.checked")]
    WatchChecked(WatchChecked),
}

/// The kinds of task events, for building one by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskEventKind {
    /// `task.created`
    Created,
    /// `task.queued`
    Queued,
    /// `task.started`
    Started,
    /// `task.progress`
    Progress,
    /// `task.retrying`
    Retrying,
    /// `task.completed`
    Completed,
    /// `task.failed`
    Failed,
    /// `task.skipped`
    Skipped,
    /// `task.cancelled`
    Cancelled,
    /// `task.needs_review`
    NeedsReview,
}

impl TaskEventKind {
    /// The event of this kind carrying `data`.
    pub fn with(self, data: TaskEvent) -> EventBody {
        match self {
            Self::Created => EventBody::TaskCreated(data),
            Self::Queued => EventBody::TaskQueued(data),
            Self::Started => EventBody::TaskStarted(data),
            Self::Progress => EventBody::TaskProgress(data),
            Self::Retrying => EventBody::TaskRetrying(data),
            Self::Completed => EventBody::TaskCompleted(data),
            Self::Failed => EventBody::TaskFailed(data),
            Self::Skipped => EventBody::TaskSkipped(data),
            Self::Cancelled => EventBody::TaskCancelled(data),
            Self::NeedsReview => EventBody::TaskNeedsReview(data),
        }
    }
}

impl EventBody {
    /// The event type, e.g. `task.progress`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TaskCreated(_) => "task.created",
            Self::TaskQueued(_) => "task.queued",
            Self::TaskStarted(_) => "task.started",
            Self::TaskProgress(_) => "task.progress",
            Self::TaskRetrying(_) => "task.retrying",
            Self::TaskCompleted(_) => "task.completed",
            Self::TaskFailed(_) => "task.failed",
            Self::TaskSkipped(_) => "task.skipped",
            Self::TaskCancelled(_) => "task.cancelled",
            Self::TaskNeedsReview(_) => "task.needs_review",
            Self::WatchChecked(_) => "watch.checked",
        }
    }

    /// The task body of a `task.*` event.
    pub fn task(&self) -> Option<&TaskEvent> {
        match self {
            Self::TaskCreated(t)
            | Self::TaskQueued(t)
            | Self::TaskStarted(t)
            | Self::TaskProgress(t)
            | Self::TaskRetrying(t)
            | Self::TaskCompleted(t)
            | Self::TaskFailed(t)
            | Self::TaskSkipped(t)
            | Self::TaskCancelled(t)
            | Self::TaskNeedsReview(t) => Some(t),
            Self::WatchChecked(_) => None,
        }
    }

    /// The task the event is about.
    pub fn task_id(&self) -> &str {
        match self {
            Self::WatchChecked(w) => &w.task_id,
            other => other.task().map_or("", |t| t.task_id.as_str()),
        }
    }

    /// The parent of that task, if any.
    pub fn parent_id(&self) -> Option<&str> {
        self.task().and_then(|t| t.parent_id.as_deref())
    }

    /// The body as the SSE `data:` line sends it: the data with its event type as `type`.
    pub fn data_json(&self) -> String {
        let mut whole = serde_json::to_value(self).unwrap_or_default();
        let mut data = whole["data"].take();
        if let Some(o) = data.as_object_mut() {
            o.insert("type".into(), self.kind().into());
        }
        data.to_string()
    }

    /// Reads an SSE event back from its type and `data:` line (`None` for a type this
    /// build does not know, or a body that is not its shape).
    pub fn parse(kind: &str, data: &str) -> Option<Self> {
        let data: serde_json::Value = serde_json::from_str(data).ok()?;
        serde_json::from_value(serde_json::json!({ "kind": kind, "data": data })).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_reads_back_from_its_sse_fields() {
        let data = TaskEvent {
            task_id: "t1".into(),
            status: "running".into(),
            percent: 12.5,
            speed_bps: Some(10),
            ..TaskEvent::default()
        };
        let e = TaskEventKind::Progress.with(data);
        assert_eq!(EventBody::parse(e.kind(), &e.data_json()), Some(e.clone()));
        let w = EventBody::WatchChecked(WatchChecked {
            watch_id: "w".into(),
            task_id: "t".into(),
            counts: Some(WatchCounts {
                added: 2,
                ..WatchCounts::default()
            }),
            error: None,
        });
        let json: serde_json::Value = serde_json::from_str(&w.data_json()).unwrap();
        assert_eq!(json["added"], 2, "counts sit beside the ids: {json}");
        assert!(json.get("error").is_none());
        assert_eq!(EventBody::parse(w.kind(), &w.data_json()), Some(w));
        assert_eq!(EventBody::parse("task.unknown", "{}"), None);
    }
}
