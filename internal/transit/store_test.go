package transit

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
	"github.com/provhub/provhub/internal/tes"
)

// TestStore_HotStatementsPrepare parses every statement the transit
// domain prepares on a migrated SQLite schema: one that no longer parses
// (a renamed column) would otherwise only be slower, and then fail where
// it is used.
func TestStore_HotStatementsPrepare(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	for _, q := range slices.Concat(hotStatements, operationHotStatements, notificationHotStatements) {
		if err := db.Prepare(context.Background(), q); err != nil {
			t.Errorf("%v\n%s", err, q)
		}
	}
}

// insertCardC1 stores card C1 (wallet card WC1 on SE1) of issuer ISS.
func insertCardC1(t *testing.T, db *store.DB) {
	t.Helper()
	c := &Card{CardID: "C1", IssuerID: "ISS", CardAccountID: "C1", WalletCardID: "WC1", SEID: "SE1", InstanceAID: "A0"}
	if err := insertCard(context.Background(), db, c, time.UnixMicro(1)); err != nil {
		t.Fatal(err)
	}
}

// TestCardStore_ProvisionReadListRemove runs the card statements on both
// backends: a first provisioning, a second one refused while the old card
// has a task running and taken once it has ended, the reads by id and by
// wallet card, the cards of an account and of secure elements, and a
// removal refused while a task is queued.
func TestCardStore_ProvisionReadListRemove(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		now := time.UnixMicro(1_000_000)
		for _, c := range []*Card{
			{CardID: "C1", IssuerID: "ISS", CardAccountID: "C1", WalletCardID: "WC1", SEID: "SE1", DeviceID: "D1", InstanceAID: "A0000001515350"},
			{CardID: "C2", IssuerID: "ISS", CardAccountID: "C2", WalletCardID: "WC2", SEID: "SE2", InstanceAID: "A0000001515351"},
		} {
			if err := insertCard(ctx, db, c, now); err != nil {
				t.Fatal(err)
			}
		}
		if err := insertCard(ctx, db, &Card{CardID: "C1", IssuerID: "ISS", SEID: "SE9", InstanceAID: "A0"}, now); err == nil {
			t.Error("a second card with the same id was stored")
		}
		c, err := readCard(ctx, db, "C1")
		if err != nil || c.State != PendingPerso || c.DeviceID != "D1" || c.WalletCardID != "WC1" || !c.CreatedAt.Equal(now.UTC()) {
			t.Fatalf("card %+v (%v)", c, err)
		}
		if _, err := readCard(ctx, db, "C9"); KindOf(err) != KindUnknownCard {
			t.Errorf("an unknown card read as %v", err)
		}
		if c, err := readCardByWalletID(ctx, db, "WC2"); err != nil || c.CardID != "C2" || c.DeviceID != "" {
			t.Errorf("card of WC2: %+v (%v)", c, err)
		}

		again := &Card{CardID: "C1", CardAccountID: "C1", WalletCardID: "WC1b", SEID: "SE3", InstanceAID: "A0000001515352"}
		if done, err := reprovisionCard(ctx, db, again, now); err != nil || done {
			t.Fatalf("a PENDING_PERSO card was provisioned again: %v %v", done, err)
		}
		storetest.InTx(t, db, func(tx *store.Tx) error { return setCardStateTx(ctx, tx, "C1", Deleted, 2) })
		storetest.InTx(t, db, func(tx *store.Tx) error {
			return insertTaskTx(ctx, tx, &Task{TaskID: "pvh-1", CardID: "C1", SEID: "SE1", Operation: OpDelete, JobID: 1}, nil, nil, 2)
		})
		if done, err := reprovisionCard(ctx, db, again, now); err != nil || done {
			t.Fatalf("a card with a task queued was provisioned again: %v %v", done, err)
		}
		storetest.InTx(t, db, func(tx *store.Tx) error {
			_, err := endTaskTx(ctx, tx, "pvh-1", TaskCompleted, nil, "", 3)
			return err
		})
		if done, err := reprovisionCard(ctx, db, again, now); err != nil || !done {
			t.Fatalf("a DELETED card whose tasks ended was not provisioned again: %v %v", done, err)
		}
		if c, _ := readCard(ctx, db, "C1"); c.State != PendingPerso || c.SEID != "SE3" || c.WalletCardID != "WC1b" || c.DeviceID != "" {
			t.Errorf("provisioned again: %+v", c)
		}

		var ids []string
		storetest.InTx(t, db, func(tx *store.Tx) (err error) { ids, err = cardIDsOfAccountTx(ctx, tx, "ISS", "C2"); return err })
		if !slices.Equal(ids, []string{"C2"}) {
			t.Errorf("cards of account C2: %v", ids)
		}
		cards, err := cardsOfSecureElements(ctx, db, store.ListQuery{}, 1)
		if err != nil || len(cards) != 1 || cards[0].SEID != "SE2" {
			t.Errorf("first page of one secure element: %+v (%v)", cards, err)
		}
		cards, err = cardsOfSecureElements(ctx, db, store.ListQuery{Before: "SE2"}, 10)
		if err != nil || len(cards) != 1 || cards[0].CardID != "C1" {
			t.Errorf("page after SE2: %+v (%v)", cards, err)
		}
		if cards, _ := cardsOfSecureElements(ctx, db, store.ListQuery{Search: "WC2"}, 10); len(cards) != 1 || cards[0].CardID != "C2" {
			t.Errorf("search by wallet card: %+v", cards)
		}

		storetest.InTx(t, db, func(tx *store.Tx) error {
			return insertTaskTx(ctx, tx, &Task{TaskID: "pvh-2", CardID: "C2", SEID: "SE2", Operation: OpSuspend, JobID: 2}, nil, nil, 4)
		})
		storetest.InTx(t, db, func(tx *store.Tx) error {
			pending, err := removeCardTx(ctx, tx, "C2")
			if err == nil && pending != 1 {
				t.Errorf("a card with a task queued: %d pending, removed", pending)
			}
			return err
		})
		storetest.InTx(t, db, func(tx *store.Tx) error {
			pending, err := removeCardTx(ctx, tx, "C1")
			if err == nil && pending != 0 {
				t.Errorf("C1: %d pending", pending)
			}
			return err
		})
		if _, err := readCard(ctx, db, "C1"); KindOf(err) != KindUnknownCard {
			t.Errorf("a removed card reads as %v", err)
		}
		if tasks, err := tasksOfCard(ctx, db, "C1"); err != nil || len(tasks) != 0 {
			t.Errorf("a removed card's tasks: %v (%v)", tasks, err)
		}
	})
}

