package e2e

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/felica"
	"github.com/provhub/provhub/internal/sim/felicacard"
	simtes "github.com/provhub/provhub/internal/sim/tes"
	simwallet "github.com/provhub/provhub/internal/sim/wallet"
	"github.com/provhub/provhub/internal/tes"
	"github.com/provhub/provhub/internal/transit"
)

type opStatus struct {
	OperationID   string `json:"operationId"`
	Kind          string `json:"kind"`
	Status        string `json:"status"`
	StatusCode    *int   `json:"statusCode"`
	StatusMessage string `json:"statusMessage"`
	Balance       *int64 `json:"balance"`
	CardAccountID string `json:"cardAccountId"`
	Steps         int    `json:"steps"`
}

// transitCard provisions and personalises a transit card on its own secure
// element, with balance on its FeliCa purse and the same balance on a TES
// account; it returns the card id (= account id).
func (e *env) transitCard(n int, balance uint32) (cardID, walletCardID, seID string) {
	e.t.Helper()
	seID = fmt.Sprintf("D0%06X", n)
	cardID, walletCardID = e.provision(seID, fmt.Sprintf("ACC-D%d", n))
	p := e.perso(cardID)
	if t := e.waitTask(cardID, p.TaskID); t.Status != transit.TaskCompleted {
		e.t.Fatalf("perso: %+v", t)
	}
	if err := e.wsim.SetCardBalance(walletCardID, balance); err != nil {
		e.t.Fatal(err)
	}
	if err := e.tsim.AddAccount(simtes.Account{ID: cardID, IssuerID: "TRANSIT1", DeviceID: "dev-" + seID, Balance: int64(balance)}); err != nil {
		e.t.Fatal(err)
	}
	return cardID, walletCardID, seID
}

func (e *env) startTopUp(cardID, purchaseID string) transitAnswerOp {
	e.t.Helper()
	return e.opCall(transitBase+"topupCard", map[string]any{"issuerId": "TRANSIT1", "cardId": cardID, "purchaseId": purchaseID})
}

type transitAnswerOp struct {
	ResponseHeader struct {
		StatusCode    int    `json:"statusCode"`
		StatusMessage string `json:"statusMessage"`
	} `json:"responseHeader"`
	OperationID string    `json:"operationId"`
	Operation   *opStatus `json:"operation"`
}

func (e *env) opCall(path string, body map[string]any) transitAnswerOp {
	e.t.Helper()
	body["requestHeader"] = map[string]string{"requestId": fmt.Sprintf("r-%d", time.Now().UnixNano()), "sessionId": "sess-device"}
	raw, _ := json.Marshal(body)
	_, out := e.transit.call(conforming, "POST", path, "", raw)
	var a transitAnswerOp
	if err := json.Unmarshal(out, &a); err != nil {
		e.t.Fatalf("%s: %s", path, out)
	}
	return a
}

// waitOp polls getOperationStatus until the operation has ended.
func (e *env) waitOp(operationID string) opStatus {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		a := e.opCall(transitBase+"getOperationStatus", map[string]any{"issuerId": "TRANSIT1", "operationId": operationID})
		if a.ResponseHeader.StatusCode != 0 || a.Operation == nil {
			e.t.Fatalf("getOperationStatus: %+v", a)
		}
		if a.Operation.Status == "COMPLETED" || a.Operation.Status == "FAILED" {
			return *a.Operation
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, l := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(l, operationID) {
			e.t.Log(l)
		}
	}
	e.t.Fatalf("operation %s did not end", operationID)
	return opStatus{}
}

func code(s opStatus) int {
	if s.StatusCode == nil {
		return -1
	}
	return *s.StatusCode
}

