package issuer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

// TestCardChangeFor: the card operations' rule, state by state.
func TestCardChangeFor(t *testing.T) {
	for _, c := range []struct {
		name    string
		card    Card
		typ     OperationType
		code    string
		want    cardChange
		refused string // "" when allowed
	}{
		{"suspend an active card", Card{State: CardActive}, OpSuspend, ReasonCardLost, cardChange{state: CardSuspended, reason: ReasonCardLost}, ""},
		{"suspend a suspended card", Card{State: CardSuspended}, OpSuspend, ReasonCardLost, cardChange{}, "only an ACTIVE card can be suspended"},
		{"suspend an inactive card", Card{State: CardInactive}, OpSuspend, ReasonIssuerDecision, cardChange{}, "only an ACTIVE card can be suspended"},
		{"resume a lost card found", Card{State: CardSuspended, StateReason: ReasonCardLost}, OpResume, ReasonCardFound, cardChange{state: CardActive}, ""},
		{"resume a lost card by decision", Card{State: CardSuspended, StateReason: ReasonCardLost}, OpResume, ReasonIssuerDecision, cardChange{}, "cannot be resumed for"},
		{"resume a stolen card", Card{State: CardSuspended, StateReason: ReasonCardStolen}, OpResume, ReasonIssuerDecision, cardChange{}, "cannot be resumed for"},
		{"resume an active card", Card{State: CardActive}, OpResume, ReasonIssuerDecision, cardChange{}, "is not suspended"},
		{"delete an active card", Card{State: CardActive}, OpDelete, ReasonIssuerDecision, cardChange{deleting: true}, ""},
		{"delete a suspended card", Card{State: CardSuspended}, OpDelete, ReasonIssuerDecision, cardChange{deleting: true}, ""},
		{"anything on a deleted card", Card{State: CardDeleted}, OpDelete, ReasonIssuerDecision, cardChange{}, "is deleted"},
		{"anything while a delete runs", Card{State: CardActive, OngoingOperation: "DELETE"}, OpSuspend, ReasonCardLost, cardChange{}, "is being deleted"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.card.CardID = "C1"
			got, err := cardChangeFor(&c.card, c.typ, c.code)
			switch {
			case c.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.refused != "" && (err == nil || KindOf(err) != KindForbidden || !strings.Contains(err.Error(), c.refused)):
				t.Fatalf("error %v, want a refusal saying %q", err, c.refused)
			case got != c.want:
				t.Fatalf("change %+v, want %+v", got, c.want)
			}
		})
	}
}

// TestUpdateCardTx writes each kind of change on both backends.
func TestUpdateCardTx(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.Writer().ExecContext(ctx, `INSERT INTO issuer_cards (issuer_id, card_id, consumer_id, card_product_id, state, created_at, updated_at)
			VALUES ('ISS', 'C1', 'U1', 'P1', 'ACTIVE', 1, 1)`); err != nil {
			t.Fatal(err)
		}
		read := func() (state string, reason, ongoing *string, updated int64) {
			if err := db.Reader().QueryRowContext(ctx, `SELECT state, state_reason, ongoing_operation, updated_at FROM issuer_cards WHERE card_id = 'C1'`).
				Scan(&state, &reason, &ongoing, &updated); err != nil {
				t.Fatal(err)
			}
			return
		}
		now := time.UnixMicro(5_000_000)
		apply := func(ch cardChange) {
			if err := db.InTx(ctx, func(tx *store.Tx) error { return updateCardTx(ctx, tx, "ISS", "C1", ch, now.UnixMicro()) }); err != nil {
				t.Fatal(err)
			}
		}
		apply(cardChange{state: CardSuspended, reason: ReasonCardLost})
		if st, r, o, u := read(); st != "SUSPENDED" || r == nil || *r != ReasonCardLost || o != nil || u != now.UnixMicro() {
			t.Errorf("after suspension: %s %v %v %d", st, r, o, u)
		}
		apply(cardChange{state: CardActive})
		if st, r, _, _ := read(); st != "ACTIVE" || r != nil {
			t.Errorf("after resumption: %s reason %v, want ACTIVE without a reason", st, r)
		}
		apply(cardChange{deleting: true})
		if st, _, o, _ := read(); st != "ACTIVE" || o == nil || *o != "DELETE" {
			t.Errorf("after a delete began: %s ongoing %v", st, o)
		}
	})
}
