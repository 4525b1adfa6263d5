package transit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/tes"
)

// The SQL of the device operations (transit_operations) and their relay
// steps (transit_operation_steps), a named function a use. The statements
// of every top-up are in operationHotStatements.

const (
	runningOperationSQL = `SELECT operation_id FROM transit_operations WHERE se_id = $1
		AND status IN ('PENDING', 'REDIRECTED', 'RUNNING') AND expires_at > $2 LIMIT 1`
	operationsSinceSQL = `SELECT COUNT(*) FROM transit_operations WHERE se_id = $1 AND created_at > $2`
	insertOperationSQL = `INSERT INTO transit_operations (operation_id, kind, issuer_id, card_id, purchase_id, se_id, device_id,
		wallet_card_id, redirect_task, card_contents, status, created_at, updated_at, expires_at, device_token_hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14)`
	endOperationSQL = `UPDATE transit_operations SET status = $2, status_code = $3, message = $4, updated_at = $5, ended_at = $5
		WHERE operation_id = $1 AND status IN ('PENDING', 'REDIRECTED', 'RUNNING')`
	stepFailedSQL = `UPDATE transit_operations SET step = $2, status = 'FAILED', status_code = $3, message = $4, updated_at = $5, ended_at = $5
		WHERE operation_id = $1 AND step = $6 AND status IN ('PENDING', 'REDIRECTED', 'RUNNING')`
	stepDoneSQL = `UPDATE transit_operations SET step = $2, status = 'COMPLETED', status_code = 0, balance = $3, card_account_id = $4, updated_at = $5, ended_at = $5
		WHERE operation_id = $1 AND step = $6 AND status IN ('PENDING', 'REDIRECTED', 'RUNNING')`
	stepRunningSQL = `UPDATE transit_operations SET step = $2, status = 'RUNNING', updated_at = $3
		WHERE operation_id = $1 AND step = $4 AND status IN ('PENDING', 'REDIRECTED', 'RUNNING')`
	insertStepSQL     = `INSERT INTO transit_operation_steps (operation_id, step, request, answer, created_at) VALUES ($1, $2, $3, $4, $5)`
	markRedirectedSQL = `UPDATE transit_operations SET status = 'REDIRECTED', updated_at = $2 WHERE operation_id = $1 AND status = 'PENDING'`
)

var operationHotStatements = []string{
	runningOperationSQL, operationsSinceSQL, insertOperationSQL, endOperationSQL,
	stepFailedSQL, stepDoneSQL, stepRunningSQL, insertStepSQL, markRedirectedSQL,
}

// runningOperationTx returns the operation of a secure element that has
// not ended nor expired ("" for none).
func runningOperationTx(ctx context.Context, tx *store.Tx, seID string, now time.Time) (string, error) {
	var id string
	err := tx.QueryRowCached(ctx, runningOperationSQL, seID, now.UnixMicro()).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("busy check of %s: %w", seID, err)
	}
	return id, nil
}

// operationsSinceTx counts the operations started on a secure element
// since a time.
func operationsSinceTx(ctx context.Context, tx *store.Tx, seID string, since time.Time) (int, error) {
	var n int
	if err := tx.QueryRowCached(ctx, operationsSinceSQL, seID, since.UnixMicro()).Scan(&n); err != nil {
		return 0, fmt.Errorf("rate check of %s: %w", seID, err)
	}
	return n, nil
}

// insertOperationTx stores a new operation (redirect is its REDIRECT
// task's id or nil, contents its card contents' JSON or nil).
func insertOperationTx(ctx context.Context, tx *store.Tx, op *DeviceOperation, redirect, contents any, tokenHash string) error {
	_, err := tx.ExecCached(ctx, insertOperationSQL,
		op.OperationID, string(op.Kind), op.IssuerID, nullString(op.CardID), nullString(op.PurchaseID), op.SEID, op.DeviceID,
		nullString(op.WalletCardID), redirect, contents, string(op.Status), op.CreatedAt.UnixMicro(), op.ExpiresAt.UnixMicro(), tokenHash)
	if err != nil {
		return fmt.Errorf("store operation %s: %w", op.OperationID, err)
	}
	return nil
}

// readOperation reads an operation by its id.
func readOperation(ctx context.Context, db *store.DB, operationID string) (*DeviceOperation, error) {
	return scanOperation(db.ReadRow(ctx, `SELECT `+operationColumns+` FROM transit_operations WHERE operation_id = $1`, operationID))
}

