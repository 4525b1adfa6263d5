package e2e

import (
	"net/http"
	"testing"
)

// TestIssuer_AnAccountDeletionDeletesItsCardsDigitalCardsThenTheAccount
// deletes one of two accounts of a consumer: only that account's cards and
// their digital cards go, through the wallet server.
func TestIssuer_AnAccountDeletionDeletesItsCardsDigitalCardsThenTheAccount(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		keys, _ := e.issuerKeys()
		tok := e.accessToken(keys[issuerA], issuerA)
		e.registerCard(tok, "CARD-ACC-1", "carol", "ACCOUNT-1")
		e.registerCard(tok, "CARD-ACC-2", "carol", "ACCOUNT-1")
		e.registerCard(tok, "CARD-KEEP", "carol", "ACCOUNT-2")
		gone1, gone2, kept := "CARD-ACC-1", "CARD-ACC-2", "CARD-KEEP"
		e.digital("0A0A0101", gone1, true)
		e.digital("0A0A0102", gone2, true)
		e.digital("0A0A0103", kept, true)

		var res opResult
		e.mustBank(http.StatusOK, &res, conforming, tok, "POST", "/issuers/"+issuerA+"/accounts/ACCOUNT-1/operations:delete", "",
			map[string]string{"reasonCode": "CLOSED_ACCOUNT", "reason": "account closed"})
		if res.Status != "PENDING" {
			t.Fatalf("delete account: %+v", res)
		}
		// Asked again while it runs: the same operation.
		var again opResult
		e.mustBank(http.StatusOK, &again, conforming, tok, "POST", "/issuers/"+issuerA+"/accounts/ACCOUNT-1/operations:delete", "", nil)
		if again.OperationID != res.OperationID {
			t.Errorf("a second delete answered %s, want %s", again.OperationID, res.OperationID)
		}
		op := e.waitOperation(tok, "carol", res.OperationID)
		if op.Status != "SUCCESSFUL" || op.Operation != "DELETE" || op.ReasonCode != "CLOSED_ACCOUNT" {
			t.Fatalf("operation: %+v", op)
		}
		for _, c := range []string{gone1, gone2} {
			if st := e.card(c).State; st != "DELETED" {
				t.Errorf("digital card %s is %s", c, st)
			}
		}
		if st := e.card(kept).State; st != "ACTIVE" {
			t.Errorf("the other account's digital card is %s", st)
		}
		for cardID, want := range map[string]string{"CARD-ACC-1": "DELETED", "CARD-ACC-2": "DELETED", "CARD-KEEP": "ACTIVE"} {
			var c cardOut
			e.mustBank(http.StatusOK, &c, conforming, tok, "GET", "/issuers/"+issuerA+"/cards/"+cardID, "", nil)
			if c.State != want || c.Ongoing != "" {
				t.Errorf("card %s: %+v, want %s", cardID, c, want)
			}
		}
		if n := e.count(`SELECT COUNT(*) FROM issuer_accounts WHERE account_id = 'ACCOUNT-1'`); n != 0 {
			t.Error("the account is still registered")
		}
		if n := e.count(`SELECT COUNT(*) FROM issuer_accounts WHERE account_id = 'ACCOUNT-2'`); n != 1 {
			t.Error("the other account went too")
		}
		// Unknown now.
		e.mustBank(http.StatusNotFound, nil, conforming, tok, "POST", "/issuers/"+issuerA+"/accounts/ACCOUNT-1/operations:delete", "", nil)
		// Another issuer's token for this path is refused.
		other := e.accessToken(keys[issuerB], issuerB)
		e.mustBank(http.StatusForbidden, nil, conforming, other, "POST", "/issuers/"+issuerA+"/accounts/ACCOUNT-2/operations:delete", "", nil)
	})
}

