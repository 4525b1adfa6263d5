package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/provhub/provhub/internal/oauth"
	"github.com/provhub/provhub/internal/transit"
)

const (
	issuerA = "ISSUER0001"
	issuerB = "ISSUER0002"
)

// issuerKeys registers a key for each test issuer and returns the private
// keys and the PEM public key of issuer A.
func (e *env) issuerKeys() (map[string]*ecdsa.PrivateKey, []byte) {
	e.t.Helper()
	keys := map[string]*ecdsa.PrivateKey{}
	var pubA []byte
	for _, id := range []string{issuerA, issuerB} {
		privPEM, pubPEM, err := oauth.GenerateKey()
		if err != nil {
			e.t.Fatal(err)
		}
		if err := e.hub.OAuth().AddClientKey(context.Background(), id, "k1", pubPEM); err != nil {
			e.t.Fatal(err)
		}
		if keys[id], err = oauth.ParsePrivateKey(privPEM); err != nil {
			e.t.Fatal(err)
		}
		if id == issuerA {
			pubA = pubPEM
		}
	}
	return keys, pubA
}

type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
	Error       string `json:"error"`
}

// tokenCall posts an assertion to the token endpoint, form-encoded or JSON.
func (e *env) tokenCall(rule specRule, assertion string, asJSON bool) (int, tokenAnswer) {
	e.t.Helper()
	var body []byte
	hdr := http.Header{}
	if asJSON {
		body, _ = json.Marshal(map[string]string{"grant_type": oauth.GrantType, "assertion": assertion})
		hdr.Set("Content-Type", "application/json")
	} else {
		body = []byte(url.Values{"grant_type": {oauth.GrantType}, "assertion": {assertion}}.Encode())
		hdr.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	status, _, raw := e.issuer.send(rule, http.MethodPost, "/authz/v1/oauth2/token", "", body, hdr)
	var a tokenAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		e.t.Fatalf("token endpoint: %s", raw)
	}
	return status, a
}

func (e *env) assertion(key *ecdsa.PrivateKey, issuerID string, mod func(*oauth.Assertion)) string {
	e.t.Helper()
	a := oauth.Assertion{IssuerID: issuerID, Kid: "k1", Expires: e.clock.Now().Add(5 * time.Minute)}
	if mod != nil {
		mod(&a)
	}
	s, err := oauth.SignAssertion(key, a)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) accessToken(key *ecdsa.PrivateKey, issuerID string) string {
	e.t.Helper()
	status, a := e.tokenCall(conforming, e.assertion(key, issuerID, nil), false)
	if status != http.StatusOK {
		e.t.Fatalf("token: HTTP %d %+v", status, a)
	}
	return a.AccessToken
}

// bank calls a banking path with a token; it returns the status and body.
func (e *env) bank(rule specRule, token, method, path, query string, body any) (int, []byte) {
	e.t.Helper()
	hdr := http.Header{}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	default:
		raw, _ = json.Marshal(b)
	}
	if raw != nil {
		hdr.Set("Content-Type", "application/json")
	}
	status, _, out := e.issuer.send(rule, method, "/banking/v1"+path, query, raw, hdr)
	return status, out
}

// mustBank is bank followed by must.
func (e *env) mustBank(want int, into any, rule specRule, token, method, path, query string, body any) {
	e.t.Helper()
	status, raw := e.bank(rule, token, method, path, query, body)
	e.must(want, into, status, raw)
}

// must fails the test unless the call answered want; it decodes into.
func (e *env) must(want int, into any, status int, raw []byte) {
	e.t.Helper()
	if status != want {
		e.t.Fatalf("HTTP %d, want %d: %s", status, want, raw)
	}
	if into != nil {
		if err := json.Unmarshal(raw, into); err != nil {
			e.t.Fatalf("%v: %s", err, raw)
		}
	}
}

type opResult struct {
	OperationID string `json:"operationId"`
	Status      string `json:"status"`
}

type operationOut struct {
	OperationID   string `json:"operationId"`
	Operation     string `json:"operation"`
	Status        string `json:"status"`
	StartTime     string `json:"startTime"`
	EndTime       string `json:"endTime"`
	RequestorType string `json:"requestorType"`
	RequestorID   string `json:"requestorId"`
	Reason        string `json:"reason"`
	ReasonCode    string `json:"reasonCode"`
	ErrorCode     string `json:"errorCode"`
	Error         string `json:"error"`
	CorrelationID string `json:"correlationId"`
	Details       struct {
		CardID        string `json:"cardId"`
		DigitalCardID string `json:"digitalCardId"`
	} `json:"details"`
}

