-- The library index: every file musicd placed, and every file `musicd scan` found.
CREATE TABLE artists (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE
);

CREATE TABLE albums (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    artist_id TEXT REFERENCES artists(id) ON DELETE SET NULL,
    album_key TEXT NOT NULL UNIQUE,
    year BIGINT
);
CREATE INDEX albums_artist ON albums(artist_id);

CREATE TABLE tracks (
    id TEXT PRIMARY KEY,
    -- Absolute path of the file.
    path TEXT NOT NULL UNIQUE,
    owner_id TEXT REFERENCES users(id) ON DELETE SET NULL,
    title TEXT,
    artist TEXT,
    artist_id TEXT REFERENCES artists(id) ON DELETE SET NULL,
    album_id TEXT REFERENCES albums(id) ON DELETE SET NULL,
    album TEXT,
    album_artist TEXT,
    track_number BIGINT,
    disc_number BIGINT,
    year BIGINT,
    genre TEXT,
    format TEXT NOT NULL,
    duration_ms BIGINT,
    size BIGINT NOT NULL,
    mtime BIGINT NOT NULL,
    -- Identity: SHA-256 of the file, and of the input it was made from (a download's bytes).
    content_hash TEXT NOT NULL,
    source_hash TEXT,
    source_id TEXT,
    isrc TEXT,
    mb_recording_id TEXT,
    mb_release_id TEXT,
    added_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX tracks_content_hash ON tracks(content_hash);
CREATE INDEX tracks_source_hash ON tracks(source_hash);
CREATE INDEX tracks_source_id ON tracks(source_id);
CREATE INDEX tracks_isrc ON tracks(isrc);
CREATE INDEX tracks_mb_recording ON tracks(mb_recording_id);
CREATE INDEX tracks_album ON tracks(album_id, disc_number, track_number);
CREATE INDEX tracks_artist ON tracks(artist_id);
CREATE INDEX tracks_added ON tracks(added_at, id);

-- Resumable uploads (tus) while they are being written.
CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    length BIGINT NOT NULL,
    upload_offset BIGINT NOT NULL DEFAULT 0,
    metadata TEXT NOT NULL DEFAULT '{}',
    expires_at BIGINT NOT NULL,
    task_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX uploads_owner ON uploads(owner_id);
CREATE INDEX uploads_expires ON uploads(expires_at);
