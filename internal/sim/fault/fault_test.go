package fault_test

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/provhub/provhub/internal/sim/fault"
)

func TestDraw_CountersComeFirstInOrderAndCountDown(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	code, failed, busy := 1, 2, 1
	knobs := []fault.Knob{
		{Kind: "code", Next: &code, Only: "updateCard"},
		{Kind: "failed", Next: &failed},
		{Kind: "busy", Next: &busy, Rate: 0},
	}
	var got []string
	for _, op := range []string{"sendScript", "updateCard", "updateCard", "sendScript", "updateCard", "sendScript"} {
		got = append(got, fault.Draw(rng, op, knobs))
	}
	want := []string{"failed", "code", "failed", "busy", "", ""}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("draws %q, want %q", got, want)
	}
	if code != 0 || failed != 0 || busy != 0 {
		t.Errorf("counters left %d %d %d, want all used", code, failed, busy)
	}
}

func TestDraw_RatesShareOneDrawSoTheyAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	knobs := []fault.Knob{{Kind: "error", Rate: 0.2}, {Kind: "busy", Rate: 0.3}, {Kind: "timeout", Rate: 0.5}}
	counts := map[string]int{}
	const n = 20000
	for range n {
		counts[fault.Draw(rng, "op", knobs)]++
	}
	// The three rates add up to 1: every call gets exactly one fault, in
	// proportion to its rate (drawn independently, they would overlap and
	// leave some calls without).
	if counts[""] != 0 {
		t.Errorf("%d calls without a fault", counts[""])
	}
	for kind, rate := range map[string]float64{"error": 0.2, "busy": 0.3, "timeout": 0.5} {
		if got := float64(counts[kind]) / n; got < rate-0.02 || got > rate+0.02 {
			t.Errorf("%s: %.3f of calls, want about %.1f", kind, got, rate)
		}
	}
}

func TestValidate(t *testing.T) {
	neg := -1
	for _, c := range []struct {
		name  string
		knobs []fault.Knob
		ints  map[string]int
		want  string
	}{
		{"fine", []fault.Knob{{Kind: "error", Rate: 0.5}, {Kind: "busy", Rate: 0.5}}, map[string]int{"latency_ms": 10}, ""},
		{"rate above 1", []fault.Knob{{Kind: "error", Rate: 1.5}}, nil, "error_rate must be between 0 and 1"},
		{"negative rate", []fault.Knob{{Kind: "busy", Rate: -0.1}}, nil, "busy_rate must be between 0 and 1"},
		{"rates add above 1", []fault.Knob{{Kind: "error", Rate: 0.6}, {Kind: "busy", Rate: 0.6}}, nil, "add up to more than 1"},
		{"negative counter", []fault.Knob{{Kind: "error", Next: &neg}}, nil, "error_next must not be negative"},
		{"negative latency", nil, map[string]int{"latency_ms": -5}, "latency_ms must not be negative"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := fault.Validate(c.knobs, c.ints)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}

func TestMount_GetAndPutTheFaultsStrictly(t *testing.T) {
	type knobs struct {
		ErrorRate float64 `json:"error_rate"`
	}
	current := knobs{}
	mux := http.NewServeMux()
	fault.Mount(mux, func() knobs { return current }, func(k knobs) error {
		if err := fault.Validate([]fault.Knob{{Kind: "error", Rate: k.ErrorRate}}, nil); err != nil {
			return err
		}
		current = k
		return nil
	})
	do := func(method, body string) (int, string) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(method, fault.AdminPrefix+"faults", strings.NewReader(body)))
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}
	if code, body := do(http.MethodPut, `{"error_rate":0.25}`); code != 200 || body != `{"error_rate":0.25}` {
		t.Errorf("PUT: %d %s", code, body)
	}
	if code, body := do(http.MethodGet, ""); code != 200 || body != `{"error_rate":0.25}` {
		t.Errorf("GET: %d %s", code, body)
	}
	if code, body := do(http.MethodPut, `{"eror_rate":1}`); code != 400 || !strings.Contains(body, `"error":"body: json: unknown field`) {
		t.Errorf("a misspelt knob: %d %s", code, body)
	}
	if code, body := do(http.MethodPut, `{"error_rate":2}`); code != 400 || !strings.Contains(body, "between 0 and 1") {
		t.Errorf("a bad rate: %d %s", code, body)
	}
	if current.ErrorRate != 0.25 {
		t.Errorf("refused PUTs changed the knobs: %+v", current)
	}
}
