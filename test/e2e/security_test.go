package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/auth"
	"github.com/provhub/provhub/internal/cas"
	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/engine/enginetest"
	"github.com/provhub/provhub/internal/oauth"
	"github.com/provhub/provhub/internal/partner"
	"github.com/provhub/provhub/internal/paytv"
	"github.com/provhub/provhub/internal/reqsign"
	"github.com/provhub/provhub/internal/retention"
	"github.com/provhub/provhub/internal/sealed"
	simtes "github.com/provhub/provhub/internal/sim/tes"
	"github.com/provhub/provhub/internal/tes"
	"github.com/provhub/provhub/internal/wallet"
)

// The attacks of the trust boundary, each tried as an attacker with only
// network access (or a copy of the database) would.

// transitAs is a client of the transit calls that signs as p (or not at
// all, when p is nil).
func (e *env) transitAs(p *partnerCreds) *specClient {
	return e.signedClient(p, "transit.yaml", "")
}

// deviceAs is transitAs for the device API (startReaderMode).
func (e *env) deviceAs(p *partnerCreds) *specClient {
	return e.signedClient(p, "device.yaml", "/tsh/deviceapi/1/0")
}

func (e *env) signedClient(p *partnerCreds, doc, prefix string) *specClient {
	c := newSpecClient(e.t, e.url, doc, prefix)
	if p != nil {
		c.sign = func(req *http.Request, body []byte) { reqsign.Sign(req, body, p.id, p.secret, e.clock.Now()) }
	}
	return c
}

type rawAnswer struct {
	ResponseHeader struct {
		StatusCode    int    `json:"statusCode"`
		StatusMessage string `json:"statusMessage"`
	} `json:"responseHeader"`
	OperationID string          `json:"operationId"`
	TaskID      string          `json:"taskId"`
	Commands    json.RawMessage `json:"commands"`
	Balance     *int64          `json:"balance"`
	DeviceToken string          `json:"deviceToken"`
}

func postAs(t *testing.T, c *specClient, path string, body map[string]any) (int, rawAnswer) {
	t.Helper()
	if _, ok := body["requestHeader"]; !ok {
		body["requestHeader"] = map[string]string{"requestId": "sec-1", "sessionId": "sec"}
	}
	raw, _ := json.Marshal(body)
	hdr := http.Header{"Content-Type": {"application/json"}}
	if strings.HasPrefix(path, "/tsh/wsapi/") {
		hdr.Set("x-pod", "wallet-test-pod")
	}
	status, _, out := c.send(conforming, http.MethodPost, path, "", raw, hdr)
	var a rawAnswer
	if err := json.Unmarshal(out, &a); err != nil {
		t.Fatalf("%s: %s", path, out)
	}
	return status, a
}

