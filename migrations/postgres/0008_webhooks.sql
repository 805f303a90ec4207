-- Webhooks and push notifications (issue 17). A hook belongs to one user and hears only
-- their tasks and watches; system events reach only hooks an admin made. `secret` is sealed
-- by the credentials vault: the signing secret of a webhook, the token of a preset.
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT,
    enabled BIGINT NOT NULL DEFAULT 1,
    state TEXT NOT NULL DEFAULT 'ok',
    failures BIGINT NOT NULL DEFAULT 0,
    disabled_reason TEXT,
    last_error TEXT,
    last_delivery_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX webhooks_owner ON webhooks(owner_id);

-- Each attempt to deliver a message: what `GET /webhooks/{id}/deliveries` lists.
CREATE TABLE webhook_attempts (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    message_id TEXT NOT NULL,
    event TEXT NOT NULL,
    task_id TEXT,
    attempt BIGINT NOT NULL,
    at BIGINT NOT NULL,
    status_code BIGINT,
    latency_ms BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT
);
CREATE INDEX webhook_attempts_hook ON webhook_attempts(webhook_id, at);

-- The last rescan asked of each media server (`GET /integrations`).
CREATE TABLE integration_runs (
    name TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    ok BIGINT NOT NULL,
    message TEXT NOT NULL,
    task_id TEXT
);

-- Internal tasks (deliveries, rescans) are pruned by kind and age.
CREATE INDEX tasks_kind_finished ON tasks(kind, finished_at);