type cardOut struct {
	ConsumerID   string `json:"consumerId"`
	State        string `json:"state"`
	StateReason  string `json:"stateReason"`
	Ongoing      string `json:"ongoingOperation"`
	DigitalCards []struct {
		DigitalCardID string `json:"digitalCardId"`
		State         string `json:"state"`
	} `json:"digitalCards"`
}

// waitOperation polls an operation until it is no longer PENDING.
func (e *env) waitOperation(token, consumerID, operationID string) operationOut {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var op operationOut
		e.mustBank(http.StatusOK, &op, conforming, token, "GET", "/issuers/"+issuerA+"/consumers/"+consumerID+"/operations/"+operationID, "", nil)
		if op.Status != "PENDING" {
			return op
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("operation %s still PENDING", operationID)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// digital provisions a digital card of issuer A's card cardID on seID and,
// when personalise is set, personalises it; it returns the transit card id.
func (e *env) digital(seID, cardID string, personalise bool) (walletCardID string) {
	e.t.Helper()
	walletCardID = e.provisionFor(issuerA, seID, cardID)
	if personalise {
		p := e.transitCall(conforming, transitBase+"submitCardPersoData", map[string]any{"issuerId": issuerA, "cardId": cardID,
			"cardPersoData": map[string]any{"dgis": []map[string]string{{"dgi": "0101", "data": "0102030405"}}}})
		if t := e.waitTask(cardID, p.TaskID); t.Status != transit.TaskCompleted {
			e.t.Fatalf("perso: %+v", t)
		}
	}
	return walletCardID
}

func (e *env) registerCard(token, cardID, consumerID, accountID string) {
	e.t.Helper()
	body := map[string]any{"consumerId": consumerID, "cardProductId": "TRANSIT_PRODUCT"}
	if accountID != "" {
		body["accountId"] = accountID
	}
	e.mustBank(http.StatusNoContent, nil, conforming, token, "PUT", "/issuers/"+issuerA+"/cards/"+cardID, "", body)
}

func (e *env) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.hub.DB().Writer().QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func TestIssuer_DeleteConsumerCascadesThroughTheWalletAndBurnsTheID(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		keys, _ := e.issuerKeys()
		tok := e.accessToken(keys[issuerA], issuerA)
		e.mustBank(http.StatusNoContent, nil, conforming, tok, "PUT", "/issuers/"+issuerA+"/consumers/alice-7", "", map[string]string{"state": "ignored"})
		e.mustBank(http.StatusNoContent, nil, conforming, tok, "PUT", "/issuers/"+issuerA+"/accounts/ACC-1", "",
			map[string]string{"consumerId": "alice-7", "state": "ACTIVE", "accountProductId": "STORED_VALUE"})
		e.registerCard(tok, "CARD-1", "alice-7", "ACC-1")
		e.registerCard(tok, "CARD-2", "alice-7", "ACC-1")
		e.registerCard(tok, "CARD-3", "alice-7", "")
		// Digital cards on two secure elements: two on A, one on B.
		wcAlice1 := e.digital("0A000001", "CARD-1", true)
		wcAlice2 := e.digital("0A000001", "CARD-2", true)
		wcAlice3 := e.digital("0B000002", "CARD-3", true)
		// Another consumer's card on the same secure element must survive.
		e.registerCard(tok, "CARD-BOB", "bob-1", "")
		wcBob := e.digital("0B000002", "CARD-BOB", true)
		var card cardOut
		e.mustBank(http.StatusOK, &card, conforming, tok, "GET", "/issuers/"+issuerA+"/cards/CARD-1", "", nil)
		if card.ConsumerID != "alice-7" || len(card.DigitalCards) != 1 || card.DigitalCards[0].State != "ACTIVE" {
			t.Fatalf("card before deletion: %+v", card)
		}
		if se, _ := e.wsim.SecureElement("0A000001"); len(se.Instances) != 2 {
			t.Fatalf("secure element A before deletion: %+v", se)
		}

		var res opResult
		status, _, raw := e.issuer.send(conforming, "POST", "/banking/v1/issuers/"+issuerA+"/consumers/alice-7/operations:delete", "",
			[]byte(`{"reason":"customer asked on June 28","reasonCode":"USER_DECISION"}`),
			http.Header{"Authorization": {"Bearer " + tok}, "Content-Type": {"application/json"}, "X-Correlation-Id": {"case-4711"}})
		e.must(http.StatusOK, &res, status, raw)
		if res.Status != "PENDING" || res.OperationID == "" {
			t.Fatalf("delete answer: %+v", res)
		}
		// Asking again while it runs answers the same operation.
		var again opResult
		e.mustBank(http.StatusOK, &again, conforming, tok, "POST", "/issuers/"+issuerA+"/consumers/alice-7/operations:delete", "", nil)
		if again.OperationID != res.OperationID && again.Status == "PENDING" {
			t.Errorf("a second delete while the first runs gave another operation: %+v", again)
		}
		op := e.waitOperation(tok, "alice-7", res.OperationID)
		if op.Status != "SUCCESSFUL" || op.Operation != "DELETE" || op.RequestorType != "ISSUER" || op.RequestorID != issuerA ||
			op.Reason != "customer asked on June 28" || op.ReasonCode != "USER_DECISION" || op.EndTime == "" || op.CorrelationID != "case-4711" {
			t.Fatalf("operation: %+v", op)
		}
		// The wallet deleted every digital card of alice, and only those.
		if se, _ := e.wsim.SecureElement("0A000001"); len(se.Instances) != 0 {
			t.Errorf("secure element A still holds %+v", se.Instances)
		}
		if se, _ := e.wsim.SecureElement("0B000002"); len(se.Instances) != 1 {
			t.Errorf("secure element B should hold bob's card only: %+v", se.Instances)
		}
		// Nothing of alice is left in the database but the tombstone and
		// the operations.
		for q, want := range map[string]int{
			`SELECT COUNT(*) FROM issuer_cards WHERE consumer_id = 'alice-7'`:                                                         0,
			`SELECT COUNT(*) FROM issuer_accounts WHERE consumer_id = 'alice-7'`:                                                      0,
			`SELECT COUNT(*) FROM transit_cards WHERE card_account_id IN ('CARD-1', 'CARD-2', 'CARD-3')`:                              0,
			`SELECT COUNT(*) FROM transit_cards WHERE wallet_card_id IN ('` + wcAlice1 + `', '` + wcAlice2 + `', '` + wcAlice3 + `')`: 0,
			`SELECT COUNT(*) FROM wallet_card_accounts WHERE card_account_id IN ('CARD-1', 'CARD-2', 'CARD-3')`:                       0,
			`SELECT COUNT(*) FROM transit_tasks WHERE card_id IN ('CARD-1', 'CARD-2', 'CARD-3')`:                                      0,
			`SELECT COUNT(*) FROM issuer_consumers WHERE consumer_id = 'alice-7' AND state = 'DELETED'`:                               1,
			`SELECT COUNT(*) FROM issuer_cards WHERE consumer_id = 'bob-1'`:                                                           1,
			`SELECT COUNT(*) FROM transit_cards WHERE wallet_card_id = '` + wcBob + `' AND state = 'ACTIVE'`:                          1,
			`SELECT COUNT(*) FROM wallet_card_accounts WHERE card_account_id = 'CARD-BOB'`:                                            1,
			`SELECT COUNT(*) FROM issuer_operation_tasks t JOIN issuer_operations o ON o.operation_id = t.operation_id
				WHERE o.consumer_id = 'alice-7'`: 0,
		} {
			if got := e.count(q); got != want {
				t.Errorf("%s = %d, want %d", q, got, want)
			}
		}
		// The consumerId is burnt, and its data is gone from the API.
		for _, c := range []struct {
			method, path string
			body         any
			want         int
		}{
			{"PUT", "/consumers/alice-7", nil, http.StatusForbidden},
			{"PUT", "/cards/CARD-9", map[string]string{"consumerId": "alice-7", "cardProductId": "P"}, http.StatusForbidden},
			{"POST", "/consumers/alice-7/operations:delete", nil, http.StatusForbidden},
			{"GET", "/cards/CARD-1", nil, http.StatusNotFound},
			{"GET", "/digitalCards/" + wcAlice1, nil, http.StatusNotFound},
			{"POST", "/consumers/nobody/operations:delete", nil, http.StatusNotFound},
		} {
			status, raw := e.bank(conforming, tok, c.method, "/issuers/"+issuerA+c.path, "", c.body)
			if status != c.want || !strings.Contains(string(raw), `"error"`) {
				t.Errorf("%s %s: HTTP %d %s, want %d", c.method, c.path, status, raw, c.want)
			}
		}
		// Its operations stay readable: the REGISTER and the DELETE.
		var page struct {
			Operations []operationOut `json:"operations"`
			Remaining  int            `json:"remainingOperations"`
		}
		e.mustBank(http.StatusOK, &page, conforming, tok, "GET", "/issuers/"+issuerA+"/consumers/alice-7/operations", "", nil)
		if len(page.Operations) != 2 || page.Operations[0].Operation != "DELETE" || page.Operations[1].Operation != "REGISTER" || page.Remaining != 0 {
			t.Errorf("operations after deletion: %+v", page)
		}
		if !strings.Contains(e.logs.String(), `"correlation_id":"case-4711"`) {
			t.Error("the caller's correlation id is not in the logs")
		}
	})
}