func TestSecurity_AnonymousPartnerCallsAreRefusedAndChangeNothing(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		cardID, _, se := e.transitCard(40, 100)
		anon := e.transitAs(nil)
		calls := map[string]map[string]any{
			transitBase + "updateCardState":     {"issuerId": "TRANSIT1", "cardId": cardID, "action": "SUSPEND"},
			transitBase + "updateCardMetadata":  {"issuerId": "TRANSIT1", "cardId": cardID, "cardDescriptor": map[string]any{"cardholderName": "Mallory"}},
			transitBase + "topupCard":           {"issuerId": "TRANSIT1", "cardId": cardID, "purchaseId": "P-X"},
			transitBase + "parkCard":            {"issuerId": "TRANSIT1", "cardId": cardID},
			transitBase + "getOperationStatus":  {"issuerId": "TRANSIT1", "operationId": "dop-x"},
			transitBase + "submitCardPersoData": {"issuerId": "TRANSIT1", "cardId": cardID, "cardPersoData": map[string]any{"dgis": []map[string]string{{"dgi": "0101", "data": "00"}}}},
			"/tsh/wsapi/1/0/provisionCard":      e.provisionCall("TRANSIT1", "0F0F", "ACC-MADE-UP"),
			"/tsh/wsapi/1/0/checkCardAccount":   {"issuerId": "TRANSIT1", "cardAccountDescriptor": map[string]string{"opaqueCardAccountData": e.opaqueFor("TRANSIT1", "ACC-MADE-UP")}},
			"/tsh/wsapi/1/0/getAsset":           {"guid": "00000000-0000-4000-8000-000000000000"},
			"/startReaderMode": {"seId": se, "deviceId": "dev", "issuerId": "TRANSIT1",
				"cardContents": map[string]any{"systemCode": "0003", "idm": "0102030405060708"}},
		}
		for path, body := range calls {
			t.Run(path[strings.LastIndex(path, "/")+1:], func(t *testing.T) {
				c := anon
				if path == "/startReaderMode" {
					c = e.deviceAs(nil)
				}
				status, a := postAs(t, c, path, body)
				if status != http.StatusUnauthorized || a.ResponseHeader.StatusCode != 111 || a.OperationID != "" || a.TaskID != "" {
					t.Fatalf("anonymous: HTTP %d %+v", status, a)
				}
			})
		}
		// A forged signature, and a real one replayed, fare no better.
		forged := &partnerCreds{id: e.tesPartner.id, secret: "phs_guessed"}
		if status, a := postAs(t, e.transitAs(forged), transitBase+"updateCardState", calls[transitBase+"updateCardState"]); status != http.StatusUnauthorized ||
			a.ResponseHeader.StatusCode != 112 {
			t.Errorf("forged signature: HTTP %d %+v", status, a)
		}
		body, _ := json.Marshal(map[string]any{"requestHeader": map[string]string{"requestId": "r", "sessionId": "s"}, "issuerId": "TRANSIT1", "operationId": "dop-x"})
		req := httptest.NewRequest(http.MethodPost, transitBase+"getOperationStatus", strings.NewReader(string(body)))
		reqsign.Sign(req, body, e.tesPartner.id, e.tesPartner.secret, time.Now())
		hdr := req.Header.Clone()
		hdr.Set("Content-Type", "application/json")
		if status, _, _ := anon.send(conforming, http.MethodPost, transitBase+"getOperationStatus", "", body, hdr); status != http.StatusOK {
			t.Fatalf("the first use of a signed request: HTTP %d", status)
		}
		if status, _, raw := anon.send(conforming, http.MethodPost, transitBase+"getOperationStatus", "", body, hdr); status != http.StatusUnauthorized ||
			!strings.Contains(string(raw), "replay") {
			t.Errorf("a replayed signed request: HTTP %d %s", status, raw)
		}
		if instanceOn(e, se).Locked || e.card(cardID).State != "ACTIVE" {
			t.Error("an anonymous call changed the card")
		}
		if n := e.count(`SELECT COUNT(*) FROM transit_operations`); n != 0 {
			t.Errorf("%d device operations made by anonymous calls", n)
		}
		if n := e.count(`SELECT COUNT(*) FROM transit_cards WHERE card_id = 'ACC-MADE-UP'`); n != 0 {
			t.Error("an anonymous provisionCard registered a card")
		}
	})
}

func TestSecurity_APartnerActsOnlyForItsIssuersAndInItsRole(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		cardID, _, se := e.transitCard(41, 100)
		onlyB := e.addPartner("tes-for-b", partner.RoleTES, "ISSUER0002")
		for path, body := range map[string]map[string]any{
			"updateCardState":    {"issuerId": "TRANSIT1", "cardId": cardID, "action": "SUSPEND"},
			"topupCard":          {"issuerId": "TRANSIT1", "cardId": cardID, "purchaseId": "P-1"},
			"getOperationStatus": {"issuerId": "TRANSIT1", "operationId": "dop-x"},
		} {
			if status, a := postAs(t, e.transitAs(&onlyB), transitBase+path, body); status != http.StatusOK || a.ResponseHeader.StatusCode != 113 ||
				a.TaskID != "" || a.OperationID != "" {
				t.Errorf("%s for another issuer: HTTP %d %+v", path, status, a)
			}
		}
		// The wallet server's credential does not make TES calls, nor the
		// TES's wallet-server calls.
		if status, a := postAs(t, e.transitAs(&e.walletPartner), transitBase+"updateCardState",
			map[string]any{"issuerId": "TRANSIT1", "cardId": cardID, "action": "SUSPEND"}); status != http.StatusForbidden || a.ResponseHeader.StatusCode != 112 {
			t.Errorf("a wallet server calling the TES API: HTTP %d %+v", status, a)
		}
		for _, path := range []string{"provisionCard", "checkCardAccount"} {
			if status, a := postAs(t, e.transitAs(&e.tesPartner), "/tsh/wsapi/1/0/"+path, e.provisionCall("TRANSIT1", "0F0F", "ACC-T")); status != http.StatusForbidden ||
				a.ResponseHeader.StatusCode != 112 {
				t.Errorf("a TES calling %s: HTTP %d %+v", path, status, a)
			}
		}
		if instanceOn(e, se).Locked {
			t.Error("a refused call changed the card")
		}
		// Revoked: refused from then on.
		if err := e.hub.Partners().Revoke(context.Background(), onlyB.id); err != nil {
			t.Fatal(err)
		}
		if status, _ := postAs(t, e.transitAs(&onlyB), transitBase+"getOperationStatus", map[string]any{"issuerId": "ISSUER0002", "operationId": "dop-x"}); status != http.StatusUnauthorized {
			t.Errorf("a revoked partner: HTTP %d", status)
		}
	})
}

