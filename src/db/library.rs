//! The library index: tracks with their artists and albums, and resumable uploads in
//! progress.

use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use super::{Db, new_id, now_ms};

/// One indexed file.
#[derive(Clone, Debug, Serialize, FromRow, ToSchema)]
pub struct Track {
    /// Stable id.
    pub id: String,
    /// Absolute path of the file.
    pub path: String,
    /// Who added it (`null` for scanned files).
    pub owner_id: Option<String>,
    /// Title tag.
    pub title: Option<String>,
    /// Artist tag (several joined).
    pub artist: Option<String>,
    /// The artist's id in `/library/artists`.
    pub artist_id: Option<String>,
    /// The album's id in `/library/albums`.
    pub album_id: Option<String>,
    /// Album tag.
    pub album: Option<String>,
    /// Album artist tag.
    pub album_artist: Option<String>,
    /// Track number.
    pub track_number: Option<i64>,
    /// Disc number.
    pub disc_number: Option<i64>,
    /// Year.
    pub year: Option<i64>,
    /// First genre.
    pub genre: Option<String>,
    /// `mp3`, `opus`, `flac`, `ogg`, `m4a`, `wav`, …
    pub format: String,
    /// Duration in milliseconds.
    pub duration_ms: Option<i64>,
    /// Size in bytes.
    pub size: i64,
    /// Modification time (Unix ms) when indexed.
    pub mtime: i64,
    /// SHA-256 of the file.
    pub content_hash: String,
    /// SHA-256 of the input it was made from (a download's or upload's bytes).
    pub source_hash: Option<String>,
    /// Provider identity (`podcast:<guid>`, `jamendo:<id>`).
    pub source_id: Option<String>,
    /// ISRC.
    pub isrc: Option<String>,
    /// MusicBrainz recording id.
    pub mb_recording_id: Option<String>,
    /// MusicBrainz release id.
    pub mb_release_id: Option<String>,
    /// Unix ms.
    pub added_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

const COLUMNS: &str = "id, path, owner_id, title, artist, artist_id, album_id, album, \
    album_artist, track_number, disc_number, year, genre, format, duration_ms, size, mtime, \
    content_hash, source_hash, source_id, isrc, mb_recording_id, mb_release_id, added_at, updated_at";

fn key(s: &str) -> String {
    s.trim().to_lowercase()
}

/// The id of the artist named `name`, created if new.
async fn artist_id(db: &Db, name: &str) -> Result<String, sqlx::Error> {
    sqlx::query("INSERT INTO artists (id, name, name_key) VALUES ($1, $2, $3) ON CONFLICT (name_key) DO NOTHING")
        .bind(new_id())
        .bind(name.trim())
        .bind(key(name))
        .execute(&db.pool)
        .await?;
    sqlx::query_scalar("SELECT id FROM artists WHERE name_key = $1")
        .bind(key(name))
        .fetch_one(&db.pool)
        .await
}

/// The id of `title` by `artist`, created if new.
async fn album_id(
    db: &Db,
    title: &str,
    artist: Option<&str>,
    year: Option<i64>,
) -> Result<String, sqlx::Error> {
    let artist = match artist {
        Some(a) => Some(artist_id(db, a).await?),
        None => None,
    };
    let k = format!("{}\u{1f}{}", artist.as_deref().unwrap_or(""), key(title));
    sqlx::query(
        "INSERT INTO albums (id, title, artist_id, album_key, year) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (album_key) DO NOTHING",
    )
    .bind(new_id())
    .bind(title.trim())
    .bind(&artist)
    .bind(&k)
    .bind(year)
    .execute(&db.pool)
    .await?;
    sqlx::query_scalar("SELECT id FROM albums WHERE album_key = $1")
        .bind(&k)
        .fetch_one(&db.pool)
        .await
}

/// Inserts or refreshes the row of `t.path`, linking its artist and album. Returns the row.
pub async fn upsert(db: &Db, t: &Track) -> Result<Track, sqlx::Error> {
    let artist = match t.artist.as_deref().filter(|a| !a.trim().is_empty()) {
        Some(a) => Some(artist_id(db, a).await?),
        None => None,
    };
    let album = match t.album.as_deref().filter(|a| !a.trim().is_empty()) {
        Some(al) => Some(
            album_id(
                db,
                al,
                t.album_artist.as_deref().or(t.artist.as_deref()),
                t.year,
            )
            .await?,
        ),
        None => None,
    };
    let now = now_ms();
    sqlx::query_as::<_, Track>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO tracks (id, path, owner_id, title, artist, artist_id, album_id, album,
            album_artist, track_number, disc_number, year, genre, format, duration_ms, size, mtime,
            content_hash, source_hash, source_id, isrc, mb_recording_id, mb_release_id, added_at,
            updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
            $19, $20, $21, $22, $23, $24, $24)
         ON CONFLICT (path) DO UPDATE SET owner_id = COALESCE(tracks.owner_id, $3), title = $4,
            artist = $5, artist_id = $6, album_id = $7, album = $8, album_artist = $9,
            track_number = $10, disc_number = $11, year = $12, genre = $13, format = $14,
            duration_ms = $15, size = $16, mtime = $17, content_hash = $18,
            source_hash = COALESCE($19, tracks.source_hash), source_id = $20, isrc = $21,
            mb_recording_id = $22, mb_release_id = $23, updated_at = $24
         RETURNING {COLUMNS}"
    )))
    .bind(new_id())
    .bind(&t.path)
    .bind(&t.owner_id)
    .bind(&t.title)
    .bind(&t.artist)
    .bind(&artist)
    .bind(&album)
    .bind(&t.album)
    .bind(&t.album_artist)
    .bind(t.track_number)
    .bind(t.disc_number)
    .bind(t.year)
    .bind(&t.genre)
    .bind(&t.format)
    .bind(t.duration_ms)
    .bind(t.size)
    .bind(t.mtime)
    .bind(&t.content_hash)
    .bind(&t.source_hash)
    .bind(&t.source_id)
    .bind(&t.isrc)
    .bind(&t.mb_recording_id)
    .bind(&t.mb_release_id)
    .bind(now)
    .fetch_one(&db.pool)
    .await
}