func TestDevice_TopUpRaisesTheBalanceOnTheCardAndTheTESOnce(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		cardID, wc, se := e.transitCard(1, 1000)
		if err := e.tsim.AddPurchase(simtes.Purchase{ID: "P-1", CardAccountID: cardID, Amount: 500}); err != nil {
			t.Fatal(err)
		}
		a := e.startTopUp(cardID, "P-1")
		if a.ResponseHeader.StatusCode != 0 || a.OperationID == "" {
			t.Fatalf("topupCard: %+v", a)
		}
		st := e.waitOp(a.OperationID)
		if st.Status != "COMPLETED" || code(st) != 0 || st.Balance == nil || *st.Balance != 1500 || st.Steps != 4 {
			t.Fatalf("operation: %+v", st)
		}
		if p, _ := e.wsim.CardPurse(wc); p.Balance != 1500 {
			t.Errorf("the card holds %d", p.Balance)
		}
		if acc, _ := e.tsim.AccountState(cardID); acc.Balance != 1500 {
			t.Errorf("the TES account holds %d", acc.Balance)
		}
		e.wsim.Wait()
		if runs := e.wsim.Runs(se); len(runs) != 1 || !runs[0].Done || runs[0].StatusCode != 0 || *runs[0].Balance != 1500 {
			t.Errorf("device runs: %+v", runs)
		}
		// Every relay step is on record.
		if n := e.count(`SELECT COUNT(*) FROM transit_operation_steps WHERE operation_id = $1`, a.OperationID); n != 4 {
			t.Errorf("%d steps recorded, want 4", n)
		}
		// The same purchase again ends at once; nothing is applied twice.
		b := e.startTopUp(cardID, "P-1")
		if st := e.waitOp(b.OperationID); st.Status != "COMPLETED" || *st.Balance != 1500 {
			t.Errorf("second top-up with the same purchase: %+v", st)
		}
		if p, _ := e.wsim.CardPurse(wc); p.Balance != 1500 {
			t.Errorf("the card holds %d after a repeated purchase", p.Balance)
		}
		if s := e.tsim.Stats(); s.PurchasesApplied != 1 {
			t.Errorf("purchase applied %d times", s.PurchasesApplied)
		}
	})
}

func TestDevice_RepeatedAndLostStepsApplyTheTopUpOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	cardID, wc, _ := e.transitCard(2, 200)
	_ = e.tsim.AddPurchase(simtes.Purchase{ID: "P-2", CardAccountID: cardID, Amount: 300})
	// The device sends every call twice (it lost the first answer), and
	// the TES loses two of its answers to the hub.
	f := e.wsim.Faults()
	f.DeviceRepeatNext = 10
	if err := e.wsim.SetFaults(f); err != nil {
		t.Fatal(err)
	}
	if err := e.tsim.SetFaults(simtes.Faults{LoseNext: 2}); err != nil {
		t.Fatal(err)
	}
	a := e.startTopUp(cardID, "P-2")
	st := e.waitOp(a.OperationID)
	if st.Status != "COMPLETED" || *st.Balance != 500 {
		t.Fatalf("operation: %+v", st)
	}
	if p, _ := e.wsim.CardPurse(wc); p.Balance != 500 || p.Counter != 1 {
		t.Errorf("card purse %+v", p)
	}
	s := e.tsim.Stats()
	if s.PurchasesApplied != 1 || s.Replays < 2 {
		t.Errorf("TES stats %+v: want one application and the lost answers replayed", s)
	}
}

// device plays a phone by hand against the hub's device API.
type device struct {
	e         *env
	se, wc    string
	card      *felicacard.Card
	operation string
	// token is the operation's device token, which the wallet server
	// received in the REDIRECT and handed to this phone.
	token string
}

