package wallet_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/apdu"
	simwallet "github.com/provhub/provhub/internal/sim/wallet"
	ws "github.com/provhub/provhub/internal/wallet"
)

var instanceAID = apdu.AID{0xA0, 0x00, 0x00, 0x01, 0x51, 0x53, 0x50, 0x01}

const seID = "0A1B2C3D"

type rig struct {
	sim    *simwallet.Simulator
	client *ws.Client
	url    string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	return newRigWith(t, simwallet.Config{TaskDelay: 5 * time.Millisecond, Seed: 1})
}

// newRigWith is newRig with a simulator configured by cfg.
func newRigWith(t *testing.T, cfg simwallet.Config) *rig {
	t.Helper()
	sim, err := simwallet.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.AddDevice(seID, "device-1"); err != nil {
		t.Fatal(err)
	}
	if err := sim.AddCard("wc-1", seID, instanceAID); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { sim.Wait(); srv.Close() })
	c, err := ws.NewClient(ws.ClientConfig{BaseURL: srv.URL, Pod: "pod-a", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{sim: sim, client: c, url: srv.URL}
}

func (r *rig) send(t *testing.T, taskID string, cmds ...apdu.Command) error {
	t.Helper()
	script, err := ws.Script(taskID, cmds, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r.client.SendScript(context.Background(), ws.SendScriptRequest{RequestHeader: r.client.Header("s"),
		TaskID: taskID, WalletCardID: "wc-1", SEID: seID, APDUCommands: script})
}

func (r *rig) update(taskID, op string, d *ws.CardDescriptor) error {
	req := ws.UpdateCardRequest{RequestHeader: r.client.Header("s"), TaskID: taskID, WalletCardID: "wc-1", SEID: seID, Operation: op, CardDescriptor: d}
	if op == ws.OpRedirect {
		req.RedirectData = &ws.RedirectData{OperationID: "dop-" + taskID, DeviceToken: "pdt_test"}
	}
	return r.client.UpdateCard(context.Background(), req)
}

// finish polls a task until it leaves PROCESSING.
func (r *rig) finish(t *testing.T, taskID string) string {
	t.Helper()
	for range 500 {
		st, err := r.client.GetTaskStatus(context.Background(), ws.GetTaskStatusRequest{RequestHeader: r.client.Header("s"), TaskID: taskID, SEID: seID})
		if err != nil {
			t.Fatal(err)
		}
		if st != ws.TaskProcessing {
			return st
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("task %s still PROCESSING", taskID)
	return ""
}

func statusCode(err error) int {
	var se *ws.StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	if err == nil {
		return 0
	}
	return -1
}

func TestSimulator_PersoScriptPersonalisesTheInstance(t *testing.T) {
	r := newRig(t)
	script, err := apdu.PersoScript(instanceAID, []apdu.DGI{{ID: 0x0101, Value: []byte{1, 2, 3}}, {ID: 0x9F01, Value: bytes.Repeat([]byte{7}, 240)}}, ws.MaxStoreDataBlock)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.send(t, "perso-1", script...); err != nil {
		t.Fatal(err)
	}
	if st := r.finish(t, "perso-1"); st != ws.TaskCompleted {
		t.Fatalf("perso task %s", st)
	}
	se, _ := r.sim.SecureElement(seID)
	if len(se.Instances) != 1 || se.Instances[0].State != 0x0F || se.Instances[0].Data["0101"] != "010203" || se.LastPod != "pod-a" {
		t.Fatalf("secure element %+v", se)
	}
	// The same taskId again is the same task: acknowledged, not run twice.
	if err := r.send(t, "perso-1", script...); err != nil {
		t.Fatalf("repeated taskId: %v", err)
	}
	if st := r.sim.Stats(); st.Completed != 1 {
		t.Errorf("stats %+v", st)
	}
	if j := r.sim.Applied(); len(j) != 1 || j[0].TaskID != "perso-1" || j[0].Operation != "sendScript" || j[0].Status != ws.TaskCompleted || j[0].WalletCardID == "" {
		t.Errorf("journal %+v, want the perso task once", j)
	}
}

func TestSimulator_AFailingCommandFailsTheTaskWithItsStatusWord(t *testing.T) {
	r := newRig(t)
	sel, _ := apdu.Select(apdu.AID{0xA0, 0, 0, 0, 0x99})
	if err := r.send(t, "bad-1", sel); err != nil {
		t.Fatal(err)
	}
	if st := r.finish(t, "bad-1"); st != ws.TaskFailed {
		t.Fatalf("task %s, want FAILED", st)
	}
	store, _ := apdu.StoreData(0, true, []byte{1, 1, 1, 9})
	if err := r.send(t, "bad-2", store); err != nil { // STORE DATA with nothing selected
		t.Fatal(err)
	}
	if st := r.finish(t, "bad-2"); st != ws.TaskFailed {
		t.Fatalf("task %s, want FAILED", st)
	}
}

func TestSimulator_UpdateCardFollowsTheCardsState(t *testing.T) {
	r := newRig(t)
	locked := func() bool {
		se, _ := r.sim.SecureElement(seID)
		return len(se.Instances) == 1 && se.Instances[0].Locked
	}
	steps := []struct {
		op     string
		code   int
		locked bool
	}{
		{ws.OpResume, ws.StatusNotAllowed, false},
		{ws.OpSuspend, 0, true},
		{ws.OpSuspend, ws.StatusNotAllowed, true},
		{ws.OpResume, 0, false},
		{ws.OpRedirect, 0, false},
	}
	for i, st := range steps {
		id := "u" + string(rune('a'+i))
		if got := statusCode(r.update(id, st.op, nil)); got != st.code {
			t.Fatalf("%s: status %d, want %d", st.op, got, st.code)
		}
		if st.code == 0 && r.finish(t, id) != ws.TaskCompleted {
			t.Fatalf("%s did not complete", st.op)
		}
		if locked() != st.locked {
			t.Fatalf("after %s locked=%v", st.op, locked())
		}
	}
	// A REDIRECT without what the device needs to call the hub is refused.
	err := r.client.UpdateCard(context.Background(), ws.UpdateCardRequest{RequestHeader: r.client.Header("s"), TaskID: "r0", WalletCardID: "wc-1", SEID: seID, Operation: ws.OpRedirect})
	if got := statusCode(err); got != ws.StatusMissing {
		t.Fatalf("REDIRECT without redirectData: %d", got)
	}
	if got := statusCode(r.update("m1", ws.OpMetadataUpdate, nil)); got != ws.StatusMissing {
		t.Errorf("METADATA_UPDATE without descriptor: %d", got)
	}
	if err := r.update("m2", ws.OpMetadataUpdate, &ws.CardDescriptor{CardholderName: "A"}); err != nil {
		t.Fatal(err)
	}
	r.finish(t, "m2")
	if err := r.update("d1", ws.OpDelete, nil); err != nil {
		t.Fatal(err)
	}
	r.finish(t, "d1")
	if se, _ := r.sim.SecureElement(seID); len(se.Instances) != 0 {
		t.Errorf("DELETE left %+v", se.Instances)
	}
	if got := statusCode(r.update("d2", ws.OpSuspend, nil)); got != ws.StatusNotAllowed {
		t.Errorf("SUSPEND of a deleted card: %d", got)
	}
	if err := r.update("e1", ws.OpErase, nil); err != nil {
		t.Fatal(err)
	}
	r.finish(t, "e1")
	if got := statusCode(r.update("e2", ws.OpSuspend, nil)); got != ws.StatusUnknownCard {
		t.Errorf("after ERASE the card should be unknown: %d", got)
	}
	// The ERASE repeated with its taskId (its answer was lost) is the same
	// task, acknowledged, though the card it erased is gone; it is not
	// carried out again.
	if err := r.update("e1", ws.OpErase, nil); err != nil {
		t.Errorf("a repeated ERASE: %v", err)
	}
	erases := 0
	for _, j := range r.sim.Applied() {
		if j.TaskID == "e1" {
			erases++
		}
	}
	if erases != 1 {
		t.Errorf("ERASE carried out %d times", erases)
	}
}

func TestSimulator_OneTaskPerSecureElementAtATime(t *testing.T) {
	sim, err := simwallet.New(simwallet.Config{TaskDelay: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_ = sim.AddDevice(seID, "d")
	_ = sim.AddCard("wc-1", seID, instanceAID)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	defer sim.Wait()
	c, _ := ws.NewClient(ws.ClientConfig{BaseURL: srv.URL, Pod: "p"})
	ctx := context.Background()
	req := func(task string) error {
		return c.UpdateCard(ctx, ws.UpdateCardRequest{RequestHeader: c.Header("s"), TaskID: task, WalletCardID: "wc-1", SEID: seID, Operation: ws.OpRedirect,
			RedirectData: &ws.RedirectData{OperationID: "dop-" + task, DeviceToken: "pdt_test"}})
	}
	if err := req("t1"); err != nil {
		t.Fatal(err)
	}
	if err := req("t2"); statusCode(err) != ws.StatusDeviceBusy || !ws.Retryable(err) {
		t.Fatalf("second task on a busy secure element: %v", err)
	}
	if st := sim.Stats(); st.Busy != 1 {
		t.Errorf("busy count %d", st.Busy)
	}
}

func TestSimulator_ValidatesLikeTheSpec(t *testing.T) {
	r := newRig(t)
	post := func(path, body string, pod bool) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, r.url+path, strings.NewReader(body))
		if pod {
			req.Header.Set("x-pod", "p")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			ResponseHeader ws.ResponseHeader `json:"responseHeader"`
			TaskStatus     string            `json:"taskStatus"`
		}
		buf := new(bytes.Buffer)
		_, _ = buf.ReadFrom(resp.Body)
		if err := jsonUnmarshal(buf.Bytes(), &out); err != nil {
			t.Fatalf("%s: %s", path, buf)
		}
		return out.ResponseHeader.StatusCode, out.ResponseHeader.SessionID
	}
	hdr := `"requestHeader":{"requestId":"r","sessionId":"s1"}`
	cases := []struct {
		name, path, body string
		pod              bool
		code             int
	}{
		{"no x-pod", "/getTaskStatus", `{` + hdr + `,"taskId":"t","seId":"0A"}`, false, 111},
		{"no taskId", "/sendScript", `{` + hdr + `,"walletCardId":"wc-1","seId":"0A1B2C3D","apduCommands":[]}`, true, 111},
		{"no requestId", "/getTaskStatus", `{"requestHeader":{"sessionId":"s"},"taskId":"t","seId":"0A"}`, true, 111},
		{"odd seId", "/getTaskStatus", `{` + hdr + `,"taskId":"t","seId":"0A1"}`, true, 112},
		{"seId too long", "/getTaskStatus", `{` + hdr + `,"taskId":"t","seId":"` + strings.Repeat("00", 25) + `"}`, true, 112},
		{"taskId too long", "/getTaskStatus", `{` + hdr + `,"taskId":"` + strings.Repeat("t", 65) + `","seId":"0A"}`, true, 112},
		{"bad time", "/getTaskStatus", `{"requestHeader":{"requestId":"r","sessionId":"s","generationDateTime":"yesterday"},"taskId":"t","seId":"0A"}`, true, 112},
		{"apdu not hex", "/sendScript", `{` + hdr + `,"taskId":"t","walletCardId":"wc-1","seId":"0A1B2C3D","apduCommands":[{"data":"0G","messageId":"1"}]}`, true, 112},
		{"apdu without id", "/sendScript", `{` + hdr + `,"taskId":"t","walletCardId":"wc-1","seId":"0A1B2C3D","apduCommands":[{"data":"00"}]}`, true, 111},
		{"bad operation", "/updateCard", `{` + hdr + `,"taskId":"t","walletCardId":"wc-1","seId":"0A1B2C3D","operation":"PAUSE"}`, true, 112},
		{"not JSON", "/updateCard", `{`, true, 112},
		{"unknown card", "/updateCard", `{` + hdr + `,"taskId":"t","walletCardId":"wc-9","seId":"0A1B2C3D","operation":"SUSPEND"}`, true, 119},
		{"card on another SE", "/updateCard", `{` + hdr + `,"taskId":"t","walletCardId":"wc-1","seId":"0A1B","operation":"SUSPEND"}`, true, 119},
		{"unknown task", "/getTaskStatus", `{` + hdr + `,"taskId":"nope","seId":"0A1B2C3D"}`, true, 121},
	}
	// cardDescriptor, member by member, as api/wallet.yaml types it.
	meta := func(i int, d string) string {
		return `{` + hdr + `,"taskId":"m-` + fmt.Sprint(i) + `","walletCardId":"wc-1","seId":"0A1B2C3D","operation":"METADATA_UPDATE","cardDescriptor":` + d + `}`
	}
	for i, d := range []struct {
		name, descriptor string
		code             int
	}{
		{"currency of four letters", `{"appletCurrencyCode":"EURO"}`, 112},
		{"17-digit card number", `{"displayCardNumber":"12345678901234567"}`, 112},
		{"colour by name", `{"labelColor":"red"}`, 112},
		{"33-character e-mail", `{"contactEmail":"` + strings.Repeat("e", 33) + `"}`, 112},
		{"card actions without their limits", `{"cardActions":{}}`, 111},
		{"a limit that is no number", `{"cardActions":{"maxLoadedBalance":"lots","minLoadAmount":1}}`, 112},
		{"an app without identifier", `{"mobileApp":{}}`, 111},
		{"65-character art GUID", `{"cardArtManifest":["` + strings.Repeat("g", 65) + `"]}`, 112},
		{"art that is no list", `{"cardArtManifest":"g"}`, 112},
		{"a name that is no string", `{"cardholderName":7}`, 112},
		{"not an object", `"meta"`, 112},
		{"every member as published", `{"appletCurrencyCode":"EUR","displayCardNumber":"1234","cardholderName":"A","labelColor":"rgb(1,2,3)",
			"cardActions":{"maxLoadedBalance":100,"minLoadAmount":1},"mobileApp":{"identifier":"app"},"cardArtManifest":["g1"]}`, 0},
	} {
		cases = append(cases, struct {
			name, path, body string
			pod              bool
			code             int
		}{d.name, "/updateCard", meta(i, d.descriptor), true, d.code})
	}
	for _, c := range cases {
		code, session := post(c.path, c.body, c.pod)
		if code != c.code {
			t.Errorf("%s: status %d, want %d", c.name, code, c.code)
		}
		if session == "" {
			t.Errorf("%s: no sessionId in the answer", c.name)
		}
	}
}

func TestSimulator_FaultKnobs(t *testing.T) {
	r := newRig(t)
	if err := r.sim.SetFaults(simwallet.Faults{ErrorNext: 1, BusyNext: 1, TimeoutNext: 1, HangMS: 10}); err != nil {
		t.Fatal(err)
	}
	results := []error{r.update("f1", ws.OpRedirect, nil), r.update("f2", ws.OpRedirect, nil), r.update("f3", ws.OpRedirect, nil)}
	// The timed-out call took effect all the same. (Waited for before the
	// next call, which would otherwise meet it running: a real 321.)
	if st := r.finish(t, "f3"); st != ws.TaskCompleted {
		t.Fatalf("timed-out task: %s", st)
	}
	if err := r.sim.SetFaults(simwallet.Faults{MalformedNext: 1}); err != nil {
		t.Fatal(err)
	}
	results = append(results, r.update("f4", ws.OpRedirect, nil))
	if !errors.Is(results[0], ws.ErrUnavailable) || statusCode(results[1]) != ws.StatusDeviceBusy ||
		!errors.Is(results[2], ws.ErrUnavailable) || !errors.Is(results[3], ws.ErrUnavailable) {
		t.Fatalf("error, busy, timeout, malformed: %v", results)
	}
	r.finish(t, "f4")
	if r.sim.Stats().Busy != 0 {
		t.Error("a forced 321 was counted as a real one")
	}
	if err := r.sim.SetFaults(simwallet.Faults{ErrorRate: 3}); err == nil {
		t.Error("an error rate of 3 was accepted")
	}
	// The documented 911 and 921, as answers: the call does nothing.
	if err := r.sim.SetFaults(simwallet.Faults{FailedNext: 1, ServerErrorNext: 1}); err != nil {
		t.Fatal(err)
	}
	failed, serverError := r.update("f5", ws.OpSuspend, nil), r.update("f6", ws.OpSuspend, nil)
	if statusCode(failed) != ws.StatusOperationFailed || statusCode(serverError) != ws.StatusServerError || ws.Retryable(failed) || !ws.Retryable(serverError) {
		t.Fatalf("911, 921: %v, %v", failed, serverError)
	}
	if se, _ := r.sim.SecureElement(seID); se.Instances[0].Locked {
		t.Error("a call answered 911 or 921 acted")
	}
	// Kept for one operation: a getTaskStatus in between is answered as
	// usual; the updateCard is asked again (921), then fails (911).
	if err := r.sim.SetFaults(simwallet.Faults{Code: ws.StatusServerError, CodeNext: 1, CodeOp: "updateCard", FailedNext: 1, FailedOp: "updateCard"}); err != nil {
		t.Fatal(err)
	}
	if st := r.finish(t, "f4"); st != ws.TaskCompleted {
		t.Fatalf("getTaskStatus between: %s", st)
	}
	first, second := r.update("f7", ws.OpSuspend, nil), r.update("f8", ws.OpSuspend, nil)
	if statusCode(first) != ws.StatusServerError || statusCode(second) != ws.StatusOperationFailed {
		t.Fatalf("921 then 911 on updateCard: %v, %v", first, second)
	}
	if err := r.sim.SetFaults(simwallet.Faults{FailedNext: 1, FailedOp: "deleteEverything"}); err == nil {
		t.Error("an unknown operation was accepted for failed_op")
	}
}

func TestSimulator_FaultRatesApply(t *testing.T) {
	r := newRig(t)
	if err := r.sim.SetFaults(simwallet.Faults{BusyRate: 1}); err != nil {
		t.Fatal(err)
	}
	if err := r.update("rate-1", ws.OpRedirect, nil); statusCode(err) != ws.StatusDeviceBusy {
		t.Fatalf("busy rate 1: %v", err)
	}
	if err := r.sim.SetFaults(simwallet.Faults{MalformedRate: 1}); err != nil {
		t.Fatal(err)
	}
	if err := r.update("rate-2", ws.OpRedirect, nil); !errors.Is(err, ws.ErrUnavailable) {
		t.Fatalf("malformed rate 1: %v", err)
	}
	if err := r.sim.SetFaults(simwallet.Faults{TimeoutRate: 2}); err == nil {
		t.Fatal("a timeout rate of 2 was accepted")
	}
}

// TestSimulator_ANotificationIsShownOncePerIdAndCheckedAsDocumented.
func TestSimulator_ANotificationIsShownOncePerIdAndCheckedAsDocumented(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	push := func(id string, n ws.Notification) error {
		return r.client.PushNotification(ctx, ws.PushNotificationRequest{RequestHeader: r.client.Header("s"), NotificationID: id, WalletCardID: "wc-1", SEID: seID, Notification: n})
	}
	good := ws.Notification{Kind: ws.NotifyCardSuspended, TextKey: "provhub.card_suspended", OccurredAt: "2026-12-01T10:00:00Z"}
	for range 2 {
		if err := push("pvn-1", good); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.sim.Notifications(seID); len(got) != 1 || got[0].Notification.Kind != ws.NotifyCardSuspended {
		t.Fatalf("notifications %+v", got)
	}
	bad := good
	bad.Kind = "CARD_EXPLODED"
	if got := statusCode(push("pvn-2", bad)); got != ws.StatusBadFormat {
		t.Errorf("an unknown kind: %d", got)
	}
	noText := good
	noText.TextKey = ""
	if got := statusCode(push("pvn-3", noText)); got != ws.StatusMissing {
		t.Errorf("no textKey: %d", got)
	}
	err := r.client.PushNotification(ctx, ws.PushNotificationRequest{RequestHeader: r.client.Header("s"), NotificationID: "pvn-4", WalletCardID: "wc-nope", SEID: seID, Notification: good})
	if got := statusCode(err); got != ws.StatusUnknownCard {
		t.Errorf("an unknown card: %d", got)
	}
}
