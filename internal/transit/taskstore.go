package transit

import (
	"context"
	"fmt"
	"time"

	"github.com/provhub/provhub/internal/store"
)

// The writes of a wallet task's run, each named for what it does (now is
// Unix microseconds in the functions that take a transaction, as the run
// that calls them keeps it).

// markProcessing records that the wallet server took a queued task.
func markProcessing(ctx context.Context, db *store.DB, taskID string, now time.Time) error {
	if _, err := db.Writer().ExecContext(ctx, `UPDATE transit_tasks SET status = 'PROCESSING', updated_at = $2 WHERE task_id = $1 AND status = 'QUEUED'`,
		taskID, now.UnixMicro()); err != nil {
		return fmt.Errorf("task %s: mark processing: %w", taskID, err)
	}
	return nil
}

// noteTaskRetry says on a task that has not ended why it is being retried.
func noteTaskRetry(ctx context.Context, db *store.DB, taskID, why string, now time.Time) error {
	_, err := db.Writer().ExecContext(ctx, `UPDATE transit_tasks SET message = $2, updated_at = $3 WHERE task_id = $1 AND status IN ('QUEUED', 'PROCESSING')`,
		taskID, why, now.UnixMicro())
	return err
}

// endTaskTx records a task's end and drops its payload; it reports false
// when the task had already ended (an earlier run recorded it).
func endTaskTx(ctx context.Context, tx *store.Tx, taskID string, status TaskStatus, code *int, message string, now int64) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE transit_tasks SET status = $2, status_code = $3, message = $4, payload = NULL, updated_at = $5
		WHERE task_id = $1 AND status IN ('QUEUED', 'PROCESSING')`, taskID, string(status), code, nullString(message), now)
	if err != nil {
		return false, fmt.Errorf("task %s: record outcome: %w", taskID, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// eraseCardTx removes a card's personal data: its account, wallet card,
// metadata and device, its tasks' payloads and messages, and the wallets'
// on-file ids of its account.
func eraseCardTx(ctx context.Context, tx *store.Tx, cardID string, now int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE transit_cards SET state = 'ERASED', card_account_id = NULL, wallet_card_id = NULL,
			metadata = NULL, device_id = NULL, updated_at = $2 WHERE card_id = $1`, cardID, now); err != nil {
		return fmt.Errorf("erase card %s: %w", cardID, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE transit_tasks SET payload = NULL, message = NULL WHERE card_id = $1`, cardID); err != nil {
		return fmt.Errorf("erase card %s tasks: %w", cardID, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM wallet_card_accounts WHERE card_account_id = $1 AND issuer_id IN
			(SELECT issuer_id FROM transit_cards WHERE card_id = $1)`, cardID); err != nil {
		return fmt.Errorf("erase card %s wallet accounts: %w", cardID, err)
	}
	return nil
}

func setCardMetadataTx(ctx context.Context, tx *store.Tx, cardID string, metadata []byte, now int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE transit_cards SET metadata = $2, updated_at = $3 WHERE card_id = $1`, cardID, string(metadata), now); err != nil {
		return fmt.Errorf("card %s metadata: %w", cardID, err)
	}
	return nil
}

func setCardStateTx(ctx context.Context, tx *store.Tx, cardID string, state CardState, now int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE transit_cards SET state = $2, updated_at = $3 WHERE card_id = $1`, cardID, string(state), now); err != nil {
		return fmt.Errorf("card %s state: %w", cardID, err)
	}
	return nil
}
