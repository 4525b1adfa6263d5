package tes_test

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/felica"
	"github.com/provhub/provhub/internal/sim/felicacard"
	simtes "github.com/provhub/provhub/internal/sim/tes"
	"github.com/provhub/provhub/internal/tes"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type rig struct {
	t     *testing.T
	sim   *simtes.Simulator
	cli   *tes.Client
	clock *clock
}

func newRig(t *testing.T) *rig {
	t.Helper()
	c := &clock{t: time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)}
	sim, err := simtes.New(simtes.Config{Clock: c.Now, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	cli, err := tes.NewClient(tes.ClientConfig{BaseURL: srv.URL + "/tes/devicegtwapi/1/0", Actor: "provhub-test"})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, sim: sim, cli: cli, clock: c}
}

func idm(n byte) felica.IDm { return felica.IDm{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, n} }

func idmHex(n byte) string { id := idm(n); return hex.EncodeToString(id[:]) }

// run executes commands on the card as a phone would and returns the
// responses.
func run(card *felicacard.Card, cmds []tes.Command) []tes.Response {
	var out []tes.Response
	for _, c := range cmds {
		raw, _ := hex.DecodeString(c.Data)
		out = append(out, tes.Response{ID: c.ID, Data: strings.ToUpper(hex.EncodeToString(card.Exec(raw)))})
	}
	return out
}

// loop drives one loop to its end; stopAfter > 0 stops after that many
// calls (a crash) and returns the last answer.
type call func(loop tes.Loop) (*tes.CommandsResponse, error)

func drive(t *testing.T, card *felicacard.Card, c call, stopAfter int) (*tes.CommandsResponse, error) {
	t.Helper()
	var loop tes.Loop
	for i := 1; i <= 10; i++ {
		res, err := c(loop)
		if err != nil || res.Done() || (stopAfter > 0 && i == stopAfter) {
			return res, err
		}
		loop = tes.Loop{Responses: run(card, res.Commands)}
	}
	t.Fatal("the loop did not end")
	return nil, nil
}

func (r *rig) topUp(session, cardID, purchase, device string) call {
	return func(loop tes.Loop) (*tes.CommandsResponse, error) {
		return r.cli.CardCommands(context.Background(), tes.CardCommandsRequest{RequestHeader: r.cli.Header(session), IssuerID: "TRANSIT1",
			CardID: cardID, PurchaseID: purchase, DeviceID: device, Operation: tes.OpTopUp, Loop: loop})
	}
}

func code(err error) int {
	var se *tes.StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return -1
}

func (r *rig) account(id string, balance int64, mod func(*simtes.Account)) {
	a := simtes.Account{ID: id, IssuerID: "TRANSIT1", DeviceID: "dev-" + id, Balance: balance}
	if mod != nil {
		mod(&a)
	}
	if err := r.sim.AddAccount(a); err != nil {
		r.t.Fatal(err)
	}
}

func TestTopUp_RaisesTheBalanceOnTheCardAndTheAccountOnce(t *testing.T) {
	r := newRig(t)
	r.account("ACC-1", 1000, nil)
	if err := r.sim.AddPurchase(simtes.Purchase{ID: "P-1", CardAccountID: "ACC-1", Amount: 500}); err != nil {
		t.Fatal(err)
	}
	card := felicacard.Transit(idm(1), 1000)
	res, err := drive(t, card, r.topUp("s-1", "ACC-1", "P-1", "dev-ACC-1"), 0)
	if err != nil || res.Balance == nil || *res.Balance != 1500 {
		t.Fatalf("top-up: %+v %v", res, err)
	}
	if p, _ := card.Balance(); p.Balance != 1500 || p.Counter != 1 {
		t.Errorf("card purse %+v", p)
	}
	if a, _ := r.sim.AccountState("ACC-1"); a.Balance != 1500 {
		t.Errorf("account balance %d", a.Balance)
	}
	// The same purchase again: answered at once, nothing applied twice.
	res, err = drive(t, card, r.topUp("s-2", "ACC-1", "P-1", "dev-ACC-1"), 0)
	if err != nil || *res.Balance != 1500 || len(res.Commands) != 0 {
		t.Fatalf("second run: %+v %v", res, err)
	}
	if s := r.sim.Stats(); s.PurchasesApplied != 1 {
		t.Errorf("applied %d times", s.PurchasesApplied)
	}
}