// TestTaskStore_ReadsOfTasks reads tasks for their run, by id, of a card,
// pending, and for the console (paged, searched, with the outline).
func TestTaskStore_ReadsOfTasks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		insertCardC1(t, db)
		storetest.InTx(t, db, func(tx *store.Tx) error {
			for i, op := range []Operation{OpSuspend, OpResume, OpMetadataUpdate} {
				task := &Task{TaskID: []string{"pvh-1", "pvh-2", "pvh-3"}[i], CardID: "C1", SEID: "SE1", Operation: op, JobID: int64(i + 1)}
				if err := insertTaskTx(ctx, tx, task, []byte(`{"p":1}`), []byte(`[{"ins":"A4"}]`), int64(10+i)); err != nil {
					return err
				}
			}
			_, err := endTaskTx(ctx, tx, "pvh-1", TaskFailed, new(432), "refused", 20)
			return err
		})
		var pending []Operation
		storetest.InTx(t, db, func(tx *store.Tx) (err error) { pending, err = pendingOperationsTx(ctx, tx, "C1"); return err })
		if !slices.Equal(pending, []Operation{OpResume, OpMetadataUpdate}) {
			t.Errorf("pending: %v", pending)
		}
		r, found, err := readTaskRun(ctx, db, "pvh-3")
		if err != nil || !found || r.op != OpMetadataUpdate || r.status != TaskQueued || r.payload.String != `{"p":1}` || r.walletCardID.String != "WC1" || r.cardID != "C1" {
			t.Errorf("run of pvh-3: %+v %v %v", r, found, err)
		}
		if _, found, err := readTaskRun(ctx, db, "pvh-9"); found || err != nil {
			t.Errorf("an unknown task to run: %v %v", found, err)
		}
		var failed, none *Task
		storetest.InTx(t, db, func(tx *store.Tx) (err error) {
			if failed, err = taskTx(ctx, tx, "pvh-1"); err != nil {
				return err
			}
			none, err = taskTx(ctx, tx, "pvh-9")
			return err
		})
		if failed == nil || failed.Status != TaskFailed || failed.StatusCode == nil || *failed.StatusCode != 432 || failed.Message != "refused" || none != nil {
			t.Errorf("task pvh-1 %+v, pvh-9 %+v", failed, none)
		}
		if tasks, err := tasksOfCard(ctx, db, "C1"); err != nil || len(tasks) != 3 || tasks[0].TaskID != "pvh-1" || tasks[2].TaskID != "pvh-3" {
			t.Errorf("tasks of C1: %+v (%v)", tasks, err)
		}
		views, err := recentTasks(ctx, db, store.ListQuery{}, 2)
		if err != nil || len(views) != 2 || views[0].TaskID != "pvh-3" || views[0].WalletCardID != "WC1" {
			t.Fatalf("newest two: %+v (%v)", views, err)
		}
		if views, _ := recentTasks(ctx, db, store.ListQuery{Before: "pvh-2"}, 10); len(views) != 1 || views[0].TaskID != "pvh-1" {
			t.Errorf("page after pvh-2: %+v", views)
		}
		if views, _ := recentTasks(ctx, db, store.ListQuery{Status: "FAILED"}, 10); len(views) != 1 || views[0].TaskID != "pvh-1" {
			t.Errorf("FAILED: %+v", views)
		}
		if views, _ := recentTasks(ctx, db, store.ListQuery{Search: "WC1"}, 10); len(views) != 3 {
			t.Errorf("search by wallet card: %d tasks", len(views))
		}
		v, outline, err := taskViewOf(ctx, db, "pvh-2")
		if err != nil || v.Operation != OpResume || outline != `[{"ins":"A4"}]` || !v.CreatedAt.Equal(time.UnixMicro(11).UTC()) {
			t.Errorf("view of pvh-2: %+v %q (%v)", v, outline, err)
		}
		if _, _, err := taskViewOf(ctx, db, "pvh-9"); KindOf(err) != KindUnknownCard {
			t.Errorf("view of an unknown task: %v", err)
		}
	})
}

