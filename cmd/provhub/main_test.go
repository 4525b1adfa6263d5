package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/sealed"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCLI_UnknownCommandAndHelp(t *testing.T) {
	if code, _, stderr := runCLI(t, nil, "frobnicate"); code != 2 || !strings.Contains(stderr, "unknown command") {
		t.Fatalf("code %d stderr %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, nil); code != 2 || !strings.Contains(stderr, "serve") {
		t.Fatalf("code %d stderr %q", code, stderr)
	}
	if code, _, _ := runCLI(t, nil, "serve", "--no-such-flag"); code != 2 {
		t.Fatalf("bad flag: code %d", code)
	}
}

// TestCLI_ServeOnPostgresRefusesToStartWithoutASecretKey: a shared
// database whose copy could mint tokens is not started.
func TestCLI_ServeOnPostgresRefusesToStartWithoutASecretKey(t *testing.T) {
	code, _, stderr := runCLI(t, map[string]string{"PROVHUB_SECRET_KEY": ""}, "serve", "--db", storetest.NewURL(t, store.Postgres), "--listen", "127.0.0.1:0")
	if code == 0 || !strings.Contains(stderr, "needs the hub's secret key") {
		t.Fatalf("code %d stderr %q", code, stderr)
	}
}

// TestCLI_SecretKeyWritesAnOwnerOnlyFileAndNeverOverwritesIt.
func TestCLI_SecretKeyWritesAnOwnerOnlyFileAndNeverOverwritesIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.secret")
	if code, _, stderr := runCLI(t, nil, "secret-key", "--out", path); code != 0 {
		t.Fatalf("code %d: %s", code, stderr)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	before, _ := os.ReadFile(path)
	if code, _, _ := runCLI(t, nil, "secret-key", "--out", path); code == 0 {
		t.Fatal("an existing key file was overwritten")
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatal("the key file changed")
	}
	if _, err := sealed.LoadKeyFile(path); err != nil {
		t.Fatal(err)
	}
}

func TestCLI_VersionPrintsTheToolchain(t *testing.T) {
	code, out, _ := runCLI(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "provhub ") || !strings.Contains(out, "go1.") {
		t.Fatalf("code %d out %q", code, out)
	}
}

func TestCLI_MigrateTakesTheDatabaseFromTheEnvironment(t *testing.T) {
	for _, d := range storetest.Backends {
		t.Run(d.String(), func(t *testing.T) {
			url := storetest.NewURL(t, d)
			// Every migration the binary carries, one file per version:
			// the shared steps and the dialect's own.
			var files []string
			for _, dir := range []string{"shared", map[store.Dialect]string{store.SQLite: "sqlite", store.Postgres: "postgres"}[d]} {
				more, err := fs.Glob(os.DirFS("../../internal/store/migrations/"+dir), "*.sql")
				if err != nil || len(more) == 0 {
					t.Fatalf("migrations %s: %v %v", dir, more, err)
				}
				files = append(files, more...)
			}
			code, out, stderr := runCLI(t, map[string]string{"PROVHUB_DB": url}, "migrate")
			if want := fmt.Sprintf("applied %d migration(s); schema at version %d", len(files), len(files)); code != 0 || !strings.Contains(out, want) {
				t.Fatalf("code %d out %q stderr %q", code, out, stderr)
			}
			code, out, _ = runCLI(t, map[string]string{"PROVHUB_DB": url}, "migrate")
			if code != 0 || !strings.Contains(out, "applied 0 migration(s)") {
				t.Fatalf("second migrate: code %d out %q", code, out)
			}
		})
	}
}

func TestCLI_ServeRefusesABehindSchemaWithoutMigrate(t *testing.T) {
	url := storetest.NewURL(t, store.SQLite)
	code, _, stderr := runCLI(t, nil, "serve", "--db", url, "--migrate=false", "--listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(stderr, "schema is behind") || !strings.Contains(stderr, "provhub migrate") {
		t.Fatalf("code %d stderr %q", code, stderr)
	}
}

func TestCLI_BadLogSettingsAreRefused(t *testing.T) {
	code, _, stderr := runCLI(t, map[string]string{"PROVHUB_LOG_FORMAT": "xml"}, "serve", "--db", storetest.NewURL(t, store.SQLite))
	if code != 1 || !strings.Contains(stderr, "--log-format") {
		t.Fatalf("code %d stderr %q", code, stderr)
	}
}

