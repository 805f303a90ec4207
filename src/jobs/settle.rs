//! Parents: settling one when a child ends (its playlist first, then its status), and
//! releasing held children into the enqueue window.

use super::*;
use crate::wire::TaskEventKind;

/// Ends a parent whose children have all ended, and tells its watchers. What it leaves
/// behind (a playlist) is written first, so whoever sees it ended finds it.
pub async fn settle(shared: &JobEnv, parent_id: &str) -> Result<(), sqlx::Error> {
    release_held(shared, parent_id).await?;
    let (db, events) = (&shared.db, &shared.events);
    let Some(outcome) = tasks::children_outcome(db, parent_id).await? else {
        publish_task(db, events, TaskEventKind::Progress, parent_id).await;
        return Ok(());
    };
    let kind = match outcome.0 {
        "done" => TaskEventKind::Completed,
        "failed" => TaskEventKind::Failed,
        "needs_review" => TaskEventKind::NeedsReview,
        _ => TaskEventKind::Cancelled,
    };
    if let Some(parent) = tasks::get(&shared.db, parent_id).await?
        && parent.status == tasks::status::PROCESSING
        && let Err(e) = finished_parent(shared, &parent).await
    {
        tracing::warn!(parent_id, "cannot write the playlist: {e:#}");
    }
    let ended = tasks::end_parent(db, parent_id, outcome).await?;
    let kind = if ended { kind } else { TaskEventKind::Progress };
    publish_task(db, events, kind, parent_id).await;
    if ended {
        super::notify::task_ended(shared, parent_id).await;
    }
    Ok(())
}

/// What a parent leaves behind once its children have ended: the `.m3u8` of a playlist or
/// feed, downloaded or watched.
pub(super) async fn finished_parent(shared: &JobEnv, parent: &Task) -> anyhow::Result<()> {
    match parent.kind.as_str() {
        download::KIND => download::write_playlist(shared, parent).await,
        check_watch::KIND => {
            let o: check_watch::CheckOptions = serde_json::from_str(&parent.options)?;
            crate::watch::write_playlist(&shared.env, &o.watch_id).await
        }
        _ => Ok(()),
    }
}

/// Queues held children of a parent as room frees in its window.
pub async fn release_held(shared: &JobEnv, parent_id: &str) -> Result<(), sqlx::Error> {
    let window = shared.config.workers.enqueue_window as i64;
    for (id, pool) in tasks::release_held(&shared.db, parent_id, window).await? {
        enqueue(
            &shared.queue,
            Pool::parse(&pool).unwrap_or(Pool::Io),
            &id,
            None,
        )
        .await;
    }
    Ok(())
}
