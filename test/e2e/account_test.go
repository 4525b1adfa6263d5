package e2e

import (
	"net/http"
	"testing"
)

// TestIssuer_AnAccountDeletionDeletesItsCardsDigitalCardsThenTheAccount
// deletes one of two accounts of a consumer: only that account's cards and
// their digital cards go, through the wallet server.
func TestIssuer_AnAccountDeletionDeletesItsCardsDigitalCardsThenTheAccount(t *testing.T) {
	both(t, envOptions{}, func(t *testing.T, e *env) {
		keys, _ := e.issuerKeys()
		tok := e.accessToken(keys[issuerA], issuerA)
		e.registerCard(tok, "CARD-ACC-1", "carol", "ACCOUNT-1")
		e.registerCard(tok, "CARD-ACC-2", "carol", "ACCOUNT-1")
		e.registerCard(tok, "CARD-KEEP", "carol", "ACCOUNT-2")
		gone1 := e.digital("0A0A0101", "wc-acc-1", "CARD-ACC-1", true)
		gone2 := e.digital("0A0A0102", "wc-acc-2", "CARD-ACC-2", true)
		kept := e.digital("0A0A0103", "wc-keep", "CARD-KEEP", true)

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
