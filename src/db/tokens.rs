//! The `refresh_tokens` table: rotating refresh tokens stored as SHA-256 hashes, grouped in
//! families so that reuse of a rotated token revokes the whole family.

use super::{Db, new_id, now_ms};

/// What a presented refresh token turned out to be.
#[derive(Debug)]
pub enum Redeemed {
    /// Valid: it is now revoked, and `user_id`/`family` continue in its replacement.
    Valid {
        /// Owner of the token.
        user_id: String,
        /// Family the replacement joins.
        family: String,
    },
    /// Already used or revoked: the family has now been revoked as well.
    Reused,
    /// Unknown or expired.
    Invalid,
}

/// Stores a new token hash in a family.
pub async fn insert(
    db: &Db,
    user_id: &str,
    family: &str,
    token_hash: &str,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, user_id, family, token_hash, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(new_id())
    .bind(user_id)
    .bind(family)
    .bind(token_hash)
    .bind(expires_at)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Revokes a token for rotation, atomically: of two concurrent redemptions only one wins,
/// and the other is treated as reuse.
pub async fn redeem(db: &Db, token_hash: &str) -> Result<Redeemed, sqlx::Error> {
    let now = now_ms();
    let won: Option<(String, String)> = sqlx::query_as(
        "UPDATE refresh_tokens SET revoked_at = $2
         WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2
         RETURNING user_id, family",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(&db.pool)
    .await?;
    if let Some((user_id, family)) = won {
        return Ok(Redeemed::Valid { user_id, family });
    }
    let known: Option<(String, Option<i64>)> =
        sqlx::query_as("SELECT family, revoked_at FROM refresh_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&db.pool)
            .await?;
    match known {
        Some((family, Some(_))) => {
            revoke_family(db, &family).await?;
            Ok(Redeemed::Reused)
        }
        _ => Ok(Redeemed::Invalid),
    }
}

/// Revokes every token of a family.
pub async fn revoke_family(db: &Db, family: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL",
    )
    .bind(family)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The family of a refresh token if it belongs to `user_id`.
pub async fn family_of(
    db: &Db,
    token_hash: &str,
    user_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT family FROM refresh_tokens WHERE token_hash = $1 AND user_id = $2")
        .bind(token_hash)
        .bind(user_id)
        .fetch_optional(&db.pool)
        .await
}

/// Whether a refresh token is known at all (of any account).
pub async fn is_known(db: &Db, token_hash: &str) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM refresh_tokens WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_one(&db.pool)
        .await?;
    Ok(n > 0)
}

/// Whether a login (family) of `user_id` still has a usable refresh token: its access tokens
/// are valid only while it does.
pub async fn session_live(db: &Db, user_id: &str, family: &str) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM refresh_tokens
         WHERE family = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3",
    )
    .bind(family)
    .bind(user_id)
    .bind(now_ms())
    .fetch_one(&db.pool)
    .await?;
    Ok(n > 0)
}

/// Revokes every login of a user but `keep` (a password change keeps the caller's).
pub async fn revoke_user_except(db: &Db, user_id: &str, keep: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $3
         WHERE user_id = $1 AND family <> $2 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .bind(keep)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Revokes every refresh token of a user (role change, deletion, password change).
pub async fn revoke_user(db: &Db, user_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Stores a single-use event-stream ticket.
pub async fn insert_ticket(
    db: &Db,
    user_id: &str,
    token_hash: &str,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sse_tickets WHERE expires_at < $1")
        .bind(now_ms())
        .execute(&db.pool)
        .await?;
    sqlx::query("INSERT INTO sse_tickets (token_hash, user_id, expires_at) VALUES ($1, $2, $3)")
        .bind(token_hash)
        .bind(user_id)
        .bind(expires_at)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Consumes a ticket: the user id when it was valid, and it is gone either way.
pub async fn redeem_ticket(db: &Db, token_hash: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "DELETE FROM sse_tickets WHERE token_hash = $1 AND expires_at > $2 RETURNING user_id",
    )
    .bind(token_hash)
    .bind(now_ms())
    .fetch_optional(&db.pool)
    .await
}
