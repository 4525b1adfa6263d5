package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/apdu"
	"github.com/provhub/provhub/internal/issuer"
	simwallet "github.com/provhub/provhub/internal/sim/wallet"
	"github.com/provhub/provhub/internal/transit"
	"github.com/provhub/provhub/internal/wallet"
	"net/http"
)

const transitBase = "/tsh/transitapi/1/0/"

// transitAnswer is a transit call's answer.
type transitAnswer struct {
	ResponseHeader struct {
		StatusCode    int    `json:"statusCode"`
		StatusMessage string `json:"statusMessage"`
		SessionID     string `json:"sessionId"`
	} `json:"responseHeader"`
	CardID string `json:"cardId"`
	TaskID string `json:"taskId"`
	// The wallet-server calls' answers.
	WalletCardID         string   `json:"walletCardId"`
	WalletCardAccountID  string   `json:"walletCardAccountId"`
	TermsAndConditionsID string   `json:"termsAndConditionsId"`
	CardArtManifest      []string `json:"cardArtManifest"`
	ContentType          string   `json:"contentType"`
	Content              []byte   `json:"content"`
}

func (e *env) transitCall(rule specRule, path string, body map[string]any) transitAnswer {
	e.t.Helper()
	if _, ok := body["requestHeader"]; !ok {
		body["requestHeader"] = map[string]string{"requestId": fmt.Sprintf("r-%d", time.Now().UnixNano()), "sessionId": "sess-transit",
			"generationDateTime": time.Now().UTC().Format(time.RFC3339)}
	}
	raw, _ := json.Marshal(body)
	hdr := http.Header{"Content-Type": {"application/json"}}
	if strings.HasPrefix(path, "/tsh/wsapi/") {
		hdr.Set("x-pod", "wallet-test-pod") // every wallet-server call names its pod
	}
	_, _, out := e.transit.send(rule, "POST", path, "", raw, hdr)
	var a transitAnswer
	if err := json.Unmarshal(out, &a); err != nil {
		e.t.Fatalf("%s: %s", path, out)
	}
	return a
}

// testLastDigits are the last digits every test card is registered with.
const testLastDigits = "4711"

// provision has the wallet simulator provision a card of account (of
// TRANSIT1) on a secure element as the published flow does, registering
// the account with the issuer first; it returns the cardId (the account)
// and the walletCardId the hub gave the card.
func (e *env) provision(seID, account string) (cardID, walletCardID string) {
	e.t.Helper()
	return account, e.provisionFor("TRANSIT1", seID, account)
}

// provisionFor registers account with issuerID when it is not yet, asks
// the hub for its opaqueCardAccountData as the issuer's back end would,
// and has the wallet simulator run checkCardAccount, getAsset and
// provisionCard through the spec-checking proxy; it returns the
// walletCardId.
func (e *env) provisionFor(issuerID, seID, account string) string {
	e.t.Helper()
	data := e.opaqueFor(issuerID, account)
	res, err := e.wsim.Provision(context.Background(), simwallet.ProvisionRequest{IssuerID: issuerID, SEID: seID, DeviceID: "dev-" + seID,
		CardSource: "USER-INPUT", OpaqueCardAccountData: data, LastDigits: testLastDigits})
	if err != nil || !res.OK() || res.WalletCardID == "" {
		e.t.Fatalf("provisioning %s on %s: %+v %v", account, seID, res, err)
	}
	return res.WalletCardID
}

// opaqueFor registers account with issuerID when it is not yet (no end
// user, last digits testLastDigits) and returns opaqueCardAccountData for
// it, as the issuer's back end gets it from the hub.
func (e *env) opaqueFor(issuerID, account string) string {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.hub.Issuer().Profile(ctx, issuerID, account); issuer.KindOf(err) == issuer.KindNotFound {
		if err := e.hub.Issuer().RegisterCard(ctx, issuerID, account, issuer.CardInput{CardProductID: "TRANSIT_PRODUCT", LastDigits: testLastDigits},
			issuer.Requestor{Type: issuer.RequestorIssuer, ID: issuerID}); err != nil {
			e.t.Fatal(err)
		}
	} else if err != nil {
		e.t.Fatal(err)
	}
	data, _, err := e.hub.Accounts().IssueData(ctx, issuerID, account)
	if err != nil {
		e.t.Fatal(err)
	}
	return data
}

