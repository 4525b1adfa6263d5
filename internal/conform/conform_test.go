package conform_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/provhub/provhub/internal/conform"
	cassim "github.com/provhub/provhub/internal/sim/cas"
	simtes "github.com/provhub/provhub/internal/sim/tes"
	simwallet "github.com/provhub/provhub/internal/sim/wallet"
)

var instanceAID = []byte{0xA0, 0x00, 0x00, 0x01, 0x51, 0x53, 0x50, 0x01}

func walletSim(t *testing.T) (http.Handler, *conform.Fixture) {
	t.Helper()
	sim, err := simwallet.New(simwallet.Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Wait)
	if err := sim.AddDevice("0A0B0C0D", "dev-1"); err != nil {
		t.Fatal(err)
	}
	if err := sim.AddCard("wc-conform", "0A0B0C0D", instanceAID); err != nil {
		t.Fatal(err)
	}
	return sim, &conform.Fixture{Wallet: &conform.WalletFixture{SEID: "0A0B0C0D", WalletCardID: "wc-conform"}}
}

func tesSim(t *testing.T) (http.Handler, *conform.Fixture) {
	t.Helper()
	sim, err := simtes.New(simtes.Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.AddAccount(simtes.Account{ID: "ACC-C", IssuerID: "TRANSIT1", DeviceID: "dev-c", Balance: 1000}); err != nil {
		t.Fatal(err)
	}
	if err := sim.AddPurchase(simtes.Purchase{ID: "P-C", CardAccountID: "ACC-C", Amount: 500}); err != nil {
		t.Fatal(err)
	}
	return sim, &conform.Fixture{TES: &conform.TESFixture{IssuerID: "TRANSIT1", CardID: "ACC-C", DeviceID: "dev-c",
		IDm: "0102030405060708", Balance: 1000, PurchaseID: "P-C", Amount: 500}}
}

func casSim(t *testing.T) (http.Handler, *conform.Fixture) {
	t.Helper()
	sim, err := cassim.New(cassim.Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	sim.AddDevices([]string{"0100000001"}, nil)
	return sim, &conform.Fixture{CAS: &conform.CASFixture{SmartcardCAID: "0100000001", ServiceCAID: "1001"}}
}

type suite struct {
	name string
	sim  func(t *testing.T) (http.Handler, *conform.Fixture)
	base string
	run  func(context.Context, *conform.Target, *conform.Fixture) *conform.Report
}

var suites = []suite{
	{"wallet", walletSim, "", conform.Wallet},
	{"tes", tesSim, "/tes/devicegtwapi/1/0", conform.TES},
	{"cas", casSim, "/cas/v1", conform.CAS},
}

func runAgainst(t *testing.T, s suite, wrap func(http.Handler) http.Handler, withFixture bool) *conform.Report {
	t.Helper()
	h, f := s.sim(t)
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	if !withFixture {
		f = nil
	}
	return s.run(context.Background(), &conform.Target{URL: srv.URL + s.base}, f)
}

func text(r *conform.Report) string {
	var b bytes.Buffer
	_ = r.WriteText(&b)
	return b.String()
}

// provhub's simulators pass every rule; without a fixture the behaviour
// rules are skipped, and said to be.
func TestConform_TheSimulatorsPassEveryRule(t *testing.T) {
	for _, s := range suites {
		t.Run(s.name, func(t *testing.T) {
			r := runAgainst(t, s, nil, true)
			if !r.Passed() || r.Count(conform.Skip) != 0 || len(r.Results) < 8 {
				t.Fatalf("against provhub's simulator:\n%s", text(r))
			}
			bare := runAgainst(t, s, nil, false)
			if !bare.Passed() || bare.Count(conform.Skip) == 0 {
				t.Fatalf("without a fixture:\n%s", text(bare))
			}
			for _, res := range bare.Results {
				if res.Outcome == conform.Skip && !strings.Contains(res.Why, "fixture") {
					t.Errorf("%s skipped without saying which fixture it needs: %s", res.ID, res.Why)
				}
			}
		})
	}
}

// rewrite returns a handler that passes requests through edit (of the
// request: headers and JSON body) and answers through fix (of the answer's
// JSON body).
func rewrite(h http.Handler, edit func(r *http.Request, body map[string]any), fix func(path string, answer map[string]any)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		if edit != nil && json.Unmarshal(raw, &body) == nil {
			edit(r, body)
			raw, _ = json.Marshal(body)
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
		r.ContentLength = int64(len(raw))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		out := rec.Body.Bytes()
		var ans map[string]any
		if fix != nil && json.Unmarshal(out, &ans) == nil {
			fix(r.URL.Path, ans)
			out, _ = json.Marshal(ans)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(out)
	})
}

// A server broken on one rule fails that rule, and only that one.
func TestConform_ABrokenServerFailsExactlyTheBrokenRule(t *testing.T) {
	cases := []struct {
		suite, name string
		wrap        func(http.Handler) http.Handler
		fails       []string
	}{
		{"wallet", "takes a call without x-pod", func(h http.Handler) http.Handler {
			return rewrite(h, func(r *http.Request, _ map[string]any) {
				if r.Header.Get("x-pod") == "" {
					r.Header.Set("x-pod", "added")
				}
			}, nil)
		}, []string{"wallet.x-pod.missing"}},
		{"wallet", "cuts an over-long taskId instead of refusing it", func(h http.Handler) http.Handler {
			return rewrite(h, func(r *http.Request, b map[string]any) {
				if id, ok := b["taskId"].(string); ok && len(id) > 64 {
					b["taskId"] = id[:64]
				}
			}, nil)
		}, []string{"wallet.getTaskStatus.format.taskId.length"}},
		{"wallet", "takes a RESUME of an active card", func(h http.Handler) http.Handler {
			return rewrite(h, func(r *http.Request, b map[string]any) {
				if b["operation"] == "RESUME" {
					b["operation"] = "METADATA_UPDATE"
					b["cardDescriptor"] = map[string]any{"cardholderName": "x"}
				}
			}, nil)
		}, []string{"wallet.state.resume-active"}},
		{"wallet", "answers without responseId", func(h http.Handler) http.Handler {
			return rewrite(h, nil, func(_ string, a map[string]any) {
				if hdr, ok := a["responseHeader"].(map[string]any); ok {
					delete(hdr, "responseId")
				}
			})
		}, []string{"wallet.answers.well-formed"}},
		{"tes", "takes an over-long x-actor-id", func(h http.Handler) http.Handler {
			return rewrite(h, func(r *http.Request, _ map[string]any) {
				if a := r.Header.Get("x-actor-id"); len(a) > 32 {
					r.Header.Set("x-actor-id", a[:32])
				}
			}, nil)
		}, []string{"tes.x-actor-id.too-long"}},
		{"tes", "answers a repeated step as a new one", func(h http.Handler) http.Handler {
			// A TES without idempotence: a call that repeats the one before
			// is taken for a new loop.
			var last []byte
			return rewrite(h, func(r *http.Request, b map[string]any) {
				raw, _ := json.Marshal(b)
				if hdr, ok := b["requestHeader"].(map[string]any); ok && bytes.Equal(raw, last) {
					hdr["sessionId"] = "fresh-" + hdr["sessionId"].(string)
				}
				last = raw
			}, nil)
		}, []string{"tes.loop.top-up-once"}},
		{"cas", "takes members the protocol does not have", func(h http.Handler) http.Handler {
			return rewrite(h, func(_ *http.Request, b map[string]any) { delete(b, "colour") }, nil)
		}, []string{"cas.format.unknown-member"}},
		{"cas", "answers without the request_id", func(h http.Handler) http.Handler {
			return rewrite(h, nil, func(_ string, a map[string]any) { delete(a, "request_id") })
		}, []string{"cas.answers.well-formed"}},
	}
	for _, c := range cases {
		t.Run(c.suite+"/"+c.name, func(t *testing.T) {
			s := suites[slices.IndexFunc(suites, func(s suite) bool { return s.name == c.suite })]
			r := runAgainst(t, s, c.wrap, true)
			if got := r.Failed(); !slices.Equal(got, c.fails) {
				t.Fatalf("failed %v, want %v:\n%s", got, c.fails, text(r))
			}
		})
	}
}

// Every rule has an id of its own: reports and CI systems key on it.
func TestConform_RuleIDsAreUnique(t *testing.T) {
	for _, s := range suites {
		r := runAgainst(t, s, nil, false)
		seen := map[string]bool{}
		for _, res := range r.Results {
			if seen[res.ID] {
				t.Errorf("%s: rule id %s twice", s.name, res.ID)
			}
			seen[res.ID] = true
		}
	}
}
