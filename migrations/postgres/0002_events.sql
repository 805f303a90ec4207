-- Single-use tickets that let a browser's EventSource (which cannot send headers) open
-- the event stream. Stored hashed; valid for a minute.
CREATE TABLE sse_tickets (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sse_tickets_expiry ON sse_tickets(expires_at);
