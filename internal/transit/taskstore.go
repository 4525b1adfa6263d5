package transit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/provhub/provhub/internal/store"
)

// The SQL of the transit_tasks table, a named function a use (now is Unix
// microseconds where a function takes a transaction, as the run that calls
// it keeps it).

const (
	taskColumns          = `task_id, card_id, se_id, operation, status, status_code, message, job_id`
	selectTaskSQL        = `SELECT ` + taskColumns + ` FROM transit_tasks WHERE task_id = $1`
	pendingOperationsSQL = `SELECT operation FROM transit_tasks WHERE card_id = $1 AND status IN ('QUEUED', 'PROCESSING') ORDER BY created_at, task_id`
	insertTaskSQL        = `INSERT INTO transit_tasks (task_id, card_id, se_id, operation, status, payload, job_id, created_at, updated_at, outline)
		VALUES ($1, $2, $3, $4, 'QUEUED', $5, $6, $7, $7, $8)`
	markProcessingSQL = `UPDATE transit_tasks SET status = 'PROCESSING', updated_at = $2 WHERE task_id = $1 AND status = 'QUEUED'`
	noteTaskRetrySQL  = `UPDATE transit_tasks SET message = $2, updated_at = $3 WHERE task_id = $1 AND status IN ('QUEUED', 'PROCESSING')`
	endTaskSQL        = `UPDATE transit_tasks SET status = $2, status_code = $3, message = $4, payload = NULL, updated_at = $5
		WHERE task_id = $1 AND status IN ('QUEUED', 'PROCESSING')`
	taskToRunSQL = `SELECT t.operation, t.status, t.payload, c.wallet_card_id, c.se_id, c.card_id
		FROM transit_tasks t JOIN transit_cards c ON c.card_id = t.card_id WHERE t.task_id = $1`
)

// hotStatements are the statements of every wallet task, parsed once on
// SQLite (with those of the operations and the notifications).
var hotStatements = []string{
	selectCardSQL, setCardMetadataSQL, setCardStateSQL,
	pendingOperationsSQL, insertTaskSQL, markProcessingSQL, noteTaskRetrySQL, endTaskSQL,
}

// pendingOperationsTx lists the operations of a card's tasks queued or
// running, in the order they were asked.
func pendingOperationsTx(ctx context.Context, tx *store.Tx, cardID string) ([]Operation, error) {
	rows, err := tx.QueryCached(ctx, pendingOperationsSQL, cardID)
	if err != nil {
		return nil, fmt.Errorf("pending tasks of %s: %w", cardID, err)
	}
	return store.Collect(rows, func(r store.Scanner) (Operation, error) {
		var op Operation
		return op, r.Scan(&op)
	})
}

// insertTaskTx stores a task QUEUED, with its payload and its script's
// outline (either may be nil).
func insertTaskTx(ctx context.Context, tx *store.Tx, t *Task, payload, outline []byte, now int64) error {
	if _, err := tx.ExecCached(ctx, insertTaskSQL, t.TaskID, t.CardID, t.SEID, string(t.Operation), nullBytes(payload), t.JobID, now, nullBytes(outline)); err != nil {
		return fmt.Errorf("store task %s: %w", t.TaskID, err)
	}
	return nil
}

// taskRun is what a wallet task's run reads: the task and its card's
// wallet ids.
type taskRun struct {
	op                 Operation
	status             TaskStatus
	payload            sql.NullString
	walletCardID, seID sql.NullString
	cardID             string
}

// readTaskRun reads a task for its run; found is false for no such task.
func readTaskRun(ctx context.Context, db *store.DB, taskID string) (r taskRun, found bool, err error) {
	err = db.ReadRow(ctx, taskToRunSQL, taskID).Scan(&r.op, &r.status, &r.payload, &r.walletCardID, &r.seID, &r.cardID)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("load task %s: %w", taskID, err)
	}
	return r, true, nil
}

