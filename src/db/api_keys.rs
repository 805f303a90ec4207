//! The `api_keys` table: keys for scripts, stored as SHA-256 hashes with their scopes.

use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use super::{Db, new_id, now_ms};

/// An API key as listed (never the key itself).
#[derive(Clone, Debug, Serialize, FromRow, ToSchema)]
pub struct ApiKey {
    /// Stable id, used to delete it.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Label given at creation.
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    /// Comma-separated scopes: `read`, `write`, `admin`.
    pub scopes: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds of the last authenticated request, if any.
    pub last_used_at: Option<i64>,
}

const COLUMNS: &str = "id, user_id, name, prefix, scopes, created_at, last_used_at";

/// Stores a new key.
pub async fn create(
    db: &Db,
    user_id: &str,
    name: &str,
    prefix: &str,
    key_hash: &str,
    scopes: &str,
) -> Result<ApiKey, sqlx::Error> {
    sqlx::query_as::<_, ApiKey>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, scopes, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    )))
    .bind(new_id())
    .bind(user_id)
    .bind(name)
    .bind(prefix)
    .bind(key_hash)
    .bind(scopes)
    .bind(now_ms())
    .fetch_one(&db.pool)
    .await
}

/// Finds the key with this hash and marks it used.
pub async fn authenticate(db: &Db, key_hash: &str) -> Result<Option<ApiKey>, sqlx::Error> {
    sqlx::query_as::<_, ApiKey>(sqlx::AssertSqlSafe(format!(
        "UPDATE api_keys SET last_used_at = $2 WHERE key_hash = $1 RETURNING {COLUMNS}"
    )))
    .bind(key_hash)
    .bind(now_ms())
    .fetch_optional(&db.pool)
    .await
}

/// A user's keys, newest first.
pub async fn list(db: &Db, user_id: &str) -> Result<Vec<ApiKey>, sqlx::Error> {
    sqlx::query_as::<_, ApiKey>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY created_at DESC, id"
    )))
    .bind(user_id)
    .fetch_all(&db.pool)
    .await
}

/// Deletes one of a user's keys.
pub async fn delete(db: &Db, user_id: &str, id: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM api_keys WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected() > 0)
}
