-- +goose Up
-- Notifications provhub asks the wallet server to push to a digital card's
-- device (pushNotification), one job each, in the secure element's order of
-- wallet calls. Times are Unix microseconds.
CREATE TABLE transit_notifications (
    notification_id TEXT PRIMARY KEY,
    card_id         TEXT NOT NULL,
    se_id           TEXT NOT NULL,
    kind            TEXT NOT NULL,
    -- The notification as sent (JSON), kept until it is sent or failed.
    payload         TEXT,
    status          TEXT NOT NULL CHECK (status IN ('QUEUED', 'SENT', 'FAILED')),
    status_code     INTEGER,
    message         TEXT,
    job_id          BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX transit_notifications_card ON transit_notifications (card_id, created_at);
-- The notification kinds an issuer turned off (every kind is on otherwise).
CREATE TABLE transit_notification_off (
    issuer_id TEXT NOT NULL,
    kind      TEXT NOT NULL,
    PRIMARY KEY (issuer_id, kind)
);

-- +goose Down
DROP TABLE transit_notification_off;
DROP TABLE transit_notifications;
