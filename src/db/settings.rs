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
