-- +goose Up
-- A card's tasks still queued or running, in the order they were asked:
-- what each new task of the card is checked against (pendingOperationsTx).
-- transit_tasks_card holds every task a card ever had, and a transit card
-- gets one for every top-up, so that check read the card's whole history (266 µs against 11 µs on SQLite for a card with
-- 2,000 ended tasks, BenchmarkPendingOperations).
CREATE INDEX transit_tasks_pending ON transit_tasks (card_id, created_at, task_id) WHERE status IN ('QUEUED', 'PROCESSING');

-- +goose Down
DROP INDEX transit_tasks_pending;
