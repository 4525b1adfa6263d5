package main

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cassim "github.com/provhub/provhub/internal/sim/cas"
)

func TestCLI_ConformReportsAndExitsByTheOutcome(t *testing.T) {
	sim, err := cassim.New(cassim.Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	sim.AddDevices([]string{"0100000001"}, nil)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	dir := t.TempDir()
	fixture := filepath.Join(dir, "fixture.json")
	if err := os.WriteFile(fixture, []byte(`{"cas":{"smartcardCaId":"0100000001","serviceCaId":"1001"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	junit, js := filepath.Join(dir, "report.xml"), filepath.Join(dir, "report.json")
	code, out, stderr := runCLI(t, nil, "conform", "cas", "--url", srv.URL+"/cas/v1", "--fixture", fixture, "--junit", junit, "--json", js)
	if code != 0 || !strings.Contains(out, "0 failed, 0 skipped") {
		t.Fatalf("against the CAS simulator: %d\n%s\n%s", code, out, stderr)
	}
	var suite struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Cases    []struct {
			Name string `xml:"name,attr"`
		} `xml:"testcase"`
	}
	raw, _ := os.ReadFile(junit)
	if err := xml.Unmarshal(raw, &suite); err != nil || suite.Tests == 0 || suite.Failures != 0 || len(suite.Cases) != suite.Tests {
		t.Fatalf("JUnit report: %v %+v", err, suite)
	}
	var report struct {
		API     string `json:"api"`
		Results []struct{ ID, Outcome string }
	}
	raw, _ = os.ReadFile(js)
	if err := json.Unmarshal(raw, &report); err != nil || report.API != "cas" || len(report.Results) != suite.Tests {
		t.Fatalf("JSON report: %v %+v", err, report)
	}
	// A server that answers nothing the contract says fails, with exit 1.
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"result":"OK"}`))
	}))
	defer broken.Close()
	code, out, _ = runCLI(t, nil, "conform", "cas", "--url", broken.URL)
	if code != 1 || !strings.Contains(out, "FAIL cas.not-a-command") {
		t.Fatalf("against a broken CAS: %d\n%s", code, out)
	}
	if code, _, _ := runCLI(t, nil, "conform", "ftp", "--url", "x"); code != 2 {
		t.Errorf("an unknown API: exit %d", code)
	}
}