// readOperationByToken reads the operation of a device token's hash.
func readOperationByToken(ctx context.Context, db *store.DB, tokenHash string) (*DeviceOperation, error) {
	return scanOperation(db.ReadRow(ctx, `SELECT `+operationColumns+` FROM transit_operations WHERE device_token_hash = $1`, tokenHash))
}

// recentOperations reads the newest operations, newest first: q.Status is
// an operation status, q.Search an operation, card, purchase, secure-element
// or device id, q.Before the operation id the page starts after.
func recentOperations(ctx context.Context, db *store.DB, q store.ListQuery, limit int) ([]*DeviceOperation, error) {
	rows, err := db.ReadQuery(ctx, `SELECT `+operationColumns+` FROM transit_operations WHERE ($1 = '' OR status = $1)
		AND ($2 = '' OR operation_id = $2 OR card_id = $2 OR purchase_id = $2 OR se_id = $2 OR device_id = $2)
		AND ($3 = '' OR (created_at, operation_id) < (SELECT b.created_at, b.operation_id FROM transit_operations b WHERE b.operation_id = $3))
		ORDER BY created_at DESC, operation_id DESC LIMIT $4`, q.Status, q.Search, q.Before, limit)
	if err != nil {
		return nil, fmt.Errorf("recent operations: %w", err)
	}
	return store.Collect(rows, func(r store.Scanner) (*DeviceOperation, error) { return scanOperation(r) })
}

