//! History over ended tasks: statistics and cleanup.

use super::*;

/// Counts for `GET /history/stats`.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Stats {
    /// Top-level requests by status.
    pub requests: std::collections::BTreeMap<String, i64>,
    /// Tracks (children and single tracks) by status.
    pub tracks: std::collections::BTreeMap<String, i64>,
    /// Bytes fetched by finished tracks.
    pub bytes_downloaded: i64,
    /// Tracks finished in the last 24 hours.
    pub tracks_last_24h: i64,
}

/// History statistics for one owner (or everyone).
pub async fn stats(db: &Db, owner_id: Option<&str>) -> Result<Stats, sqlx::Error> {
    let owner = if owner_id.is_some() {
        "AND owner_id = $2"
    } else {
        "AND $2 IS NULL"
    };
    let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT CASE WHEN kind = 'download' THEN 'request' ELSE 'track' END, status, COUNT(*),
            COALESCE(SUM(bytes_done), 0),
            COALESCE(SUM(CASE WHEN finished_at > $1 THEN 1 ELSE 0 END), 0)
         FROM tasks WHERE kind IN ('download', 'track') {owner} GROUP BY 1, 2"
    )))
    .bind(now_ms() - 86_400_000)
    .bind(owner_id)
    .fetch_all(&db.pool)
    .await?;
    let mut s = Stats::default();
    for (what, st, n, bytes, recent) in rows {
        if what == "request" {
            s.requests.insert(st, n);
        } else {
            if st == status::DONE {
                s.bytes_downloaded += bytes;
            }
            if matches!(
                st.as_str(),
                "done" | "failed" | "skipped" | "cancelled" | "needs_review"
            ) {
                s.tracks_last_24h += recent;
            }
            s.tracks.insert(st, n);
        }
    }
    Ok(s)
}

/// Deletes finished top-level tasks (with their children) that ended before `before` (Unix
/// ms). Returns how many requests were removed.
pub async fn cleanup(db: &Db, owner_id: Option<&str>, before: i64) -> Result<u64, sqlx::Error> {
    let owner = if owner_id.is_some() {
        "AND owner_id = $2"
    } else {
        "AND $2 IS NULL"
    };
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM tasks WHERE parent_id IS NULL AND finished_at < $1 {owner}
            AND status NOT IN ('queued', 'running', 'processing')
            AND NOT EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id = tasks.id
                AND c.status IN ('queued', 'running', 'processing'))"
    )))
    .bind(before)
    .bind(owner_id)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected())
}