func TestIssuer_DeletingAPendingDigitalCardAndACardWithNoDigitalCards(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	keys, _ := e.issuerKeys()
	tok := e.accessToken(keys[issuerA], issuerA)
	e.registerCard(tok, "CARD-P", "carol", "")
	e.registerCard(tok, "CARD-EMPTY", "carol", "")
	wcCarol := e.digital("0C000003", "CARD-P", false)
	var res opResult
	e.mustBank(http.StatusOK, &res, conforming, tok, "POST", "/issuers/"+issuerA+"/consumers/carol/operations:delete", "", nil)
	if op := e.waitOperation(tok, "carol", res.OperationID); op.Status != "SUCCESSFUL" || op.ReasonCode != "ISSUER_DECISION" {
		t.Fatalf("operation: %+v", op)
	}
	if n := e.count(`SELECT COUNT(*) FROM transit_cards WHERE wallet_card_id = '` + wcCarol + `'`); n != 0 {
		t.Errorf("the never personalised digital card is still stored")
	}
}

func TestIssuer_WalletFailureEndsTheDeletionFailedAndLeavesTheConsumerUsable(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		keys, _ := e.issuerKeys()
		tok := e.accessToken(keys[issuerA], issuerA)
		e.registerCard(tok, "CARD-D1", "dave", "")
		e.registerCard(tok, "CARD-D2", "dave", "")
		e.digital("0D000001", "CARD-D1", true)
		wcDave2 := e.digital("0D000002", "CARD-D2", true)
		// Someone deletes dave's second card at the wallet behind the hub's
		// back: the hub's DELETE is then refused (432) for good.
		if err := e.wsimUpdate(wcDave2, "0D000002", "DELETE"); err != nil {
			t.Fatal(err)
		}
		e.wsim.Wait()
		var res opResult
		e.mustBank(http.StatusOK, &res, conforming, tok, "POST", "/issuers/"+issuerA+"/consumers/dave/operations:delete", "", nil)
		op := e.waitOperation(tok, "dave", res.OperationID)
		if op.Status != "FAILED" || op.ErrorCode != "WALLET_432" || !strings.Contains(op.Error, wcDave2) || op.EndTime == "" {
			t.Fatalf("operation: %+v", op)
		}
		// The consumer is usable again; the digital card whose DELETE
		// completed stays deleted, the other is as it was.
		e.mustBank(http.StatusNoContent, nil, conforming, tok, "PUT", "/issuers/"+issuerA+"/consumers/dave", "", nil)
		var c1, c2 cardOut
		e.mustBank(http.StatusOK, &c1, conforming, tok, "GET", "/issuers/"+issuerA+"/cards/CARD-D1", "", nil)
		e.mustBank(http.StatusOK, &c2, conforming, tok, "GET", "/issuers/"+issuerA+"/cards/CARD-D2", "", nil)
		if c1.DigitalCards[0].State != "DELETED" || c2.DigitalCards[0].State != "ACTIVE" || c1.State != "ACTIVE" {
			t.Errorf("after the failure: %+v / %+v", c1, c2)
		}
	})
}

