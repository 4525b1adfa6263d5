-- +goose Up
-- Issuer API: issuers as OAuth 2.0 clients (client id = issuerId) with their public keys, the
-- hub's own token-signing keys, and the issuer's end users (consumers),
-- accounts, cards and the operations recorded for consumers. Digital cards
-- are the transit domain's cards, linked by (issuer_id, card_account_id =
-- card_id). Times are Unix microseconds.
CREATE TABLE oauth_client_keys (
    client_id  TEXT NOT NULL,
    kid        TEXT NOT NULL,
    -- PEM, SubjectPublicKeyInfo of an EC P-256 key.
    public_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    PRIMARY KEY (client_id, kid)
);
CREATE TABLE oauth_signing_keys (
    kid         TEXT PRIMARY KEY,
    -- PEM, PKCS #8 EC P-256 private key.
    private_key TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    -- A retired key signs nothing new; it verifies until its last token expires.
    retired_at  BIGINT
);
CREATE TABLE issuer_consumers (
    issuer_id   TEXT NOT NULL,
    consumer_id TEXT NOT NULL,
    -- DELETED rows are tombstones: the consumerId can never be used again.
    state       TEXT NOT NULL CHECK (state IN ('ACTIVE', 'DELETING', 'DELETED')),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (issuer_id, consumer_id)
);
CREATE TABLE issuer_accounts (
    issuer_id          TEXT NOT NULL,
    account_id         TEXT NOT NULL,
    consumer_id        TEXT NOT NULL,
    account_product_id TEXT,
    state              TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    PRIMARY KEY (issuer_id, account_id)
);
CREATE INDEX issuer_accounts_consumer ON issuer_accounts (issuer_id, consumer_id);
CREATE TABLE issuer_cards (
    issuer_id         TEXT NOT NULL,
    card_id           TEXT NOT NULL,
    consumer_id       TEXT NOT NULL,
    account_id        TEXT,
    card_product_id   TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('ACTIVE', 'INACTIVE', 'SUSPENDED', 'DELETED')),
    -- The reasonCode of the suspension or deletion that set the state.
    state_reason      TEXT,
    -- DELETE while a card delete waits for its digital cards.
    ongoing_operation TEXT,
    -- The digital cards (transit card ids, comma-separated) that the card's
    -- suspension suspended, which its resumption resumes.
    held_digital_cards TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (issuer_id, card_id)
);
CREATE INDEX issuer_cards_consumer ON issuer_cards (issuer_id, consumer_id);
CREATE INDEX transit_cards_account ON transit_cards (issuer_id, card_account_id);
CREATE TABLE issuer_operations (
    -- seq orders a consumer's operations, newest first.
    seq             BIGSERIAL PRIMARY KEY,
    operation_id    TEXT NOT NULL UNIQUE,
    issuer_id       TEXT NOT NULL,
    consumer_id     TEXT NOT NULL,
    operation       TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('PENDING', 'SUCCESSFUL', 'FAILED')),
    requestor_type  TEXT NOT NULL,
    requestor_id    TEXT NOT NULL,
    reason          TEXT,
    reason_code     TEXT,
    -- What the operation acts on below the consumer, if anything.
    card_id         TEXT,
    digital_card_id TEXT,
    error_code      TEXT,
    error           TEXT,
    correlation_id  TEXT,
    -- 1 once the operation's wallet tasks are queued.
    tasks_queued    INTEGER NOT NULL DEFAULT 0,
    start_time      BIGINT NOT NULL,
    end_time        BIGINT
);
CREATE INDEX issuer_operations_consumer ON issuer_operations (issuer_id, consumer_id, seq);
CREATE INDEX issuer_operations_start ON issuer_operations (start_time);
-- The wallet tasks an operation waits for.
CREATE TABLE issuer_operation_tasks (
    operation_id TEXT NOT NULL,
    task_id      TEXT NOT NULL,
    PRIMARY KEY (operation_id, task_id)
);

-- +goose Down
DROP TABLE issuer_operation_tasks;
DROP TABLE issuer_operations;
DROP INDEX transit_cards_account;
DROP TABLE issuer_cards;
DROP TABLE issuer_accounts;
DROP TABLE issuer_consumers;
DROP TABLE oauth_signing_keys;
DROP TABLE oauth_client_keys;