func TestTopUp_ALostAnswerIsRepeatedNotReapplied(t *testing.T) {
	r := newRig(t)
	r.account("ACC-2", 100, nil)
	_ = r.sim.AddPurchase(simtes.Purchase{ID: "P-2", CardAccountID: "ACC-2", Amount: 250})
	card := felicacard.Transit(idm(2), 100)
	c := r.topUp("s-lost", "ACC-2", "P-2", "dev-ACC-2")
	// Every answer is lost once: the client repeats the same request.
	retrying := func(loop tes.Loop) (*tes.CommandsResponse, error) {
		_ = r.sim.SetFaults(simtes.Faults{LoseNext: 1})
		if _, err := c(loop); !errors.Is(err, tes.ErrUnavailable) {
			t.Fatalf("a lost answer: %v", err)
		}
		return c(loop)
	}
	res, err := drive(t, card, retrying, 0)
	if err != nil || *res.Balance != 350 {
		t.Fatalf("%+v %v", res, err)
	}
	if p, _ := card.Balance(); p.Balance != 350 {
		t.Errorf("card purse %+v", p)
	}
	if s := r.sim.Stats(); s.PurchasesApplied != 1 || s.Replays == 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestTopUp_ALoopRestartedAfterTheWriteFinishesWithoutWritingAgain(t *testing.T) {
	r := newRig(t)
	r.account("ACC-3", 40, nil)
	_ = r.sim.AddPurchase(simtes.Purchase{ID: "P-3", CardAccountID: "ACC-3", Amount: 60})
	card := felicacard.Transit(idm(3), 40)
	// The first loop gets the write and the phone runs it, but its
	// responses never reach the TES.
	res, err := drive(t, card, r.topUp("s-a", "ACC-3", "P-3", "dev-ACC-3"), 3)
	if err != nil || len(res.Commands) != 2 {
		t.Fatalf("first loop: %+v %v", res, err)
	}
	run(card, res.Commands)
	r.clock.Advance(3 * time.Minute) // the first loop's time runs out
	res, err = drive(t, card, r.topUp("s-b", "ACC-3", "P-3", "dev-ACC-3"), 0)
	if err != nil || *res.Balance != 100 {
		t.Fatalf("second loop: %+v %v", res, err)
	}
	if p, _ := card.Balance(); p.Balance != 100 || p.Counter != 1 {
		t.Errorf("card purse %+v: written twice?", p)
	}
}

func TestLoops_RefuseWhatTheStateForbids(t *testing.T) {
	r := newRig(t)
	r.account("ACC-OK", 10, nil)
	r.account("ACC-BL", 10, func(a *simtes.Account) { a.Blacklisted = true })
	r.account("ACC-EX", 10, func(a *simtes.Account) { a.Expired = true })
	r.account("ACC-DEL", 10, func(a *simtes.Account) { a.Deleted = true })
	_ = r.sim.AddPurchase(simtes.Purchase{ID: "P-BIG", CardAccountID: "ACC-OK", Amount: -50})
	_ = r.sim.AddPurchase(simtes.Purchase{ID: "P-BL", CardAccountID: "ACC-BL", Amount: 5})
	_ = r.sim.AddPurchase(simtes.Purchase{ID: "P-EX", CardAccountID: "ACC-EX", Amount: 5})
	_ = r.sim.AddPurchase(simtes.Purchase{ID: "P-DEL", CardAccountID: "ACC-DEL", Amount: 5})
	card := felicacard.Transit(idm(4), 10)
	cases := []struct {
		name                   string
		card, purchase, device string
		issuer                 string
		want                   int
	}{
		{"insufficient balance", "ACC-OK", "P-BIG", "dev-ACC-OK", "TRANSIT1", tes.StatusInsufficient},
		{"blacklisted", "ACC-BL", "P-BL", "dev-ACC-BL", "TRANSIT1", tes.StatusBlacklisted},
		{"expired", "ACC-EX", "P-EX", "dev-ACC-EX", "TRANSIT1", tes.StatusExpired},
		{"deleted", "ACC-DEL", "P-DEL", "dev-ACC-DEL", "TRANSIT1", tes.StatusDeleted},
		{"unknown card", "ACC-NONE", "P-BL", "dev-x", "TRANSIT1", tes.StatusUnknownCard},
		{"unknown issuer", "ACC-OK", "P-BIG", "dev-ACC-OK", "NOBODY", tes.StatusUnknownIssuer},
		{"another device", "ACC-OK", "P-BIG", "dev-other", "TRANSIT1", tes.StatusUnknownDevice},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := drive(t, card, func(loop tes.Loop) (*tes.CommandsResponse, error) {
				return r.cli.CardCommands(context.Background(), tes.CardCommandsRequest{RequestHeader: r.cli.Header("case-" + c.name),
					IssuerID: c.issuer, CardID: c.card, PurchaseID: c.purchase, DeviceID: c.device, Operation: tes.OpTopUp, Loop: loop})
			}, 0)
			if got := code(err); got != c.want {
				t.Errorf("case %d: status %d (%v), want %d", i, got, err, c.want)
			}
		})
	}
	if p, _ := card.Balance(); p.Balance != 10 {
		t.Errorf("a refused loop changed the card: %+v", p)
	}
}

