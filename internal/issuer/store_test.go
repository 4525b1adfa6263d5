package issuer

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

// TestConsumerStore_StatesAndAccounts runs the consumer and account
// statements on both backends: a registration, a second one refused, the
// moves of a deletion and of a failed one, and an account's life.
func TestConsumerStore_StatesAndAccounts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		storetest.InTx(t, db, func(tx *store.Tx) error { return insertConsumerTx(ctx, tx, "ISS", "U1", 7) })
		if err := db.InTx(ctx, func(tx *store.Tx) error { return insertConsumerTx(ctx, tx, "ISS", "U1", 8) }); err == nil {
			t.Error("a consumer was registered twice")
		}
		state := func(consumerID string) ConsumerState {
			t.Helper()
			c, err := readConsumer(ctx, db, "ISS", consumerID)
			if err != nil || c == nil {
				t.Fatalf("consumer %s: %+v (%v)", consumerID, c, err)
			}
			return c.State
		}
		if c, err := readConsumer(ctx, db, "ISS", "U1"); err != nil || c.State != ConsumerActive || !c.CreatedAt.Equal(time.UnixMicro(7)) {
			t.Fatalf("consumer U1: %+v (%v)", c, err)
		}
		if c, err := readConsumer(ctx, db, "OTHER", "U1"); err != nil || c != nil {
			t.Errorf("another issuer's U1: %+v (%v)", c, err)
		}

		// A failed deletion makes the consumer usable again; a finished
		// one stays.
		storetest.InTx(t, db, func(tx *store.Tx) error { return setConsumerStateTx(ctx, tx, "ISS", "U1", ConsumerDeleting, 9) })
		storetest.InTx(t, db, func(tx *store.Tx) error {
			if c, err := consumerTx(ctx, tx, "ISS", "U1"); err != nil || c.State != ConsumerDeleting {
				t.Errorf("in tx: %+v (%v)", c, err)
			}
			return releaseConsumerTx(ctx, tx, "ISS", "U1", 10)
		})
		if s := state("U1"); s != ConsumerActive {
			t.Errorf("after a failed deletion: %s", s)
		}
		storetest.InTx(t, db, func(tx *store.Tx) error { return setConsumerStateTx(ctx, tx, "ISS", "U1", ConsumerDeleted, 11) })
		storetest.InTx(t, db, func(tx *store.Tx) error { return releaseConsumerTx(ctx, tx, "ISS", "U1", 12) })
		if s := state("U1"); s != ConsumerDeleted {
			t.Errorf("a deleted consumer was released: %s", s)
		}

		// An account: unknown, registered, updated in part, removed (its
		// card stays, without it).
		storetest.InTx(t, db, func(tx *store.Tx) error {
			if _, found, err := accountOwnerTx(ctx, tx, "ISS", "A1"); err != nil || found {
				t.Errorf("unknown account found (%v)", err)
			}
			if err := insertAccountTx(ctx, tx, "ISS", "A1", "U2", "", "ACTIVE", 1); err != nil {
				return err
			}
			if err := insertCardTx(ctx, tx, "ISS", "C1", CardInput{ConsumerID: "U2", AccountID: "A1", CardProductID: "P", State: CardActive}, 1); err != nil {
				return err
			}
			if owner, found, err := accountOwnerTx(ctx, tx, "ISS", "A1"); err != nil || !found || owner != "U2" {
				t.Errorf("owner of A1: %q %v (%v)", owner, found, err)
			}
			if err := updateAccountTx(ctx, tx, "ISS", "A1", "GOLD", "", 2); err != nil {
				return err
			}
			return updateAccountTx(ctx, tx, "ISS", "A1", "", "INACTIVE", 3)
		})
		var product, accState string
		if err := db.ReadRow(ctx, `SELECT account_product_id, state FROM issuer_accounts WHERE account_id = 'A1'`).Scan(&product, &accState); err != nil ||
			product != "GOLD" || accState != "INACTIVE" {
			t.Errorf("account A1: %q %q (%v), want GOLD INACTIVE", product, accState, err)
		}
		storetest.InTx(t, db, func(tx *store.Tx) error { return removeAccountTx(ctx, tx, "ISS", "A1") })
		storetest.InTx(t, db, func(tx *store.Tx) error {
			if _, found, _ := accountOwnerTx(ctx, tx, "ISS", "A1"); found {
				t.Error("the account is still there")
			}
			return nil
		})
		if c, err := readCard(ctx, db, "ISS", "C1"); err != nil || c == nil || c.AccountID != "" || c.ConsumerID != "U2" {
			t.Errorf("the account's card: %+v (%v), want it kept without the account", c, err)
		}
	})
}