// TestOperationStore_AStepIsRecordedOnce runs the device operations'
// statements on both backends: the busy and rate checks, each way a step
// moves (running, completed, refused), a step recorded twice, an end
// recorded once, the steps kept, the console list and the purge.
func TestOperationStore_AStepIsRecordedOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		now := time.UnixMicro(1_000_000)
		insert := func(id string, kind OperationKind) {
			t.Helper()
			op := &DeviceOperation{OperationID: id, Kind: kind, IssuerID: "ISS", SEID: "SE1", DeviceID: "D1", Status: OperationPending,
				CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
			storetest.InTx(t, db, func(tx *store.Tx) error { return insertOperationTx(ctx, tx, op, nil, nil, "hash-"+id) })
		}
		insert("op1", KindTopUp)
		storetest.InTx(t, db, func(tx *store.Tx) error {
			busy, err := runningOperationTx(ctx, tx, "SE1", now)
			if err == nil && busy != "op1" {
				t.Errorf("busy with %q, want op1", busy)
			}
			if busy, _ := runningOperationTx(ctx, tx, "SE1", now.Add(2*time.Minute)); busy != "" {
				t.Errorf("an expired operation keeps the device busy: %q", busy)
			}
			if n, _ := operationsSinceTx(ctx, tx, "SE1", now.Add(-time.Second)); n != 1 {
				t.Errorf("%d operations in the window, want 1", n)
			}
			return err
		})
		if err := markRedirected(ctx, db, "op1", now); err != nil {
			t.Fatal(err)
		}
		advance := func(step int, res *tes.CommandsResponse) bool {
			var moved bool
			storetest.InTx(t, db, func(tx *store.Tx) (err error) {
				if moved, err = advanceOperationTx(ctx, tx, "op1", step, res, 5); err != nil || !moved {
					return err
				}
				return insertStepTx(ctx, tx, "op1", step+1, []byte(`{}`), []byte(`{"commands":[]}`), 5)
			})
			return moved
		}
		running := &tes.CommandsResponse{Commands: []tes.Command{{}}}
		if !advance(0, running) || advance(0, running) {
			t.Fatal("step 1 was not recorded exactly once")
		}
		balance := int64(990)
		done := &tes.CommandsResponse{Balance: &balance}
		if !done.Done() {
			t.Fatal("the test's last answer must end the loop")
		}
		if !advance(1, done) || advance(2, running) {
			t.Fatal("the last step was not recorded exactly once, or a step after the end was")
		}
		op, err := readOperation(ctx, db, "op1")
		if err != nil || op.Status != OperationCompleted || op.Step != 2 || op.Balance == nil || *op.Balance != 990 || op.EndedAt == nil {
			t.Fatalf("op1 %+v (%v)", op, err)
		}
		if by, err := readOperationByToken(ctx, db, "hash-op1"); err != nil || by.OperationID != "op1" {
			t.Errorf("by token: %+v (%v)", by, err)
		}
		if raw, err := stepAnswer(ctx, db, "op1", 2); err != nil || raw != `{"commands":[]}` {
			t.Errorf("answer of step 2: %q (%v)", raw, err)
		}
		if steps, err := stepsOf(ctx, db, "op1"); err != nil || len(steps) != 2 || steps[0].Step != 1 || steps[1].Step != 2 {
			t.Errorf("steps: %+v (%v)", steps, err)
		}

		insert("op2", KindPark)
		refused := &tes.CommandsResponse{ResponseHeader: tes.ResponseHeader{StatusCode: 162, StatusMessage: "no such card"}}
		storetest.InTx(t, db, func(tx *store.Tx) error {
			moved, err := advanceOperationTx(ctx, tx, "op2", 0, refused, 6)
			if err == nil && !moved {
				t.Error("a refusal did not end op2")
			}
			if ended, _ := endOperationTx(ctx, tx, "op2", OperationFailed, 322, "expired", 7); ended {
				t.Error("an ended operation ended again")
			}
			return err
		})
		if op, _ := readOperation(ctx, db, "op2"); op.Status != OperationFailed || op.StatusCode == nil || *op.StatusCode != 162 || op.Message != "no such card" {
			t.Errorf("op2 %+v", op)
		}
		insert("op3", KindTopUp)
		storetest.InTx(t, db, func(tx *store.Tx) error {
			ended, err := endOperationTx(ctx, tx, "op3", OperationFailed, 322, "expired", 8)
			if err == nil && !ended {
				t.Error("op3 did not end")
			}
			return err
		})
		if ops, err := recentOperations(ctx, db, store.ListQuery{Status: "FAILED"}, 10); err != nil || len(ops) != 2 {
			t.Errorf("FAILED operations: %d (%v)", len(ops), err)
		}
		if ops, _ := recentOperations(ctx, db, store.ListQuery{Search: "op1"}, 10); len(ops) != 1 {
			t.Errorf("search op1: %d", len(ops))
		}
		storetest.InTx(t, db, func(tx *store.Tx) error {
			n, err := purgeOperationsTx(ctx, tx, time.UnixMicro(9))
			if err == nil && n != 3 {
				t.Errorf("purged %d operations, want 3", n)
			}
			return err
		})
		if steps, _ := stepsOf(ctx, db, "op1"); len(steps) != 0 {
			t.Errorf("a purged operation's steps stayed: %d", len(steps))
		}
	})
}