// TestIssuer_AConsumerIsRegisteredWithCardsThatAlreadyExist registers
// cards without an end user, then an end user with them, then adds one.
func TestIssuer_AConsumerIsRegisteredWithCardsThatAlreadyExist(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		keys, _ := e.issuerKeys()
		tok := e.accessToken(keys[issuerA], issuerA)
		for _, id := range []string{"CARD-W1", "CARD-W2", "CARD-W3"} {
			e.mustBank(http.StatusNoContent, nil, conforming, tok, "PUT", "/issuers/"+issuerA+"/cards/"+id, "", map[string]string{"cardProductId": "TRANSIT_PRODUCT"})
		}
		var c cardOut
		e.mustBank(http.StatusOK, &c, conforming, tok, "GET", "/issuers/"+issuerA+"/cards/CARD-W1", "", nil)
		if c.ConsumerID != "" || c.State != "ACTIVE" {
			t.Fatalf("a card without a consumer: %+v", c)
		}
		// An account needs an end user to belong to.
		e.mustBank(http.StatusBadRequest, nil, conforming, tok, "PUT", "/issuers/"+issuerA+"/cards/CARD-W9", "", map[string]string{"cardProductId": "P", "accountId": "ACC-W"})
		// Actions wait for an end user.
		e.mustBank(http.StatusForbidden, nil, conforming, tok, "POST", "/issuers/"+issuerA+"/cards/CARD-W1/operations:suspend", "", nil)

		cards := func(ids ...string) map[string]any {
			list := []map[string]string{}
			for _, id := range ids {
				list = append(list, map[string]string{"cardId": id})
			}
			return map[string]any{"cards": list}
		}
		e.mustBank(http.StatusNoContent, nil, conforming, tok, "PUT", "/issuers/"+issuerA+"/consumers/walt/cards", "", cards("CARD-W1", "CARD-W2"))
		// Again, with a new card: added; the others stay.
		e.mustBank(http.StatusNoContent, nil, conforming, tok, "PUT", "/issuers/"+issuerA+"/consumers/walt/cards", "", cards("CARD-W2", "CARD-W3"))
		for _, id := range []string{"CARD-W1", "CARD-W2", "CARD-W3"} {
			var got cardOut
			e.mustBank(http.StatusOK, &got, conforming, tok, "GET", "/issuers/"+issuerA+"/cards/"+id, "", nil)
			if got.ConsumerID != "walt" {
				t.Errorf("card %s: consumer %q", id, got.ConsumerID)
			}
		}
		var ops struct {
			Operations []operationOut `json:"operations"`
		}
		e.mustBank(http.StatusOK, &ops, conforming, tok, "GET", "/issuers/"+issuerA+"/consumers/walt/operations", "", nil)
		if len(ops.Operations) != 1 || ops.Operations[0].Operation != "REGISTER" {
			t.Errorf("operations %+v", ops.Operations)
		}
		// A card of another consumer, an unknown one: the whole call is refused.
		e.registerCard(tok, "CARD-OTHER", "xena", "")
		e.mustBank(http.StatusNoContent, nil, conforming, tok, "PUT", "/issuers/"+issuerA+"/cards/CARD-W4", "", map[string]string{"cardProductId": "P"})
		e.mustBank(http.StatusConflict, nil, conforming, tok, "PUT", "/issuers/"+issuerA+"/consumers/walt/cards", "", cards("CARD-W4", "CARD-OTHER"))
		e.mustBank(http.StatusNotFound, nil, conforming, tok, "PUT", "/issuers/"+issuerA+"/consumers/walt/cards", "", cards("CARD-W4", "CARD-NONE"))
		var w4 cardOut
		e.mustBank(http.StatusOK, &w4, conforming, tok, "GET", "/issuers/"+issuerA+"/cards/CARD-W4", "", nil)
		if w4.ConsumerID != "" {
			t.Errorf("a refused call assigned CARD-W4 to %q", w4.ConsumerID)
		}
		// The cards now act for walt: a suspension is accepted.
		var res opResult
		e.mustBank(http.StatusOK, &res, conforming, tok, "POST", "/issuers/"+issuerA+"/cards/CARD-W1/operations:suspend", "", nil)
		if op := e.waitOperation(tok, "walt", res.OperationID); op.Status != "SUCCESSFUL" {
			t.Errorf("suspend: %+v", op)
		}
	})
}
