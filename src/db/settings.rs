//! Settings changed at run time (`PUT /config`), shared through the database by every
//! process that uses it.

use super::{Db, now_ms};

/// A runtime setting (JSON text), if set.
pub async fn get(db: &Db, key: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
        .bind(key)
        .fetch_optional(&db.pool)
        .await
}

/// Stores a runtime setting.
pub async fn put(db: &Db, key: &str, value: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (key) DO UPDATE SET value = $2, updated_at = $3",
    )
    .bind(key)
    .bind(value)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The settings key the watch settings are stored under.
const WATCH_KEY: &str = "watch";

/// The stored watch settings, or the configuration's.
pub async fn load_watch(
    db: &Db,
    config: &crate::config::Config,
) -> Result<crate::config::WatchConfig, sqlx::Error> {
    Ok(get(db, WATCH_KEY)
        .await?
        .and_then(|s| serde_json::from_str::<crate::config::WatchConfig>(&s).ok())
        .filter(|w| w.validate().is_ok())
        .unwrap_or_else(|| config.watch.clone()))
}

/// Stores the watch settings for every process.
pub async fn store_watch(db: &Db, w: &crate::config::WatchConfig) -> Result<(), sqlx::Error> {
    put(db, WATCH_KEY, &serde_json::to_string(w).unwrap_or_default()).await
}