func TestIssuer_CardAndDigitalCardOperationsReachTheWallet(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	keys, _ := e.issuerKeys()
	tok := e.accessToken(keys[issuerA], issuerA)
	e.registerCard(tok, "CARD-E", "erin", "")
	wcErin := e.digital("0E000001", "CARD-E", true)
	base := "/issuers/" + issuerA
	post := func(path string, body any, want int) opResult {
		t.Helper()
		var r opResult
		status, raw := e.bank(conforming, tok, "POST", base+path, "", body)
		if want != http.StatusOK {
			if status != want {
				t.Fatalf("POST %s: HTTP %d %s, want %d", path, status, raw, want)
			}
			return r
		}
		e.must(http.StatusOK, &r, status, raw)
		if op := e.waitOperation(tok, "erin", r.OperationID); op.Status != "SUCCESSFUL" {
			t.Fatalf("POST %s: %+v", path, op)
		}
		return r
	}
	locked := func() bool { return instanceOn(e, "0E000001").Locked }

	post("/cards/CARD-E/operations:suspend", map[string]string{"reasonCode": "CARD_LOST"}, http.StatusOK)
	if !locked() {
		t.Error("suspending the card did not suspend its digital card")
	}
	post("/cards/CARD-E/operations:suspend", nil, http.StatusForbidden)
	post("/cards/CARD-E/operations:resume", nil, http.StatusForbidden) // lost: CARD_FOUND only
	post("/digitalCards/"+wcErin+"/operations:resume", nil, http.StatusForbidden)
	post("/cards/CARD-E/operations:resume", map[string]string{"reasonCode": "CARD_FOUND"}, http.StatusOK)
	if locked() {
		t.Error("resuming the card did not resume its digital card")
	}
	r := post("/digitalCards/"+wcErin+"/operations:suspend", map[string]string{"reason": "phone lost", "reasonCode": "DEVICE_LOST"}, http.StatusOK)
	if !locked() {
		t.Error("the digital card was not suspended")
	}
	var op operationOut
	e.mustBank(http.StatusOK, &op, conforming, tok, "GET", base+"/consumers/erin/operations/"+r.OperationID, "", nil)
	if op.Operation != "SUSPEND" || op.Details.DigitalCardID != wcErin || op.Details.CardID != "CARD-E" || op.ReasonCode != "DEVICE_LOST" {
		t.Errorf("digital card operation: %+v", op)
	}
	post("/digitalCards/"+wcErin+"/operations:suspend", nil, http.StatusForbidden)
	post("/digitalCards/"+wcErin+"/operations:resume", nil, http.StatusOK)
	if locked() {
		t.Error("the digital card was not resumed")
	}
	var dc struct {
		State string `json:"state"`
	}
	e.mustBank(http.StatusOK, &dc, conforming, tok, "GET", base+"/digitalCards/"+wcErin, "", nil)
	if dc.State != "ACTIVE" {
		t.Errorf("digital card state %s", dc.State)
	}
	post("/cards/CARD-E/operations:suspend", map[string]string{"reasonCode": "CARD_STOLEN"}, http.StatusOK)
	post("/cards/CARD-E/operations:resume", map[string]string{"reasonCode": "ISSUER_DECISION"}, http.StatusForbidden)
	post("/cards/CARD-E/operations:delete", map[string]string{"reasonCode": "CARD_STOLEN"}, http.StatusOK)
	var card cardOut
	e.mustBank(http.StatusOK, &card, conforming, tok, "GET", base+"/cards/CARD-E", "", nil)
	if card.State != "DELETED" || card.StateReason != "CARD_STOLEN" || card.Ongoing != "" || card.DigitalCards[0].State != "DELETED" {
		t.Errorf("deleted card: %+v", card)
	}
	if se, _ := e.wsim.SecureElement("0E000001"); len(se.Instances) != 0 {
		t.Errorf("the deleted card's instance is still on the secure element: %+v", se.Instances)
	}
	post("/cards/CARD-E/operations:suspend", nil, http.StatusForbidden)
	post("/cards/NO-SUCH/operations:suspend", nil, http.StatusNotFound)
	post("/digitalCards/wc-nobody/operations:suspend", nil, http.StatusNotFound)
	// A deleted card's id may be registered anew.
	e.registerCard(tok, "CARD-E", "erin", "")
	// Another consumer's card id is a conflict.
	status, raw := e.bank(conforming, tok, "PUT", base+"/cards/CARD-E", "", map[string]string{"consumerId": "frank", "cardProductId": "P"})
	if status != http.StatusConflict {
		t.Errorf("registering another consumer's card: HTTP %d %s", status, raw)
	}
}