// redirected waits for the REDIRECT (of d.operation, when set) to reach
// the wallet server and takes the operation and token it carries, as the
// phone's wallet app would.
func (d *device) redirected() {
	d.e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if rd, ok := d.e.wsim.LastRedirect(d.wc); ok && (d.operation == "" || rd.OperationID == d.operation) {
			d.operation, d.token = rd.OperationID, rd.DeviceToken
			return
		}
		if time.Now().After(deadline) {
			d.e.t.Fatal("no REDIRECT reached the wallet server")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type deviceAns struct {
	ResponseHeader struct {
		StatusCode int `json:"statusCode"`
	} `json:"responseHeader"`
	OperationID string        `json:"operationId"`
	Step        int           `json:"step"`
	Done        bool          `json:"done"`
	Commands    []tes.Command `json:"commands"`
	Balance     *int64        `json:"balance"`
}

func (d *device) call(step int, responses []tes.Response) deviceAns {
	d.e.t.Helper()
	if d.token == "" {
		d.redirected()
	}
	body := map[string]any{"requestHeader": map[string]string{"requestId": "dr", "sessionId": "ds"}, "seId": d.se, "step": step,
		"deviceToken": d.token, "operationId": d.operation, "walletCardId": d.wc}
	if len(responses) > 0 {
		body["responses"] = responses
	}
	raw, _ := json.Marshal(body)
	_, out := d.e.device.call(conforming, "POST", "/getDeviceCommands", "", raw)
	var a deviceAns
	if err := json.Unmarshal(out, &a); err != nil {
		d.e.t.Fatalf("getDeviceCommands: %s", out)
	}
	if a.OperationID != "" {
		d.operation = a.OperationID
	}
	return a
}

func (d *device) run(cmds []tes.Command) []tes.Response {
	var out []tes.Response
	for _, c := range cmds {
		raw, _ := hex.DecodeString(c.Data)
		out = append(out, tes.Response{ID: c.ID, Data: strings.ToUpper(hex.EncodeToString(d.card.Exec(raw)))})
	}
	return out
}

func TestDevice_ATopUpResumesAcrossAHubRestartWithoutApplyingTwice(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		cardID, wc, se := e.transitCard(3, 70)
		_ = e.tsim.AddPurchase(simtes.Purchase{ID: "P-3", CardAccountID: cardID, Amount: 30})
		// This phone plays itself: the simulated one only counts the REDIRECT.
		e.wsim.SetPodURL(e.hubCfg.Pod, "")
		d := &device{e: e, se: se, wc: wc, card: felicacard.Transit(felica.IDm{0x01, 0xD3}, 70)}
		a := e.startTopUp(cardID, "P-3")
		if a.ResponseHeader.StatusCode != 0 {
			t.Fatalf("topupCard: %+v", a)
		}
		b1 := d.call(0, nil) // the polling
		b2 := d.call(1, d.run(b1.Commands))
		r2 := d.run(b2.Commands)
		b3 := d.call(2, r2) // the write and its check
		if len(b3.Commands) != 2 || b3.Step != 3 {
			t.Fatalf("third batch: %+v", b3)
		}
		r3 := d.run(b3.Commands) // the card is written...
		callsBefore := e.tsim.Stats().Calls
		e.restartHub() // ...and the hub goes down before the device reports it
		e.wsim.SetPodURL(e.hubCfg.Pod, "")
		// The device repeats its last call to the new hub: answered from the
		// record, without asking the TES.
		again := d.call(2, r2)
		if again.Step != 3 || len(again.Commands) != 2 || e.tsim.Stats().Calls != callsBefore {
			t.Fatalf("a repeated step after the restart: %+v (TES calls %d -> %d)", again, callsBefore, e.tsim.Stats().Calls)
		}
		if bad := d.call(5, r3); bad.ResponseHeader.StatusCode != 112 || bad.Done {
			t.Errorf("a step out of order: %+v", bad)
		}
		end := d.call(3, r3)
		if !end.Done || end.ResponseHeader.StatusCode != 0 || *end.Balance != 100 {
			t.Fatalf("end: %+v", end)
		}
		if p, _ := d.card.Balance(); p.Balance != 100 || p.Counter != 1 {
			t.Errorf("card purse %+v", p)
		}
		if s := e.tsim.Stats(); s.PurchasesApplied != 1 {
			t.Errorf("applied %d times", s.PurchasesApplied)
		}
		if st := e.waitOp(a.OperationID); st.Status != "COMPLETED" || *st.Balance != 100 {
			t.Errorf("operation %+v", st)
		}
	})
}

func TestDevice_ParkMovesTheBalanceToTheTES(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	cardID, wc, _ := e.transitCard(4, 640)
	a := e.opCall(transitBase+"parkCard", map[string]any{"issuerId": "TRANSIT1", "cardId": cardID})
	st := e.waitOp(a.OperationID)
	if st.Status != "COMPLETED" || *st.Balance != 640 {
		t.Fatalf("park: %+v", st)
	}
	if p, _ := e.wsim.CardPurse(wc); p.Balance != 0 {
		t.Errorf("the card still holds %d", p.Balance)
	}
	if acc, _ := e.tsim.AccountState(cardID); !acc.Parked || acc.Balance != 640 {
		t.Errorf("TES account %+v", acc)
	}
}

