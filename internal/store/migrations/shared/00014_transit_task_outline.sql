-- +goose Up
-- The APDU script of a personalisation task as operators may see it once
-- the task has ended (its payload is then removed): every command, with
-- the data of each STORE DATA replaced by zeros and marked withheld.
ALTER TABLE transit_tasks ADD COLUMN outline TEXT;

-- +goose Down
ALTER TABLE transit_tasks DROP COLUMN outline;