func TestIssuer_OperationsArePagedNewestFirstAndExpire(t *testing.T) {
	t.Parallel()
	both(t, envOptions{purgeInterval: 50 * time.Millisecond}, func(t *testing.T, e *env) {
		keys, _ := e.issuerKeys()
		tok := e.accessToken(keys[issuerA], issuerA)
		e.registerCard(tok, "CARD-G", "gina", "") // REGISTER
		var ids []string
		for i := range 11 {
			verb := "suspend"
			if i%2 == 1 {
				verb = "resume"
			}
			var r opResult
			e.mustBank(http.StatusOK, &r, conforming, tok, "POST", "/issuers/"+issuerA+"/cards/CARD-G/operations:"+verb, "",
				map[string]string{"reasonCode": "USER_DECISION", "reason": fmt.Sprintf("step %d", i)})
			ids = append(ids, r.OperationID)
			e.waitOperation(tok, "gina", r.OperationID)
		}
		type page struct {
			Operations []operationOut `json:"operations"`
			Remaining  int            `json:"remainingOperations"`
		}
		list := func(q string) page {
			t.Helper()
			var p page
			e.mustBank(http.StatusOK, &p, conforming, tok, "GET", "/issuers/"+issuerA+"/consumers/gina/operations", q, nil)
			return p
		}
		p := list("")
		if len(p.Operations) != 10 || p.Remaining != 2 || p.Operations[0].OperationID != ids[10] || p.Operations[9].OperationID != ids[1] {
			t.Errorf("first page: %d operations, remaining %d", len(p.Operations), p.Remaining)
		}
		p = list("offset=2&limit=5")
		if len(p.Operations) != 5 || p.Remaining != 5 || p.Operations[0].OperationID != ids[8] || p.Operations[4].OperationID != ids[4] {
			t.Errorf("offset 2 limit 5: %+v", p)
		}
		p = list("offset=10&limit=50")
		if len(p.Operations) != 2 || p.Remaining != 0 || p.Operations[1].Operation != "REGISTER" {
			t.Errorf("last page: %+v", p)
		}
		if p = list("offset=40"); len(p.Operations) != 0 || p.Remaining != 0 {
			t.Errorf("past the end: %+v", p)
		}
		for q, rule := range map[string]specRule{"limit=0": nonConforming, "limit=51": nonConforming, "offset=-1": nonConforming,
			"offset=x": nonConforming, "limit=2.5": nonConforming,
			// The document lets these through; the hub refuses an unsupported
			// or repeated parameter, as its 400 says.
			"sort=asc": conforming, "limit=1&limit=2": conforming} {
			status, raw := e.bank(rule, tok, "GET", "/issuers/"+issuerA+"/consumers/gina/operations", q, nil)
			if status != http.StatusBadRequest {
				t.Errorf("?%s: HTTP %d %s", q, status, raw)
			}
		}
		// Three months later the periodic job has removed them.
		e.clock.Advance(91 * 24 * time.Hour)
		tok = e.accessToken(keys[issuerA], issuerA)
		deadline := time.Now().Add(20 * time.Second)
		for len(list("").Operations) > 0 {
			if time.Now().After(deadline) {
				t.Fatal("old operations were not removed")
			}
			time.Sleep(20 * time.Millisecond)
		}
		var r opResult
		e.mustBank(http.StatusOK, &r, conforming, tok, "POST", "/issuers/"+issuerA+"/cards/CARD-G/operations:resume", "",
			map[string]string{"reasonCode": "USER_DECISION"})
		e.waitOperation(tok, "gina", r.OperationID)
		time.Sleep(200 * time.Millisecond) // several purge runs
		if p := list(""); len(p.Operations) != 1 {
			t.Errorf("a new operation was removed too: %+v", p)
		}
	})
}

