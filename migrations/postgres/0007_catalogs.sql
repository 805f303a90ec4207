-- What a task is, in words (a track's "Artist – Title", a release's title), from the start:
-- history search and progress name the song, not a URL.
ALTER TABLE tasks ADD COLUMN title TEXT;

-- The audio a person chose for a catalog track (POST /tasks/{id}/match), used by their later
-- downloads and watch checks of the same track instead of a search.
CREATE TABLE match_choices (
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    catalog_key TEXT NOT NULL,
    candidate TEXT NOT NULL,
    chosen_at BIGINT NOT NULL,
    PRIMARY KEY (owner_id, catalog_key)
);

-- A watch's item a person chose not to download (PATCH /watches/{id}/items/{item}).
ALTER TABLE watch_items ADD COLUMN ignored BIGINT NOT NULL DEFAULT 0;