// TestSecurity_ADeviceCallWithoutTheOperationsTokenLearnsNothing races the
// real phone: right after a top-up starts, an attacker who knows the seId
// and walletCardId asks for the commands and the balance.
func TestSecurity_ADeviceCallWithoutTheOperationsTokenLearnsNothing(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		cardID, wc, se := e.transitCard(42, 100)
		e.wsim.SetPodURL(e.hubCfg.Pod, "") // the real phone is played below
		_ = e.tsim.AddPurchase(simtes.Purchase{ID: "P-42", CardAccountID: cardID, Amount: 5})
		if a := e.startTopUp(cardID, "P-42"); a.ResponseHeader.StatusCode != 0 {
			t.Fatalf("topupCard: %+v", a)
		}
		d := &device{e: e, se: se, wc: wc}
		d.redirected()
		attempts := map[string]map[string]any{
			"no token":                          {"seId": se, "walletCardId": wc, "step": 0},
			"no token, by id":                   {"seId": se, "operationId": d.operation, "step": 0},
			"a guessed token":                   {"seId": se, "walletCardId": wc, "step": 0, "deviceToken": "pdt_" + strings.Repeat("A", 32)},
			"the token, another secure element": {"seId": "0F0F0F0F", "step": 0, "deviceToken": d.token},
			"the token, another operation":      {"seId": se, "operationId": "dop-other", "step": 0, "deviceToken": d.token},
		}
		for name, body := range attempts {
			t.Run(name, func(t *testing.T) {
				body["requestHeader"] = map[string]string{"requestId": "x", "sessionId": "x"}
				raw, _ := json.Marshal(body)
				rule := conforming
				if _, ok := body["deviceToken"]; !ok {
					rule = nonConforming
				}
				_, out := e.device.call(rule, http.MethodPost, "/getDeviceCommands", "", raw)
				var a rawAnswer
				_ = json.Unmarshal(out, &a)
				if a.ResponseHeader.StatusCode == 0 || a.OperationID != "" || len(a.Commands) > 0 || a.Balance != nil {
					t.Fatalf("learned something: %s", out)
				}
			})
		}
		// The phone with the token is served.
		d.card = nil
		body := map[string]any{"requestHeader": map[string]string{"requestId": "ok", "sessionId": "ok"}, "seId": se, "step": 0, "deviceToken": d.token}
		raw, _ := json.Marshal(body)
		_, out := e.device.call(conforming, http.MethodPost, "/getDeviceCommands", "", raw)
		var a rawAnswer
		_ = json.Unmarshal(out, &a)
		if a.ResponseHeader.StatusCode != 0 || a.OperationID != d.operation || len(a.Commands) == 0 {
			t.Fatalf("the phone with the token: %s", out)
		}
		var stored string
		if err := e.hub.DB().Writer().QueryRowContext(context.Background(), `SELECT device_token_hash FROM transit_operations WHERE operation_id = $1`, d.operation).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(stored, d.token) || len(stored) != 64 {
			t.Errorf("the device token is stored as %q", stored)
		}
	})
}

// TestSecurity_NobodyButAPartnerCanMakeASecureElementBusy: reader mode
// needs the wallet server's credential, and even a partner cannot keep one
// secure element busy for good.
func TestSecurity_NobodyButAPartnerCanMakeASecureElementBusy(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, secureElementBusy)
}