func TestDevice_ReaderModeIngestsACardAndRejectsBadOnes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	se := "0E0E0E01"
	if err := e.wsim.AddDevice(se, "phone-rm"); err != nil {
		t.Fatal(err)
	}
	e.tsim.AddIssuer("TRANSIT1")
	id := felica.IDm{0x01, 0x2E, 0, 0, 0, 0, 0, 0x42}
	if err := e.wsim.HoldExternalCard(se, felicacard.Transit(id, 4200)); err != nil {
		t.Fatal(err)
	}
	_ = e.tsim.AddExternalCard(simtes.ExternalCard{IDm: hex.EncodeToString(id[:])})
	readerMode := func(cc *tes.CardContents) simwallet.DeviceRun {
		t.Helper()
		before := len(e.wsim.Runs(se))
		if err := e.wsim.StartReaderMode(se, "TRANSIT1", cc); err != nil {
			t.Fatal(err)
		}
		e.wsim.Wait()
		runs := e.wsim.Runs(se)
		if len(runs) != before+1 {
			t.Fatalf("runs %+v", runs)
		}
		return runs[len(runs)-1]
	}
	run := readerMode(nil)
	if !run.Done || run.StatusCode != 0 || run.CardAccountID == "" || *run.Balance != 4200 {
		t.Fatalf("ingestion: %+v", run)
	}
	if acc, ok := e.tsim.AccountState(run.CardAccountID); !ok || acc.Balance != 4200 {
		t.Errorf("new TES account %+v", acc)
	}
	st := e.waitOp(run.OperationID)
	if st.Kind != "READER_MODE" || st.CardAccountID != run.CardAccountID {
		t.Errorf("operation %+v", st)
	}
	good := func() *tes.CardContents {
		return &tes.CardContents{CardServiceID: felicacard.ServiceName, SystemCode: "0003", IDm: strings.ToUpper(hex.EncodeToString(id[:])),
			AreaCodeList: []tes.Area{{AreaCode: "1000", KeyVersion: "0001"}}}
	}
	// Each bad card on a device of its own: three refusals on one device
	// make the TES stop it (192), as its unit tests show.
	for i, c := range []struct {
		name string
		mod  func(*tes.CardContents)
		want int
	}{
		{"already ingested", func(*tes.CardContents) {}, tes.StatusAlreadyProvisioned},
		{"unsupported system code", func(c *tes.CardContents) { c.SystemCode = "FE00" }, tes.StatusBadSystemCode},
		{"unsupported service", func(c *tes.CardContents) { c.CardServiceID = "Test Service" }, tes.StatusBadService},
		{"invalid area data", func(c *tes.CardContents) { c.AreaCodeList[0].KeyVersion = "6745" }, tes.StatusBadAreaData},
	} {
		t.Run(c.name, func(t *testing.T) {
			se = fmt.Sprintf("0E0E0E1%d", i)
			if err := e.wsim.AddDevice(se, "phone-"+se); err != nil {
				t.Fatal(err)
			}
			if err := e.wsim.HoldExternalCard(se, felicacard.Transit(id, 4200)); err != nil {
				t.Fatal(err)
			}
			cc := good()
			c.mod(cc)
			if run := readerMode(cc); !run.Done || run.StatusCode != c.want {
				t.Errorf("run %+v, want %d", run, c.want)
			}
		})
	}
}