/// A track by id.
pub async fn get(db: &Db, id: &str) -> Result<Option<Track>, sqlx::Error> {
    sqlx::query_as::<_, Track>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tracks WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&db.pool)
    .await
}

/// A track by path.
pub async fn by_path(db: &Db, path: &str) -> Result<Option<Track>, sqlx::Error> {
    sqlx::query_as::<_, Track>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tracks WHERE path = $1"
    )))
    .bind(path)
    .fetch_optional(&db.pool)
    .await
}

/// An indexed track that is the same as something about to be added: the same provider
/// identity or ISRC, or the same bytes (the file itself, or the input it was made from) unless
/// both carry provider identities that differ (two tracks of a catalogue can share audio).
pub async fn find_same(
    db: &Db,
    hash: Option<&str>,
    source_id: Option<&str>,
    isrc: Option<&str>,
) -> Result<Option<Track>, sqlx::Error> {
    let source_id = source_id.filter(|v| !v.is_empty());
    let probes = [
        ("source_id", source_id, false),
        ("isrc", isrc, false),
        ("content_hash", hash, true),
        ("source_hash", hash, true),
    ];
    for (column, value, by_bytes) in probes {
        let Some(v) = value.filter(|v| !v.is_empty()) else {
            continue;
        };
        let same_source = if by_bytes && source_id.is_some() {
            " AND (source_id IS NULL OR source_id = $2)"
        } else {
            ""
        };
        let mut q = sqlx::query_as::<_, Track>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM tracks WHERE {column} = $1{same_source} LIMIT 1"
        )))
        .bind(v);
        if !same_source.is_empty() {
            q = q.bind(source_id.unwrap_or_default().to_string());
        }
        if let Some(t) = q.fetch_optional(&db.pool).await? {
            return Ok(Some(t));
        }
    }
    Ok(None)
}

