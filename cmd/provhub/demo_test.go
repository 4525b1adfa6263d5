package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/demo"
)

// startDemo runs provhub demo in the background and returns its ready line
// and the lines printed up to "is serving".
func startDemo(t *testing.T, extra ...string) (demo.ReadyLine, []string) {
	t.Helper()
	r, lines, stop := startDemoStoppable(t, extra...)
	t.Cleanup(stop)
	return r, lines
}

// startDemoStoppable is startDemo with the stop in the caller's hands.
func startDemoStoppable(t *testing.T, extra ...string) (demo.ReadyLine, []string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	args := append([]string{"demo", "--listen", "127.0.0.1:0", "--data", t.TempDir()}, extra...)
	go func() {
		done <- run(ctx, args, strings.NewReader(""), pw, io.Discard)
		pw.Close()
	}()
	stop := func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("demo exited %d", code)
			}
		case <-time.After(30 * time.Second):
			t.Error("demo did not stop")
		}
	}
	sc := bufio.NewScanner(pr)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.Contains(sc.Text(), "is serving on") {
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if len(lines) == 0 {
		t.Fatal("the demo printed nothing")
	}
	var r demo.ReadyLine
	if err := json.Unmarshal([]byte(lines[0]), &r); err != nil || !r.Ready || r.Hub == "" || r.CRM.Password == "" {
		stop()
		t.Fatalf("first line is not the ready line: %q (%v)", lines[0], err)
	}
	return r, lines, stop
}

// A demo run again on the same data folder keeps its logins and its
// issuer key: the key printed still gets tokens.
func TestDemo_ARunOnTheSameDataKeepsItsLoginsAndKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, _, stop := startDemoStoppable(t, "--data", dir)
	stop()
	second, lines, stop2 := startDemoStoppable(t, "--data", dir)
	defer stop2()
	if second.Operator.Password != first.Operator.Password || second.CRM.Password != first.CRM.Password || second.Issuer.Kid != first.Issuer.Kid {
		t.Fatalf("first run %+v, second %+v", first, second)
	}
	if !strings.Contains(strings.Join(lines, "\n"), "reusing") {
		t.Error("the second run does not say it reuses the data folder")
	}
	if code, out, stderr := runCLI(t, nil, "issuer", "token", "--url", second.Hub, "--id", second.Issuer.ID, "--kid", second.Issuer.Kid,
		"--key", second.Issuer.PrivateKeyFile); code != 0 || !strings.Contains(out, "eyJ") {
		t.Fatalf("issuer token with the reused key: %d %q %q", code, out, stderr)
	}
}

// runTour runs the tour's commands as printed, in one shell from the
// repository's root, and returns each command's output.
func runTour(t *testing.T, lines []string) []string {
	t.Helper()
	var script strings.Builder
	script.WriteString("set -eu\n")
	n := 0
	for _, l := range lines {
		if cmd, ok := strings.CutPrefix(l, "$ "); ok {
			n++
			script.WriteString("echo '### step'\n" + cmd + "\necho\n")
		}
	}
	if n != 12 {
		t.Fatalf("%d commands in the tour, want 12", n)
	}
	sh := exec.Command("bash", "-c", script.String())
	sh.Dir = filepath.Join("..", "..")
	out, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("the tour failed: %v\n%s", err, out)
	}
	var results []string
	for _, part := range strings.Split(string(out), "### step\n")[1:] {
		results = append(results, strings.TrimSpace(part))
	}
	return results
}

// TestDemo_TheWholeTourWorksTwiceOnTheSameData runs the printed tour, stops
// the demo, starts it again on the same --data and runs the tour it prints
// then: every command works both times, the second on its run's own
// sample ids, with the first run's logins and key.
func TestDemo_TheWholeTourWorksTwiceOnTheSameData(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for run := 1; run <= 2; run++ {
		r, lines, stop := startDemoStoppable(t, "--data", dir)
		if r.Sample.Run != run || r.Reused != (run > 1) {
			stop()
			t.Fatalf("run %d: ready line %+v", run, r)
		}
		tour := strings.Join(lines, "\n")
		for _, want := range []string{"Sample ids: consumers " + r.Sample.DeleteConsumer, r.Hub + "/console/crm/$REQ", r.Hub + "/reference/", "# 5. Break it"} {
			if !strings.Contains(tour, want) {
				t.Errorf("run %d: the tour does not print %q", run, want)
			}
		}
		results := runTour(t, lines)
		stop()
		checks := map[int][]string{
			1: {"request "},
			2: {`"code":"OK"`, `"type":"ADD_SUBSCRIPTIONS"`, `"life_cycle_state":"COMPLETED"`, `"reference_number":"`},
			4: {`"operationId":"op-`, `"status":"PENDING"`},
			5: {`"operation":"DELETE"`, `"status":"SUCCESSFUL"`, `"operation":"REGISTER"`},
			7: {`"statusCode":0`, `"status":"COMPLETED"`, `"balance":1500`},
			// Three cards, each with its own art and the issuer's terms.
			8:  {`"provisioned":3`, `"assets_fetched":4`, `"assets_verified":4`, `"assets_rejected":0`},
			10: {`"operationId":"op-`, `"status":"PENDING"`},
			// The break: asked again after 921, then 911.
			11: {`"operation":"SUSPEND"`, `"status":"FAILED"`, `"errorCode":"WALLET_911"`},
		}
		for i, want := range checks {
			for _, w := range want {
				if !strings.Contains(results[i], w) {
					t.Errorf("run %d: command %d answered %s; want %s in it", run, i+1, results[i], w)
				}
			}
		}
		if run == 2 && (r.Sample.DeleteConsumer != "alice-r2" || !strings.Contains(tour, "/consumers/alice-r2/operations:delete")) {
			t.Errorf("the second run's tour does not delete its own consumer (%s)", r.Sample.DeleteConsumer)
		}
	}
}

