//! Task events: the body clients draw a task from, and publishing it.

use super::*;

/// Tells watchers a task exists and enqueues it.
pub async fn announce(queue: &Queue, events: &EventBus, task: &Task) {
    events
        .publish("task.created", task.owner_id.as_deref(), task_body(task))
        .await;
    enqueue(
        queue,
        Pool::parse(&task.pool).unwrap_or(Pool::Io),
        &task.id,
        None,
    )
    .await;
}

/// The body of a task event: what clients need to draw it.
pub fn task_body(t: &Task) -> serde_json::Value {
    // A queued retry that is not due yet is shown as `waiting`, with `waiting_until`.
    let waiting =
        t.status == status::QUEUED && t.run_after.is_some_and(|at| at > crate::db::now_ms());
    serde_json::json!({
        "task_id": t.id,
        "parent_id": t.parent_id,
        "task_kind": t.kind,
        "status": if waiting { "waiting" } else { t.status.as_str() },
        "stage": t.stage,
        "percent": (t.progress * 1000.0).round() / 10.0,
        "bytes_done": t.bytes_done,
        "bytes_total": t.bytes_total,
        "attempts": t.attempts,
        "error": t.error,
        "error_code": t.error_code,
        "output_path": t.output_path,
        "waiting_until": t.run_after,
    })
}

/// Publishes an event about a task, reading its current row; returns the row it read.
pub async fn publish_task(db: &Db, events: &EventBus, kind: &str, task_id: &str) -> Option<Task> {
    match tasks::get(db, task_id).await {
        Ok(Some(t)) => {
            events
                .publish(kind, t.owner_id.as_deref(), task_body(&t))
                .await;
            Some(t)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(task_id, "cannot read task for its event: {e}");
            None
        }
    }
}