func TestLoops_SessionRules(t *testing.T) {
	r := newRig(t)
	r.account("ACC-S", 10, nil)
	_ = r.sim.AddPurchase(simtes.Purchase{ID: "P-S", CardAccountID: "ACC-S", Amount: 1})
	card := felicacard.Transit(idm(5), 10)
	first, err := r.topUp("s-one", "ACC-S", "P-S", "dev-ACC-S")(tes.Loop{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.topUp("s-two", "ACC-S", "P-S", "dev-ACC-S")(tes.Loop{}); code(err) != tes.StatusBusy {
		t.Errorf("a second loop on the device: %v", err)
	}
	if _, err := r.topUp("s-never", "ACC-S", "P-S", "dev-ACC-S")(tes.Loop{Responses: run(card, first.Commands)}); code(err) != tes.StatusUnknownSession {
		t.Errorf("responses for an unknown loop: %v", err)
	}
	r.clock.Advance(2*time.Minute + time.Second)
	if _, err := r.topUp("s-one", "ACC-S", "P-S", "dev-ACC-S")(tes.Loop{Responses: run(card, first.Commands)}); code(err) != tes.StatusTTLExpired {
		t.Errorf("a loop past its time to live: %v", err)
	}
	// A device error reported by the hub ends the loop with that code.
	res, err := r.topUp("s-three", "ACC-S", "P-S", "dev-ACC-S")(tes.Loop{})
	if err != nil || len(res.Commands) != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	devErr := tes.StatusDeviceError
	if _, err := r.topUp("s-three", "ACC-S", "P-S", "dev-ACC-S")(tes.Loop{StatusCode: &devErr, StatusMessage: "NFC off"}); code(err) != tes.StatusDeviceError {
		t.Errorf("a device error: %v", err)
	}
}

func TestPark_MovesTheBalanceToTheAccount(t *testing.T) {
	r := newRig(t)
	r.account("ACC-P", 0, nil)
	card := felicacard.Transit(idm(6), 700)
	res, err := drive(t, card, func(loop tes.Loop) (*tes.CommandsResponse, error) {
		return r.cli.ParkCardCommands(context.Background(), tes.ParkCardCommandsRequest{RequestHeader: r.cli.Header("park-1"), IssuerID: "TRANSIT1",
			CardID: "ACC-P", DeviceID: "dev-ACC-P", Operation: tes.OpPark, Loop: loop})
	}, 0)
	if err != nil || *res.Balance != 700 {
		t.Fatalf("park: %+v %v", res, err)
	}
	if p, _ := card.Balance(); p.Balance != 0 {
		t.Errorf("the card still holds %d", p.Balance)
	}
	if a, _ := r.sim.AccountState("ACC-P"); !a.Parked || a.Balance != 700 {
		t.Errorf("account %+v", a)
	}
	_ = r.sim.AddPurchase(simtes.Purchase{ID: "P-after", CardAccountID: "ACC-P", Amount: 5})
	if _, err := r.topUp("after", "ACC-P", "P-after", "dev-ACC-P")(tes.Loop{}); code(err) != tes.StatusDeleted {
		t.Errorf("a top-up of a parked card: %v", err)
	}
}

func contents(card *felicacard.Card) *tes.CardContents {
	id := card.IDm()
	return &tes.CardContents{CardServiceID: felicacard.ServiceName, SystemCode: "0003", IDm: strings.ToUpper(hex.EncodeToString(id[:])),
		PMm: "0120220427677FFF", AreaCodeList: []tes.Area{{AreaCode: "1000", KeyVersion: "0001"}}}
}

func (r *rig) readerMode(session, device string, cc *tes.CardContents) call {
	return func(loop tes.Loop) (*tes.CommandsResponse, error) {
		req := tes.ReaderModeCommandsRequest{RequestHeader: r.cli.Header(session), IssuerID: "TRANSIT1", DeviceID: device, Operation: tes.OpReaderMode, Loop: loop}
		if len(loop.Responses) == 0 {
			req.CardContents = cc
		}
		return r.cli.ReaderModeCommands(context.Background(), req)
	}
}

func TestReaderMode_IngestsAGoodCardAndRefusesBadOnes(t *testing.T) {
	r := newRig(t)
	r.sim.AddIssuer("TRANSIT1")
	good := felicacard.Transit(idm(7), 2500)
	_ = r.sim.AddExternalCard(simtes.ExternalCard{IDm: idmHex(7)})
	res, err := drive(t, good, r.readerMode("rm-1", "phone-1", contents(good)), 0)
	if err != nil || res.CardAccountID == "" || *res.Balance != 2500 {
		t.Fatalf("ingestion: %+v %v", res, err)
	}
	if a, ok := r.sim.AccountState(res.CardAccountID); !ok || a.Balance != 2500 || a.DeviceID != "phone-1" {
		t.Errorf("new account %+v", a)
	}
	if _, err := drive(t, good, r.readerMode("rm-2", "phone-1", contents(good)), 0); code(err) != tes.StatusAlreadyProvisioned {
		t.Errorf("ingesting the same card again: %v", err)
	}
	bl := felicacard.Transit(idm(8), 1)
	_ = r.sim.AddExternalCard(simtes.ExternalCard{IDm: idmHex(8), Blacklisted: true})
	ex := felicacard.Transit(idm(9), 1)
	_ = r.sim.AddExternalCard(simtes.ExternalCard{IDm: idmHex(9), Expired: true})
	for name, c := range map[string]struct {
		cc   func() *tes.CardContents
		want int
	}{
		"unsupported system code": {func() *tes.CardContents { cc := contents(good); cc.SystemCode = "FE00"; return cc }, tes.StatusBadSystemCode},
		"unsupported service":     {func() *tes.CardContents { cc := contents(good); cc.CardServiceID = "Test Service"; return cc }, tes.StatusBadService},
		"no purse area":           {func() *tes.CardContents { cc := contents(good); cc.AreaCodeList = nil; return cc }, tes.StatusBadAreaData},
		"blacklisted":             {func() *tes.CardContents { return contents(bl) }, tes.StatusBlacklisted},
		"expired":                 {func() *tes.CardContents { return contents(ex) }, tes.StatusExpired},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := r.readerMode("rm-"+name, "phone-2-"+name, c.cc())(tes.Loop{}); code(err) != c.want {
				t.Errorf("%v, want %d", err, c.want)
			}
		})
	}
	// A device that keeps presenting bad cards is stopped.
	for i := range 4 {
		cc := contents(good)
		cc.SystemCode = "FE00"
		_, err := r.readerMode("rm-bad-"+string(rune('a'+i)), "phone-3", cc)(tes.Loop{})
		want := tes.StatusBadSystemCode
		if i == 3 {
			want = tes.StatusReaderModeExceeded
		}
		if code(err) != want {
			t.Errorf("attempt %d: %v, want %d", i+1, err, want)
		}
	}
}

