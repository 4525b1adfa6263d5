-- +goose Up
-- An operation on an account (the deprecated account deletion) names it.
ALTER TABLE issuer_operations ADD COLUMN account_id TEXT;

-- +goose Down
ALTER TABLE issuer_operations DROP COLUMN account_id;