// TestConsumerStore_RemoveTakesOnlyTheConsumersData removes a consumer's
// data beside another consumer's: only the first goes, its operations stay.
func TestConsumerStore_RemoveTakesOnlyTheConsumersData(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		storetest.InTx(t, db, func(tx *store.Tx) error {
			for _, u := range []string{"U1", "U2"} {
				card, account := "C-"+u, "A-"+u
				if err := insertAccountTx(ctx, tx, "ISS", account, u, "", "ACTIVE", 1); err != nil {
					return err
				}
				if err := insertCardTx(ctx, tx, "ISS", card, CardInput{ConsumerID: u, AccountID: account, CardProductID: "P", State: CardActive}, 1); err != nil {
					return err
				}
				op := &Operation{OperationID: "op-" + u, IssuerID: "ISS", ConsumerID: u, Type: OpDelete, Status: StatusPending, RequestorType: "ISSUER", RequestorID: "i", StartTime: time.UnixMicro(1)}
				if err := insertOperationTx(ctx, tx, op); err != nil {
					return err
				}
				if err := linkTaskTx(ctx, tx, op.OperationID, "task-"+u); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO wallet_card_accounts (wallet_card_account_id, partner_id, issuer_id, card_account_id, wallet_account_id, created_at)
					VALUES ($1, 'W', 'ISS', $2, '', 1)`, "wca-"+u, card); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO otp_state (issuer_id, card_account_id) VALUES ('ISS', $1)`, card); err != nil {
					return err
				}
			}
			return removeConsumerDataTx(ctx, tx, "ISS", "U1")
		})
		for _, table := range []string{"issuer_cards", "issuer_accounts", "wallet_card_accounts", "otp_state", "issuer_operation_tasks", "issuer_operations"} {
			var n int
			if err := db.ReadRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
				t.Fatal(err)
			}
			want := 1 // U2's
			if table == "issuer_operations" {
				want = 2 // operations stay until retention removes them
			}
			if n != want {
				t.Errorf("%s holds %d rows, want %d", table, n, want)
			}
		}
		storetest.InTx(t, db, func(tx *store.Tx) error {
			if ids, err := linkedTaskIDsTx(ctx, tx, "op-U2"); err != nil || !slices.Equal(ids, []string{"task-U2"}) {
				t.Errorf("U2's links: %v (%v)", ids, err)
			}
			return nil
		})
	})
}