// TestNotificationStore_KindsAndOutcomes turns kinds off and on, queues a
// notification, ends it once and lists it, on both backends.
func TestNotificationStore_KindsAndOutcomes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		insertCardC1(t, db)
		storetest.InTx(t, db, func(tx *store.Tx) error {
			return setKindsTx(ctx, tx, "ISS", nil, []string{"CARD_SUSPENDED", "TOP_UP_COMPLETED"})
		})
		storetest.InTx(t, db, func(tx *store.Tx) error {
			return setKindsTx(ctx, tx, "ISS", []string{"TOP_UP_COMPLETED"}, []string{"CARD_SUSPENDED"})
		})
		if off, err := kindsOff(ctx, db, "ISS"); err != nil || !slices.Equal(off, []string{"CARD_SUSPENDED"}) {
			t.Errorf("kinds off: %v (%v)", off, err)
		}
		storetest.InTx(t, db, func(tx *store.Tx) error {
			off, err := kindOffTx(ctx, tx, "ISS", "CARD_SUSPENDED")
			if err == nil && !off {
				t.Error("CARD_SUSPENDED is on")
			}
			if on, _ := kindOffTx(ctx, tx, "ISS", "TOP_UP_COMPLETED"); on {
				t.Error("TOP_UP_COMPLETED is off")
			}
			return err
		})
		storetest.InTx(t, db, func(tx *store.Tx) error {
			return insertNotificationTx(ctx, tx, queuedNotification{id: "pvn-1", cardID: "C1", seID: "SE1", kind: "CARD_RESUMED", payload: []byte(`{"kind":"CARD_RESUMED"}`), jobID: 1}, time.UnixMicro(5))
		})
		n, found, err := readNotificationToSend(ctx, db, "pvn-1")
		if err != nil || !found || n.status != NotificationQueued || n.payload.String != `{"kind":"CARD_RESUMED"}` || n.walletCardID.String != "WC1" {
			t.Errorf("to send: %+v %v %v", n, found, err)
		}
		for i, want := range []bool{true, false} {
			storetest.InTx(t, db, func(tx *store.Tx) error {
				ended, err := endNotificationTx(ctx, tx, "pvn-1", NotificationFailed, new(941), "gone", time.UnixMicro(6))
				if err == nil && ended != want {
					t.Errorf("end %d: ended %v", i+1, ended)
				}
				return err
			})
		}
		list, err := notificationsOfCard(ctx, db, "C1")
		if err != nil || len(list) != 1 || list[0].Status != NotificationFailed || list[0].StatusCode == nil || *list[0].StatusCode != 941 || list[0].Message != "gone" {
			t.Errorf("notifications: %+v (%v)", list, err)
		}
		if _, found, err := readNotificationToSend(ctx, db, "pvn-9"); found || err != nil {
			t.Errorf("an unknown notification: %v %v", found, err)
		}
	})
}

