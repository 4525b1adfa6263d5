package issuer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/provhub/provhub/internal/store"
)

// The SQL of the issuer_operations and issuer_operation_tasks tables, a
// named function a use (now and cutoffs are Unix microseconds).

const operationColumns = `operation_id, issuer_id, consumer_id, operation, status, requestor_type, requestor_id, reason, reason_code,
	card_id, digital_card_id, error_code, error, correlation_id, start_time, end_time, tasks_queued, account_id`

const selectOperationSQL = `SELECT ` + operationColumns + ` FROM issuer_operations WHERE operation_id = $1`

// operationRow is an operation as stored: with whether its wallet tasks
// have been queued.
type operationRow struct {
	Operation
	tasksQueued bool
}

func scanOperation(row store.Scanner) (*Operation, error) {
	r, err := scanOperationRow(row)
	if r == nil {
		return nil, err
	}
	return &r.Operation, nil
}

// scanOperationRow reads an operation's row; nil when there is none.
func scanOperationRow(row store.Scanner) (*operationRow, error) {
	var (
		o                                                        operationRow
		reason, code, card, digital, errCode, errText, correlate sql.NullString
		account                                                  sql.NullString
		start                                                    int64
		end                                                      sql.NullInt64
		queued                                                   int
	)
	err := row.Scan(&o.OperationID, &o.IssuerID, &o.ConsumerID, &o.Type, &o.Status, &o.RequestorType, &o.RequestorID, &reason, &code,
		&card, &digital, &errCode, &errText, &correlate, &start, &end, &queued, &account)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read operation: %w", err)
	}
	o.Reason, o.ReasonCode, o.CardID, o.DigitalCardID = reason.String, code.String, card.String, digital.String
	o.ErrorCode, o.Error, o.CorrelationID, o.AccountID = errCode.String, errText.String, correlate.String, account.String
	o.StartTime = time.UnixMicro(start).UTC()
	if end.Valid {
		t := time.UnixMicro(end.Int64).UTC()
		o.EndTime = &t
	}
	o.tasksQueued = queued != 0
	return &o, nil
}

