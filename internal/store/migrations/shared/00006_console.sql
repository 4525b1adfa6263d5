-- +goose Up
-- The operator console: operator accounts (not API clients), their
-- sessions, and the actions they took. Times are Unix microseconds.
CREATE TABLE console_operators (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE TABLE console_sessions (
    -- SHA-256 of the session cookie's token.
    token_hash TEXT PRIMARY KEY,
    username   TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);
CREATE TABLE console_actions (
    id       TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    action   TEXT NOT NULL,
    -- What the action was on: job:<id> or task:<taskId>.
    target   TEXT NOT NULL,
    outcome  TEXT NOT NULL,
    at       BIGINT NOT NULL
);
CREATE INDEX console_actions_target ON console_actions (target, at);

-- +goose Down
DROP TABLE console_actions;
DROP TABLE console_sessions;
DROP TABLE console_operators;
