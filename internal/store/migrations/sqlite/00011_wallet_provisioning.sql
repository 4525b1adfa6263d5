-- +goose Up
-- The wallet server's side of provisioning: the issuer's assets (card art,
-- terms and conditions), what a card shows when it is provisioned, the
-- wallet card account ids handed to wallet servers, and the issuers' OTP
-- keys with what each card account's OTPs have used. Times are Unix
-- microseconds.
CREATE TABLE assets (
    -- A random UUID; getAsset names it, scoped to the issuers the wallet
    -- partner serves.
    guid         TEXT PRIMARY KEY,
    issuer_id    TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('CARD_ART', 'TERMS')),
    content_type TEXT NOT NULL,
    content      BLOB NOT NULL,
    size         INTEGER NOT NULL,
    -- Hex SHA-256 of content.
    sha256       TEXT NOT NULL,
    description  TEXT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX assets_issuer ON assets (issuer_id, created_at);
-- The last 4 or 5 digits of the card number (checked by provisionCard),
-- its terms (an asset guid) and its card art (a JSON array of guids).
ALTER TABLE issuer_cards ADD COLUMN last_digits TEXT;
ALTER TABLE issuer_cards ADD COLUMN terms_id TEXT;
ALTER TABLE issuer_cards ADD COLUMN card_art TEXT;
-- One id per wallet partner and card account: the wallet keeps it on file
-- and provisions the account again with it (cardSource ON-FILE).
CREATE TABLE wallet_card_accounts (
    wallet_card_account_id TEXT PRIMARY KEY,
    partner_id             TEXT NOT NULL,
    issuer_id              TEXT NOT NULL,
    card_account_id        TEXT NOT NULL,
    -- The wallet account it was handed to ('' when the call named none).
    wallet_account_id      TEXT NOT NULL,
    created_at             BIGINT NOT NULL,
    UNIQUE (partner_id, issuer_id, card_account_id)
);
CREATE INDEX wallet_card_accounts_account ON wallet_card_accounts (issuer_id, card_account_id);
-- An issuer's OTP key, sealed with the hub's secret key.
CREATE TABLE issuer_otp_keys (
    issuer_id  TEXT PRIMARY KEY,
    secret     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
-- Per card account: the time step of the last OTP accepted (an OTP is
-- accepted once), and the wrong OTPs in a row (locked_until after five).
CREATE TABLE otp_state (
    issuer_id       TEXT NOT NULL,
    card_account_id TEXT NOT NULL,
    last_step       BIGINT NOT NULL DEFAULT 0,
    failures        INTEGER NOT NULL DEFAULT 0,
    locked_until    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (issuer_id, card_account_id)
);

-- +goose Down
DROP TABLE otp_state;
DROP TABLE issuer_otp_keys;
DROP INDEX wallet_card_accounts_account;
DROP TABLE wallet_card_accounts;
ALTER TABLE issuer_cards DROP COLUMN card_art;
ALTER TABLE issuer_cards DROP COLUMN terms_id;
ALTER TABLE issuer_cards DROP COLUMN last_digits;
DROP INDEX assets_issuer;
DROP TABLE assets;