// provisionCall is a provisionCard body for account on a secure element,
// USER-INPUT with fresh opaque data.
func (e *env) provisionCall(issuerID, seID, account string) map[string]any {
	e.t.Helper()
	return map[string]any{"issuerId": issuerID, "cardSource": "USER-INPUT",
		"cardAccountDescriptor": map[string]string{"opaqueCardAccountData": e.opaqueFor(issuerID, account)},
		"cardLastDigits":        testLastDigits, "seId": seID, "deviceId": "dev-" + seID}
}

func (e *env) perso(cardID string) transitAnswer {
	e.t.Helper()
	return e.transitCall(conforming, transitBase+"submitCardPersoData", map[string]any{"issuerId": "TRANSIT1", "cardId": cardID,
		"cardPersoData": map[string]any{"dgis": []map[string]string{{"dgi": "0101", "data": "0102030405"}, {"dgi": "9F10", "data": strings.Repeat("AB", 300)}}}})
}

func (e *env) state(cardID, action string) transitAnswer {
	e.t.Helper()
	return e.transitCall(conforming, transitBase+"updateCardState", map[string]any{"issuerId": "TRANSIT1", "cardId": cardID, "action": action})
}

// waitTask waits for a task to end and returns it.
func (e *env) waitTask(cardID, taskID string) transit.Task {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		tasks, err := e.hub.Transit().Tasks(context.Background(), cardID)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, t := range tasks {
			if t.TaskID == taskID && (t.Status == transit.TaskCompleted || t.Status == transit.TaskFailed) {
				return t
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("task %s did not end", taskID)
	return transit.Task{}
}

func (e *env) card(cardID string) *transit.Card {
	e.t.Helper()
	c, err := e.hub.Transit().Card(context.Background(), cardID)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func instanceOn(e *env, seID string) simwallet.InstanceState {
	e.t.Helper()
	se, ok := e.wsim.SecureElement(seID)
	if !ok || len(se.Instances) != 1 {
		e.t.Fatalf("secure element %s: %+v", seID, se)
	}
	return se.Instances[0]
}

func TestTransit_ProvisionPersonaliseAndLifeCycle(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		cardID, wc := e.provision("0A0B0C0D", "ACC-100")
		if c := e.card(cardID); c.State != transit.PendingPerso || c.WalletCardID != wc {
			t.Fatalf("new card %+v", c)
		}
		// Provisioning again for the same secure element is answered alike.
		if a := e.transitCall(conforming, "/tsh/wsapi/1/0/provisionCard", e.provisionCall("TRANSIT1", "0a0b0c0d", "ACC-100")); a.ResponseHeader.StatusCode != 0 || a.WalletCardID != wc {
			t.Fatalf("second provisionCard: %+v", a)
		}
		a := e.perso(cardID)
		if a.ResponseHeader.StatusCode != 0 || a.TaskID == "" || a.ResponseHeader.SessionID != "sess-transit" {
			t.Fatalf("submitCardPersoData: %+v", a)
		}
		if tk := e.waitTask(cardID, a.TaskID); tk.Status != transit.TaskCompleted {
			t.Fatalf("perso task: %+v", tk)
		}
		if c := e.card(cardID); c.State != transit.Active {
			t.Fatalf("after perso: %s", c.State)
		}
		inst := instanceOn(e, "0A0B0C0D")
		if inst.State != 0x0F || inst.Data["0101"] != "0102030405" || len(inst.Data["9F10"]) != 600 || inst.AID != e.card(cardID).InstanceAID {
			t.Fatalf("instance after perso: %+v", inst)
		}
		if se, _ := e.wsim.SecureElement("0A0B0C0D"); se.LastPod != "hub-test-pod" {
			t.Errorf("x-pod seen by the wallet server: %q", se.LastPod)
		}
		steps := []struct {
			action string
			state  transit.CardState
			locked bool
		}{
			{"SUSPEND", transit.Suspended, true},
			{"RESUME", transit.Active, false},
		}
		for _, st := range steps {
			a := e.state(cardID, st.action)
			if a.ResponseHeader.StatusCode != 0 {
				t.Fatalf("%s: %+v", st.action, a)
			}
			if tk := e.waitTask(cardID, a.TaskID); tk.Status != transit.TaskCompleted {
				t.Fatalf("%s task: %+v", st.action, tk)
			}
			if c := e.card(cardID); c.State != st.state || instanceOn(e, "0A0B0C0D").Locked != st.locked {
				t.Fatalf("after %s: %s, locked=%v", st.action, c.State, instanceOn(e, "0A0B0C0D").Locked)
			}
		}
		// Not allowed in the card's state: answered by the hub at once.
		if a := e.state(cardID, "RESUME"); a.ResponseHeader.StatusCode != 432 {
			t.Fatalf("RESUME of an ACTIVE card: %+v", a)
		}
		a = e.transitCall(conforming, transitBase+"updateCardMetadata", map[string]any{"issuerId": "TRANSIT1", "cardId": cardID,
			"cardDescriptor": map[string]any{"cardholderName": "Ada Rider", "labelColor": "rgb12,34,56", "displayCardNumber": "1234"}})
		if tk := e.waitTask(cardID, a.TaskID); tk.Status != transit.TaskCompleted || !strings.Contains(string(e.card(cardID).Metadata), "Ada Rider") {
			t.Fatalf("metadata: %+v %s", tk, e.card(cardID).Metadata)
		}
		a = e.state(cardID, "DELETE")
		if tk := e.waitTask(cardID, a.TaskID); tk.Status != transit.TaskCompleted || e.card(cardID).State != transit.Deleted {
			t.Fatalf("delete: %+v", tk)
		}
		if se, _ := e.wsim.SecureElement("0A0B0C0D"); len(se.Instances) != 0 {
			t.Fatalf("DELETE left the instance: %+v", se.Instances)
		}
		a = e.state(cardID, "ERASE")
		if tk := e.waitTask(cardID, a.TaskID); tk.Status != transit.TaskCompleted {
			t.Fatalf("erase: %+v", tk)
		}
		c := e.card(cardID)
		if c.State != transit.Erased || c.CardAccountID != "" || c.WalletCardID != "" || c.Metadata != nil || c.DeviceID != "" {
			t.Fatalf("ERASE kept personal data: %+v", c)
		}
		var leftovers int
		if err := e.hub.DB().Reader().QueryRowContext(context.Background(),
			`SELECT count(*) FROM transit_tasks WHERE card_id = $1 AND (payload IS NOT NULL OR message IS NOT NULL)`, cardID).Scan(&leftovers); err != nil || leftovers != 0 {
			t.Fatalf("ERASE left %d task payloads (%v)", leftovers, err)
		}
		if a := e.state(cardID, "SUSPEND"); a.ResponseHeader.StatusCode != 119 {
			t.Fatalf("an erased card should be unknown: %+v", a)
		}
	})
}

func TestTransit_WalletRefusalsEndTheTaskFailedWithTheirCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	// 119: the wallet server does not know the wallet card.
	if err := e.wsim.AddDevice("0B0B", "d"); err != nil {
		t.Fatal(err)
	}
	// (provisioned by another wallet server than the simulator).
	if a := e.transitCall(conforming, "/tsh/wsapi/1/0/provisionCard", e.provisionCall("TRANSIT1", "0B0B", "ACC-X")); a.ResponseHeader.StatusCode != 0 {
		t.Fatalf("provisionCard: %+v", a)
	}
	p := e.perso("ACC-X")
	tk := e.waitTask("ACC-X", p.TaskID)
	if tk.Status != transit.TaskFailed || tk.StatusCode == nil || *tk.StatusCode != wallet.StatusUnknownCard {
		t.Fatalf("unknown wallet card: %+v", tk)
	}
	if c := e.card("ACC-X"); c.State != transit.PendingPerso {
		t.Fatalf("a failed perso moved the card to %s", c.State)
	}
	// 432: the wallet server says the card's state forbids it (the card
	// was suspended behind the hub's back).
	cardID, wc200 := e.provision("0C0C", "ACC-200")
	e.waitTask(cardID, e.perso(cardID).TaskID)
	susp := e.state(cardID, "SUSPEND")
	e.waitTask(cardID, susp.TaskID)
	resume := e.state(cardID, "RESUME")
	e.waitTask(cardID, resume.TaskID)
	// Lock it at the wallet server only, then ask the hub to suspend.
	if err := e.wsimUpdate(wc200, "0C0C", wallet.OpSuspend); err != nil {
		t.Fatal(err)
	}
	susp = e.state(cardID, "SUSPEND")
	tk = e.waitTask(cardID, susp.TaskID)
	if tk.Status != transit.TaskFailed || tk.StatusCode == nil || *tk.StatusCode != wallet.StatusNotAllowed {
		t.Fatalf("wallet 432: %+v", tk)
	}
	if c := e.card(cardID); c.State != transit.Active {
		t.Fatalf("a refused SUSPEND moved the card to %s", c.State)
	}
	// A script the secure element refuses: FAILED, message keeps the status word.
	other, _ := e.provision("0D0D", "ACC-300")
	if err := e.wsimInstall("0D0D", e.card(other).InstanceAID); err != nil {
		t.Fatal(err)
	}
	tk = e.waitTask(other, e.perso(other).TaskID)
	if tk.Status != transit.TaskFailed {
		t.Fatalf("a script whose INSTALL the card refuses: %+v", tk)
	}
}

