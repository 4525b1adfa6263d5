package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

// TestBench_WalletInOneProcessAndOnTwoInstances runs the wallet benchmark
// small, as a user would: with the hub in its own process on SQLite, and
// on two provhub serve processes sharing a PostgreSQL database. Every task
// must complete, and the report names what it measured.
func TestBench_WalletInOneProcessAndOnTwoInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("starts provhub processes; the full test command runs it")
	}
	bin := buildBinary(t)
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"one process", []string{"--db", storetest.NewURL(t, store.SQLite)}, []string{"db=sqlite instances=1"}},
		{"two instances", []string{"--db", storetest.NewURL(t, store.Postgres), "--instances", "2"},
			[]string{"db=postgres instances=2", "claim lock: waited"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// A bound well inside the test binary's own: a run that does
			// not finish reports what it waited for, with the instances'
			// errors, rather than being killed silently with the binary.
			args := append([]string{"bench", "wallet", "--tasks", "40", "--secure-elements", "8", "--clients", "4", "--workers", "8",
				"--timeout", "3m"}, c.args...)
			out, err := exec.Command(bin, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, w := range append(c.want, "outcome: 40 COMPLETED of 40", "machine=") {
				if !strings.Contains(string(out), w) {
					t.Errorf("the report lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestBench_CRMReportsTheBareHandlerBesideEachPhase runs the CRM benchmark
// small on SQLite: every request must complete, and the report must put the
// bare JSON handler beside both phases, the ratio at full load and the
// latency at the paced rate, since each figure of the hub is read against
// what the machine gives any HTTP API.
func TestBench_CRMReportsTheBareHandlerBesideEachPhase(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs provhub; the full test command runs it")
	}
	bin := buildBinary(t)
	out, err := exec.Command(bin, "bench", "crm", "--db", storetest.NewURL(t, store.SQLite), "--requests", "200", "--clients", "8",
		"--smartcards", "20", "--workers", "8", "--paced-rate", "400", "--timeout", "3m").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, w := range []string{"bare net/http JSON handler, same clients:", "db=sqlite instances=1", "outcome: 200 COMPLETED, 0 REJECTED",
		"ratio to the bare JSON handler:", "at the rate asked (400/s asked", "the bare JSON handler at the same pace (", "machine="} {
		if !strings.Contains(string(out), w) {
			t.Errorf("the report lacks %q:\n%s", w, out)
		}
	}
}