// TestCardStore_RegistrationsAndMarks runs the card statements on both
// backends: registrations (first, again, a consumer given once, anew after
// deletion), what a card shows, the deletion marks and the held digital
// cards.
func TestCardStore_RegistrationsAndMarks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		card := func(id string) *cardRow {
			t.Helper()
			c, err := readCard(ctx, db, "ISS", id)
			if err != nil || c == nil {
				t.Fatalf("card %s: %+v (%v)", id, c, err)
			}
			return c
		}
		storetest.InTx(t, db, func(tx *store.Tx) error {
			return insertCardTx(ctx, tx, "ISS", "C1", CardInput{CardProductID: "P1", State: CardInactive}, 1)
		})
		if c := card("C1"); c.ConsumerID != "" || c.State != CardInactive || c.CardProductID != "P1" || !c.CreatedAt.Equal(time.UnixMicro(1)) {
			t.Fatalf("new card: %+v", c)
		}
		if c, err := readCard(ctx, db, "ISS", "C9"); err != nil || c != nil {
			t.Errorf("unknown card: %+v (%v)", c, err)
		}

		// A card without a consumer gets one, with an account; registered
		// again without naming the account, it keeps it. Another consumer
		// cannot take it.
		storetest.InTx(t, db, func(tx *store.Tx) error {
			return updateCardRegistrationTx(ctx, tx, "ISS", "C1", CardInput{ConsumerID: "U1", AccountID: "A1", CardProductID: "P2"}, 2)
		})
		storetest.InTx(t, db, func(tx *store.Tx) error {
			return updateCardRegistrationTx(ctx, tx, "ISS", "C1", CardInput{ConsumerID: "U1", CardProductID: "P3"}, 3)
		})
		storetest.InTx(t, db, func(tx *store.Tx) error {
			return updateCardRegistrationTx(ctx, tx, "ISS", "C1", CardInput{ConsumerID: "U2", CardProductID: "P4"}, 4)
		})
		if c := card("C1"); c.ConsumerID != "U1" || c.AccountID != "A1" || c.CardProductID != "P3" || !c.UpdatedAt.Equal(time.UnixMicro(3)) {
			t.Errorf("registered again: %+v, want U1's, on A1, product P3", c)
		}

		// What the card shows: digits kept when not given, terms and art
		// set and cleared.
		storetest.InTx(t, db, func(tx *store.Tx) error {
			return setCardShownTx(ctx, tx, "ISS", "C1", shown{set: true, digits: "1234", setTerms: true, terms: "t-1", setArt: true, art: `["a-1","a-2"]`})
		})
		if c := card("C1"); c.LastDigits != "1234" || c.TermsID != "t-1" || !slices.Equal(c.CardArt, []string{"a-1", "a-2"}) {
			t.Errorf("shows %q %q %v", c.LastDigits, c.TermsID, c.CardArt)
		}
		storetest.InTx(t, db, func(tx *store.Tx) error {
			return setCardShownTx(ctx, tx, "ISS", "C1", shown{set: true, setTerms: true, terms: nil})
		})
		if c := card("C1"); c.LastDigits != "1234" || c.TermsID != "" || len(c.CardArt) != 2 {
			t.Errorf("after clearing the terms: %q %q %v", c.LastDigits, c.TermsID, c.CardArt)
		}

		// The marks of operations.
		storetest.InTx(t, db, func(tx *store.Tx) error {
			if err := insertCardTx(ctx, tx, "ISS", "C2", CardInput{ConsumerID: "U1", AccountID: "A1", CardProductID: "P", State: CardActive}, 1); err != nil {
				return err
			}
			if err := insertCardTx(ctx, tx, "ISS", "C3", CardInput{ConsumerID: "U1", AccountID: "A1", CardProductID: "P", State: CardActive}, 1); err != nil {
				return err
			}
			if err := markCardDeletedTx(ctx, tx, "ISS", "C3", ReasonIssuerDecision, 5); err != nil {
				return err
			}
			return markAccountCardsDeletingTx(ctx, tx, "ISS", "A1", 6)
		})
		if c1, c3 := card("C1"), card("C3"); c1.OngoingOperation != "DELETE" || c3.OngoingOperation != "" || c3.State != CardDeleted || c3.StateReason != ReasonIssuerDecision {
			t.Errorf("account marked: C1 %q, C3 %q %s %q", c1.OngoingOperation, c3.OngoingOperation, c3.State, c3.StateReason)
		}
		storetest.InTx(t, db, func(tx *store.Tx) error {
			ids, err := accountCardIDsTx(ctx, tx, "ISS", "A1")
			if err != nil || !slices.Equal(ids, []string{"C1", "C2"}) {
				t.Errorf("cards of A1: %v (%v), want the two not deleted", ids, err)
			}
			ids, err = consumerCardIDsTx(ctx, tx, "ISS", "U1")
			if err != nil || !slices.Equal(ids, []string{"C1", "C2", "C3"}) {
				t.Errorf("cards of U1: %v (%v), want all three", ids, err)
			}
			if err := releaseAccountCardsTx(ctx, tx, "ISS", "A1", 7); err != nil {
				return err
			}
			if err := updateCardTx(ctx, tx, "ISS", "C2", cardChange{deleting: true}, 8); err != nil {
				return err
			}
			return releaseCardTx(ctx, tx, "ISS", "C2", 9)
		})
		if c1, c2 := card("C1"), card("C2"); c1.OngoingOperation != "" || c2.OngoingOperation != "" || !c2.UpdatedAt.Equal(time.UnixMicro(9)) {
			t.Errorf("released: C1 %q, C2 %q", c1.OngoingOperation, c2.OngoingOperation)
		}

		// A suspension remembers the digital cards it suspended.
		storetest.InTx(t, db, func(tx *store.Tx) error { return setHeldDigitalCardsTx(ctx, tx, "ISS", "C2", []string{"T1", "T2"}) })
		if held := card("C2").heldDigitalCards(); !slices.Equal(held, []string{"T1", "T2"}) {
			t.Errorf("held %v", held)
		}
		storetest.InTx(t, db, func(tx *store.Tx) error { return setHeldDigitalCardsTx(ctx, tx, "ISS", "C2", nil) })
		if held := card("C2").heldDigitalCards(); held != nil {
			t.Errorf("held after resumption %v", held)
		}

		// A card held by nobody is assigned; one held is not taken.
		storetest.InTx(t, db, func(tx *store.Tx) error {
			if err := insertCardTx(ctx, tx, "ISS", "C4", CardInput{CardProductID: "P", State: CardActive}, 1); err != nil {
				return err
			}
			if err := assignCardTx(ctx, tx, "ISS", "C4", "U3", 2); err != nil {
				return err
			}
			return assignCardTx(ctx, tx, "ISS", "C2", "U3", 2)
		})
		if c4, c2 := card("C4"), card("C2"); c4.ConsumerID != "U3" || c2.ConsumerID != "U1" {
			t.Errorf("assigned: C4 to %q, C2 to %q", c4.ConsumerID, c2.ConsumerID)
		}

		// A deleted card registered anew keeps nothing of before.
		storetest.InTx(t, db, func(tx *store.Tx) error {
			return renewCardTx(ctx, tx, "ISS", "C3", CardInput{ConsumerID: "U4", CardProductID: "P9", State: CardActive}, 20)
		})
		if c := card("C3"); c.ConsumerID != "U4" || c.AccountID != "" || c.State != CardActive || c.StateReason != "" || c.CardProductID != "P9" ||
			!c.CreatedAt.Equal(time.UnixMicro(20)) {
			t.Errorf("registered anew: %+v", c)
		}
	})
}