func TestDevice_RefusalsFromTheCardTheTESAndTheClock(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{deviceTTL: 30 * time.Second})
	cardID, wc, se := e.transitCard(5, 100)
	_ = e.tsim.AddPurchase(simtes.Purchase{ID: "P-LOW", CardAccountID: cardID, Amount: -150})
	st := e.waitOp(e.startTopUp(cardID, "P-LOW").OperationID)
	if st.Status != "FAILED" || code(st) != tes.StatusInsufficient {
		t.Errorf("insufficient balance: %+v", st)
	}
	blocked, _, _ := e.transitCard(6, 100)
	_ = e.tsim.AddAccount(simtes.Account{ID: blocked, IssuerID: "TRANSIT1", DeviceID: "dev-D0000006", Balance: 100, Blacklisted: true})
	_ = e.tsim.AddPurchase(simtes.Purchase{ID: "P-BL", CardAccountID: blocked, Amount: 5})
	if st := e.waitOp(e.startTopUp(blocked, "P-BL").OperationID); st.Status != "FAILED" || code(st) != tes.StatusBlacklisted {
		t.Errorf("blacklisted: %+v", st)
	}
	// One operation at a time per device, and a time to live.
	e.wsim.SetPodURL(e.hubCfg.Pod, "") // the phone never calls in
	_ = e.tsim.AddPurchase(simtes.Purchase{ID: "P-OK", CardAccountID: cardID, Amount: 1})
	first := e.startTopUp(cardID, "P-OK")
	if first.ResponseHeader.StatusCode != 0 {
		t.Fatalf("topupCard: %+v", first)
	}
	if second := e.startTopUp(cardID, "P-OK"); second.ResponseHeader.StatusCode != 321 {
		t.Errorf("a second operation on the device: %+v", second)
	}
	e.clock.Advance(31 * time.Second)
	st = e.waitOp(first.OperationID)
	if st.Status != "FAILED" || code(st) != tes.StatusTTLExpired {
		t.Errorf("time to live: %+v", st)
	}
	if p, _ := e.wsim.CardPurse(wc); p.Balance != 100 {
		t.Errorf("a refused operation changed the card: %+v", p)
	}
	d := &device{e: e, se: se, wc: wc, card: felicacard.Transit(felica.IDm{1}, 0), operation: first.OperationID}
	if a := d.call(0, nil); !a.Done || a.ResponseHeader.StatusCode != tes.StatusTTLExpired {
		t.Errorf("a device calling after the time to live: %+v", a)
	}
	// A wallet server that refuses the REDIRECT for good: 221.
	gone, goneWC, goneSE := e.transitCard(7, 50)
	if err := e.wsimUpdate(goneWC, goneSE, "DELETE"); err != nil {
		t.Fatal(err)
	}
	e.wsim.Wait()
	_ = e.tsim.AddPurchase(simtes.Purchase{ID: "P-GONE", CardAccountID: gone, Amount: 5})
	if st := e.waitOp(e.startTopUp(gone, "P-GONE").OperationID); st.Status != "FAILED" || code(st) != tes.StatusDeviceUnreachable ||
		!strings.Contains(st.StatusMessage, "redirected") {
		t.Errorf("refused redirect: %+v", st)
	}
	// Northbound refusals.
	for name, c := range map[string]struct {
		body map[string]any
		want int
	}{
		"unknown card":   {map[string]any{"issuerId": "TRANSIT1", "cardId": "NOPE", "purchaseId": "P"}, 119},
		"no purchase id": {map[string]any{"issuerId": "TRANSIT1", "cardId": cardID}, 111},
	} {
		rule := conforming
		if name == "no purchase id" {
			rule = nonConforming
		}
		c.body["requestHeader"] = map[string]string{"requestId": "r", "sessionId": "s"}
		raw, _ := json.Marshal(c.body)
		_, out := e.transit.call(rule, "POST", transitBase+"topupCard", "", raw)
		if !strings.Contains(string(out), fmt.Sprintf(`"statusCode":%d`, c.want)) {
			t.Errorf("%s: %s", name, out)
		}
	}
	if a := e.opCall(transitBase+"getOperationStatus", map[string]any{"issuerId": "TRANSIT1", "operationId": "dop-none"}); a.ResponseHeader.StatusCode != 118 {
		t.Errorf("unknown operation: %+v", a)
	}
}

