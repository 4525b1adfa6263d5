package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/partner"
	"github.com/provhub/provhub/internal/paytv"
	"github.com/provhub/provhub/internal/reqsign"
	cassim "github.com/provhub/provhub/internal/sim/cas"
	simtes "github.com/provhub/provhub/internal/sim/tes"
	"github.com/provhub/provhub/internal/transit"
)

// witness serves h and records, per call, one member of the body (the
// issuerId a TES is asked about, the smartcard a CAS command is for) and
// whether the call carried a valid signature of partner id with secret.
type witness struct {
	mu       sync.Mutex
	seen     []string
	unsigned int
}

func (w *witness) only(t *testing.T, who, want string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.seen) == 0 {
		t.Errorf("%s was never called", who)
	}
	for _, s := range w.seen {
		if s != want {
			t.Errorf("%s was called for %s (it serves %s only)", who, s, want)
		}
	}
	if w.unsigned > 0 {
		t.Errorf("%s got %d calls without the hub's valid signature", who, w.unsigned)
	}
}

// TestPartners_EachIssuerHasItsTESAndEachOrganisationItsCAS runs one hub
// with two TES simulators for two issuers and two CAS simulators for two
// CRM organisations, registered as partners with URLs; every call reaches
// the system registered for it, signed with that partner's secret.
func TestPartners_EachIssuerHasItsTESAndEachOrganisationItsCAS(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		reg := e.hub.Partners()
		// TES A (the environment's simulator) for TRANSIT1, TES B for TRANSIT2.
		tesB, err := simtes.New(simtes.Config{Clock: e.clock.Now, Seed: 9})
		if err != nil {
			t.Fatal(err)
		}
		var seenA, seenB, casSeenA, casSeenB witness
		secrets := map[string]string{}
		// The secret is known once the partner is added, and the witness
		// needs it: add first with the URL of a witness that reads it late.
		register := func(id string, role partner.Role, scope string, h http.Handler, member, path string, w *witness) {
			t.Helper()
			var secret string
			var mu sync.Mutex
			srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				var m map[string]any
				_ = json.Unmarshal(body, &m)
				mu.Lock()
				want := reqsign.Signature([]byte(secret), id, r.Header.Get(reqsign.HeaderTimestamp), r.Header.Get(reqsign.HeaderNonce), r.Method, r.URL.RequestURI(), body)
				mu.Unlock()
				w.mu.Lock()
				w.seen = append(w.seen, fmt.Sprint(m[member]))
				if r.Header.Get(reqsign.HeaderPartner) != id || r.Header.Get(reqsign.HeaderSignature) != want {
					w.unsigned++
				}
				w.mu.Unlock()
				r.Body = io.NopCloser(bytes.NewReader(body))
				h.ServeHTTP(rw, r)
			}))
			t.Cleanup(srv.Close)
			np := partner.NewPartner{ID: id, Role: role, URL: srv.URL + path, Timeout: 5 * time.Second}
			if role == partner.RoleCAS {
				np.Organisations = []string{scope}
			} else {
				np.Issuers, np.Signing = []string{scope}, true
			}
			if role == partner.RoleCAS {
				np.Signing = true
			}
			s, err := reg.Add(ctx, np)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			secret = s
			mu.Unlock()
			secrets[id] = s
		}
		register("tes-a", partner.RoleTES, "TRANSIT1", e.tsim, "issuerId", "/tes/devicegtwapi/1/0", &seenA)
		register("tes-b", partner.RoleTES, "TRANSIT2", tesB, "issuerId", "/tes/devicegtwapi/1/0", &seenB)
		casB, err := cassim.New(cassim.Config{Clock: e.clock.Now, Seed: 9})
		if err != nil {
			t.Fatal(err)
		}
		casB.AddDevices([]string{"0200000001"}, nil)
		register("cas-a", partner.RoleCAS, "CRMDEMO", e.sim, "smartcard_ca_id", "", &casSeenA)
		register("cas-b", partner.RoleCAS, "OTHERORG", casB, "smartcard_ca_id", "", &casSeenB)
		// A second system for one scope is refused: the choice would be a guess.
		if _, err := reg.Add(ctx, partner.NewPartner{ID: "tes-a2", Role: partner.RoleTES, Issuers: []string{"TRANSIT1"}, URL: "http://127.0.0.1:1", Signing: true}); err == nil {
			t.Error("a second TES to call for TRANSIT1 was registered")
		}

		// A top-up per issuer.
		for _, c := range []struct {
			issuer string
			sim    *simtes.Simulator
			n      int
		}{{"TRANSIT1", e.tsim, 60}, {"TRANSIT2", tesB, 61}} {
			cardID, se := fmt.Sprintf("ACC-P%d", c.n), fmt.Sprintf("E0%06X", c.n)
			wc := e.provisionFor(c.issuer, se, cardID)
			p := e.transitCall(conforming, transitBase+"submitCardPersoData", map[string]any{"issuerId": c.issuer, "cardId": cardID,
				"cardPersoData": map[string]any{"dgis": []map[string]string{{"dgi": "0101", "data": "0102030405"}}}})
			if task := e.waitTask(cardID, p.TaskID); task.Status != transit.TaskCompleted {
				t.Fatalf("perso: %+v", task)
			}
			if err := e.wsim.SetCardBalance(wc, 100); err != nil {
				t.Fatal(err)
			}
			if err := c.sim.AddAccount(simtes.Account{ID: cardID, IssuerID: c.issuer, DeviceID: "dev-" + se, Balance: 100}); err != nil {
				t.Fatal(err)
			}
			if err := c.sim.AddPurchase(simtes.Purchase{ID: "P-" + cardID, CardAccountID: cardID, Amount: 25}); err != nil {
				t.Fatal(err)
			}
			op := e.opCall(transitBase+"topupCard", map[string]any{"issuerId": c.issuer, "cardId": cardID, "purchaseId": "P-" + cardID})
			if op.ResponseHeader.StatusCode != 0 {
				t.Fatalf("topupCard %s: %+v", c.issuer, op)
			}
			waitFor(t, "the top-up of "+c.issuer, func() bool {
				a := e.opCall(transitBase+"getOperationStatus", map[string]any{"issuerId": c.issuer, "operationId": op.OperationID})
				return a.Operation != nil && a.Operation.Status == "COMPLETED"
			})
		}
		seenA.only(t, "TES A", "TRANSIT1")
		seenB.only(t, "TES B", "TRANSIT2")

		// A subscription per organisation.
		other := `{"organisation":"OTHERORG","units":[{"name":"Other office"}],"subscriptions":[{"number":"T70001"}],
			"services":[{"code":"NEWS","ca_id":"2001"}],"smartcards":[{"serial_number":"ob30000001","ca_id":"0200000001"}],"stbs":[]}`
		var ref paytv.ReferenceData
		if err := json.Unmarshal([]byte(other), &ref); err != nil {
			t.Fatal(err)
		}
		if _, err := e.hub.PayTV().Import(ctx, ref); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ user, password, sub, service, card string }{
			{"mpadministrator", "mp-admin-1234", "S60058", "BASIC", "sc20000002"},
			{"mpadministrator", "other-org-pass", "T70001", "NEWS", "ob30000001"},
		} {
			var tok string
			org := "CRMDEMO"
			if c.card == "ob30000001" {
				var data struct {
					Token string `json:"token"`
				}
				e.crm.post(conforming, "/authentication/token", map[string]string{"username": c.user, "password": c.password, "organisation": "OTHERORG"}).ok(t, &data)
				tok, org = data.Token, "OTHERORG"
			} else {
				tok = e.login(c.user, c.password)
			}
			r := e.create(ws, "add_subscriptions", map[string]any{"token": tok, "subscription_identifier": map[string]string{"number": c.sub},
				"service_identifier": map[string]string{"code": c.service}, "smartcard_identifier": map[string]string{"serial_number": c.card},
				"process_immediately": true})
			if f := e.waitFinal(ws, tok, r.ID); f.LifeCycleState != "COMPLETED" {
				t.Fatalf("%s: %+v %s", org, f, str(f.ErrorDescription))
			}
		}
		casSeenA.only(t, "CAS A", "0100000002")
		casSeenB.only(t, "CAS B", "0200000001")
		if !strings.HasPrefix(secrets["cas-b"], "phs_") {
			t.Error("the CAS partner has no signing secret")
		}
	})
}