// TestDemo_TheConsoleOpensWithThePrintedOperator logs in to the console
// with the ready line's operator.
func TestDemo_TheConsoleOpensWithThePrintedOperator(t *testing.T) {
	t.Parallel()
	r, _ := startDemo(t)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := c.PostForm(r.Hub+"/console/login", url.Values{"username": {r.Operator.Username}, "password": {r.Operator.Password}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Jobs by kind and state") || !strings.Contains(string(body), "transit.wallet_task") {
		t.Fatalf("console after login: HTTP %d\n%s", resp.StatusCode, body)
	}
	if r.Console != r.Hub+"/console/" {
		t.Errorf("console URL %q", r.Console)
	}
}

func TestDemo_ScenarioTakesTheTourItself(t *testing.T) {
	t.Parallel()
	_, lines := startDemo(t, "--scenario")
	var steps []string
	for _, l := range lines {
		if strings.HasPrefix(l, "[") {
			steps = append(steps, l)
		}
	}
	if len(steps) != 8 {
		t.Fatalf("scenario steps: %q", steps)
	}
	// Each step waited for its final state; the break fails as meant to,
	// and the task sent again from the console completes.
	for i, want := range []string{"token issued", "accepted", "COMPLETED  (http", "access token", "SUCCESSFUL  (http",
		"COMPLETED, balance 1500  (http", "suspension FAILED WALLET_911 after a retry", "COMPLETED: the digital card is suspended"} {
		if !strings.Contains(steps[i], want) {
			t.Errorf("step %d: %s; want %q in it", i+1, steps[i], want)
		}
	}
	if !strings.HasPrefix(steps[7], "[########]") {
		t.Errorf("last step: %s", steps[7])
	}
}

// TestDemo_EveryFileItWritesIsTheOwnersAlone: the database with its -wal
// and -shm, the secret key, the issuer's keys and the partners' secrets,
// under a umask that would leave them world-readable.
func TestDemo_EveryFileItWritesIsTheOwnersAlone(t *testing.T) {
	t.Parallel()
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	r, _ := startDemo(t)
	files, err := os.ReadDir(r.Data)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		st, err := os.Stat(filepath.Join(r.Data, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		seen[f.Name()] = true
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %o, want 600", f.Name(), st.Mode().Perm())
		}
	}
	for _, want := range []string{"provhub.db", "provhub.db-wal", "provhub.db.secret", "issuer.key", "tes-partner.secret", "wallet-partner.secret"} {
		if !seen[want] {
			t.Errorf("the demo wrote no %s (files: %v)", want, seen)
		}
	}
}

// The demo says what to do when its port is taken, before making anything,
// and removes the temporary folder it made when it stops.
func TestDemo_APortTakenIsSaidAndTheTemporaryFolderGoes(t *testing.T) {
	t.Parallel()
	taken := freeAddr(t)
	l, err := net.Listen("tcp", taken)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	code, _, stderr := runCLI(t, nil, "demo", "--listen", taken)
	if code != 1 || !strings.Contains(stderr, "--listen 127.0.0.1:0") {
		t.Fatalf("a taken port: exit %d %q", code, stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--listen", "127.0.0.1:0"}, strings.NewReader(""), pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var r demo.ReadyLine
	for sc.Scan() {
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Ready {
			break
		}
	}
	if r.Data == "" {
		t.Fatal("no ready line")
	}
	if _, err := os.Stat(r.Data); err != nil {
		t.Fatalf("the data folder %s: %v", r.Data, err)
	}
	cancel()
	var rest strings.Builder
	for sc.Scan() {
		rest.WriteString(sc.Text() + "\n")
	}
	if code := <-done; code != 0 {
		t.Fatalf("demo exited %d", code)
	}
	if _, err := os.Stat(r.Data); !os.IsNotExist(err) || !strings.Contains(rest.String(), "removed "+r.Data) {
		t.Fatalf("the temporary folder %s is still there (%v), or not said: %s", r.Data, err, rest.String())
	}
}
