-- +goose Up
-- Transit: digital (wallet) cards on devices' secure elements, and the
-- wallet-server tasks that change them. Times are Unix microseconds.
CREATE TABLE transit_cards (
    card_id         TEXT PRIMARY KEY,
    issuer_id       TEXT NOT NULL,
    -- Personal data: cleared by ERASE.
    card_account_id TEXT,
    wallet_card_id  TEXT UNIQUE,
    metadata        TEXT,
    se_id           TEXT NOT NULL,
    device_id       TEXT,
    instance_aid    TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('PENDING_PERSO', 'ACTIVE', 'SUSPENDED', 'DELETED', 'ERASED')),
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE TABLE transit_tasks (
    task_id     TEXT PRIMARY KEY,
    card_id     TEXT NOT NULL REFERENCES transit_cards (card_id),
    se_id       TEXT NOT NULL,
    operation   TEXT NOT NULL CHECK (operation IN ('PERSONALIZE', 'SUSPEND', 'RESUME', 'DELETE', 'ERASE', 'METADATA_UPDATE')),
    status      TEXT NOT NULL CHECK (status IN ('QUEUED', 'PROCESSING', 'COMPLETED', 'FAILED')),
    -- The wallet server's statusCode when it refused the call.
    status_code INTEGER,
    message     TEXT,
    -- What the task sends (a script with personalisation data, or card
    -- metadata); cleared when the task ends.
    payload     TEXT,
    job_id      BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX transit_tasks_card ON transit_tasks (card_id, created_at);

-- +goose Down
DROP TABLE transit_tasks;
DROP TABLE transit_cards;
