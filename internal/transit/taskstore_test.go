package transit

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

// TestTaskStore_WritesOfATasksRun runs each write of a wallet task's run on
// both backends: processing, a retry's note, the end (once), the card's new
// state or metadata, and an erase that leaves no personal data.
func TestTaskStore_WritesOfATasksRun(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for _, q := range []string{
			`INSERT INTO transit_cards (card_id, issuer_id, card_account_id, wallet_card_id, metadata, se_id, device_id, instance_aid, state, created_at, updated_at)
				VALUES ('C1', 'ISS', 'C1', 'WC1', '{"cardholderName":"Ann"}', 'SE1', 'DEV1', 'A000000151', 'ACTIVE', 1, 1)`,
			`INSERT INTO transit_tasks (task_id, card_id, se_id, operation, status, payload, job_id, created_at, updated_at)
				VALUES ('pvh-1', 'C1', 'SE1', 'SUSPEND', 'QUEUED', 'p', 1, 1, 1)`,
			`INSERT INTO wallet_card_accounts (wallet_card_account_id, partner_id, issuer_id, card_account_id, wallet_account_id, created_at) VALUES ('WCA1', 'w', 'ISS', 'C1', '', 1)`,
		} {
			if _, err := db.Writer().ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		task := func() (status string, msg, payload sql.NullString) {
			if err := db.Reader().QueryRowContext(ctx, `SELECT status, message, payload FROM transit_tasks WHERE task_id = 'pvh-1'`).Scan(&status, &msg, &payload); err != nil {
				t.Fatal(err)
			}
			return
		}
		now := time.UnixMicro(10_000_000)
		if err := markProcessing(ctx, db, "pvh-1", now); err != nil {
			t.Fatal(err)
		}
		if err := noteTaskRetry(ctx, db, "pvh-1", "retrying: attempt 1 failed", now); err != nil {
			t.Fatal(err)
		}
		if st, msg, _ := task(); st != "PROCESSING" || msg.String != "retrying: attempt 1 failed" {
			t.Errorf("task %s %q", st, msg.String)
		}
		end := func() bool {
			var ended bool
			if err := db.InTx(ctx, func(tx *store.Tx) error {
				var err error
				ended, err = endTaskTx(ctx, tx, "pvh-1", TaskCompleted, nil, "", now.UnixMicro())
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return ended
		}
		if !end() {
			t.Fatal("the first end was not recorded")
		}
		if end() {
			t.Error("a task ended twice")
		}
		if st, msg, payload := task(); st != "COMPLETED" || msg.Valid || payload.Valid {
			t.Errorf("ended task %s message %v payload %v", st, msg, payload)
		}
		inTx := func(f func(tx *store.Tx) error) {
			if err := db.InTx(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
		inTx(func(tx *store.Tx) error { return setCardStateTx(ctx, tx, "C1", Suspended, now.UnixMicro()) })
		inTx(func(tx *store.Tx) error {
			return setCardMetadataTx(ctx, tx, "C1", []byte(`{"cardholderName":"Bo"}`), now.UnixMicro())
		})
		var state, meta string
		if err := db.Reader().QueryRowContext(ctx, `SELECT state, metadata FROM transit_cards WHERE card_id = 'C1'`).Scan(&state, &meta); err != nil || state != "SUSPENDED" || meta != `{"cardholderName":"Bo"}` {
			t.Errorf("card %s %s %v", state, meta, err)
		}
		inTx(func(tx *store.Tx) error { return eraseCardTx(ctx, tx, "C1", now.UnixMicro()) })
		var account, wallet, metadata, device sql.NullString
		if err := db.Reader().QueryRowContext(ctx, `SELECT state, card_account_id, wallet_card_id, metadata, device_id FROM transit_cards WHERE card_id = 'C1'`).
			Scan(&state, &account, &wallet, &metadata, &device); err != nil || state != "ERASED" || account.Valid || wallet.Valid || metadata.Valid || device.Valid {
			t.Errorf("erased card %s %v %v %v %v (%v)", state, account, wallet, metadata, device, err)
		}
		var onFile int
		if err := db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM wallet_card_accounts WHERE card_account_id = 'C1'`).Scan(&onFile); err != nil || onFile != 0 {
			t.Errorf("the wallets' ids of an erased card's account stayed: %d (%v)", onFile, err)
		}
	})
}