func TestValidation_MissingAndMalformedMembers(t *testing.T) {
	r := newRig(t)
	r.account("ACC-V", 1, nil)
	cases := map[string]struct {
		req  tes.CardCommandsRequest
		want int
	}{
		// Present but empty is the wrong form (112), as in the wallet
		// server's API; absent or null would be missing (111).
		"a header with empty ids": {tes.CardCommandsRequest{IssuerID: "TRANSIT1", CardID: "ACC-V", DeviceID: "d"}, tes.StatusBadFormat},
		"no card":                 {tes.CardCommandsRequest{RequestHeader: r.cli.Header("v"), IssuerID: "TRANSIT1", DeviceID: "d"}, tes.StatusMissing},
		"issuer too long":         {tes.CardCommandsRequest{RequestHeader: r.cli.Header("v"), IssuerID: strings.Repeat("I", 17), CardID: "ACC-V", DeviceID: "d"}, tes.StatusBadFormat},
		"top-up, no purchase":     {tes.CardCommandsRequest{RequestHeader: r.cli.Header("v"), IssuerID: "TRANSIT1", CardID: "ACC-V", DeviceID: "d", Operation: tes.OpTopUp}, tes.StatusMissing},
		"another operation":       {tes.CardCommandsRequest{RequestHeader: r.cli.Header("v"), IssuerID: "TRANSIT1", CardID: "ACC-V", DeviceID: "d", Operation: tes.OpPark}, tes.StatusBadFormat},
		"response not hex":        {tes.CardCommandsRequest{RequestHeader: r.cli.Header("v"), IssuerID: "TRANSIT1", CardID: "ACC-V", DeviceID: "d", Loop: tes.Loop{Responses: []tes.Response{{ID: "x", Data: "ZZ"}}}}, tes.StatusBadFormat},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := r.cli.CardCommands(context.Background(), c.req); code(err) != c.want {
				t.Errorf("%v, want %d", err, c.want)
			}
		})
	}
}