// The TES's documented codes, answered as codes: 921 is asked again (the
// top-up then completes, applied once); 163 ends the operation FAILED with
// it, nothing applied.
func TestDevice_TES921IsAskedAgainAnd163EndsTheOperation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	cardID, wc, _ := e.transitCard(70, 100)
	if err := e.tsim.AddPurchase(simtes.Purchase{ID: "P-921", CardAccountID: cardID, Amount: 50}); err != nil {
		t.Fatal(err)
	}
	if err := e.tsim.SetFaults(simtes.Faults{Code: 921, CodeNext: 2}); err != nil {
		t.Fatal(err)
	}
	if st := e.waitOp(e.startTopUp(cardID, "P-921").OperationID); st.Status != "COMPLETED" || *st.Balance != 150 {
		t.Fatalf("a top-up through two 921 answers: %+v", st)
	}
	if p, _ := e.wsim.CardPurse(wc); p.Balance != 150 || e.tsim.Stats().PurchasesApplied != 1 {
		t.Fatalf("the card holds %d, purchases applied %d", p.Balance, e.tsim.Stats().PurchasesApplied)
	}
	// More 921 answers than one step asks within --tes-retry-for (here
	// 60 ms, 20 ms apart): the device is told to repeat the step, and the
	// operation rides the outage out.
	if err := e.tsim.AddPurchase(simtes.Purchase{ID: "P-921-LONG", CardAccountID: cardID, Amount: 50}); err != nil {
		t.Fatal(err)
	}
	if err := e.tsim.SetFaults(simtes.Faults{Code: 921, CodeNext: 12}); err != nil {
		t.Fatal(err)
	}
	if st := e.waitOp(e.startTopUp(cardID, "P-921-LONG").OperationID); st.Status != "COMPLETED" || *st.Balance != 200 {
		t.Fatalf("a top-up through twelve 921 answers: %+v", st)
	}
	if p, _ := e.wsim.CardPurse(wc); p.Balance != 200 || e.tsim.Stats().PurchasesApplied != 2 {
		t.Fatalf("the card holds %d, purchases applied %d", p.Balance, e.tsim.Stats().PurchasesApplied)
	}
	if n := strings.Count(e.logs.String(), "TES did not answer a relay step"); n == 0 {
		t.Error("the device was never told to repeat a step")
	}
	if strings.Contains(e.logs.String(), "handler panicked") {
		t.Error("a relay step panicked")
	}
	if err := e.tsim.AddPurchase(simtes.Purchase{ID: "P-163", CardAccountID: cardID, Amount: 50}); err != nil {
		t.Fatal(err)
	}
	if err := e.tsim.SetFaults(simtes.Faults{Code: 163, CodeNext: 1}); err != nil {
		t.Fatal(err)
	}
	if st := e.waitOp(e.startTopUp(cardID, "P-163").OperationID); st.Status != "FAILED" || code(st) != 163 {
		t.Fatalf("a top-up the TES refuses with 163: %+v", st)
	}
	if p, _ := e.wsim.CardPurse(wc); p.Balance != 200 {
		t.Errorf("the card holds %d after a refused top-up", p.Balance)
	}
}

// What the hub makes of the TES's documented refusals it cannot produce by
// its own rules: each ends the device operation FAILED with that code, and
// the card keeps its balance.
func TestDevice_EveryDocumentedTESRefusalEndsTheOperation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	cardID, wc, _ := e.transitCard(71, 100)
	for i, want := range []int{163, 178, 221, 231, 232, 323, 911} {
		t.Run(fmt.Sprint(want), func(t *testing.T) {
			purchase := fmt.Sprintf("P-CODE-%d", i)
			if err := e.tsim.AddPurchase(simtes.Purchase{ID: purchase, CardAccountID: cardID, Amount: 10}); err != nil {
				t.Fatal(err)
			}
			if err := e.tsim.SetFaults(simtes.Faults{Code: want, CodeNext: 1}); err != nil {
				t.Fatal(err)
			}
			if st := e.waitOp(e.startTopUp(cardID, purchase).OperationID); st.Status != "FAILED" || code(st) != want {
				t.Fatalf("after a %d: %+v", want, st)
			}
			if p, _ := e.wsim.CardPurse(wc); p.Balance != 100 {
				t.Fatalf("the card holds %d", p.Balance)
			}
		})
	}
}
