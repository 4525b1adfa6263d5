package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/cas"
	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/paytv"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
	"github.com/provhub/provhub/internal/tes"
	"github.com/provhub/provhub/internal/wallet"
)

func TestCLI_CRMImportAndUserAdd(t *testing.T) {
	for _, d := range storetest.Backends {
		t.Run(d.String(), func(t *testing.T) {
			url := storetest.NewURL(t, d)
			code, out, stderr := runCLI(t, nil, "crm", "import", "testdata/crm-reference.json", "--db", url)
			if code != 0 || !strings.Contains(out, "7 smartcards, 3 STBs") {
				t.Fatalf("import: code %d out %q err %q", code, out, stderr)
			}
			// Importing again updates in place.
			if code, _, stderr := runCLI(t, nil, "crm", "import", "testdata/crm-reference.json", "--db", url); code != 0 {
				t.Fatalf("second import: %s", stderr)
			}
			var errb, outb bytes.Buffer
			code = run(context.Background(), []string{"crm", "user", "add", "--username", "ops", "--organisation", "CRMDEMO", "--db", url},
				strings.NewReader("pa55word\n"), &outb, &errb)
			if code != 0 {
				t.Fatalf("user add: %s", errb.String())
			}
			if strings.Contains(outb.String()+errb.String(), "pa55word") {
				t.Error("the password was echoed")
			}
			ctx := context.Background()
			db, err := store.Open(ctx, store.Config{URL: url})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			jobs := engine.NewRegistry()
			eng, err := engine.New(engine.Config{DB: db, Registry: jobs})
			if err != nil {
				t.Fatal(err)
			}
			defer eng.Close()
			svc, err := paytv.New(paytv.Config{DB: db, Engine: eng, Jobs: jobs})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Login(ctx, paytv.Credentials{Username: "ops", Password: "pa55word", Organisation: "CRMDEMO"}); err != nil {
				t.Fatalf("login with the added user: %v", err)
			}
			var items int
			if err := db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM paytv_installed_items`).Scan(&items); err != nil || items != 10 {
				t.Fatalf("installed items %d (%v), want 10", items, err)
			}
		})
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if code, _, _ := runCLI(t, nil, "crm", "import", bad, "--db", "sqlite:"+filepath.Join(dir, "x.db")); code != 1 {
		t.Errorf("missing file: code %d", code)
	}
	if code, _, _ := runCLI(t, nil, "crm", "user", "add", "--username", "x", "--organisation", "O", "--db", "sqlite:"+filepath.Join(dir, "x.db")); code != 1 {
		t.Errorf("no password: code %d", code)
	}
	if code, _, _ := runCLI(t, nil, "crm"); code != 2 {
		t.Errorf("bare crm: code %d", code)
	}
}

func TestCLI_SimCASServesTheProtocol(t *testing.T) {
	ctx, base, stop := startSim(t, "cas", "--devices", "testdata/crm-reference.json")
	client, err := cas.NewClient(cas.ClientConfig{BaseURL: base, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	reply, err := client.Send(ctx, cas.Command{RequestID: "r1", Command: cas.CmdAddSubscriptions, SmartcardCAID: "0100000001", ServiceCAIDs: []string{"1001"}})
	if err != nil || reply.ReferenceNumber == "" {
		t.Fatalf("command to the simulator: %+v %v", reply, err)
	}
	req, _ := http.NewRequest(http.MethodPut, base+"/admin/faults", strings.NewReader(`{"busy_next":1}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("set faults: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, err := client.Send(ctx, cas.Command{RequestID: "r2", Command: cas.CmdSendMail, SmartcardCAID: "0100000001", Text: "hi"}); err == nil {
		t.Fatal("the busy fault set through the admin endpoint did not apply")
	}
	resp, err = http.Get(base + "/admin/smartcards/0100000001")
	if err != nil {
		t.Fatal(err)
	}
	var card struct{ Entitlements []string }
	_ = json.NewDecoder(resp.Body).Decode(&card)
	resp.Body.Close()
	if strings.Join(card.Entitlements, ",") != "1001" {
		t.Errorf("card state %+v", card)
	}
	stop()
}

func TestCLI_SimWalletServesTheWalletAPI(t *testing.T) {
	ctx, base, stop := startSim(t, "wallet")
	resp, err := http.Post(base+"/admin/devices", "application/json", strings.NewReader(`{"seId":"0A0B","deviceId":"d1"}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("register device: %v %v", resp, err)
	}
	resp.Body.Close()
	c, err := wallet.NewClient(wallet.ClientConfig{BaseURL: base, Pod: "pod-1"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetTaskStatus(ctx, wallet.GetTaskStatusRequest{RequestHeader: c.Header("s"), TaskID: "none", SEID: "0A0B"})
	var se *wallet.StatusError
	if !errors.As(err, &se) || se.Code != wallet.StatusUnknownTask {
		t.Fatalf("unknown task: %v", err)
	}
	stop()
}

func TestCLI_SimTESServesTheDeviceGateway(t *testing.T) {
	ctx, base, stop := startSim(t, "tes")
	resp, err := http.Post(base+"/admin/accounts", "application/json", strings.NewReader(`{"cardAccountId":"A1","issuerId":"TRANSIT1","balance":10}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("add account: %v %v", resp, err)
	}
	resp.Body.Close()
	c, err := tes.NewClient(tes.ClientConfig{BaseURL: base + "/tes/devicegtwapi/1/0", Actor: "cli-test"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.CardCommands(ctx, tes.CardCommandsRequest{RequestHeader: c.Header("s1"), IssuerID: "TRANSIT1", CardID: "A1", DeviceID: "d1", Operation: tes.OpReadBalance})
	if err != nil || len(res.Commands) != 1 || res.Commands[0].Kind != tes.KindFeliCa {
		t.Fatalf("first batch: %+v %v", res, err)
	}
	stop()
}

// TestCLI_CRMWebAPIKeysAreShownOnceListedAndRevoked.
func TestCLI_CRMWebAPIKeysAreShownOnceListedAndRevoked(t *testing.T) {
	db := storetest.NewURL(t, store.SQLite)
	if code, _, stderr := runCLIStdin(t, "pa55word-long\n", "crm", "user", "add", "--db", db, "--username", "ops", "--organisation", "CRMDEMO"); code != 0 {
		t.Fatalf("user add: %s", stderr)
	}
	code, out, stderr := runCLI(t, nil, "crm", "key", "add", "--db", db, "--username", "ops", "--organisation", "CRMDEMO", "--name", "billing")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[1], "pwak_") {
		t.Fatalf("key add: %d %q %q", code, out, stderr)
	}
	key := lines[1]
	id := strings.Fields(lines[0])[3]
	code, out, _ = runCLI(t, nil, "crm", "key", "list", "--db", db, "--organisation", "CRMDEMO")
	if code != 0 || !strings.Contains(out, id) || strings.Contains(out, key) || !strings.Contains(out, "active") {
		t.Fatalf("key list: %q", out)
	}
	if code, _, stderr := runCLI(t, nil, "crm", "key", "revoke", "--db", db, "--organisation", "CRMDEMO", "--id", id); code != 0 {
		t.Fatalf("revoke: %s", stderr)
	}
	if _, out, _ := runCLI(t, nil, "crm", "key", "list", "--db", db, "--organisation", "CRMDEMO"); !strings.Contains(out, "revoked") {
		t.Fatalf("list after revoke: %q", out)
	}
}

func runCLIStdin(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// startSim runs `provhub sim KIND` on a free port and returns its base URL
// and what stops it (checking that it exits 0).
func startSim(t *testing.T, kind string, extra ...string) (context.Context, string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	args := append([]string{"sim", kind, "--listen", "127.0.0.1:0", "--log-level", "error"}, extra...)
	go func() {
		done <- run(ctx, args, strings.NewReader(""), pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr) //nolint:errcheck // drains the simulator's output
	return ctx, strings.Fields(line)[3], func() {
		t.Helper()
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("sim %s exited %d", kind, code)
		}
	}
}
