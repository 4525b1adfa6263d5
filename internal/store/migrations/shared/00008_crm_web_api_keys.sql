-- +goose Up
-- CRM Web API keys: a login without a password for a CRM back end, owned
-- by a CRM user (whose organisation it acts in) with a default unit. Only
-- the key's SHA-256 is kept; key_id is its public prefix, for listing and
-- revoking. Times are Unix microseconds.
CREATE TABLE crm_web_api_keys (
    key_id     TEXT PRIMARY KEY,
    key_hash   TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL REFERENCES crm_users (id) ON DELETE CASCADE,
    unit_id    TEXT NOT NULL REFERENCES crm_units (id),
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
-- A token from a Web API key lapses at a fixed time (two hours after
-- issue), used or not; a password login's has none (it lapses when idle).
ALTER TABLE crm_tokens ADD COLUMN expires_at BIGINT;

-- +goose Down
ALTER TABLE crm_tokens DROP COLUMN expires_at;
DROP TABLE crm_web_api_keys;
