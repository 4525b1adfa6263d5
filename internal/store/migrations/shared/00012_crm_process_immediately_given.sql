-- +goose Up
-- Whether the CRM call named process_immediately: a request answers it as
-- 0 or 1 when it did, null when it did not (as the published examples do).
-- Requests made before this was kept answer 0 or 1.
ALTER TABLE paytv_requests ADD COLUMN process_immediately_given BOOLEAN NOT NULL DEFAULT TRUE;

-- +goose Down
ALTER TABLE paytv_requests DROP COLUMN process_immediately_given;