func secureElementBusy(t *testing.T, e *env) {
	cardID, _, se := e.transitCard(43, 100)
	start := map[string]any{"seId": se, "deviceId": "dev-" + se, "issuerId": "TRANSIT1",
		"cardContents": map[string]any{"systemCode": "0003", "idm": "0102030405060708"}}
	for range 20 {
		if status, _ := postAs(t, e.deviceAs(nil), "/startReaderMode", start); status != http.StatusUnauthorized {
			t.Fatalf("anonymous startReaderMode: HTTP %d", status)
		}
	}
	if n := e.count(`SELECT COUNT(*) FROM transit_operations`); n != 0 {
		t.Fatalf("%d operations after anonymous calls", n)
	}
	if a := e.startTopUp(cardID, "P-43"); a.ResponseHeader.StatusCode != 0 {
		t.Fatalf("the real top-up after the attack: %+v", a)
	}
	// A partner starting operation after operation on one secure element
	// (each ended by the TTL at once) meets the bound.
	e.wsim.SetPodURL(e.hubCfg.Pod, "")
	refused := 0
	for i := range 15 {
		e.clock.Advance(3 * time.Minute) // the operation before has expired
		status, a := postAs(t, e.deviceAs(&e.walletPartner), "/startReaderMode", start)
		if status != http.StatusOK {
			t.Fatalf("call %d: HTTP %d", i, status)
		}
		if a.ResponseHeader.StatusCode == 321 {
			refused++
		} else if a.ResponseHeader.StatusCode != 0 || a.DeviceToken == "" {
			t.Fatalf("call %d: %+v", i, a)
		}
		e.clock.Advance(-3 * time.Minute)
	}
	if n := e.count(`SELECT COUNT(*) FROM transit_operations WHERE se_id = $1`, se); n > 10 || refused == 0 {
		t.Errorf("%d operations on one secure element, %d refused: the bound did not hold", n, refused)
	}
}

// TestSecurity_TheDatabaseAloneMintsNoToken reads the signing keys from
// the hub's database, as an attacker with a copy of it would.
func TestSecurity_TheDatabaseAloneMintsNoToken(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		keys, _ := e.issuerKeys()
		_ = e.accessToken(keys[issuerA], issuerA) // makes the first signing key
		rows, err := e.hub.DB().Writer().QueryContext(context.Background(), `SELECT private_key FROM oauth_signing_keys`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var stored string
			if err := rows.Scan(&stored); err != nil {
				t.Fatal(err)
			}
			n++
			if _, err := oauth.ParsePrivateKey([]byte(stored)); err == nil || !sealed.IsSealed(stored) {
				t.Errorf("a signing key is usable as read from the database")
			}
		}
		if n == 0 {
			t.Fatal("no signing key in the database")
		}
	})
}

