//! `match_choices`: the audio a person chose for a catalog track (`provider:id`), kept as the
//! candidate's JSON, so their later downloads and watch checks of it use the same recording.

use super::{Db, now_ms};

/// The choice `owner` made for `catalog_key`, as JSON.
pub async fn get(db: &Db, owner: &str, catalog_key: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT candidate FROM match_choices WHERE owner_id = $1 AND catalog_key = $2",
    )
    .bind(owner)
    .bind(catalog_key)
    .fetch_optional(&db.pool)
    .await
}

/// Records (or replaces) `owner`'s choice for `catalog_key`.
pub async fn set(
    db: &Db,
    owner: &str,
    catalog_key: &str,
    candidate: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO match_choices (owner_id, catalog_key, candidate, chosen_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (owner_id, catalog_key) DO UPDATE SET candidate = $3, chosen_at = $4",
    )
    .bind(owner)
    .bind(catalog_key)
    .bind(candidate)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(())
}