// endOperationTx records an operation's end; false when it had ended.
func endOperationTx(ctx context.Context, tx *store.Tx, operationID string, status OperationStatus, code int, msg string, now int64) (bool, error) {
	res, err := tx.ExecCached(ctx, endOperationSQL, operationID, string(status), code, nullString(msg), now)
	if err != nil {
		return false, fmt.Errorf("end operation %s: %w", operationID, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// advanceOperationTx moves an operation from step to step+1 with the TES's
// answer: FAILED on a refusal, COMPLETED when the loop is done, RUNNING
// otherwise. False when the step had moved already or the operation ended.
func advanceOperationTx(ctx context.Context, tx *store.Tx, operationID string, step int, res *tes.CommandsResponse, now int64) (bool, error) {
	hdr := res.ResponseHeader
	var r sql.Result
	var err error
	switch {
	case hdr.StatusCode != tes.StatusOK:
		r, err = tx.ExecCached(ctx, stepFailedSQL, operationID, step+1, hdr.StatusCode, nullString(hdr.StatusMessage), now, step)
	case res.Done():
		r, err = tx.ExecCached(ctx, stepDoneSQL, operationID, step+1, res.Balance, nullString(res.CardAccountID), now, step)
	default:
		r, err = tx.ExecCached(ctx, stepRunningSQL, operationID, step+1, now, step)
	}
	if err != nil {
		return false, fmt.Errorf("operation %s: record step %d: %w", operationID, step+1, err)
	}
	n, _ := r.RowsAffected()
	return n == 1, nil
}

// insertStepTx keeps a relay step's request and answer.
func insertStepTx(ctx context.Context, tx *store.Tx, operationID string, step int, request, answer []byte, now int64) error {
	if _, err := tx.ExecCached(ctx, insertStepSQL, operationID, step, string(request), string(answer), now); err != nil {
		return fmt.Errorf("operation %s: keep step %d: %w", operationID, step, err)
	}
	return nil
}

// stepAnswer reads the TES's answer kept for a step.
func stepAnswer(ctx context.Context, db *store.DB, operationID string, step int) (string, error) {
	var raw string
	if err := db.ReadRow(ctx, `SELECT answer FROM transit_operation_steps WHERE operation_id = $1 AND step = $2`, operationID, step).Scan(&raw); err != nil {
		return "", fmt.Errorf("operation %s: read step %d: %w", operationID, step, err)
	}
	return raw, nil
}

// stepsOf reads an operation's relay steps in order.
func stepsOf(ctx context.Context, db *store.DB, operationID string) ([]OperationStep, error) {
	rows, err := db.ReadQuery(ctx, `SELECT step, request, answer, created_at FROM transit_operation_steps WHERE operation_id = $1 ORDER BY step`, operationID)
	if err != nil {
		return nil, fmt.Errorf("operation %s steps: %w", operationID, err)
	}
	return store.Collect(rows, func(r store.Scanner) (OperationStep, error) {
		var st OperationStep
		var at int64
		err := r.Scan(&st.Step, &st.Request, &st.Answer, &at)
		st.At = time.UnixMicro(at).UTC()
		return st, err
	})
}

// redirectTaskOf reads the status and message of an operation's REDIRECT
// task.
func redirectTaskOf(ctx context.Context, db *store.DB, operationID string) (TaskStatus, string, error) {
	var status TaskStatus
	var msg sql.NullString
	err := db.ReadRow(ctx, `SELECT t.status, t.message FROM transit_tasks t JOIN transit_operations o ON o.redirect_task = t.task_id
		WHERE o.operation_id = $1`, operationID).Scan(&status, &msg)
	if err != nil {
		return "", "", fmt.Errorf("operation %s: redirect task: %w", operationID, err)
	}
	return status, msg.String, nil
}

// markRedirected records that an operation's device was redirected.
func markRedirected(ctx context.Context, db *store.DB, operationID string, now time.Time) error {
	if _, err := db.ExecCached(ctx, markRedirectedSQL, operationID, now.UnixMicro()); err != nil {
		return fmt.Errorf("operation %s: mark redirected: %w", operationID, err)
	}
	return nil
}

// purgeOperationsTx removes the operations that ended before cutoff, with
// their relay steps.
func purgeOperationsTx(ctx context.Context, tx *store.Tx, cutoff time.Time) (int64, error) {
	if _, err := tx.ExecContext(ctx, `DELETE FROM transit_operation_steps WHERE operation_id IN
			(SELECT operation_id FROM transit_operations WHERE ended_at IS NOT NULL AND ended_at < $1)`, cutoff.UnixMicro()); err != nil {
		return 0, fmt.Errorf("purge operation steps: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM transit_operations WHERE ended_at IS NOT NULL AND ended_at < $1`, cutoff.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("purge operations: %w", err)
	}
	return res.RowsAffected()
}

const operationColumns = `operation_id, kind, issuer_id, card_id, purchase_id, se_id, device_id, wallet_card_id, card_contents, status, step,
	status_code, message, balance, card_account_id, created_at, updated_at, expires_at, ended_at`

func scanOperation(row store.Scanner) (*DeviceOperation, error) {
	var (
		op                                             DeviceOperation
		card, purchase, wallet, contents, msg, account sql.NullString
		code, balance, ended                           sql.NullInt64
		created, updated, expires                      int64
	)
	err := row.Scan(&op.OperationID, &op.Kind, &op.IssuerID, &card, &purchase, &op.SEID, &op.DeviceID, &wallet, &contents, &op.Status, &op.Step,
		&code, &msg, &balance, &account, &created, &updated, &expires, &ended)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errorf(KindUnknownOperation, "unknown operation")
	}
	if err != nil {
		return nil, fmt.Errorf("read operation: %w", err)
	}
	op.CardID, op.PurchaseID, op.WalletCardID, op.Message, op.CardAccountID = card.String, purchase.String, wallet.String, msg.String, account.String
	if contents.Valid {
		op.CardContents = &tes.CardContents{}
		if err := json.Unmarshal([]byte(contents.String), op.CardContents); err != nil {
			return nil, fmt.Errorf("operation %s: stored card contents: %w", op.OperationID, err)
		}
	}
	if code.Valid {
		c := int(code.Int64)
		op.StatusCode = &c
	}
	if balance.Valid {
		b := balance.Int64
		op.Balance = &b
	}
	op.CreatedAt, op.UpdatedAt, op.ExpiresAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC(), time.UnixMicro(expires).UTC()
	if ended.Valid {
		t := time.UnixMicro(ended.Int64).UTC()
		op.EndedAt = &t
	}
	return &op, nil
}

// operationOutcomes counts the device operations started since a time
// (Unix microseconds) by status and, for failures, the TES's status code.
func operationOutcomes(ctx context.Context, db *store.DB, since int64) (map[string]int, error) {
	return db.CountOutcomes(ctx, `SELECT status, CASE WHEN status = 'FAILED' THEN COALESCE(CAST(status_code AS TEXT), '') ELSE '' END, count(*)
		FROM transit_operations WHERE created_at >= $1 GROUP BY 1, 2`, since)
}