// taskTx reads a task inside tx (nil, nil when there is none).
func taskTx(ctx context.Context, tx *store.Tx, taskID string) (*Task, error) {
	t, err := scanTask(tx.QueryRowContext(ctx, selectTaskSQL, taskID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read task %s: %w", taskID, err)
	}
	return &t, nil
}

// tasksOfCard reads a card's tasks in the order they were asked.
func tasksOfCard(ctx context.Context, db *store.DB, cardID string) ([]Task, error) {
	rows, err := db.ReadQuery(ctx, `SELECT `+taskColumns+` FROM transit_tasks WHERE card_id = $1 ORDER BY created_at, job_id`, cardID)
	if err != nil {
		return nil, fmt.Errorf("list tasks of %s: %w", cardID, err)
	}
	return store.Collect(rows, scanTask)
}

func scanTask(r store.Scanner) (Task, error) {
	var (
		t    Task
		code sql.NullInt64
		msg  sql.NullString
	)
	if err := r.Scan(&t.TaskID, &t.CardID, &t.SEID, &t.Operation, &t.Status, &code, &msg, &t.JobID); err != nil {
		return Task{}, err
	}
	t.StatusCode = nullInt(code)
	t.Message = msg.String
	return t, nil
}

func nullInt(v sql.NullInt64) *int {
	if !v.Valid {
		return nil
	}
	n := int(v.Int64)
	return &n
}

// markProcessing records that the wallet server took a queued task.
func markProcessing(ctx context.Context, db *store.DB, taskID string, now time.Time) error {
	if _, err := db.ExecCached(ctx, markProcessingSQL, taskID, now.UnixMicro()); err != nil {
		return fmt.Errorf("task %s: mark processing: %w", taskID, err)
	}
	return nil
}

// noteTaskRetry says on a task that has not ended why it is being retried.
func noteTaskRetry(ctx context.Context, db *store.DB, taskID, why string, now time.Time) error {
	_, err := db.ExecCached(ctx, noteTaskRetrySQL, taskID, why, now.UnixMicro())
	return err
}

// endTaskTx records a task's end and drops its payload; it reports false
// when the task had already ended (an earlier run recorded it).
func endTaskTx(ctx context.Context, tx *store.Tx, taskID string, status TaskStatus, code *int, message string, now int64) (bool, error) {
	res, err := tx.ExecCached(ctx, endTaskSQL, taskID, string(status), code, nullString(message), now)
	if err != nil {
		return false, fmt.Errorf("task %s: record outcome: %w", taskID, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

const taskViewColumns = `t.task_id, t.card_id, t.se_id, t.operation, t.status, t.status_code, t.message, t.job_id,
	c.wallet_card_id, t.created_at, t.updated_at`

// recentTasks reads the newest tasks, newest first: q.Status is a task
// status, q.Search a task, card, wallet card or secure-element id, q.Before
// the task id the page starts after.
func recentTasks(ctx context.Context, db *store.DB, q store.ListQuery, limit int) ([]TaskView, error) {
	rows, err := db.ReadQuery(ctx, `SELECT `+taskViewColumns+`
		FROM transit_tasks t JOIN transit_cards c ON c.card_id = t.card_id
		WHERE ($1 = '' OR t.status = $1)
		AND ($2 = '' OR t.task_id = $2 OR t.card_id = $2 OR c.wallet_card_id = $2 OR t.se_id = $2)
		AND ($3 = '' OR (t.created_at, t.task_id) < (SELECT b.created_at, b.task_id FROM transit_tasks b WHERE b.task_id = $3))
		ORDER BY t.created_at DESC, t.task_id DESC LIMIT $4`, q.Status, q.Search, q.Before, limit)
	if err != nil {
		return nil, fmt.Errorf("recent tasks: %w", err)
	}
	return store.Collect(rows, func(r store.Scanner) (TaskView, error) {
		v, err := scanTaskView(r)
		return v, err
	})
}

// taskViewOf reads any task with its card's wallet id and the outline of
// its script ("" for none).
func taskViewOf(ctx context.Context, db *store.DB, taskID string) (*TaskView, string, error) {
	var outline sql.NullString
	v, err := scanTaskView(db.ReadRow(ctx, `SELECT `+taskViewColumns+`, t.outline
		FROM transit_tasks t JOIN transit_cards c ON c.card_id = t.card_id WHERE t.task_id = $1`, taskID), &outline)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", errorf(KindUnknownCard, "unknown task %s", taskID)
	}
	if err != nil {
		return nil, "", fmt.Errorf("task %s: %w", taskID, err)
	}
	return &v, outline.String, nil
}

// scanTaskView scans taskViewColumns, then into more whatever follows.
func scanTaskView(r store.Scanner, more ...any) (TaskView, error) {
	var (
		v                TaskView
		code             sql.NullInt64
		msg, wallet      sql.NullString
		created, updated int64
	)
	dest := append([]any{&v.TaskID, &v.CardID, &v.SEID, &v.Operation, &v.Status, &code, &msg, &v.JobID, &wallet, &created, &updated}, more...)
	if err := r.Scan(dest...); err != nil {
		return TaskView{}, err
	}
	v.StatusCode = nullInt(code)
	v.Message, v.WalletCardID = msg.String, wallet.String
	v.CreatedAt, v.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	return v, nil
}

// taskOutcomes counts the tasks changed since a time (Unix microseconds) by
// status and the wallet server's status code, or "retrying".
func taskOutcomes(ctx context.Context, db *store.DB, since int64) (map[string]int, error) {
	return db.CountOutcomes(ctx, `SELECT status, CASE WHEN status IN ('QUEUED', 'PROCESSING') AND message LIKE 'retrying:%' THEN 'retrying'
		ELSE COALESCE(CAST(status_code AS TEXT), '') END, count(*) FROM transit_tasks WHERE updated_at >= $1 GROUP BY 1, 2`, since)
}