func TestIssuer_TokensAndAccessControl(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	keys, pubA := e.issuerKeys()
	key := keys[issuerA]
	now := e.clock.Now()

	// Both body encodings work.
	for _, asJSON := range []bool{false, true} {
		status, a := e.tokenCall(conforming, e.assertion(key, issuerA, nil), asJSON)
		if status != http.StatusOK || a.TokenType != "Bearer" || a.ExpiresIn != 900 || a.Scope == "" || a.AccessToken == "" {
			t.Fatalf("token (json %v): HTTP %d %+v", asJSON, status, a)
		}
	}

	b64 := func(v any) string { raw, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(raw) }
	claims := b64(map[string]any{"iss": issuerA, "sub": issuerA, "exp": now.Add(5 * time.Minute).Unix()})
	hsHeader := b64(map[string]string{"alg": "HS256", "typ": "JWT", "kid": "k1"})
	mac := hmac.New(sha256.New, pubA)
	mac.Write([]byte(hsHeader + "." + claims))
	good := e.assertion(key, issuerA, nil)
	parts := strings.Split(good, ".")
	wrongSub := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": issuerA, "sub": issuerB, "exp": now.Add(time.Minute).Unix()})
	wrongSub.Header["kid"] = "k1"
	wrongSubSigned, _ := wrongSub.SignedString(key)
	for name, assertion := range map[string]string{
		"alg none":                     b64(map[string]string{"alg": "none", "kid": "k1"}) + "." + claims + ".",
		"HS256 with the public key":    hsHeader + "." + claims + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)),
		"unknown kid":                  e.assertion(key, issuerA, func(a *oauth.Assertion) { a.Kid = "k2" }),
		"expired":                      e.assertion(key, issuerA, func(a *oauth.Assertion) { a.Expires = now.Add(-2 * time.Minute) }),
		"exp 16 minutes ahead":         e.assertion(key, issuerA, func(a *oauth.Assertion) { a.Expires = now.Add(16 * time.Minute) }),
		"iss of another issuer":        e.assertion(key, issuerB, nil),
		"sub not the issuer":           wrongSubSigned,
		"aud not ours":                 e.assertion(key, issuerA, func(a *oauth.Assertion) { a.Audience = "https://elsewhere.example" }),
		"tampered signature":           parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])),
		"claims changed after signing": parts[0] + "." + b64(map[string]any{"iss": issuerA, "sub": issuerA, "exp": now.Add(10 * time.Minute).Unix()}) + "." + parts[2],
	} {
		t.Run(name, func(t *testing.T) {
			status, a := e.tokenCall(conforming, assertion, false)
			if status != http.StatusBadRequest || a.Error != oauth.CodeInvalidGrant || a.AccessToken != "" {
				t.Errorf("HTTP %d %+v", status, a)
			}
		})
	}
	// A bad grant type and a missing assertion are refused by the document too.
	status, _, raw := e.issuer.send(nonConforming, "POST", "/authz/v1/oauth2/token", "", []byte("grant_type=password&assertion=x"),
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	if status != http.StatusBadRequest || !strings.Contains(string(raw), "unsupported_grant_type") {
		t.Errorf("grant_type password: HTTP %d %s", status, raw)
	}
	status, _, raw = e.issuer.send(nonConforming, "POST", "/authz/v1/oauth2/token", "", []byte("grant_type="+url.QueryEscape(oauth.GrantType)),
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	if status != http.StatusBadRequest || !strings.Contains(string(raw), "invalid_request") {
		t.Errorf("no assertion: HTTP %d %s", status, raw)
	}

	tokA := e.accessToken(key, issuerA)
	tokB := e.accessToken(keys[issuerB], issuerB)
	e.registerCard(tokA, "CARD-H", "hank", "")
	pathA := "/issuers/" + issuerA + "/consumers/hank/operations"
	if status, raw := e.bank(nonConforming, "", "GET", pathA, "", nil); status != http.StatusUnauthorized || !strings.Contains(string(raw), `"error"`) {
		t.Errorf("no token: HTTP %d %s", status, raw)
	}
	for name, bad := range map[string]string{
		"garbage":      "not-a-jwt",
		"an assertion": good,
		"tampered":     tokA[:len(tokA)-4] + "AAAA",
	} {
		if status, raw := e.bank(conforming, bad, "GET", pathA, "", nil); status != http.StatusUnauthorized {
			t.Errorf("%s token: HTTP %d %s", name, status, raw)
		}
	}
	// Issuer B's token opens nothing of issuer A, on any call.
	for _, c := range []struct{ method, path string }{
		{"GET", pathA}, {"GET", "/issuers/" + issuerA + "/cards/CARD-H"}, {"POST", "/issuers/" + issuerA + "/consumers/hank/operations:delete"},
		{"PUT", "/issuers/" + issuerA + "/consumers/hank"}, {"POST", "/issuers/" + issuerA + "/cards/CARD-H/operations:suspend"},
	} {
		if status, raw := e.bank(conforming, tokB, c.method, c.path, "", nil); status != http.StatusForbidden {
			t.Errorf("issuer B on %s %s: HTTP %d %s", c.method, c.path, status, raw)
		}
	}
	// Under its own issuerId, B does not see A's consumer or card either.
	// (As published, a consumer without operations, an unknown one
	// included, has an empty list: B learns nothing of A's hank.)
	var pageB struct {
		Operations []json.RawMessage `json:"operations"`
		Remaining  int               `json:"remainingOperations"`
	}
	e.mustBank(http.StatusOK, &pageB, conforming, tokB, "GET", "/issuers/"+issuerB+"/consumers/hank/operations", "", nil)
	if len(pageB.Operations) != 0 || pageB.Remaining != 0 {
		t.Errorf("B sees A's consumer's operations: %+v", pageB)
	}
	if status, _ := e.bank(conforming, tokB, "GET", "/issuers/"+issuerB+"/cards/CARD-H", "", nil); status != http.StatusNotFound {
		t.Errorf("B sees A's card: HTTP %d", status)
	}
	if c := e.count(`SELECT COUNT(*) FROM issuer_cards WHERE card_id = 'CARD-H' AND consumer_id = 'hank'`); c != 1 {
		t.Errorf("A's card changed: %d", c)
	}
	// An access token expires after 15 minutes.
	e.clock.Advance(15*time.Minute + time.Second)
	if status, raw := e.bank(conforming, tokA, "GET", pathA, "", nil); status != http.StatusUnauthorized {
		t.Errorf("expired access token: HTTP %d %s", status, raw)
	}
	// No secret reaches the logs.
	logs := e.logs.String()
	for name, secret := range map[string]string{"access token": tokA, "assertion": good, "signature": parts[2]} {
		if strings.Contains(logs, secret) {
			t.Errorf("the %s is in the logs", name)
		}
	}
	if strings.Contains(logs, "PRIVATE KEY") {
		t.Error("a private key is in the logs")
	}
}

func TestIssuer_MalformedInputIsRefusedWith400(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	keys, _ := e.issuerKeys()
	tok := e.accessToken(keys[issuerA], issuerA)
	e.registerCard(tok, "CARD-I", "ivy", "")
	wcIvy := e.digital("0F000001", "CARD-I", true)
	a := "/issuers/" + issuerA
	long65 := strings.Repeat("x", 65)
	cases := []struct {
		name, method, path string
		body               any
	}{
		{"issuerId too short", "GET", "/issuers/ISSUER001/consumers/ivy/operations", nil},
		{"issuerId too long", "GET", "/issuers/ISSUER00011/consumers/ivy/operations", nil},
		{"consumerId with a dot", "GET", a + "/consumers/ivy.x/operations", nil},
		{"consumerId too long", "PUT", a + "/consumers/" + long65, nil},
		{"operationId with a plus", "GET", a + "/consumers/ivy/operations/op+1", nil},
		{"cardId too long", "GET", a + "/cards/" + strings.Repeat("c", 49), nil},
		{"digitalCardId with a dot", "GET", a + "/digitalCards/wc.ivy", nil},
		{"reason with punctuation", "POST", a + "/consumers/ivy/operations:delete", map[string]string{"reason": "no!"}},
		{"reason too long", "POST", a + "/consumers/ivy/operations:delete", map[string]string{"reason": long65}},
		{"reason not a string", "POST", a + "/consumers/ivy/operations:delete", map[string]any{"reason": 5}},
		{"unknown reasonCode", "POST", a + "/consumers/ivy/operations:delete", map[string]string{"reasonCode": "BORED"}},
		{"card reasonCode on resume", "POST", a + "/cards/CARD-I/operations:resume", map[string]string{"reasonCode": "FRAUD"}},
		{"body not JSON", "POST", a + "/consumers/ivy/operations:delete", []byte("{reason")},
		{"body an array", "POST", a + "/consumers/ivy/operations:delete", []byte("[]")},
		{"unknown member on a digital card action", "POST", a + "/digitalCards/" + wcIvy + "/operations:suspend", map[string]string{"why": "x"}},
		{"lower-case digital card reasonCode", "POST", a + "/digitalCards/" + wcIvy + "/operations:suspend", map[string]string{"reasonCode": "lost"}},
		{"consumer with no cards", "PUT", a + "/consumers/ivy/cards", map[string]any{"cards": []any{}}},
		{"consumer with a card without cardId", "PUT", a + "/consumers/ivy/cards", map[string]any{"cards": []any{map[string]string{"id": "X"}}}},
		{"card without body", "PUT", a + "/cards/CARD-J", nil},
		{"card with a bad state", "PUT", a + "/cards/CARD-J", map[string]string{"consumerId": "ivy", "cardProductId": "P", "state": "SUSPENDED"}},
		{"card with a long product", "PUT", a + "/cards/CARD-J", map[string]string{"consumerId": "ivy", "cardProductId": strings.Repeat("p", 49)}},
		{"account without state", "PUT", a + "/accounts/ACC-J", map[string]string{"consumerId": "ivy"}},
		{"account with a bad consumerId", "PUT", a + "/accounts/ACC-J", map[string]string{"consumerId": "i v", "state": "ACTIVE"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, raw := e.bank(nonConforming, tok, c.method, c.path, "", c.body)
			if status != http.StatusBadRequest || !strings.Contains(string(raw), `"error"`) {
				t.Errorf("HTTP %d %s", status, raw)
			}
		})
	}
	status, _, raw := e.issuer.send(nonConforming, "GET", "/banking/v1"+a+"/consumers/ivy/operations", "", nil,
		http.Header{"Authorization": {"Bearer " + tok}, "X-Correlation-Id": {"bad/id"}})
	if status != http.StatusBadRequest {
		t.Errorf("bad x-correlation-id: HTTP %d %s", status, raw)
	}
	// A path the API does not have answers 404 with an error body.
	if status, raw := e.bank(nonConforming, tok, "GET", a+"/nothing-here", "", nil); status != http.StatusNotFound || !strings.Contains(string(raw), `"error"`) {
		t.Errorf("unknown path: HTTP %d %s", status, raw)
	}
}