// insertOperationTx stores op as it is (its id set by the caller).
func insertOperationTx(ctx context.Context, tx *store.Tx, op *Operation) error {
	var end any
	if op.EndTime != nil {
		end = op.EndTime.UnixMicro()
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO issuer_operations (operation_id, issuer_id, consumer_id, operation, status, requestor_type, requestor_id,
			reason, reason_code, card_id, digital_card_id, correlation_id, start_time, end_time, account_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		op.OperationID, op.IssuerID, op.ConsumerID, string(op.Type), string(op.Status), op.RequestorType, op.RequestorID,
		nullString(op.Reason), nullString(op.ReasonCode), nullString(op.CardID), nullString(op.DigitalCardID), nullString(op.CorrelationID),
		op.StartTime.UnixMicro(), end, nullString(op.AccountID))
	if err != nil {
		return fmt.Errorf("record operation: %w", err)
	}
	return nil
}

// readOperation reads any issuer's operation; nil when unknown.
func readOperation(ctx context.Context, db *store.DB, operationID string) (*operationRow, error) {
	return scanOperationRow(db.ReadRow(ctx, selectOperationSQL, operationID))
}

// readConsumerOperation reads an operation of one consumer; nil when the
// consumer has no such operation.
func readConsumerOperation(ctx context.Context, db *store.DB, issuerID, consumerID, operationID string) (*Operation, error) {
	return scanOperation(db.ReadRow(ctx, selectOperationSQL+` AND issuer_id = $2 AND consumer_id = $3`, operationID, issuerID, consumerID))
}

// pendingConsumerDeleteTx reads the PENDING deletion of a whole consumer;
// nil when there is none.
func pendingConsumerDeleteTx(ctx context.Context, tx *store.Tx, issuerID, consumerID string) (*Operation, error) {
	return scanOperation(tx.QueryRowContext(ctx, `SELECT `+operationColumns+` FROM issuer_operations WHERE issuer_id = $1 AND consumer_id = $2
		AND operation = 'DELETE' AND card_id IS NULL AND digital_card_id IS NULL AND account_id IS NULL AND status = 'PENDING' ORDER BY seq DESC LIMIT 1`,
		issuerID, consumerID))
}

// pendingAccountDeleteTx reads the PENDING deletion of an account; nil
// when there is none.
func pendingAccountDeleteTx(ctx context.Context, tx *store.Tx, issuerID, accountID string) (*Operation, error) {
	return scanOperation(tx.QueryRowContext(ctx, `SELECT `+operationColumns+` FROM issuer_operations WHERE issuer_id = $1 AND account_id = $2
		AND operation = 'DELETE' AND status = 'PENDING' ORDER BY seq DESC LIMIT 1`, issuerID, accountID))
}

// consumerOperations returns a page of a consumer's operations, newest
// first, and how many the consumer has in all.
func consumerOperations(ctx context.Context, db *store.DB, issuerID, consumerID string, offset, limit int) (ops []Operation, total int, err error) {
	if err := db.ReadRow(ctx, `SELECT COUNT(*) FROM issuer_operations WHERE issuer_id = $1 AND consumer_id = $2`, issuerID, consumerID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count operations: %w", err)
	}
	rows, err := db.ReadQuery(ctx, `SELECT `+operationColumns+` FROM issuer_operations WHERE issuer_id = $1 AND consumer_id = $2
		ORDER BY seq DESC LIMIT $3 OFFSET $4`, issuerID, consumerID, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("list operations: %w", err)
	}
	ops, err = store.Collect(rows, scanOperationValue)
	if err != nil {
		return nil, 0, fmt.Errorf("list operations: %w", err)
	}
	return ops, total, nil
}

// recentOperations returns the newest operations of every issuer that
// match q (see Service.RecentOperations), at most limit.
func recentOperations(ctx context.Context, db *store.DB, q store.ListQuery, limit int) ([]Operation, error) {
	rows, err := db.ReadQuery(ctx, `SELECT `+operationColumns+` FROM issuer_operations WHERE ($1 = '' OR status = $1)
		AND ($2 = '' OR operation_id = $2 OR issuer_id = $2 OR consumer_id = $2 OR card_id = $2 OR digital_card_id = $2 OR correlation_id = $2)
		AND ($3 = '' OR seq < (SELECT seq FROM issuer_operations WHERE operation_id = $3))
		ORDER BY seq DESC LIMIT $4`,
		q.Status, q.Search, q.Before, limit)
	if err != nil {
		return nil, fmt.Errorf("recent operations: %w", err)
	}
	ops, err := store.Collect(rows, scanOperationValue)
	if err != nil {
		return nil, fmt.Errorf("recent operations: %w", err)
	}
	return ops, nil
}

func scanOperationValue(row store.Scanner) (Operation, error) {
	op, err := scanOperation(row)
	if err != nil {
		return Operation{}, err
	}
	return *op, nil
}

// operationOutcomes counts the operations started since a time by status
// and error code ("FAILED WALLET_432").
func operationOutcomes(ctx context.Context, db *store.DB, since int64) (map[string]int, error) {
	return db.CountOutcomes(ctx, `SELECT status, COALESCE(error_code, ''), count(*) FROM issuer_operations WHERE start_time >= $1 GROUP BY 1, 2`, since)
}

// markTasksQueuedTx records that an operation's wallet tasks are queued.
func markTasksQueuedTx(ctx context.Context, tx *store.Tx, operationID string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE issuer_operations SET tasks_queued = 1 WHERE operation_id = $1`, operationID); err != nil {
		return fmt.Errorf("operation %s: tasks queued: %w", operationID, err)
	}
	return nil
}

// endOperationTx ends a PENDING operation; ended is false when it had
// ended already.
func endOperationTx(ctx context.Context, tx *store.Tx, operationID string, status OperationStatus, code, msg string, now int64) (ended bool, err error) {
	res, err := tx.ExecContext(ctx, `UPDATE issuer_operations SET status = $2, error_code = $3, error = $4, end_time = $5 WHERE operation_id = $1 AND status = 'PENDING'`,
		operationID, string(status), nullString(code), nullString(msg), now)
	if err != nil {
		return false, fmt.Errorf("end operation %s: %w", operationID, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// linkTaskTx links a wallet task to the operation that queued it.
func linkTaskTx(ctx context.Context, tx *store.Tx, operationID, taskID string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO issuer_operation_tasks (operation_id, task_id) VALUES ($1, $2)`, operationID, taskID); err != nil {
		return fmt.Errorf("link task: %w", err)
	}
	return nil
}

// linkedTaskIDsTx lists the wallet tasks an operation queued.
func linkedTaskIDsTx(ctx context.Context, tx *store.Tx, operationID string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT task_id FROM issuer_operation_tasks WHERE operation_id = $1 ORDER BY task_id`, operationID)
	if err != nil {
		return nil, fmt.Errorf("linked tasks: %w", err)
	}
	return store.Strings(rows)
}

// purgeOperationsTx removes the ended operations that started before
// cutoff, with their task links, and returns how many.
func purgeOperationsTx(ctx context.Context, tx *store.Tx, cutoff int64) (int64, error) {
	if _, err := tx.ExecContext(ctx, `DELETE FROM issuer_operation_tasks WHERE operation_id IN
			(SELECT operation_id FROM issuer_operations WHERE start_time < $1 AND status <> 'PENDING')`, cutoff); err != nil {
		return 0, fmt.Errorf("purge operation tasks: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM issuer_operations WHERE start_time < $1 AND status <> 'PENDING'`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("purge operations: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
