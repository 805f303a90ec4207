-- Settings changed at run time (PUT /config), shared by every process on this database.
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Children of a large request wait in the ledger, unqueued, until capacity frees
-- (held = 1); the queue only ever holds a bounded window of them.
ALTER TABLE tasks ADD COLUMN held BIGINT NOT NULL DEFAULT 0;
CREATE INDEX tasks_parent_held ON tasks(parent_id, held);
CREATE INDEX tasks_finished ON tasks(owner_id, finished_at);
