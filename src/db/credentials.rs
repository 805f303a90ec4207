//! Stored provider credentials. Values are sealed by `crate::credentials::Vault` before they
//! get here; this table never sees plaintext.

use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use super::{Db, now_ms};

/// A credential as listed: never its value.
#[derive(Clone, Debug, Serialize, FromRow, ToSchema)]
pub struct Listed {
    /// Provider it is for.
    pub provider: String,
    /// Its name within the provider (e.g. `client_id`).
    pub name: String,
    /// The masked value (last characters only).
    pub masked: String,
    /// Who set it.
    pub updated_by: Option<String>,
    /// Unix milliseconds.
    pub updated_at: i64,
}

/// Stores (or replaces) a sealed value with its mask.
pub async fn put(
    db: &Db,
    provider: &str,
    name: &str,
    sealed: &str,
    masked: &str,
    by: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO credentials (provider, name, sealed, hint, updated_by, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (provider, name) DO UPDATE SET sealed = $3, hint = $4, updated_by = $5, updated_at = $6",
    )
    .bind(provider)
    .bind(name)
    .bind(sealed)
    .bind(masked)
    .bind(by)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The sealed value, if set.
pub async fn sealed(db: &Db, provider: &str, name: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT sealed FROM credentials WHERE provider = $1 AND name = $2")
        .bind(provider)
        .bind(name)
        .fetch_optional(&db.pool)
        .await
}

/// One credential as listed.
pub async fn get(db: &Db, provider: &str, name: &str) -> Result<Option<Listed>, sqlx::Error> {
    sqlx::query_as(
        "SELECT provider, name, hint AS masked, updated_by, updated_at FROM credentials
         WHERE provider = $1 AND name = $2",
    )
    .bind(provider)
    .bind(name)
    .fetch_optional(&db.pool)
    .await
}

/// Every credential as listed.
pub async fn list(db: &Db) -> Result<Vec<Listed>, sqlx::Error> {
    sqlx::query_as(
        "SELECT provider, name, hint AS masked, updated_by, updated_at FROM credentials
         ORDER BY provider, name",
    )
    .fetch_all(&db.pool)
    .await
}

/// Removes a credential; `false` when there was none.
pub async fn delete(db: &Db, provider: &str, name: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM credentials WHERE provider = $1 AND name = $2")
        .bind(provider)
        .bind(name)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected() > 0)
}