// wsimUpdate changes a card at the wallet server directly, as another
// actor could.
func (e *env) wsimUpdate(walletCardID, seID, op string) error {
	srv := newDirect(e.t, e.wsim)
	return srv.UpdateCard(context.Background(), wallet.UpdateCardRequest{RequestHeader: srv.Header("x"), TaskID: "outside-" + op,
		WalletCardID: walletCardID, SEID: seID, Operation: op})
}

// wsimInstall installs an instance on a secure element behind the hub's back.
func (e *env) wsimInstall(seID, aidHex string) error {
	aid := apdu.AID(mustHex(aidHex))
	pkg := apdu.AID{0xA0, 0x00, 0x00, 0x01, 0x51, 0x53, 0x50}
	cmd, err := apdu.InstallCommand(apdu.Install{LoadFile: pkg, Module: pkg, Instance: aid, Privileges: []byte{0}})
	if err != nil {
		return err
	}
	if err := e.wsim.AddCard("installer-"+seID, seID, nil); err != nil {
		return err
	}
	srv := newDirect(e.t, e.wsim)
	script, _ := wallet.Script("i", []apdu.Command{cmd}, nil)
	if err := srv.SendScript(context.Background(), wallet.SendScriptRequest{RequestHeader: srv.Header("x"), TaskID: "install-" + seID,
		WalletCardID: "installer-" + seID, SEID: seID, APDUCommands: script}); err != nil {
		return err
	}
	e.wsim.Wait()
	return nil
}

