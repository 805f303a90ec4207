//! The `users` table.

use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use super::{Db, new_id, now_ms};

/// An account as the API shows it (never the password hash).
#[derive(Clone, Debug, Serialize, FromRow, ToSchema)]
pub struct User {
    /// Stable id.
    pub id: String,
    /// Login name.
    pub username: String,
    /// `admin` or `user`.
    pub role: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl User {
    /// Whether this account may use admin routes.
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }
}

const COLUMNS: &str = "id, username, role, created_at";

/// Inserts a user; a taken username is `Ok(None)`.
pub async fn create(
    db: &Db,
    username: &str,
    password_hash: &str,
    role: &str,
) -> Result<Option<User>, sqlx::Error> {
    let now = now_ms();
    sqlx::query_as::<_, User>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO users (id, username, password_hash, role, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (username) DO NOTHING RETURNING {COLUMNS}"
    )))
    .bind(new_id())
    .bind(username)
    .bind(password_hash)
    .bind(role)
    .bind(now)
    .fetch_optional(&db.pool)
    .await
}

/// Looks a user up by id.
pub async fn by_id(db: &Db, id: &str) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as::<_, User>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&db.pool)
    .await
}

/// The user and password hash for a login name.
pub async fn credentials(db: &Db, username: &str) -> Result<Option<(User, String)>, sqlx::Error> {
    let row: Option<(String, String, String, i64, String)> = sqlx::query_as(
        "SELECT id, username, role, created_at, password_hash FROM users WHERE username = $1",
    )
    .bind(username)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(|(id, username, role, created_at, hash)| {
        (
            User {
                id,
                username,
                role,
                created_at,
            },
            hash,
        )
    }))
}

/// All users, oldest first.
pub async fn list(db: &Db, limit: i64, offset: i64) -> Result<Vec<User>, sqlx::Error> {
    sqlx::query_as::<_, User>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users ORDER BY created_at, id LIMIT $1 OFFSET $2"
    )))
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await
}

/// Number of accounts with a role.
pub async fn count_role(db: &Db, role: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = $1")
        .bind(role)
        .fetch_one(&db.pool)
        .await
}

/// Changes a role; `None` when there is no such user.
pub async fn set_role(db: &Db, id: &str, role: &str) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as::<_, User>(sqlx::AssertSqlSafe(format!(
        "UPDATE users SET role = $2, updated_at = $3 WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(role)
    .bind(now_ms())
    .fetch_optional(&db.pool)
    .await
}

/// Replaces a password hash.
pub async fn set_password(db: &Db, id: &str, password_hash: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(password_hash)
        .bind(now_ms())
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Deletes a user (tokens and keys go with it).
pub async fn delete(db: &Db, id: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected() > 0)
}