// TestSecurity_SouthboundClientsNeverFollowRedirects points each client
// at a server that answers 307 to another one, which must never be asked.
func TestSecurity_SouthboundClientsNeverFollowRedirects(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer target.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	ctx := context.Background()
	casClient, err := cas.NewClient(cas.ClientConfig{BaseURL: redirector.URL, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := casClient.Send(ctx, cas.Command{RequestID: "r1", PIN: "1234"}); err == nil {
		t.Error("the CAS client took a redirect as an answer")
	}
	wc, err := wallet.NewClient(wallet.ClientConfig{BaseURL: redirector.URL, Pod: "p", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := wc.UpdateCard(ctx, wallet.UpdateCardRequest{RequestHeader: wc.Header("s"), TaskID: "t", WalletCardID: "w", SEID: "0F", Operation: "SUSPEND"}); err == nil {
		t.Error("the wallet client took a redirect as an answer")
	}
	tc, err := tes.NewClient(tes.ClientConfig{BaseURL: redirector.URL, Actor: "a", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.CardCommands(ctx, tes.CardCommandsRequest{RequestHeader: tc.Header("s"), IssuerID: "I", CardID: "C", DeviceID: "D"}); err == nil {
		t.Error("the TES client took a redirect as an answer")
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("%d requests followed a redirect to another server", n)
	}
}

// TestSecurity_ConsoleLoginFloodsAreBoundedAndCrossOriginLoginsRefused
// sends what a flood would: megabyte user names, many names from one
// address, and a login posted from another site's page.
func TestSecurity_ConsoleLoginFloodsAreBoundedAndCrossOriginLoginsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	if err := e.hub.Console().AddOperator(context.Background(), "olga", "operator-pass"); err != nil {
		t.Fatal(err)
	}
	anon := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	login := func(user, password, origin string) *http.Response {
		t.Helper()
		form := url.Values{"username": {user}, "password": {password}}
		req, _ := http.NewRequest(http.MethodPost, e.url+"/console/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := anon.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := login("olga", "operator-pass", "https://evil.example"); resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Fatalf("a cross-origin login: HTTP %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	logBefore := len(e.logs.String())
	for _, size := range []int{100 << 10, 2 << 20} { // under and over the body limit
		for range 5 {
			if resp := login(strings.Repeat("u", size), "x", ""); resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("a user name of %d bytes: HTTP %d", size, resp.StatusCode)
			}
		}
	}
	if grown := len(e.logs.String()) - logBefore; grown > 64<<10 {
		t.Errorf("ten huge user names grew the log by %d bytes", grown)
	}
	// Thirty names sprayed from one address: blocked before the thirtieth.
	blocked := false
	for i := range 30 {
		if resp := login(fmt.Sprintf("spray-%d", i), "wrong-password", ""); resp.StatusCode == http.StatusTooManyRequests {
			blocked = true
			break
		}
	}
	if !blocked {
		t.Error("thirty user names from one address were never blocked")
	}
	if strings.Contains(e.logs.String(), "operator-pass") {
		t.Error("a password reached the log")
	}
}

// TestSecurity_TheLoginLimiterForgetsTheOldestPastItsBound fills a limiter
// with more distinct keys than it keeps: its size stays at the bound.
func TestSecurity_TheLoginLimiterForgetsTheOldestPastItsBound(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	lim := auth.NewLimiter(5, time.Hour, func() time.Time { return now })
	for i := range auth.MaxLimiterKeys + 500 {
		now = now.Add(time.Millisecond)
		lim.Fail(fmt.Sprintf("%d-%s", i, strings.Repeat("k", 100)))
	}
	if n := lim.Len(); n > auth.MaxLimiterKeys {
		t.Fatalf("%d keys remembered, bound %d", n, auth.MaxLimiterKeys)
	}
	for range 5 {
		lim.Fail("last")
	}
	if blocked, _ := lim.Blocked("last"); !blocked {
		t.Fatal("the newest key is not counted")
	}
}

// TestSecurity_CRMLoginsAreLengthCappedAndPasswordsHaveAMinimum.
func TestSecurity_CRMLoginsAreLengthCappedAndPasswordsHaveAMinimum(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	logBefore := len(e.logs.String())
	for range 5 {
		e.crm.post(nonConforming, "/authentication/token", map[string]string{"username": strings.Repeat("u", 100<<10), "password": "x",
			"organisation": "CRMDEMO"}).code(t, "INVALID_PARAMETER")
	}
	if grown := len(e.logs.String()) - logBefore; grown > 64<<10 {
		t.Errorf("five long user names grew the log by %d bytes", grown)
	}
	if err := e.hub.PayTV().AddUser(context.Background(), paytv.NewUser{Organisation: "CRMDEMO", Username: "shorty", Password: "1234"}); err == nil {
		t.Error("a CRM user was added with a four-character password")
	}
}

// TestSecurity_ACancelledPINResetEndsRejectedWithItsPINErased: an operator
// cancels a scheduled reset_pin_to_given_value; before, the request stayed
// PENDING with its PIN in the database for good.
func TestSecurity_ACancelledPINResetEndsRejectedWithItsPINErased(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		tok := e.login("mpadministrator", "mp-admin-1234")
		later := e.clock.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05")
		r := e.create(ws, "reset_pin_to_given_value", map[string]any{"token": tok, "subscription_identifier": map[string]string{"number": "S60058"},
			"smartcard_identifier": map[string]string{"serial_number": "sc20000003"}, "pin": "8642", "scheduled_date": later})
		if n := e.count(`SELECT COUNT(*) FROM paytv_requests WHERE id = $1 AND pin IS NOT NULL`, r.ID); n != 1 {
			t.Fatalf("the scheduled request holds no PIN (%d)", n)
		}
		if err := e.hub.Engine().Cancel(context.Background(), e.jobOf(r.ID).ID); err != nil {
			t.Fatal(err)
		}
		f := e.show(ws, tok, r.ID)
		if f.LifeCycleState != "REJECTED" || str(f.ErrorCode) != "CANCELLED" || f.SequenceNumber == nil {
			t.Fatalf("after the cancel: %+v", f)
		}
		if n := e.count(`SELECT COUNT(*) FROM paytv_requests WHERE id = $1 AND pin IS NULL`, r.ID); n != 1 {
			t.Error("the PIN of a cancelled request is still stored")
		}
		if st := e.sim.Stats(); st.Commands != 0 {
			t.Errorf("the CAS got %d commands for a cancelled request", st.Commands)
		}
	})
}

// TestRetention_EndedRecordsLeaveAfterTheirRetentionAndPendingOnesStay.
func TestRetention_EndedRecordsLeaveAfterTheirRetentionAndPendingOnesStay(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		tok := e.login("mpadministrator", "mp-admin-1234")
		done := e.waitFinal(ws, tok, e.create(ws, "add_subscriptions", map[string]any{"token": tok, "subscription_identifier": map[string]string{"number": "S60058"},
			"service_identifier": map[string]string{"code": "BASIC"}, "smartcard_identifier": map[string]string{"serial_number": "sc20000002"}}).ID)
		later := e.clock.Now().Add(400 * 24 * time.Hour).UTC().Format("2006-01-02T15:04:05")
		pending := e.create(ws, "add_subscriptions", map[string]any{"token": tok, "subscription_identifier": map[string]string{"number": "S60058"},
			"service_identifier": map[string]string{"code": "SPORTS"}, "smartcard_identifier": map[string]string{"serial_number": "sc20000003"}, "scheduled_date": later})
		cardID, _, _ := e.transitCard(50, 10)
		_ = e.tsim.AddPurchase(simtes.Purchase{ID: "P-50", CardAccountID: cardID, Amount: 5})
		op := e.startTopUp(cardID, "P-50")
		if st := e.waitOp(op.OperationID); st.Status != "COMPLETED" {
			t.Fatalf("top-up: %+v", st)
		}
		o := e.operatorClient(t)
		jobPath := fmt.Sprintf("/console/jobs/%d", e.jobOf(done.ID).ID)
		_, page := o.get(t, jobPath)
		o.post(t, jobPath+"/cancel", url.Values{"csrf": {csrfOf(t, page)}}) // refused (finished), and recorded
		if e.count(`SELECT COUNT(*) FROM console_actions`) == 0 || e.count(`SELECT COUNT(*) FROM transit_operation_steps`) == 0 {
			t.Fatal("nothing to purge")
		}
		// Within every retention: nothing goes.
		if _, err := e.hub.Retention().PurgeNow(ctx); err != nil {
			t.Fatal(err)
		}
		if e.count(`SELECT COUNT(*) FROM paytv_requests`) != 2 || e.count(`SELECT COUNT(*) FROM transit_operations`) != 1 || e.count(`SELECT COUNT(*) FROM console_actions`) == 0 {
			t.Fatal("records inside their retention were removed")
		}
		e.clock.Advance(366 * 24 * time.Hour)
		got, err := e.hub.Retention().PurgeNow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got["provisioning requests"] != 1 || got["device operations"] != 1 || got["console actions"] == 0 {
			t.Errorf("purged %v", got)
		}
		if e.count(`SELECT COUNT(*) FROM paytv_requests WHERE id = $1`, done.ID) != 0 || e.count(`SELECT COUNT(*) FROM paytv_requests WHERE id = $1`, pending.ID) != 1 {
			t.Error("the finished request stayed, or the pending one went")
		}
		if e.count(`SELECT COUNT(*) FROM transit_operation_steps`) != 0 || e.count(`SELECT COUNT(*) FROM console_actions`) != 0 {
			t.Error("relay steps or console actions stayed past their retention")
		}
		// One purge job is scheduled, however many instances schedule it.
		for range 3 {
			if err := e.hub.Retention().Schedule(ctx); err != nil {
				t.Fatal(err)
			}
		}
		scheduled := func(j *engine.Job[retention.Args]) bool { return j.State == engine.StateScheduled }
		if n := len(enginetest.Jobs(t, e.hub.Engine(), scheduled)); n != 1 {
			t.Errorf("%d purge jobs scheduled", n)
		}
	})
}

// TestSecurity_ANULCharacterIsTheCallersBadFormatNotAServerError: JSON and
// query strings can carry a NUL, which no published text holds and which
// PostgreSQL cannot store. Each call that sends one gets its API's own
// refusal naming the member (on PostgreSQL these were 921 and HTTP 500),
// and nothing is made.
func TestSecurity_ANULCharacterIsTheCallersBadFormatNotAServerError(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		cardID, _, _ := e.transitCard(41, 100)
		tes := e.transitAs(&e.tesPartner)
		const nul = "a\x00b"
		for _, c := range []struct {
			call, member string
			body         map[string]any
		}{
			{"updateCardState", "requestHeader.requestId", map[string]any{"requestHeader": map[string]string{"requestId": nul, "sessionId": "s"},
				"issuerId": "TRANSIT1", "cardId": cardID, "action": "SUSPEND"}},
			{"updateCardState", "cardId", map[string]any{"issuerId": "TRANSIT1", "cardId": nul, "action": "SUSPEND"}},
			{"updateCardMetadata", "cardDescriptor.cardholderName", map[string]any{"issuerId": "TRANSIT1", "cardId": cardID,
				"cardDescriptor": map[string]any{"cardholderName": nul}}},
			{"topupCard", "purchaseId", map[string]any{"issuerId": "TRANSIT1", "cardId": cardID, "purchaseId": nul}},
			{"getOperationStatus", "operationId", map[string]any{"issuerId": "TRANSIT1", "operationId": nul}},
		} {
			status, a := postAs(t, tes, transitBase+c.call, c.body)
			if status != http.StatusOK || a.ResponseHeader.StatusCode != 112 || !strings.Contains(a.ResponseHeader.StatusMessage, c.member) {
				t.Errorf("%s with a NUL in %s: HTTP %d %+v", c.call, c.member, status, a.ResponseHeader)
			}
		}
		if n := e.count(`SELECT COUNT(*) FROM transit_operations`); n != 0 {
			t.Errorf("%d device operations made", n)
		}
		if e.card(cardID).State != "ACTIVE" {
			t.Error("a refused call changed the card")
		}

		tok := e.login("mpadministrator", "mp-admin-1234")
		ident := func(serial, number, code string) map[string]any {
			return map[string]any{"token": tok, "subscription_identifier": map[string]string{"number": number},
				"service_identifier": map[string]string{"code": code}, "smartcard_identifier": map[string]string{"serial_number": serial}}
		}
		for member, body := range map[string]map[string]any{
			"smartcard_identifier.serial_number": ident(nul, "S60058", "BASIC"),
			"subscription_identifier.number":     ident("S60058", nul, "BASIC"),
			"service_identifier.code":            ident("S60058", "S60058", nul),
		} {
			raw, _ := json.Marshal(body)
			status, out := e.crm.call(conforming, http.MethodPost, "/"+ws+"/provisioning_requests/add_subscriptions", "", raw)
			if status != http.StatusOK || !strings.Contains(string(out), `"INVALID_PARAMETER"`) || !strings.Contains(string(out), member) {
				t.Errorf("add_subscriptions with a NUL in %s: HTTP %d %s", member, status, out)
			}
		}
		raw, _ := json.Marshal(map[string]string{"username": nul, "password": "mp-admin-1234", "organisation": "CRMDEMO"})
		if status, out := e.crm.call(conforming, http.MethodPost, "/authentication/token", "", raw); status != http.StatusOK ||
			!strings.Contains(string(out), `"INVALID_PARAMETER"`) {
			t.Errorf("a login with a NUL: HTTP %d %s", status, out)
		}
		q := url.Values{"token": {tok}, "provisioning_request_identifier": {"id=" + nul}}.Encode()
		if status, out := e.crm.call(conforming, http.MethodGet, "/"+ws+"/provisioning_requests/show", q, nil); status != http.StatusOK ||
			!strings.Contains(string(out), `"INVALID_PARAMETER"`) {
			t.Errorf("show with a NUL: HTTP %d %s", status, out)
		}
		if n := e.count(`SELECT COUNT(*) FROM paytv_requests`); n != 0 {
			t.Errorf("%d provisioning requests made", n)
		}
	})
}
