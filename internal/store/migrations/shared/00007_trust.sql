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

-- The systems provhub works with: transit entity servers (role tes) and
-- wallet servers (role wallet), which call the partner-facing APIs, and
-- conditional-access systems (role cas), which provhub calls. A calling
-- partner proves itself by a client certificate (its SHA-256 fingerprint)
-- or by signed requests (the secret, sealed with the hub's secret key; the
-- hub signs its own calls to the partner with it too). A partner with a
-- url is the one provhub calls for its scope.
CREATE TABLE partners (
    partner_id     TEXT PRIMARY KEY,
    role           TEXT NOT NULL CHECK (role IN ('tes', 'wallet', 'cas')),
    cert_sha256    TEXT UNIQUE,
    signing_secret TEXT,
    url            TEXT,
    timeout_ms     BIGINT,
    created_at     BIGINT NOT NULL,
    revoked_at     BIGINT
);
-- What a partner acts for: issuerIds for tes and wallet partners, CRM
-- organisation names for cas partners.
CREATE TABLE partner_scopes (
    partner_id TEXT NOT NULL REFERENCES partners (partner_id),
    scope_id   TEXT NOT NULL,
    PRIMARY KEY (partner_id, scope_id)
);
CREATE INDEX partner_scopes_scope ON partner_scopes (scope_id);
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
DROP TABLE partner_scopes;
DROP TABLE partners;
DROP TABLE oauth_used_assertions;
