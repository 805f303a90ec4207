//! The `webhooks` table (a user's hooks and notification targets, with their health), the
//! `webhook_attempts` log, and `integration_runs` (the last rescan of each media server).

use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use super::{Db, new_id, now_ms};

/// A hook as stored. `secret` is sealed and never leaves the server.
#[derive(Clone, Debug, FromRow)]
pub struct Hook {
    /// Stable id.
    pub id: String,
    /// Whose it is.
    pub owner_id: String,
    /// A label.
    pub name: String,
    /// `webhook`, `ntfy`, `gotify` or `discord`.
    pub kind: String,
    /// Where it posts (without the secret part).
    pub url: String,
    /// The event types it hears, as a JSON array.
    pub events: String,
    /// The sealed secret: a webhook's signing secret, a preset's token.
    pub secret: Option<String>,
    /// 1 while deliveries are made.
    pub enabled: i64,
    /// `ok`, `failing` (the last delivery failed) or `disabled`.
    pub state: String,
    /// Deliveries failed in a row.
    pub failures: i64,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// What the last failed delivery said.
    pub last_error: Option<String>,
    /// Unix ms of the last delivered message.
    pub last_delivery_at: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

impl Hook {
    /// The event types it hears.
    pub fn event_list(&self) -> Vec<String> {
        serde_json::from_str(&self.events).unwrap_or_default()
    }
}

const COLUMNS: &str = "id, owner_id, name, kind, url, events, secret, enabled, state, failures, \
    disabled_reason, last_error, last_delivery_at, created_at, updated_at";

/// What a new hook is made of.
#[derive(Debug)]
pub struct NewHook<'a> {
    /// Its id (the vault seals its secret under it).
    pub id: &'a str,
    /// Owner.
    pub owner_id: &'a str,
    /// Label.
    pub name: &'a str,
    /// Kind.
    pub kind: &'a str,
    /// Target.
    pub url: &'a str,
    /// JSON array of event types.
    pub events: &'a str,
    /// Sealed secret.
    pub secret: Option<&'a str>,
}

/// Stores a new hook.
pub async fn create(db: &Db, h: &NewHook<'_>) -> Result<Hook, sqlx::Error> {
    let now = now_ms();
    sqlx::query_as::<_, Hook>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhooks (id, owner_id, name, kind, url, events, secret, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING {COLUMNS}"
    )))
    .bind(h.id)
    .bind(h.owner_id)
    .bind(h.name)
    .bind(h.kind)
    .bind(h.url)
    .bind(h.events)
    .bind(h.secret)
    .bind(now)
    .fetch_one(&db.pool)
    .await
}

/// One hook by id.
pub async fn get(db: &Db, id: &str) -> Result<Option<Hook>, sqlx::Error> {
    sqlx::query_as::<_, Hook>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM webhooks WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&db.pool)
    .await
}

/// A user's hooks, oldest first.
pub async fn list(db: &Db, owner_id: &str) -> Result<Vec<Hook>, sqlx::Error> {
    sqlx::query_as::<_, Hook>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM webhooks WHERE owner_id = $1 ORDER BY created_at, id"
    )))
    .bind(owner_id)
    .fetch_all(&db.pool)
    .await
}

/// Enabled hooks that may hear an event: the owner's, or with `owner_id` `None` (a system
/// event) those of admins. The caller filters by event type.
pub async fn listeners(db: &Db, owner_id: Option<&str>) -> Result<Vec<Hook>, sqlx::Error> {
    match owner_id {
        Some(o) => {
            sqlx::query_as::<_, Hook>(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM webhooks WHERE enabled = 1 AND owner_id = $1"
            )))
            .bind(o)
            .fetch_all(&db.pool)
            .await
        }
        None => {
            sqlx::query_as::<_, Hook>(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM webhooks WHERE enabled = 1
               AND owner_id IN (SELECT id FROM users WHERE role = 'admin')"
            )))
            .fetch_all(&db.pool)
            .await
        }
    }
}

/// What `PATCH` may change; `None` keeps the stored value.
#[derive(Debug, Default)]
pub struct HookChange {
    /// Label.
    pub name: Option<String>,
    /// Target.
    pub url: Option<String>,
    /// JSON array of event types.
    pub events: Option<String>,
    /// Sealed secret.
    pub secret: Option<String>,
    /// Turn on (which also clears the failure count and the reason) or off.
    pub enabled: Option<bool>,
}

