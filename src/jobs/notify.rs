//! What happened, turned into messages: when a request (or a track, an upload, a watch
//! check) ends, the hooks that hear it each get a `deliver` task in the ledger, and the
//! configured media servers a debounced `rescan`.

use std::collections::BTreeMap;

use super::*;
use crate::db::webhooks::{self, Hook};
use crate::notify;
use crate::wire::{HookData, HookPayload, HookTask, HookWatch};

/// Tells whoever listens that `task_id` ended: hooks of the owner that hear its event, and,
/// for a request that placed files, the media servers. Errors are logged: a message that
/// cannot be queued never fails the work it is about.
pub async fn task_ended(shared: &JobEnv, task_id: &str) {
    if let Err(e) = try_task_ended(shared, task_id).await {
        tracing::warn!(
            task_id,
            "cannot queue the messages of a finished task: {e:#}"
        );
    }
}

async fn try_task_ended(shared: &JobEnv, task_id: &str) -> anyhow::Result<()> {
    let Some(task) = tasks::get(&shared.db, task_id).await? else {
        return Ok(());
    };
    if tasks::INTERNAL_KINDS.contains(&task.kind.as_str()) || !crate::wire::is_final(&task.status) {
        return Ok(());
    }
    let children: BTreeMap<String, i64> = if task.parent_id.is_none() {
        tasks::child_counts(&shared.db, task_id)
            .await?
            .into_iter()
            .collect()
    } else {
        BTreeMap::new()
    };
    let placed = children.get(status::DONE).copied().unwrap_or(0) > 0
        || (children.is_empty() && task.status == status::DONE && task.output_path.is_some());
    let upload = task.kind == track::KIND
        && serde_json::from_str::<serde_json::Value>(&task.options)
            .ok()
            .and_then(|o| {
                o.get("provider")
                    .and_then(|p| p.as_str().map(str::to_string))
            })
            .as_deref()
            == Some("upload");
    let outcome = match task.status.as_str() {
        status::DONE | status::SKIPPED => Some("completed"),
        status::FAILED => Some("failed"),
        status::NEEDS_REVIEW => Some("needs_review"),
        _ => None,
    };
    let mut watch = None;
    let event = match (task.parent_id.is_some(), outcome) {
        (_, None) => None,
        (true, Some(o)) => Some(format!("track.{o}")),
        (false, Some(_)) if task.kind == check_watch::KIND => {
            // A check tells only when it had new items, once they have all ended.
            let o2: check_watch::CheckOptions = serde_json::from_str(&task.options)?;
            if children.is_empty() {
                None
            } else {
                let name = crate::db::watches::get(&shared.db, &o2.watch_id)
                    .await?
                    .and_then(|w| w.title)
                    .unwrap_or_default();
                watch = Some(HookWatch {
                    id: o2.watch_id,
                    name,
                });
                Some(notify::WATCH_NEW_ITEMS.to_string())
            }
        }
        (false, Some("failed")) if upload => Some(notify::UPLOAD_FAILED.to_string()),
        (false, Some(_)) if upload => Some(notify::UPLOAD_COMPLETED.to_string()),
        (false, Some(o)) => Some(format!("task.{o}")),
    };
    if let Some(event) = event {
        let data = HookData {
            link: link_to(
                &shared.config,
                task.parent_id.as_deref().unwrap_or(&task.id),
            ),
            task: HookTask {
                id: task.id.clone(),
                kind: task.kind.clone(),
                status: task.status.clone(),
                title: task.title.clone(),
                source: task.source.clone(),
                error: task.error.clone(),
                error_code: task.error_code.clone(),
                output_path: task.output_path.clone(),
                children,
                created_at: task.created_at,
                finished_at: task.finished_at,
            },
            watch,
        };
        emit(
            shared,
            task.owner_id.as_deref(),
            &event,
            serde_json::to_value(data)?,
        )
        .await?;
    }
    if task.parent_id.is_none() && placed {
        super::rescan::schedule(shared).await;
    }
    Ok(())
}

/// The web app's page of a task, when `notify.public_url` is set.
fn link_to(config: &crate::config::Config, task_id: &str) -> Option<String> {
    let base = config.notify.public_url.trim_end_matches('/');
    (!base.is_empty()).then(|| format!("{base}/#/tasks/{task_id}"))
}

/// Queues a message about `event` to every enabled hook that hears it: the owner's hooks, or
/// for a system event (`owner` `None`) admins' hooks. Returns how many were queued.
pub async fn emit(
    shared: &JobEnv,
    owner: Option<&str>,
    event: &str,
    data: serde_json::Value,
) -> anyhow::Result<usize> {
    let system = notify::SYSTEM_EVENTS.contains(&event);
    if owner.is_none() && !system {
        return Ok(0);
    }
    let hooks = webhooks::listeners(&shared.db, if system { None } else { owner }).await?;
    let mut queued = 0;
    for hook in hooks
        .iter()
        .filter(|h| h.event_list().iter().any(|e| e == event))
    {
        queue_delivery(shared, hook, event, data.clone()).await?;
        queued += 1;
    }
    Ok(queued)
}

/// Queues one message to one hook: a `deliver` task in the ledger, then its queue message.
/// Returns the task.
pub async fn queue_delivery(
    shared: &JobEnv,
    hook: &Hook,
    event: &str,
    data: serde_json::Value,
) -> anyhow::Result<Task> {
    let opts = super::deliver::DeliverOptions {
        hook_id: hook.id.clone(),
        message_id: notify::sign::new_message_id(),
        payload: HookPayload {
            kind: event.to_string(),
            timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            data,
        },
    };
    let new = tasks::NewTask {
        owner_id: Some(hook.owner_id.clone()),
        title: Some(format!("{event} to {}", hook.name)),
        max_attempts: shared.config.notify.max_attempts as i64,
        ..super::new_task(&opts)
    };
    let task = match tasks::insert(&shared.db, &new).await? {
        Ok(t) => t,
        Err(existing) => anyhow::bail!("a delivery without a key conflicted with {existing}"),
    };
    enqueue(&shared.queue, Pool::Io, &task.id, None).await;
    Ok(task)
}