// What the published document says, and only that: a request with only the
// published members is served (requestHeader is our assumption), x-actor-id
// is at most 32 characters, responseTimeMs is a number; the code knob
// answers a documented code without acting.
func TestValidation_ThePublishedMembersAndHeaders(t *testing.T) {
	r := newRig(t)
	r.account("ACC-P", 5, nil)
	srv := httptest.NewServer(r.sim)
	defer srv.Close()
	post := func(actor, body string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/tes/devicegtwapi/1/0"+tes.PathCardCommands, strings.NewReader(body))
		if actor != "" {
			req.Header.Set("x-actor-id", actor)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		res, err := tes.DecodeAnswer("getCardCommands", resp.StatusCode, raw)
		var se *tes.StatusError
		switch {
		case errors.As(err, &se):
			return se.Code
		case err != nil:
			t.Fatalf("%s: %v", body, err)
		}
		if len(res.Commands) == 0 {
			t.Fatalf("%s: no commands in %+v", body, res)
		}
		return 0
	}
	for _, c := range []struct {
		name, actor, body string
		want              int
	}{
		{"only the published members", "hub", `{"issuerId":"TRANSIT1","cardId":"ACC-P","deviceId":"dev-ACC-P","operation":"READ_BALANCE"}`, 0},
		{"no x-actor-id", "", `{"issuerId":"TRANSIT1","cardId":"ACC-P","deviceId":"d2"}`, tes.StatusMissing},
		{"33-character x-actor-id", strings.Repeat("a", 33), `{"issuerId":"TRANSIT1","cardId":"ACC-P","deviceId":"d3"}`, tes.StatusBadFormat},
		{"responseTimeMs that is no number", "hub", `{"issuerId":"TRANSIT1","cardId":"ACC-P","deviceId":"d4","responseTimeMs":"fast"}`, tes.StatusBadFormat},
		{"responseTimeMs a double", "hub", `{"issuerId":"TRANSIT1","cardId":"ACC-P","deviceId":"dev-ACC-P","responseTimeMs":12.5}`, 0},
	} {
		if got := post(c.actor, c.body); got != c.want {
			t.Errorf("%s: statusCode %d, want %d", c.name, got, c.want)
		}
	}
	for _, code := range []int{163, 178, 221, 231, 232, 921} {
		if err := r.sim.SetFaults(simtes.Faults{Code: code, CodeNext: 1}); err != nil {
			t.Fatal(err)
		}
		if got := post("hub", `{"issuerId":"TRANSIT1","cardId":"ACC-P","deviceId":"dev-ACC-P","operation":"READ_BALANCE"}`); got != code {
			t.Errorf("code knob %d: answered %d", code, got)
		}
	}
	if err := r.sim.SetFaults(simtes.Faults{Code: 200, CodeNext: 1}); err == nil {
		t.Error("a code knob of 200 was accepted")
	}
}