func TestTransit_BusyAndTimeoutsAreRetriedThenSucceed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sendAttempts: 6, casTimeout: 300 * time.Millisecond})
	cardID, _ := e.provision("0E0E", "ACC-400")
	if err := e.wsim.SetFaults(simwallet.Faults{BusyNext: 2, TimeoutNext: 1, HangMS: 1000, ErrorNext: 1}); err != nil {
		t.Fatal(err)
	}
	a := e.perso(cardID)
	tk := e.waitTask(cardID, a.TaskID)
	if tk.Status != transit.TaskCompleted || e.card(cardID).State != transit.Active {
		t.Fatalf("after 321s, a 500 and a timeout: %+v", tk)
	}
	job, err := e.hub.Engine().Get(context.Background(), tk.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if len(job.Errors) < 3 {
		t.Errorf("job kept %d errors, want the failed attempts: %v", len(job.Errors), job.Errors)
	}
	if st := e.wsim.Stats(); st.Completed != 1 {
		t.Errorf("the script ran %d times, want once", st.Completed)
	}
}

func TestTransit_OneSecureElementRunsTasksInOrderOthersInParallel(t *testing.T) {
	t.Parallel()
	// Each wallet task stays PROCESSING half a second: tasks sent side by
	// side to different secure elements overlap there for certain, while a
	// hub that sent them one after the other would never overlap two.
	e := newEnv(t, envOptions{maxWorkers: 16, walletTaskDelay: 500 * time.Millisecond})
	cardID, _ := e.provision("0F0F", "ACC-500")
	var tasks []string
	tasks = append(tasks, e.perso(cardID).TaskID)
	for range 2 {
		tasks = append(tasks, e.state(cardID, "SUSPEND").TaskID, e.state(cardID, "RESUME").TaskID)
	}
	var others []string
	var cards []string
	for i := range 8 {
		se := fmt.Sprintf("10%02X", i)
		c, _ := e.provision(se, fmt.Sprintf("ACC-6%02d", i))
		cards = append(cards, c)
		others = append(others, e.perso(c).TaskID)
	}
	for _, id := range tasks {
		if tk := e.waitTask(cardID, id); tk.Status != transit.TaskCompleted {
			t.Fatalf("task %s of one secure element: %+v", id, tk)
		}
	}
	for i, id := range others {
		if tk := e.waitTask(cards[i], id); tk.Status != transit.TaskCompleted {
			t.Fatalf("task on secure element %d: %+v", i, tk)
		}
	}
	st := e.wsim.Stats()
	if st.Busy != 0 {
		t.Errorf("the wallet server answered 321 %d times: the hub sent overlapping tasks to one secure element", st.Busy)
	}
	if st.MaxRunning < 2 {
		t.Errorf("at most %d task ran at once across 9 secure elements", st.MaxRunning)
	}
	if c := e.card(cardID); c.State != transit.Active || instanceOn(e, "0F0F").Locked {
		t.Errorf("after ordered SUSPEND/RESUME pairs: %s", c.State)
	}
}