// buildBinary compiles provhub once per test that needs a real process.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "provhub")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build: %v", err)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestServe_AnswersHealthAndExitsZeroOnSIGTERM(t *testing.T) {
	bin := buildBinary(t)
	for _, d := range storetest.Backends {
		t.Run(d.String(), func(t *testing.T) {
			addr := freeAddr(t)
			// A wallet server that is there, a CAS that is not.
			ws, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			cmd := exec.Command(bin, "serve", "--listen", addr, "--log-format", "json", "--cas-url", "http://127.0.0.1:1",
				"--wallet-url", "http://"+ws.Addr().String())
			cmd.Env = append(os.Environ(), "PROVHUB_DB="+storetest.NewURL(t, d), "PROVHUB_SECRET_KEY="+sealed.NewKeyText())
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			logs := make(chan string, 1000)
			go func() {
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					logs <- sc.Text()
				}
				close(logs)
			}()
			base := "http://" + addr
			deadline := time.Now().Add(20 * time.Second)
			for {
				resp, err := http.Get(base + "/readyz")
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == 200 {
						break
					}
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatalf("not ready: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			// Ready (the database), and saying what it found of the systems it calls.
			var ready struct {
				Status     string            `json:"status"`
				Downstream map[string]string `json:"downstream"`
			}
			for time.Now().Before(deadline) {
				resp, err := http.Get(base + "/readyz")
				if err != nil {
					t.Fatal(err)
				}
				json.NewDecoder(resp.Body).Decode(&ready)
				resp.Body.Close()
				if len(ready.Downstream) == 3 {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if ready.Status != "ready" || ready.Downstream["cas"] != "unreachable" || ready.Downstream["wallet server"] != "reachable" {
				t.Fatalf("readyz: %+v", ready)
			}
			req, _ := http.NewRequest(http.MethodGet, base+"/healthz", nil)
			req.Header.Set("x-correlation-id", "health-check-1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]string
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != 200 || body["status"] != "ok" || resp.Header.Get("x-correlation-id") != "health-check-1" {
				t.Fatalf("healthz %d %v", resp.StatusCode, body)
			}
			resp, err = http.Get(base + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			metrics, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, m := range []string{"provhub_http_requests_total", "go_goroutines"} {
				if !strings.Contains(string(metrics), m) {
					t.Fatalf("metrics lack %s", m)
				}
			}
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("exit after SIGTERM: %v", err)
				}
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatal("did not exit after SIGTERM")
			}
			var all []string
			for l := range logs {
				all = append(all, l)
			}
			joined := strings.Join(all, "\n")
			for _, want := range []string{`"msg":"provhub serving"`, `"msg":"shutting down"`, `"msg":"engine stopped"`, `"correlation_id":"health-check-1"`,
				`"msg":"a downstream system cannot be reached; requests for it wait and are retried","system":"cas"`} {
				if !strings.Contains(joined, want) {
					t.Fatalf("logs lack %s:\n%s", want, joined)
				}
			}
		})
	}
}

// Every command's help names each flag's kind (string, duration, ...), not
// a phrase of its usage text: the flag package takes a back-quoted phrase
// for the placeholder.
func TestCLI_HelpPlaceholdersAreKinds(t *testing.T) {
	kinds := map[string]bool{"": true, "string": true, "duration": true, "int": true, "uint": true, "float": true, "value": true}
	for _, c := range commands(strings.NewReader("")) {
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "wallet", "--help"}, {c.name, "add", "--help"}} {
			_, _, stderr := runCLI(t, nil, args...)
			for _, line := range strings.Split(stderr, "\n") {
				fields := strings.Fields(line)
				if len(fields) == 0 || !strings.HasPrefix(line, "  -") {
					continue
				}
				if len(fields) > 1 && !kinds[fields[1]] {
					t.Errorf("%v: flag line %q has placeholder %q", args, line, fields[1])
				}
			}
		}
	}
}

// The README's configuration table lists every flag of provhub serve, each
// with its environment variable and its default, and no flag serve lacks.
func TestCLI_TheREADMEsFlagTableMatchesServesFlags(t *testing.T) {
	code, _, help := runCLI(t, nil, "serve", "--help")
	if code != 2 && code != 0 {
		t.Fatalf("serve --help: exit %d", code)
	}
	// Flags as the flag package prints them: "  -name kind" then the usage,
	// ending "(default X)" when there is one.
	flags := map[string]string{}
	var last string
	for _, line := range strings.Split(help, "\n") {
		if name, ok := strings.CutPrefix(line, "  -"); ok {
			last, _, _ = strings.Cut(name, " ")
			flags[last] = ""
			continue
		}
		if i := strings.LastIndex(line, "(default "); last != "" && i >= 0 {
			flags[last] = strings.Trim(strings.TrimSuffix(line[i+len("(default "):], ")"), `"`)
		}
	}
	if len(flags) < 20 {
		t.Fatalf("read %d flags from serve --help:\n%s", len(flags), help)
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `--([a-z0-9-]+)` \\| `([A-Z0-9_]+)` \\| ([^|]*) \\|")
	listed := map[string]bool{}
	for _, line := range strings.Split(string(readme), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name, variable, def := m[1], m[2], strings.TrimSpace(m[3])
		listed[name] = true
		want, ok := flags[name]
		switch {
		case !ok:
			t.Errorf("the README lists --%s, which serve does not have", name)
		case variable != "PROVHUB_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_")):
			t.Errorf("--%s: variable %s", name, variable)
		case want != "" && !sameDefault(def, want):
			t.Errorf("--%s: the README's default %s, serve's %q", name, def, want)
		}
	}
	for name := range flags {
		if !listed[name] {
			t.Errorf("serve's --%s is not in the README's table", name)
		}
	}
}

// sameDefault tells whether a README default cell (its first `value`) is
// the flag's default, durations compared as durations ("10m" is "10m0s").
func sameDefault(cell, want string) bool {
	_, rest, ok := strings.Cut(cell, "`")
	if !ok {
		return false
	}
	got, _, _ := strings.Cut(rest, "`")
	if got == want {
		return true
	}
	g, gerr := time.ParseDuration(got)
	w, werr := time.ParseDuration(want)
	return gerr == nil && werr == nil && g == w
}
