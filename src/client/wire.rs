//! The shapes the client reads: task rows, pages and event bodies.

use super::*;

/// A task as the API shows it (the fields the client uses).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Task {
    pub(super) id: String,
    #[serde(default)]
    pub(super) kind: String,
    pub(super) status: String,
    pub(super) stage: Option<String>,
    #[serde(default)]
    pub(super) progress: f64,
    #[serde(default)]
    pub(super) bytes_done: i64,
    pub(super) bytes_total: Option<i64>,
    #[serde(default)]
    pub(super) attempts: i64,
    pub(super) error: Option<String>,
    pub(super) error_code: Option<String>,
    pub(super) source: Option<String>,
    pub(super) output_path: Option<String>,
    #[serde(default)]
    pub(super) created_at: i64,
    #[serde(default)]
    pub(super) updated_at: i64,
}

/// A page of tasks.
#[derive(Debug, Deserialize)]
pub(super) struct Page {
    pub(super) items: Vec<Task>,
    pub(super) next_cursor: Option<String>,
}

/// The `data` of a task event (every field optional, so a newer daemon's events still parse).
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct EventData {
    pub(super) task_id: Option<String>,
    pub(super) status: Option<String>,
    pub(super) stage: Option<String>,
    /// 0 to 100.
    pub(super) percent: Option<f64>,
    pub(super) bytes_done: Option<i64>,
    pub(super) bytes_total: Option<i64>,
    pub(super) speed_bps: Option<f64>,
    pub(super) eta_seconds: Option<f64>,
    pub(super) attempts: Option<i64>,
    pub(super) error: Option<String>,
    pub(super) error_code: Option<String>,
    pub(super) output_path: Option<String>,
    pub(super) source: Option<String>,
    pub(super) title: Option<String>,
}

pub(super) fn is_final(status: &str) -> bool {
    matches!(status, "done" | "failed" | "cancelled" | "skipped")
}

/// The status an event implies when its data does not say.
pub(super) fn status_of_event(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "task.created" | "task.queued" | "task.retrying" => "queued",
        "task.started" => "running",
        "task.completed" => "done",
        "task.failed" => "failed",
        "task.skipped" => "skipped",
        "task.cancelled" => "cancelled",
        _ => return None,
    })
}

impl From<&Task> for EventData {
    fn from(t: &Task) -> Self {
        Self {
            task_id: Some(t.id.clone()),
            status: Some(t.status.clone()),
            stage: t.stage.clone(),
            percent: Some(t.progress * 100.0),
            bytes_done: Some(t.bytes_done),
            bytes_total: t.bytes_total,
            speed_bps: None,
            eta_seconds: None,
            attempts: Some(t.attempts),
            error: t.error.clone(),
            error_code: t.error_code.clone(),
            output_path: t.output_path.clone(),
            source: t.source.clone(),
            title: None,
        }
    }
}
