//! What musicd tells the outside: the event types hooks can hear, the Standard Webhooks
//! signature (`sign`), the targets a hook can post to and the request each preset sends
//! (`targets`). Pure: the delivery job (`jobs::deliver`) does the sending.

pub mod sign;
pub mod targets;

use serde_json::Value;

/// A request's summary when its last track ends (or a single task ends).
pub const TASK_COMPLETED: &str = "task.completed";
/// A request ended with tracks failed (and none waiting for review).
pub const TASK_FAILED: &str = "task.failed";
/// A request ended with tracks waiting for a person to pick their audio.
pub const TASK_NEEDS_REVIEW: &str = "task.needs_review";
/// A watch check's new items have all ended (sent only when there were new items).
pub const WATCH_NEW_ITEMS: &str = "watch.new_items";
/// An uploaded file was placed in the library.
pub const UPLOAD_COMPLETED: &str = "upload.completed";
/// An uploaded file failed.
pub const UPLOAD_FAILED: &str = "upload.failed";
/// A message sent by `POST /webhooks/{id}/test`.
pub const TEST: &str = "webhook.test";

/// Events about a user's own work, in the order they are listed.
pub const USER_EVENTS: &[&str] = &[
    TASK_COMPLETED,
    TASK_FAILED,
    TASK_NEEDS_REVIEW,
    "track.completed",
    "track.failed",
    "track.needs_review",
    WATCH_NEW_ITEMS,
    UPLOAD_COMPLETED,
    UPLOAD_FAILED,
];

/// What a hook hears when it names no events: one message per request, not per track.
pub const DEFAULT_EVENTS: &[&str] = &[
    TASK_COMPLETED,
    TASK_FAILED,
    TASK_NEEDS_REVIEW,
    WATCH_NEW_ITEMS,
    UPLOAD_COMPLETED,
    UPLOAD_FAILED,
];

/// The deep health check changed (database, queue or disk).
pub const SYSTEM_HEALTH: &str = "system.health";
/// A provider asked us to wait (`Retry-After`) and is paused.
pub const PROVIDER_PAUSED: &str = "provider.paused";
/// Free space of the data or library directory fell under `notify.disk_low`.
pub const DISK_LOW: &str = "disk.low";

/// Events about the daemon itself; only an admin's hooks may hear them.
pub const SYSTEM_EVENTS: &[&str] = &[SYSTEM_HEALTH, PROVIDER_PAUSED, DISK_LOW];

/// A readable message for people (the presets): a title, a line or two, and a link.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Short title.
    pub title: String,
    /// What happened, in a sentence or two.
    pub body: String,
    /// The task in the web app, when `notify.public_url` is set.
    pub link: Option<String>,
    /// Something went wrong (a higher priority, a red colour).
    pub bad: bool,
}

/// Words for the counts of a request's tracks (`12 done, 1 failed`).
fn counts_line(counts: &Value) -> Option<String> {
    let order = ["done", "skipped", "failed", "needs_review", "cancelled"];
    let words = [
        "done",
        "already in the library",
        "failed",
        "need review",
        "cancelled",
    ];
    let parts: Vec<String> = order
        .iter()
        .zip(words)
        .filter_map(|(k, w)| {
            let n = counts.get(*k)?.as_i64()?;
            (n > 0).then(|| format!("{n} {w}"))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The message a preset sends for an event whose `data` is as the webhook carries it.
pub fn message(event: &str, data: &Value) -> Message {
    let title_of = |d: &Value| {
        d.pointer("/task/title")
            .or_else(|| d.pointer("/task/source"))
            .and_then(Value::as_str)
            .unwrap_or("a request")
            .to_string()
    };
    let link = data.get("link").and_then(Value::as_str).map(str::to_string);
    let error = data
        .pointer("/task/error")
        .and_then(Value::as_str)
        .map(str::to_string);
    let counts = data.pointer("/task/children").and_then(counts_line);
    let (title, body, bad) = match event {
        TASK_COMPLETED | "track.completed" => (
            format!("Downloaded: {}", title_of(data)),
            counts.unwrap_or_else(|| "Done.".into()),
            false,
        ),
        TASK_FAILED | "track.failed" => (
            format!("Failed: {}", title_of(data)),
            [counts, error]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(". "),
            true,
        ),
        TASK_NEEDS_REVIEW | "track.needs_review" => (
            format!("Needs review: {}", title_of(data)),
            counts.unwrap_or_else(|| "Pick the audio for the tracks marked for review.".into()),
            false,
        ),
        WATCH_NEW_ITEMS => {
            let name = data
                .pointer("/watch/name")
                .and_then(Value::as_str)
                .unwrap_or("a watch");
            (
                format!("New in {name}"),
                counts.unwrap_or_else(|| "New items were added.".into()),
                false,
            )
        }
        UPLOAD_COMPLETED => (
            format!("Uploaded: {}", title_of(data)),
            "In the library.".into(),
            false,
        ),
        UPLOAD_FAILED => (
            format!("Upload failed: {}", title_of(data)),
            error.unwrap_or_default(),
            true,
        ),
        TEST => (
            "musicd test message".into(),
            "This target receives musicd's messages.".into(),
            false,
        ),
        _ => (
            data.get("title")
                .and_then(Value::as_str)
                .map_or_else(|| format!("musicd: {event}"), str::to_string),
            data.get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            data.get("ok").and_then(Value::as_bool) != Some(true),
        ),
    };
    Message {
        title,
        body,
        link,
        bad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_request_summary_reads_as_words() {
        let m = message(
            TASK_FAILED,
            &json!({"task": {"title": "Feed", "error": "1 of 3 tracks failed",
                "children": {"done": 2, "failed": 1}}, "link": "https://m.example/#/tasks/1"}),
        );
        assert_eq!(m.title, "Failed: Feed");
        assert_eq!(m.body, "2 done, 1 failed. 1 of 3 tracks failed");
        assert!(m.bad);
        assert_eq!(m.link.as_deref(), Some("https://m.example/#/tasks/1"));
    }
}
