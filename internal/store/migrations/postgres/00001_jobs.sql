-- +goose Up
-- The durable job engine's table. Times are Unix microseconds (UTC) in both
-- dialects so the engine compares and orders them the same way everywhere.
CREATE TABLE jobs (
    id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             TEXT    NOT NULL,
    args             JSONB   NOT NULL DEFAULT '{}',
    state            TEXT    NOT NULL CHECK (state IN ('scheduled','available','running','retryable','completed','failed','cancelled')),
    priority         INTEGER NOT NULL DEFAULT 0,
    subject          TEXT,
    unique_key       TEXT,
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
    errors           JSONB   NOT NULL DEFAULT '[]',
    created_at       BIGINT  NOT NULL,
    run_at           BIGINT  NOT NULL,
    attempted_at     BIGINT,
    finalized_at     BIGINT,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    snoozes          INTEGER NOT NULL DEFAULT 0,
    -- held: waits behind an earlier job of its subject. A hint that keeps
    -- such jobs out of the fetch index; the claim itself checks the order.
    held             BOOLEAN NOT NULL DEFAULT FALSE
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