func TestTransit_BadInputGetsTheDocumentedCodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	cardID, _ := e.provision("1111", "ACC-700")
	cases := []struct {
		name string
		rule specRule
		path string
		body map[string]any
		code int
	}{
		{"no requestHeader", nonConforming, transitBase + "updateCardState", map[string]any{"requestHeader": nil, "issuerId": "TRANSIT1", "cardId": cardID, "action": "SUSPEND"}, 111},
		{"no cardId", nonConforming, transitBase + "updateCardState", map[string]any{"issuerId": "TRANSIT1", "action": "SUSPEND"}, 111},
		{"bad action", nonConforming, transitBase + "updateCardState", map[string]any{"issuerId": "TRANSIT1", "cardId": cardID, "action": "PAUSE"}, 112},
		{"issuer too long", nonConforming, transitBase + "updateCardState", map[string]any{"issuerId": strings.Repeat("I", 17), "cardId": cardID, "action": "SUSPEND"}, 112},
		{"bad seId", nonConforming, "/tsh/wsapi/1/0/provisionCard", withMember(e.provisionCall("TRANSIT1", "1111", "ACC-700"), "seId", "XYZ"), 112},
		{"bad DGI", nonConforming, transitBase + "submitCardPersoData", map[string]any{"issuerId": "TRANSIT1", "cardId": cardID,
			"cardPersoData": map[string]any{"dgis": []map[string]string{{"dgi": "01", "data": "00"}}}}, 112},
		{"unknown card", conforming, transitBase + "updateCardState", map[string]any{"issuerId": "TRANSIT1", "cardId": "NOPE", "action": "SUSPEND"}, 119},
		{"another issuer's card", conforming, transitBase + "updateCardState", map[string]any{"issuerId": "ISSUER0001", "cardId": cardID, "action": "SUSPEND"}, 119},
		{"an issuer the partner does not serve", conforming, transitBase + "updateCardState", map[string]any{"issuerId": "OTHER", "cardId": cardID, "action": "SUSPEND"}, 113},
		{"suspend before perso", conforming, transitBase + "updateCardState", map[string]any{"issuerId": "TRANSIT1", "cardId": cardID, "action": "SUSPEND"}, 432},
		{"the account on another secure element", conforming, "/tsh/wsapi/1/0/provisionCard", e.provisionCall("TRANSIT1", "2222", "ACC-700"), 167},
		{"card art that is no asset of the issuer", conforming, transitBase + "updateCardMetadata", map[string]any{"issuerId": "TRANSIT1", "cardId": cardID,
			"cardDescriptor": map[string]any{"cardArtManifest": []string{e.artAsset("TRANSIT2", 1)}}}, 112},
		{"label colour rgb(r,g,b)", conforming, transitBase + "updateCardMetadata", map[string]any{"issuerId": "TRANSIT1", "cardId": cardID,
			"cardDescriptor": map[string]any{"labelColor": "rgb(255,0,0)"}}, 0},
		{"label colour as the published pattern reads", conforming, transitBase + "updateCardMetadata", map[string]any{"issuerId": "TRANSIT1", "cardId": cardID,
			"cardDescriptor": map[string]any{"labelColor": "rgb255,0,0"}}, 0},
		{"label colour out of range", conforming, transitBase + "updateCardMetadata", map[string]any{"issuerId": "TRANSIT1", "cardId": cardID,
			"cardDescriptor": map[string]any{"labelColor": "rgb(256,0,0)"}}, 112},
		{"half a label colour", conforming, transitBase + "updateCardMetadata", map[string]any{"issuerId": "TRANSIT1", "cardId": cardID,
			"cardDescriptor": map[string]any{"labelColor": "rgb(1,2,3"}}, 112},
		{"bad label colour", conforming, transitBase + "updateCardMetadata", map[string]any{"issuerId": "TRANSIT1", "cardId": cardID,
			"cardDescriptor": map[string]any{"labelColor": "red"}}, 112},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.transit.t = t
			if c.body["requestHeader"] == nil {
				if _, present := c.body["requestHeader"]; present {
					c.body["requestHeader"] = nil
					raw, _ := json.Marshal(c.body)
					_, out := e.transit.call(c.rule, "POST", c.path, "", raw)
					var a transitAnswer
					_ = json.Unmarshal(out, &a)
					if a.ResponseHeader.StatusCode != c.code {
						t.Fatalf("status %d, want %d: %s", a.ResponseHeader.StatusCode, c.code, out)
					}
					return
				}
			}
			if a := e.transitCall(c.rule, c.path, c.body); a.ResponseHeader.StatusCode != c.code {
				t.Fatalf("status %d, want %d (%s)", a.ResponseHeader.StatusCode, c.code, a.ResponseHeader.StatusMessage)
			}
		})
	}
	e.transit.t = t
	// The accepted label colours reached the wallet server (through the
	// proxy that checks the hub's calls against api/wallet.yaml).
	waitFor(t, "the accepted metadata updates to end", func() bool {
		tasks, err := e.hub.Transit().Tasks(context.Background(), cardID)
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, tk := range tasks {
			if tk.Operation == transit.OpMetadataUpdate && tk.Status == transit.TaskCompleted {
				done++
			}
		}
		return done == 2
	})
}

