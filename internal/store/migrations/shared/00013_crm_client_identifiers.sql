-- +goose Up
-- The identifiers the CRM client sent, as it sent them ("subscription
-- number=S60058", "smartcard serial_number=..."), for operators: the
-- parameters hold the CA ids they were resolved to. Requests made before
-- this was kept have none.
ALTER TABLE paytv_requests ADD COLUMN client_identifiers TEXT;

-- +goose Down
ALTER TABLE paytv_requests DROP COLUMN client_identifiers;
