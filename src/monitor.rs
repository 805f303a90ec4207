//! System events for admins' hooks: every `notify.system_check_interval` it looks at the
//! database and the queue (`system.health`), free space of the data and library directories
//! (`disk.low`) and providers paused by a `Retry-After` (`provider.paused`), and tells on a
//! change only; a change no hook heard (none listened yet) is told again at the next look.
//! It runs beside the scheduler, in `serve`.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::jobs::{JobEnv, notify::emit};
use crate::notify::{DISK_LOW, PROVIDER_PAUSED, SYSTEM_HEALTH};

/// What was seen last time.
#[derive(Default)]
struct Seen {
    /// `None` before the first look.
    health: Option<Vec<String>>,
    low: HashSet<String>,
    paused: HashSet<String>,
}

/// Looks until `shutdown` fires.
pub async fn run(shared: Arc<JobEnv>, shutdown: CancellationToken) {
    let every = shared.config.notify.system_check_interval;
    let mut seen = Seen::default();
    loop {
        look(&shared, &mut seen).await;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

async fn look(shared: &JobEnv, seen: &mut Seen) {
    let mut problems = Vec::new();
    if let Err(e) = shared.db.ping().await {
        problems.push(format!("database: {e}"));
    }
    if let Err(e) = shared.queue.ping().await {
        problems.push(format!("queue: {e:#}"));
    }
    if seen.health.as_ref() != Some(&problems) {
        let mut heard = true;
        // The first look tells only about trouble; later ones about any change.
        if seen.health.is_some() || !problems.is_empty() {
            let ok = problems.is_empty();
            let message = if ok {
                "The database and the queue answer again.".to_string()
            } else {
                problems.join("; ")
            };
            heard = send(
                shared,
                SYSTEM_HEALTH,
                json!({
                    "title": if ok { "musicd is healthy again" } else { "musicd is unhealthy" },
                    "message": message, "ok": ok, "problems": problems,
                }),
            )
            .await
                > 0
                || ok;
        }
        if heard {
            seen.health = Some(problems);
        }
    }
    let floor = shared.config.notify.disk_low.as_u64();
    for (what, dir) in [
        ("data", &shared.config.data_dir),
        ("library", &shared.config.library_dir),
    ] {
        let Ok(free) = fs2::available_space(dir) else {
            continue;
        };
        let key = dir.display().to_string();
        if free < floor && !seen.low.contains(&key) {
            let heard = send(
                shared,
                DISK_LOW,
                json!({
                    "title": "Disk nearly full",
                    "message": format!("The {what} directory {key} has {} free (under notify.disk_low, {}).",
                        bytesize::ByteSize::b(free), bytesize::ByteSize::b(floor)),
                    "ok": false, "path": key, "free_bytes": free,
                }),
            )
            .await;
            if heard > 0 {
                seen.low.insert(key);
            }
        } else if free >= floor {
            seen.low.remove(&key);
        }
    }
    let paused: Vec<(String, std::time::Duration)> = shared
        .limits
        .paused()
        .into_iter()
        .filter_map(|(k, left)| Some((k.strip_prefix("provider:")?.to_string(), left)))
        .collect();
    let mut now = HashSet::new();
    for (name, left) in &paused {
        if seen.paused.contains(name) {
            now.insert(name.clone());
            continue;
        }
        let heard = send(
            shared,
            PROVIDER_PAUSED,
            json!({
                "title": format!("{name} is paused"),
                "message": format!("{name} asked us to wait (Retry-After); its work resumes by itself in about {} s.", left.as_secs().max(1)),
                "ok": false, "provider": name, "seconds": left.as_secs(),
            }),
        )
        .await;
        if heard > 0 {
            now.insert(name.clone());
        }
    }
    seen.paused = now;
}

/// Queues a system event to admins' hooks; how many heard it.
async fn send(shared: &JobEnv, event: &str, data: serde_json::Value) -> usize {
    match emit(shared, None, event, data).await {
        Ok(n) => {
            tracing::info!(event, hooks = n, "system event");
            n
        }
        Err(e) => {
            tracing::warn!(event, "cannot queue a system event: {e:#}");
            0
        }
    }
}
