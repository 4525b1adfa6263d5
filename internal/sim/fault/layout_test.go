package fault_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	simcas "github.com/provhub/provhub/internal/sim/cas"
	"github.com/provhub/provhub/internal/sim/fault"
	simtes "github.com/provhub/provhub/internal/sim/tes"
	simwallet "github.com/provhub/provhub/internal/sim/wallet"
)

// TestSimulators_ShareOneAdminLayoutAndOneMeaningOfTheKnobs: the CAS, TES
// and wallet-server simulators answer their faults and stats at the same
// paths, refuse a misspelt knob and rates adding up to more than 1 alike,
// and take a valid PUT.
func TestSimulators_ShareOneAdminLayoutAndOneMeaningOfTheKnobs(t *testing.T) {
	cas, err := simcas.New(simcas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tes, err := simtes.New(simtes.Config{})
	if err != nil {
		t.Fatal(err)
	}
	wallet, err := simwallet.New(simwallet.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		sim      http.Handler
		tooMuch  string // two rates adding up to more than 1
		validPut string
	}{
		"cas":    {cas, `{"error_rate":0.7,"busy_rate":0.7}`, `{"busy_next":1}`},
		"tes":    {tes, `{"error_rate":0.7,"lose_rate":0.7}`, `{"lose_next":1}`},
		"wallet": {wallet, `{"error_rate":0.7,"malformed_rate":0.7}`, `{"busy_next":1}`},
	} {
		t.Run(name, func(t *testing.T) {
			do := func(method, path, body string) (int, string) {
				rec := httptest.NewRecorder()
				c.sim.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
				return rec.Code, rec.Body.String()
			}
			for _, path := range []string{fault.AdminPrefix + "faults", fault.AdminPrefix + "stats"} {
				if code, body := do(http.MethodGet, path, ""); code != http.StatusOK || !strings.HasPrefix(body, "{") {
					t.Errorf("GET %s: %d %s", path, code, body)
				}
			}
			if code, body := do(http.MethodPut, fault.AdminPrefix+"faults", `{"error_rat":1}`); code != http.StatusBadRequest || !strings.Contains(body, `"error":`) {
				t.Errorf("a misspelt knob: %d %s", code, body)
			}
			if code, body := do(http.MethodPut, fault.AdminPrefix+"faults", c.tooMuch); code != http.StatusBadRequest || !strings.Contains(body, "more than 1") {
				t.Errorf("rates over 1: %d %s", code, body)
			}
			if code, body := do(http.MethodPut, fault.AdminPrefix+"faults", c.validPut); code != http.StatusOK {
				t.Errorf("a valid PUT: %d %s", code, body)
			}
			if _, body := do(http.MethodGet, fault.AdminPrefix+"faults", ""); !strings.Contains(body, strings.Trim(c.validPut, "{}")) {
				t.Errorf("the PUT did not take: %s", body)
			}
		})
	}
}