/// Applies a change; `None` when the hook is gone.
pub async fn update(db: &Db, id: &str, c: &HookChange) -> Result<Option<Hook>, sqlx::Error> {
    let enabled = c.enabled.map(i64::from);
    sqlx::query_as::<_, Hook>(sqlx::AssertSqlSafe(format!(
        "UPDATE webhooks SET name = COALESCE($2, name), url = COALESCE($3, url),
            events = COALESCE($4, events), secret = COALESCE($5, secret),
            enabled = COALESCE($6, enabled),
            state = CASE WHEN $6 = 1 THEN 'ok' WHEN $6 = 0 THEN 'disabled' ELSE state END,
            failures = CASE WHEN $6 = 1 THEN 0 ELSE failures END,
            disabled_reason = CASE WHEN $6 = 1 THEN NULL
                WHEN $6 = 0 THEN 'turned off by its owner' ELSE disabled_reason END,
            updated_at = $7
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(&c.name)
    .bind(&c.url)
    .bind(&c.events)
    .bind(&c.secret)
    .bind(enabled)
    .bind(now_ms())
    .fetch_optional(&db.pool)
    .await
}

/// Deletes a hook (its attempts go with it).
pub async fn delete(db: &Db, id: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM webhooks WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// A delivered message: the hook is healthy again.
pub async fn delivered(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    let now = now_ms();
    sqlx::query(
        "UPDATE webhooks SET failures = 0, last_delivery_at = $2, updated_at = $2,
            state = CASE WHEN enabled = 1 THEN 'ok' ELSE state END
         WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// A message that could not be delivered after all its attempts: the hook is `failing`, and
/// `disabled` with a reason once `disable_after` messages in a row failed. Returns the hook
/// as it is now.
pub async fn failed(
    db: &Db,
    id: &str,
    error: &str,
    disable_after: i64,
) -> Result<Option<Hook>, sqlx::Error> {
    let reason = format!("{disable_after} deliveries in a row failed; the last: {error}");
    sqlx::query_as::<_, Hook>(sqlx::AssertSqlSafe(format!(
        "UPDATE webhooks SET failures = failures + 1, last_error = $2, updated_at = $5,
            enabled = CASE WHEN failures + 1 >= $3 THEN 0 ELSE enabled END,
            state = CASE WHEN failures + 1 >= $3 THEN 'disabled' ELSE 'failing' END,
            disabled_reason = CASE WHEN failures + 1 >= $3 THEN $4 ELSE disabled_reason END
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(error)
    .bind(disable_after)
    .bind(reason)
    .bind(now_ms())
    .fetch_optional(&db.pool)
    .await
}

/// One attempt to deliver a message, as listed by `GET /webhooks/{id}/deliveries`.
#[derive(Clone, Debug, Serialize, FromRow, ToSchema)]
pub struct Attempt {
    /// Stable id of the attempt.
    pub id: String,
    /// The message (`webhook-id`); the same on every attempt of one message.
    pub message_id: String,
    /// Its event type.
    pub event: String,
    /// The ledger task carrying the delivery.
    pub task_id: Option<String>,
    /// 1 for the first attempt.
    pub attempt: i64,
    /// Unix ms when it was sent.
    pub at: i64,
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<i64>,
    /// Time to the answer (or the failure).
    pub latency_ms: i64,
    /// `delivered`, `retrying` (another attempt follows) or `failed` (the last one).
    pub outcome: String,
    /// What went wrong.
    pub error: Option<String>,
}

/// Attempts kept per hook; older ones are dropped.
const KEEP_ATTEMPTS: i64 = 500;

/// Records an attempt, dropping the hook's oldest beyond the last `KEEP_ATTEMPTS`.
pub async fn record_attempt(db: &Db, hook_id: &str, a: &Attempt) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhook_attempts (id, webhook_id, message_id, event, task_id, attempt, at,
            status_code, latency_ms, outcome, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(new_id())
    .bind(hook_id)
    .bind(&a.message_id)
    .bind(&a.event)
    .bind(&a.task_id)
    .bind(a.attempt)
    .bind(a.at)
    .bind(a.status_code)
    .bind(a.latency_ms)
    .bind(&a.outcome)
    .bind(&a.error)
    .execute(&db.pool)
    .await?;
    if rand::random::<u8>() < 8 {
        sqlx::query(
            "DELETE FROM webhook_attempts WHERE webhook_id = $1 AND id NOT IN (
                SELECT id FROM webhook_attempts WHERE webhook_id = $1 ORDER BY at DESC, id DESC LIMIT $2)",
        )
        .bind(hook_id)
        .bind(KEEP_ATTEMPTS)
        .execute(&db.pool)
        .await?;
    }
    Ok(())
}

/// A hook's attempts, newest first.
pub async fn attempts(db: &Db, hook_id: &str, limit: i64) -> Result<Vec<Attempt>, sqlx::Error> {
    sqlx::query_as::<_, Attempt>(
        "SELECT id, message_id, event, task_id, attempt, at, status_code, latency_ms, outcome, error
         FROM webhook_attempts WHERE webhook_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
    )
    .bind(hook_id)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

/// The last rescan asked of a media server.
#[derive(Clone, Debug, Serialize, FromRow, ToSchema)]
pub struct IntegrationRun {
    /// `navidrome`, `jellyfin` or `plex`.
    pub name: String,
    /// Unix ms.
    pub at: i64,
    /// 1 when the server accepted it.
    pub ok: i64,
    /// What the server said, or what went wrong.
    pub message: String,
    /// The rescan's ledger task.
    pub task_id: Option<String>,
}

/// Records a rescan's result.
pub async fn record_run(db: &Db, r: &IntegrationRun) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO integration_runs (name, at, ok, message, task_id) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (name) DO UPDATE SET at = $2, ok = $3, message = $4, task_id = $5",
    )
    .bind(&r.name)
    .bind(r.at)
    .bind(r.ok)
    .bind(&r.message)
    .bind(&r.task_id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Every recorded rescan.
pub async fn runs(db: &Db) -> Result<Vec<IntegrationRun>, sqlx::Error> {
    sqlx::query_as::<_, IntegrationRun>(
        "SELECT name, at, ok, message, task_id FROM integration_runs ORDER BY name",
    )
    .fetch_all(&db.pool)
    .await
}