// withMember returns body with one member set to v.
func withMember(body map[string]any, name string, v any) map[string]any {
	body[name] = v
	return body
}

// artAsset uploads a small PNG (shade n) as card art of issuerID and
// returns its GUID.
func (e *env) artAsset(issuerID string, n int) string {
	e.t.Helper()
	a, err := e.hub.Assets().Add(context.Background(), issuerID, "image/png", pngImage(8+n, 5), "")
	if err != nil {
		e.t.Fatal(err)
	}
	return a.GUID
}

// pngImage encodes a w x h PNG.
func pngImage(w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		img.Set(x, 0, color.RGBA{uint8(x * 20), 0x40, 0x80, 0xff})
	}
	var b bytes.Buffer
	_ = png.Encode(&b, img)
	return b.Bytes()
}

// The wallet server's documented codes as answers: 921 is retried, 911 ends
// the task FAILED with its code and leaves the card as it was.
func TestTransit_WalletServer921IsRetriedAnd911IsFinal(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sendAttempts: 6})
	cardID, _ := e.provision("0E0E0F", "ACC-921")
	if err := e.wsim.SetFaults(simwallet.Faults{ServerErrorNext: 2}); err != nil {
		t.Fatal(err)
	}
	tk := e.waitTask(cardID, e.perso(cardID).TaskID)
	if tk.Status != transit.TaskCompleted || e.card(cardID).State != transit.Active {
		t.Fatalf("after two 921 answers: %+v", tk)
	}
	// Kept for updateCard: a notification in flight cannot take it.
	if err := e.wsim.SetFaults(simwallet.Faults{FailedNext: 1, FailedOp: "updateCard"}); err != nil {
		t.Fatal(err)
	}
	tk = e.waitTask(cardID, e.state(cardID, "SUSPEND").TaskID)
	if tk.Status != transit.TaskFailed || tk.StatusCode == nil || *tk.StatusCode != wallet.StatusOperationFailed {
		t.Fatalf("after a 911 answer: %+v", tk)
	}
	if c := e.card(cardID); c.State != transit.Active || instanceOn(e, "0E0E0F").Locked {
		t.Fatalf("a failed SUSPEND moved the card: %+v", c)
	}
}