/// Moves a track's row to a new path (its file was moved).
pub async fn set_path(db: &Db, id: &str, path: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tracks SET path = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(path)
        .bind(now_ms())
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Deletes a track's row.
pub async fn delete(db: &Db, id: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM tracks WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Every indexed path under `root` (a directory path ending without `/`), with its size and
/// modification time.
pub async fn under(db: &Db, root: &str) -> Result<Vec<(String, String, i64, i64)>, sqlx::Error> {
    let prefix = format!("{}/", root.trim_end_matches('/'));
    sqlx::query_as("SELECT id, path, size, mtime FROM tracks WHERE substr(path, 1, $2) = $1")
        .bind(&prefix)
        .bind(prefix.len() as i64)
        .fetch_all(&db.pool)
        .await
}

/// Filters of `GET /library/tracks`.
#[derive(Debug, Default)]
pub struct Filter {
    /// Words searched in title, artist and album.
    pub q: Option<String>,
    /// Artist id.
    pub artist_id: Option<String>,
    /// Album id.
    pub album_id: Option<String>,
    /// Genre (case-insensitive).
    pub genre: Option<String>,
    /// Year.
    pub year: Option<i64>,
    /// Format.
    pub format: Option<String>,
}

/// A page of tracks, newest first, after the keyset `after` (added_at, id).
pub async fn list(
    db: &Db,
    f: &Filter,
    after: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<Track>, sqlx::Error> {
    let mut clauses = Vec::new();
    let mut binds: Vec<String> = Vec::new();
    let p = |v: String, binds: &mut Vec<String>| {
        binds.push(v);
        format!("${}", binds.len())
    };
    if let Some(q) = f.q.as_deref().filter(|q| !q.trim().is_empty()) {
        for word in q.split_whitespace().take(8) {
            let pat = format!("%{}%", super::tasks::like_escape(&word.to_lowercase()));
            let n = p(pat, &mut binds);
            clauses.push(format!(
                "(lower(COALESCE(title, '')) LIKE {n} ESCAPE '\\' OR lower(COALESCE(artist, '')) LIKE {n} ESCAPE '\\' \
                 OR lower(COALESCE(album, '')) LIKE {n} ESCAPE '\\')"
            ));
        }
    }
    if let Some(a) = &f.artist_id {
        let n = p(a.clone(), &mut binds);
        clauses.push(format!("artist_id = {n}"));
    }
    if let Some(a) = &f.album_id {
        let n = p(a.clone(), &mut binds);
        clauses.push(format!("album_id = {n}"));
    }
    if let Some(g) = &f.genre {
        let n = p(g.to_lowercase(), &mut binds);
        clauses.push(format!("lower(genre) = {n}"));
    }
    if let Some(fmt) = &f.format {
        let n = p(fmt.to_lowercase(), &mut binds);
        clauses.push(format!("format = {n}"));
    }
    let mut sql = format!("SELECT {COLUMNS} FROM tracks WHERE 1 = 1");
    for c in &clauses {
        sql += " AND ";
        sql += c;
    }
    let year_at = binds.len() + 1;
    if f.year.is_some() {
        sql += &format!(" AND year = ${year_at}");
    }
    let base = binds.len() + usize::from(f.year.is_some());
    if after.is_some() {
        sql += &format!(
            " AND (added_at < ${a} OR (added_at = ${a} AND id < ${b}))",
            a = base + 1,
            b = base + 2
        );
    }
    let lim = base + if after.is_some() { 3 } else { 1 };
    sql += &format!(" ORDER BY added_at DESC, id DESC LIMIT ${lim}");
    let mut q = sqlx::query_as::<_, Track>(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(b);
    }
    if let Some(y) = f.year {
        q = q.bind(y);
    }
    if let Some((at, id)) = after {
        q = q.bind(at).bind(id);
    }
    q.bind(limit).fetch_all(&db.pool).await
}

/// An album's tracks by disc and track number.
pub async fn album_tracks(db: &Db, album_id: &str) -> Result<Vec<Track>, sqlx::Error> {
    sqlx::query_as::<_, Track>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tracks WHERE album_id = $1
         ORDER BY COALESCE(disc_number, 1), COALESCE(track_number, 0), title"
    )))
    .bind(album_id)
    .fetch_all(&db.pool)
    .await
}

/// An artist with how many tracks they have.
#[derive(Clone, Debug, Serialize, FromRow, ToSchema)]
pub struct Artist {
    /// Stable id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Tracks indexed.
    pub tracks: i64,
}

/// Artists with at least one track, by name, after `after` (a name key).
pub async fn artists(db: &Db, after: Option<&str>, limit: i64) -> Result<Vec<Artist>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.id, a.name, COUNT(t.id) AS tracks FROM artists a JOIN tracks t ON t.artist_id = a.id
         WHERE a.name_key > $1 GROUP BY a.id, a.name, a.name_key ORDER BY a.name_key LIMIT $2",
    )
    .bind(after.unwrap_or(""))
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

/// An album with its artist and track count.
#[derive(Clone, Debug, Serialize, FromRow, ToSchema)]
pub struct Album {
    /// Stable id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Album artist's id.
    pub artist_id: Option<String>,
    /// Album artist's name.
    pub artist: Option<String>,
    /// Year.
    pub year: Option<i64>,
    /// Tracks indexed.
    pub tracks: i64,
}

