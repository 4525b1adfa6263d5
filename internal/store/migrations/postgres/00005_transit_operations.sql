-- +goose Up
-- Transit operations that run a command loop between a TES and a device:
-- top-up, park, reader-mode ingestion. Each relay step is kept, so that a
-- repeated device call is answered from the record and a crash between
-- steps resumes without asking the TES anything twice. Times are Unix
-- microseconds.
-- A device operation starts with a REDIRECT wallet task: allow it.
ALTER TABLE transit_tasks DROP CONSTRAINT transit_tasks_operation_check;
ALTER TABLE transit_tasks ADD CONSTRAINT transit_tasks_operation_check
    CHECK (operation IN ('PERSONALIZE', 'SUSPEND', 'RESUME', 'DELETE', 'ERASE', 'METADATA_UPDATE', 'REDIRECT'));

CREATE TABLE transit_operations (
    operation_id    TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('TOPUP', 'PARK', 'READER_MODE')),
    issuer_id       TEXT NOT NULL,
    card_id         TEXT,
    purchase_id     TEXT,
    se_id           TEXT NOT NULL,
    device_id       TEXT NOT NULL,
    wallet_card_id  TEXT,
    -- The REDIRECT wallet task that sends the device to the hub.
    redirect_task   TEXT,
    card_contents   TEXT,
    status          TEXT NOT NULL CHECK (status IN ('PENDING', 'REDIRECTED', 'RUNNING', 'COMPLETED', 'FAILED')),
    -- How many batches the TES has given (the device answers batch step).
    step            INTEGER NOT NULL DEFAULT 0,
    status_code     INTEGER,
    message         TEXT,
    balance         BIGINT,
    card_account_id TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    ended_at        BIGINT
);
CREATE INDEX transit_operations_se ON transit_operations (se_id, status);
CREATE INDEX transit_operations_card ON transit_operations (card_id, created_at);
CREATE TABLE transit_operation_steps (
    operation_id TEXT NOT NULL,
    step         INTEGER NOT NULL,
    -- What the device sent for the previous batch, and the TES's answer.
    request      TEXT NOT NULL,
    answer       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (operation_id, step)
);

-- +goose Down
DROP TABLE transit_operation_steps;
DROP TABLE transit_operations;
DELETE FROM transit_tasks WHERE operation = 'REDIRECT';
ALTER TABLE transit_tasks DROP CONSTRAINT transit_tasks_operation_check;
ALTER TABLE transit_tasks ADD CONSTRAINT transit_tasks_operation_check
    CHECK (operation IN ('PERSONALIZE', 'SUSPEND', 'RESUME', 'DELETE', 'ERASE', 'METADATA_UPDATE'));
