-- Watches: a playlist, artist or feed kept in sync on a cron schedule.
CREATE TABLE watches (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    url TEXT,
    provider TEXT NOT NULL,
    kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    title TEXT,
    -- NULL: the watch config's default schedule.
    schedule TEXT,
    enabled BIGINT NOT NULL DEFAULT 1,
    download_existing BIGINT NOT NULL DEFAULT 0,
    release_types TEXT,
    on_removed TEXT NOT NULL DEFAULT 'keep',
    format TEXT,
    quality TEXT,
    -- Change detection: HTTP validators, or a hash of the item ids in order.
    etag TEXT,
    last_modified TEXT,
    content_hash TEXT,
    -- 1 once the first check recorded what was there.
    baseline BIGINT NOT NULL DEFAULT 0,
    -- The next scheduled check; claimed with compare-and-set so one process runs each.
    next_check_at BIGINT,
    last_check_at BIGINT,
    last_result TEXT,
    last_error TEXT,
    last_task_id TEXT,
    playlist_path TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX watches_owner ON watches(owner_id, created_at);
CREATE INDEX watches_due ON watches(enabled, next_check_at);

-- What a watch has seen, by the provider's stable identity, in source order.
CREATE TABLE watch_items (
    watch_id TEXT NOT NULL REFERENCES watches(id) ON DELETE CASCADE,
    item_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    present BIGINT NOT NULL DEFAULT 1,
    track TEXT NOT NULL,
    task_id TEXT,
    first_seen BIGINT NOT NULL,
    removed_at BIGINT,
    PRIMARY KEY (watch_id, item_id)
);