/// Albums with at least one track, by title, after `after` (the album key), optionally of
/// one artist.
pub async fn albums(
    db: &Db,
    artist: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<(Album, String)>, sqlx::Error> {
    let artist_clause = if artist.is_some() {
        "AND al.artist_id = $3"
    } else {
        ""
    };
    let sql = format!(
        "SELECT al.id, al.title, al.artist_id, ar.name AS artist, al.year, COUNT(t.id) AS tracks,
            lower(al.title) || '|' || al.id AS sort_key
         FROM albums al JOIN tracks t ON t.album_id = al.id LEFT JOIN artists ar ON ar.id = al.artist_id
         WHERE lower(al.title) || '|' || al.id > $1 {artist_clause}
         GROUP BY al.id, al.title, al.artist_id, ar.name, al.year
         ORDER BY sort_key LIMIT $2"
    );
    let mut q = sqlx::query_as::<_, AlbumRow>(sqlx::AssertSqlSafe(sql))
        .bind(after.unwrap_or(""))
        .bind(limit);
    if let Some(a) = artist {
        q = q.bind(a.to_string());
    }
    Ok(q.fetch_all(&db.pool)
        .await?
        .into_iter()
        .map(|r| {
            (
                Album {
                    id: r.id,
                    title: r.title,
                    artist_id: r.artist_id,
                    artist: r.artist,
                    year: r.year,
                    tracks: r.tracks,
                },
                r.sort_key,
            )
        })
        .collect())
}

#[derive(FromRow)]
struct AlbumRow {
    id: String,
    title: String,
    artist_id: Option<String>,
    artist: Option<String>,
    year: Option<i64>,
    tracks: i64,
    sort_key: String,
}

/// One album.
pub async fn album(db: &Db, id: &str) -> Result<Option<Album>, sqlx::Error> {
    sqlx::query_as(
        "SELECT al.id, al.title, al.artist_id, ar.name AS artist, al.year,
            (SELECT COUNT(*) FROM tracks t WHERE t.album_id = al.id) AS tracks
         FROM albums al LEFT JOIN artists ar ON ar.id = al.artist_id WHERE al.id = $1",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await
}

/// Bytes a user has in the library and in unfinished uploads.
pub async fn used_bytes(db: &Db, owner: &str) -> Result<i64, sqlx::Error> {
    let tracks: Option<i64> =
        sqlx::query_scalar("SELECT CAST(SUM(size) AS BIGINT) FROM tracks WHERE owner_id = $1")
            .bind(owner)
            .fetch_one(&db.pool)
            .await?;
    let uploads: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(length) AS BIGINT) FROM uploads WHERE owner_id = $1 AND task_id IS NULL",
    )
    .bind(owner)
    .fetch_one(&db.pool)
    .await?;
    Ok(tracks.unwrap_or(0) + uploads.unwrap_or(0))
}

/// A resumable upload.
#[derive(Clone, Debug, FromRow)]
pub struct Upload {
    /// Id (the last segment of its URL).
    pub id: String,
    /// Its user.
    pub owner_id: String,
    /// Total bytes announced.
    pub length: i64,
    /// Bytes received.
    pub upload_offset: i64,
    /// tus metadata (JSON object of strings).
    pub metadata: String,
    /// When it is removed if unfinished (Unix ms).
    pub expires_at: i64,
    /// The task processing it, once complete.
    pub task_id: Option<String>,
}

/// Creates an upload.
pub async fn create_upload(
    db: &Db,
    owner: &str,
    length: i64,
    metadata: &str,
    expires_at: i64,
) -> Result<Upload, sqlx::Error> {
    let now = now_ms();
    sqlx::query_as(
        "INSERT INTO uploads (id, owner_id, length, metadata, expires_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)
         RETURNING id, owner_id, length, upload_offset, metadata, expires_at, task_id",
    )
    .bind(new_id())
    .bind(owner)
    .bind(length)
    .bind(metadata)
    .bind(expires_at)
    .bind(now)
    .fetch_one(&db.pool)
    .await
}

/// An upload by id.
pub async fn upload(db: &Db, id: &str) -> Result<Option<Upload>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, owner_id, length, upload_offset, metadata, expires_at, task_id FROM uploads WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await
}

/// Records bytes received (only forward, from `from`); returns whether the row matched.
pub async fn advance_upload(
    db: &Db,
    id: &str,
    from: i64,
    to: i64,
    expires_at: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE uploads SET upload_offset = $3, expires_at = $4, updated_at = $5
         WHERE id = $1 AND upload_offset = $2",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(expires_at)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Links a complete upload to the task that processes it.
pub async fn finish_upload(db: &Db, id: &str, task_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE uploads SET task_id = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(task_id)
        .bind(now_ms())
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Deletes an upload's row.
pub async fn delete_upload(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM uploads WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Uploads past their expiry (unfinished ones, and the records of finished ones).
pub async fn expired_uploads(db: &Db, now: i64) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM uploads WHERE expires_at < $1 LIMIT 1000")
        .bind(now)
        .fetch_all(&db.pool)
        .await
}
