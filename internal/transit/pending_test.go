package transit

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

// seedCardHistory stores card C1 with ended tasks and one queued task.
func seedCardHistory(tb testing.TB, db *store.DB, ended int) {
	tb.Helper()
	ctx := context.Background()
	if _, err := db.Writer().ExecContext(ctx, `INSERT INTO transit_cards (card_id, issuer_id, card_account_id, wallet_card_id, metadata, se_id, device_id, instance_aid, state, created_at, updated_at)
		VALUES ('C1', 'ISS', 'C1', 'WC1', '{}', 'SE1', 'DEV1', 'A000000151', 'ACTIVE', 1, 1)`); err != nil {
		tb.Fatal(err)
	}
	storetest.InTx(tb, db, func(tx *store.Tx) error {
		for i := range ended + 1 {
			status := "COMPLETED"
			if i == ended {
				status = "QUEUED"
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO transit_tasks (task_id, card_id, se_id, operation, status, job_id, created_at, updated_at)
				VALUES ($1, 'C1', 'SE1', 'REDIRECT', $2, $3, $3, $3)`, fmt.Sprintf("pvh-%d", i), status, i+1); err != nil {
				return err
			}
		}
		return nil
	})
}

// BenchmarkPendingOperations reads a card's pending operations, as every
// task queued for the card does, for a card with a long history of ended
// tasks (a transit card gets a REDIRECT task for every top-up).
func BenchmarkPendingOperations(b *testing.B) {
	for _, d := range storetest.Backends {
		for _, ended := range []int{0, 2000} {
			b.Run(fmt.Sprintf("%s/ended=%d", d, ended), func(b *testing.B) {
				db := storetest.Open(b, d)
				seedCardHistory(b, db, ended)
				if err := db.Prepare(context.Background(), hotStatements...); err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				for b.Loop() {
					err := db.InTx(ctx, func(tx *store.Tx) error {
						ops, err := pendingOperationsTx(ctx, tx, "C1")
						if err == nil && len(ops) != 1 {
							err = fmt.Errorf("%d pending operations, want 1", len(ops))
						}
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestTaskStore_PendingTasksOfACardAreFoundWithoutItsHistory checks, on both
// backends, that the statement every new task of a card runs reads the
// card's pending tasks through their own index, not through the card's every
// task: the cost of queueing a task must not grow with the card's top-ups.
func TestTaskStore_PendingTasksOfACardAreFoundWithoutItsHistory(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		seedCardHistory(t, db, 300)
		var plan string
		if db.Dialect() == store.SQLite {
			plan = storetest.SQLitePlan(t, db, pendingOperationsSQL, "C1")
		} else {
			if _, err := db.Writer().ExecContext(context.Background(), `ANALYZE transit_tasks`); err != nil {
				t.Fatal(err)
			}
			plan = storetest.GenericPlan(t, db, pendingOperationsSQL, "'C1'")
		}
		if !strings.Contains(plan, "transit_tasks_pending") {
			t.Errorf("a card's pending operations are not read through transit_tasks_pending:\n%s", plan)
		}
		var ops []Operation
		storetest.InTx(t, db, func(tx *store.Tx) (err error) {
			ops, err = pendingOperationsTx(context.Background(), tx, "C1")
			return err
		})
		if len(ops) != 1 || ops[0] != OpRedirect {
			t.Errorf("pending operations %v; want the one queued REDIRECT", ops)
		}
	})
}
