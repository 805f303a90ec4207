//! The wire shapes of webhooks: a hook as listed, the body of a message it receives (the
//! Standard Webhooks `type`, `timestamp`, `data`), and the media servers' last rescans.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A webhook or notification target as the API shows it (never its secret).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct WebhookView {
    /// Stable id.
    pub id: String,
    /// Whose it is.
    pub owner_id: String,
    /// A label.
    pub name: String,
    /// `webhook` (signed JSON), `ntfy`, `gotify` or `discord`.
    pub kind: String,
    /// Where it posts (a Discord target's token is kept apart and not shown).
    pub url: String,
    /// The event types it hears.
    pub events: Vec<String>,
    /// Whether a secret is stored (a webhook's signing secret, a preset's token).
    pub has_secret: bool,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// `ok`, `failing` (the last message could not be delivered) or `disabled`.
    pub state: String,
    /// Messages failed in a row.
    pub failures: i64,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// What the last failed message ended with.
    pub last_error: Option<String>,
    /// Unix ms of the last delivered message.
    pub last_delivery_at: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
    /// The signing secret (`whsec_…`): only in the answer that created or rotated it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// The body of every webhook message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct HookPayload {
    /// The event type (`task.completed`, `disk.low`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// When the event happened (RFC 3339).
    pub timestamp: String,
    /// What it is about: a [`HookData`] for task, track, upload and watch events; for system
    /// events `{title, message, ok}` and details.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// `data` of a task, track, upload or watch event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct HookData {
    /// The request (or track) it is about.
    pub task: HookTask,
    /// The watch whose check it was (`watch.new_items`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch: Option<HookWatch>,
    /// The task in the web app, when `notify.public_url` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// A task as a webhook message shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct HookTask {
    /// Task id.
    pub id: String,
    /// `download`, `track`, `check_watch`, …
    pub kind: String,
    /// Final status.
    pub status: String,
    /// What it is, in words.
    pub title: Option<String>,
    /// What was asked for.
    pub source: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// The error's stable code.
    pub error_code: Option<String>,
    /// The placed file (a track).
    pub output_path: Option<String>,
    /// Its children by status (a request).
    pub children: BTreeMap<String, i64>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub finished_at: Option<i64>,
}

/// The watch of a `watch.new_items` message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct HookWatch {
    /// Watch id.
    pub id: String,
    /// Its name.
    pub name: String,
}

/// A configured media server and its last rescan (`GET /integrations`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct IntegrationView {
    /// `navidrome`, `jellyfin` or `plex`.
    pub name: String,
    /// Its address.
    pub url: String,
    /// Whether the credentials it needs are stored.
    pub credentials_set: bool,
    /// The last rescan asked of it.
    pub last_rescan: Option<RescanResult>,
}

/// How a rescan went.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct RescanResult {
    /// Unix ms.
    pub at: i64,
    /// Whether the server accepted it.
    pub ok: bool,
    /// What the server said, or what went wrong.
    pub message: String,
    /// The rescan's ledger task.
    pub task_id: Option<String>,
}