// TestOperationStore_RecordEndListPurge runs the operation statements on
// both backends: records, the pending deletions found again, an end taken
// once, pages newest first, the console's filters, outcomes and the purge.
func TestOperationStore_RecordEndListPurge(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		at := func(us int64) *time.Time { v := time.UnixMicro(us); return &v }
		ops := []*Operation{
			{OperationID: "op-1", ConsumerID: "U1", Type: OpRegister, Status: StatusSuccessful, StartTime: time.UnixMicro(100), EndTime: at(100)},
			{OperationID: "op-2", ConsumerID: "U1", Type: OpDelete, Status: StatusPending, StartTime: time.UnixMicro(200), CardID: "C1", ReasonCode: ReasonCardLost},
			{OperationID: "op-3", ConsumerID: "U1", Type: OpDelete, Status: StatusPending, StartTime: time.UnixMicro(300), AccountID: "A1"},
			{OperationID: "op-4", ConsumerID: "U1", Type: OpDelete, Status: StatusPending, StartTime: time.UnixMicro(400), CorrelationID: "case-9"},
			{OperationID: "op-5", ConsumerID: "U2", Type: OpSuspend, Status: StatusPending, StartTime: time.UnixMicro(500)},
		}
		storetest.InTx(t, db, func(tx *store.Tx) error {
			for _, op := range ops {
				op.IssuerID, op.RequestorType, op.RequestorID = "ISS", "ISSUER", "back-office"
				if err := insertOperationTx(ctx, tx, op); err != nil {
					return err
				}
			}
			return nil
		})
		if op, err := readOperation(ctx, db, "op-2"); err != nil || op.CardID != "C1" || op.ReasonCode != ReasonCardLost || op.EndTime != nil || op.tasksQueued {
			t.Fatalf("op-2: %+v (%v)", op, err)
		}
		if op, err := readConsumerOperation(ctx, db, "ISS", "U2", "op-2"); err != nil || op != nil {
			t.Errorf("U1's operation read as U2's: %+v (%v)", op, err)
		}
		if op, err := readConsumerOperation(ctx, db, "ISS", "U1", "op-1"); err != nil || op == nil || op.EndTime == nil || !op.EndTime.Equal(time.UnixMicro(100)) {
			t.Errorf("op-1: %+v (%v)", op, err)
		}
		storetest.InTx(t, db, func(tx *store.Tx) error {
			if op, err := pendingConsumerDeleteTx(ctx, tx, "ISS", "U1"); err != nil || op == nil || op.OperationID != "op-4" {
				t.Errorf("pending deletion of U1: %+v (%v), want op-4 (not the card's or the account's)", op, err)
			}
			if op, err := pendingAccountDeleteTx(ctx, tx, "ISS", "A1"); err != nil || op == nil || op.OperationID != "op-3" {
				t.Errorf("pending deletion of A1: %+v (%v)", op, err)
			}
			if err := markTasksQueuedTx(ctx, tx, "op-4"); err != nil {
				return err
			}
			ended, err := endOperationTx(ctx, tx, "op-4", StatusFailed, "WALLET_432", "refused", 450)
			if err != nil || !ended {
				t.Errorf("end op-4: %v %v", ended, err)
			}
			ended, err = endOperationTx(ctx, tx, "op-4", StatusSuccessful, "", "", 460)
			if err != nil || ended {
				t.Errorf("op-4 ended twice: %v %v", ended, err)
			}
			if op, err := pendingConsumerDeleteTx(ctx, tx, "ISS", "U1"); err != nil || op != nil {
				t.Errorf("an ended deletion is pending: %+v (%v)", op, err)
			}
			return nil
		})
		if op, err := readOperation(ctx, db, "op-4"); err != nil || op.Status != StatusFailed || op.ErrorCode != "WALLET_432" || op.Error != "refused" ||
			!op.tasksQueued || op.EndTime == nil || !op.EndTime.Equal(time.UnixMicro(450)) {
			t.Errorf("op-4 after its end: %+v (%v)", op, err)
		}

		ids := func(ops []Operation) (out []string) {
			for _, op := range ops {
				out = append(out, op.OperationID)
			}
			return out
		}
		page, total, err := consumerOperations(ctx, db, "ISS", "U1", 1, 2)
		if err != nil || total != 4 || !slices.Equal(ids(page), []string{"op-3", "op-2"}) {
			t.Errorf("U1's page at 1 of 2: %v of %d (%v)", ids(page), total, err)
		}
		if page, total, err := consumerOperations(ctx, db, "ISS", "U9", 0, 10); err != nil || total != 0 || len(page) != 0 {
			t.Errorf("an unknown consumer's page: %v of %d (%v)", ids(page), total, err)
		}
		for _, c := range []struct {
			q    store.ListQuery
			want []string
		}{
			{store.ListQuery{}, []string{"op-5", "op-4", "op-3", "op-2", "op-1"}},
			{store.ListQuery{Status: "PENDING"}, []string{"op-5", "op-3", "op-2"}},
			{store.ListQuery{Search: "case-9"}, []string{"op-4"}},
			{store.ListQuery{Search: "C1"}, []string{"op-2"}},
			{store.ListQuery{Search: "U2"}, []string{"op-5"}},
			{store.ListQuery{Before: "op-3"}, []string{"op-2", "op-1"}},
		} {
			got, err := recentOperations(ctx, db, c.q, 10)
			if err != nil || !slices.Equal(ids(got), c.want) {
				t.Errorf("recent %+v: %v (%v), want %v", c.q, ids(got), err, c.want)
			}
		}
		if got, _ := recentOperations(ctx, db, store.ListQuery{}, 2); !slices.Equal(ids(got), []string{"op-5", "op-4"}) {
			t.Errorf("recent, two: %v", ids(got))
		}
		counts, err := operationOutcomes(ctx, db, 150)
		if err != nil || counts["PENDING"] != 3 || counts["FAILED WALLET_432"] != 1 || counts["SUCCESSFUL"] != 0 {
			t.Errorf("outcomes since 150: %v (%v)", counts, err)
		}

		// The purge takes the ended operations that started before the
		// cutoff, with their links; a pending one stays however old.
		storetest.InTx(t, db, func(tx *store.Tx) error {
			for _, l := range [][2]string{{"op-4", "t-b"}, {"op-4", "t-a"}, {"op-2", "t-c"}} {
				if err := linkTaskTx(ctx, tx, l[0], l[1]); err != nil {
					return err
				}
			}
			if got, err := linkedTaskIDsTx(ctx, tx, "op-4"); err != nil || !slices.Equal(got, []string{"t-a", "t-b"}) {
				t.Errorf("op-4's tasks: %v (%v)", got, err)
			}
			n, err := purgeOperationsTx(ctx, tx, 450)
			if err != nil || n != 2 {
				t.Errorf("purged %d (%v), want op-1 and op-4", n, err)
			}
			if got, err := linkedTaskIDsTx(ctx, tx, "op-4"); err != nil || len(got) != 0 {
				t.Errorf("op-4's links after the purge: %v (%v)", got, err)
			}
			if got, err := linkedTaskIDsTx(ctx, tx, "op-2"); err != nil || len(got) != 1 {
				t.Errorf("op-2's links after the purge: %v (%v)", got, err)
			}
			return nil
		})
		if got, _ := recentOperations(ctx, db, store.ListQuery{}, 10); !slices.Equal(ids(got), []string{"op-5", "op-3", "op-2"}) {
			t.Errorf("after the purge: %v", ids(got))
		}
	})
}
