-- +goose Up
-- The trust boundary. Times are Unix microseconds.

-- Assertions already exchanged at the token endpoint, kept until they
-- expire, so that one cannot be replayed on any instance. The key is the
-- assertion's jti, or the SHA-256 of the assertion when it has none.
CREATE TABLE oauth_used_assertions (
    issuer_id  TEXT NOT NULL,
    used_key   TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (issuer_id, used_key)
);
CREATE INDEX oauth_used_assertions_expiry ON oauth_used_assertions (expires_at);

-- Systems that call the partner-facing APIs: transit entity servers (role
-- tes) and wallet servers (role wallet). A partner proves itself by a
-- client certificate (its SHA-256 fingerprint) or by signed requests (the
-- secret, sealed with the hub's secret key).
CREATE TABLE partners (
    partner_id     TEXT PRIMARY KEY,
    role           TEXT NOT NULL CHECK (role IN ('tes', 'wallet')),
    cert_sha256    TEXT UNIQUE,
    signing_secret TEXT,
    created_at     BIGINT NOT NULL,
    revoked_at     BIGINT
);
-- The issuers a partner may act for.
CREATE TABLE partner_issuers (
    partner_id TEXT NOT NULL REFERENCES partners (partner_id),
    issuer_id  TEXT NOT NULL,
    PRIMARY KEY (partner_id, issuer_id)
);
-- Nonces of signed requests, kept until their timestamp leaves the window.
CREATE TABLE partner_nonces (
    partner_id TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (partner_id, nonce)
);
CREATE INDEX partner_nonces_expiry ON partner_nonces (expires_at);

-- A device proves each step of a loop with the operation's device token,
-- sent in the REDIRECT; only its SHA-256 is kept.
ALTER TABLE transit_operations ADD COLUMN device_token_hash TEXT;
CREATE UNIQUE INDEX transit_operations_device_token ON transit_operations (device_token_hash);

-- +goose Down
DROP INDEX transit_operations_device_token;
ALTER TABLE transit_operations DROP COLUMN device_token_hash;
DROP TABLE partner_nonces;
DROP TABLE partner_issuers;
DROP TABLE partners;
DROP TABLE oauth_used_assertions;