// TestStore_OutcomeCountsByStatusAndCode counts tasks and device operations
// for the dashboard on both backends: by status, the code of a failure, a
// task retrying the wallet server apart, and only those of the window.
func TestStore_OutcomeCountsByStatusAndCode(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		for _, q := range []string{
			`INSERT INTO transit_cards (card_id, issuer_id, card_account_id, wallet_card_id, se_id, device_id, instance_aid, state, created_at, updated_at)
				VALUES ('C1', 'ISS', 'C1', 'WC1', 'SE1', 'DEV1', 'A000000151', 'ACTIVE', 1, 1)`,
			`INSERT INTO transit_tasks (task_id, card_id, se_id, operation, status, status_code, message, job_id, created_at, updated_at) VALUES
				('pvh-1', 'C1', 'SE1', 'SUSPEND', 'FAILED', 432, 'card deleted', 1, 1, 100),
				('pvh-2', 'C1', 'SE1', 'SUSPEND', 'FAILED', 432, 'card deleted', 2, 1, 100),
				('pvh-3', 'C1', 'SE1', 'RESUME', 'QUEUED', NULL, 'retrying: the wallet server is unavailable', 3, 1, 100),
				('pvh-4', 'C1', 'SE1', 'RESUME', 'COMPLETED', NULL, NULL, 4, 1, 100),
				('pvh-5', 'C1', 'SE1', 'RESUME', 'COMPLETED', NULL, NULL, 5, 1, 99)`,
		} {
			if _, err := db.Writer().ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		tasks, err := taskOutcomes(ctx, db, 100)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int{"FAILED 432": 2, "QUEUED retrying": 1, "COMPLETED": 1}; !maps.Equal(tasks, want) {
			t.Errorf("tasks %v, want %v", tasks, want)
		}

		at := func(s int64) time.Time { return time.UnixMicro(s) }
		for i, o := range []struct {
			status  OperationStatus
			code    int
			created int64
		}{{OperationFailed, 162, 100}, {OperationFailed, 162, 100}, {OperationCompleted, 0, 100}, {OperationFailed, 322, 99}} {
			op := &DeviceOperation{OperationID: fmt.Sprintf("op%d", i), Kind: KindTopUp, IssuerID: "ISS", SEID: "SE1", DeviceID: "D1",
				Status: OperationPending, CreatedAt: at(o.created), ExpiresAt: at(o.created).Add(time.Minute)}
			storetest.InTx(t, db, func(tx *store.Tx) error {
				if err := insertOperationTx(ctx, tx, op, nil, nil, "hash-"+op.OperationID); err != nil {
					return err
				}
				_, err := endOperationTx(ctx, tx, op.OperationID, o.status, o.code, "", o.created)
				return err
			})
		}
		ops, err := operationOutcomes(ctx, db, 100)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int{"FAILED 162": 2, "COMPLETED": 1}; !maps.Equal(ops, want) {
			t.Errorf("operations %v, want %v", ops, want)
		}
	})
}
