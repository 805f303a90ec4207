//! Task events: the body clients draw a task from, and publishing it.

use super::*;
use crate::wire::{TaskEvent, TaskEventKind};

/// Tells watchers a task exists and enqueues it.
pub async fn announce(queue: &Queue, events: &EventBus, task: &Task) {
    events
        .publish(
            task.owner_id.as_deref(),
            TaskEventKind::Created.with(task_event(task)),
        )
        .await;
    enqueue(
        queue,
        Pool::parse(&task.pool).unwrap_or(Pool::Io),
        &task.id,
        None,
    )
    .await;
}

/// The body of a task event: what clients need to draw it. A queued retry that is not due
/// yet is shown as `waiting`, with `waiting_until`.
pub fn task_event(t: &Task) -> TaskEvent {
    let mut e = TaskEvent::from(t);
    if t.status == status::QUEUED && t.run_after.is_some_and(|at| at > crate::db::now_ms()) {
        e.status = "waiting".into();
    }
    e
}

/// Publishes an event about a task, reading its current row; returns the row it read.
pub async fn publish_task(
    db: &Db,
    events: &EventBus,
    kind: TaskEventKind,
    task_id: &str,
) -> Option<Task> {
    match tasks::get(db, task_id).await {
        Ok(Some(t)) => {
            events
                .publish(t.owner_id.as_deref(), kind.with(task_event(&t)))
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