// What the hub makes of every code the wallet server may answer: 321 and
// 921 are asked again (the task then completes); every other ends the task
// FAILED with that code, the card as it was.
func TestTransit_EveryDocumentedWalletCodeIsHandled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sendAttempts: 6})
	for i, code := range []int{111, 112, 119, 121, 321, 432, 911, 921} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			cardID, _ := e.provision(fmt.Sprintf("0F0F0F%02X", i), fmt.Sprintf("ACC-CODE-%d", code))
			op := "sendScript"
			if code == 121 { // getTaskStatus's own code
				op = "getTaskStatus"
			}
			if err := e.wsim.SetFaults(simwallet.Faults{Code: code, CodeNext: 1, CodeOp: op}); err != nil {
				t.Fatal(err)
			}
			tk := e.waitTask(cardID, e.perso(cardID).TaskID)
			retried := code == 321 || code == 921
			switch {
			case retried && (tk.Status != transit.TaskCompleted || e.card(cardID).State != transit.Active):
				t.Fatalf("after one %d: %+v, card %s", code, tk, e.card(cardID).State)
			case !retried && (tk.Status != transit.TaskFailed || tk.StatusCode == nil || *tk.StatusCode != code || e.card(cardID).State != transit.PendingPerso):
				t.Fatalf("after a %d: %+v, card %s", code, tk, e.card(cardID).State)
			}
		})
	}
}

// A task the wallet server ends within the first polls' waits is recorded
// by the run that called it (no snooze, no second claim); one that takes
// longer is polled by later runs, as before.
func TestTransit_AQuickTaskEndsInTheRunThatCalledTheWalletServer(t *testing.T) {
	t.Parallel()
	// The wallet simulator's delay is a floor, the inline budget a bound:
	// 1 ms against 10 s ends inline, 2 s against 50 ms cannot.
	for _, c := range []struct {
		name          string
		delay, inline time.Duration
		snoozed       bool
	}{{"quick", time.Millisecond, 10 * time.Second, false}, {"slow", 2 * time.Second, 50 * time.Millisecond, true}} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, envOptions{walletTaskDelay: c.delay, inlinePollFor: c.inline})
			cardID, _ := e.provision("0F1F2F3F", "ACC-INLINE")
			tk := e.waitTask(cardID, e.perso(cardID).TaskID)
			if tk.Status != transit.TaskCompleted || e.card(cardID).State != transit.Active {
				t.Fatalf("perso: %+v", tk)
			}
			j, err := e.hub.Engine().Get(context.Background(), tk.JobID)
			if err != nil {
				t.Fatal(err)
			}
			if (j.Snoozes > 0) != c.snoozed || j.Attempt != 1 {
				t.Errorf("task of %s: %d snoozes, attempt %d; want snoozed %v, one attempt", c.delay, j.Snoozes, j.Attempt, c.snoozed)
			}
			// The task's first poll is counted: running for the slow task
			// (polled 5 ms in, its floor 2 s); the quick one's as timing has it.
			if c.snoozed {
				e.metricsHave(t, `provhub_wallet_first_polls_total{found="running",operation="PERSONALIZE"} 1`)
			} else {
				e.metricsHave(t, `provhub_wallet_first_polls_total{found=`)
			}
		})
	}
}
