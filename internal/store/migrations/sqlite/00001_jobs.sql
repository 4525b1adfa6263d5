-- +goose Up
-- The durable job engine's table. Times are Unix microseconds (UTC) in both
-- dialects so the engine compares and orders them the same way everywhere.
-- AUTOINCREMENT: ids are never reused, because they order a subject's queue
-- and callers derive external ids (such as a wallet taskId) from them.
CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT    NOT NULL,
    args             TEXT    NOT NULL DEFAULT '{}',
    state            TEXT    NOT NULL CHECK (state IN ('scheduled','available','running','retryable','completed','failed','cancelled')),
    priority         INTEGER NOT NULL DEFAULT 0,
    subject          TEXT,
    unique_key       TEXT,
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
    errors           TEXT    NOT NULL DEFAULT '[]',
    created_at       INTEGER NOT NULL,
    run_at           INTEGER NOT NULL,
    attempted_at     INTEGER,
    finalized_at     INTEGER,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    snoozes          INTEGER NOT NULL DEFAULT 0,
    -- held: waits behind an earlier job of its subject. A hint that keeps
    -- such jobs out of the fetch index; the claim itself checks the order.
    held             INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key) WHERE unique_key IS NOT NULL;
CREATE INDEX jobs_fetch ON jobs (priority DESC, run_at, id) WHERE state = 'available' AND NOT held;
CREATE INDEX jobs_held ON jobs (subject, id) WHERE held;
CREATE INDEX jobs_due ON jobs (run_at) WHERE state IN ('scheduled','retryable');
CREATE INDEX jobs_subject_queue ON jobs (subject, id) WHERE subject IS NOT NULL AND state IN ('available','running','retryable');
CREATE INDEX jobs_subject_running ON jobs (subject) WHERE subject IS NOT NULL AND state = 'running';
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_finalized ON jobs (finalized_at) WHERE finalized_at IS NOT NULL;

-- +goose Down
DROP TABLE jobs;
