package e2e

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"pgregory.net/rapid"

	"github.com/provhub/provhub/internal/cas"
	"github.com/provhub/provhub/internal/paytv"
	cassim "github.com/provhub/provhub/internal/sim/cas"
	"github.com/provhub/provhub/internal/store/storetest"
)

// TestCRM_LifeCycleProperties creates random add/cancel requests on a few
// smartcards, with random priorities, immediate processing and transient
// CAS faults, and checks the life cycle's promises: every request ends
// COMPLETED or REJECTED; a smartcard's requests take effect in the order
// they were created (whatever their priority), so each outcome is the one
// a CAS gives when the card's earlier requests have been applied; a
// rejection for unavailability happens only when faults were injected and
// has no effect; sequence numbers order a card's requests as created; and
// the CAS ends with exactly the entitlements the outcomes imply.
func TestCRM_LifeCycleProperties(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: a property test: many runs")
	}
	if f := flag.Lookup("rapid.checks"); f != nil && f.Value.String() == "100" {
		_ = f.Value.Set("8") // each case runs requests through the CAS; -rapid.checks=N for more
	}
	for _, d := range storetest.Backends {
		t.Run(d.String(), func(t *testing.T) {
			e := newEnv(t, envOptions{dialect: d, maxWorkers: 8, sendAttempts: 3})
			tok := e.login("mpadministrator", "mp-admin-1234")
			var caseNo atomic.Int64
			rapid.Check(t, func(rt *rapid.T) {
				runLifeCycleCase(rt, e, tok, int(caseNo.Add(1)))
			})
		})
	}
}

type modelRequest struct {
	id, card, service string
	add               bool
}

func runLifeCycleCase(rt *rapid.T, e *env, tok string, caseNo int) {
	ctx := context.Background()
	nCards := rapid.IntRange(1, 3).Draw(rt, "cards")
	ref := paytv.ReferenceData{Organisation: "CRMDEMO"}
	var cards []string
	for k := range nCards {
		ca := fmt.Sprintf("P%04d-%d", caseNo, k)
		cards = append(cards, ca)
		ref.Smartcards = append(ref.Smartcards, paytv.ItemData{SerialNumber: "serial-" + ca, CAID: ca})
	}
	if _, err := e.hub.PayTV().Import(ctx, ref); err != nil {
		rt.Fatal(err)
	}
	e.sim.AddDevices(cards, nil)
	services := map[string]string{"BASIC": "1001", "SPORTS": "1002", "MOVIES": "1003"}
	codes := []string{"BASIC", "SPORTS", "MOVIES"}

	faulted := false
	var reqs []modelRequest
	steps := rapid.IntRange(1, 10).Draw(rt, "steps")
	for i := range steps {
		if rapid.IntRange(0, 5).Draw(rt, fmt.Sprintf("fault%d", i)) == 0 {
			faulted = true
			f := cassim.Faults{BusyNext: rapid.IntRange(0, 2).Draw(rt, "busy"), ErrorNext: rapid.IntRange(0, 2).Draw(rt, "errors")}
			if err := e.sim.SetFaults(f); err != nil {
				rt.Fatal(err)
			}
		}
		r := modelRequest{
			card:    rapid.SampledFrom(cards).Draw(rt, "card"),
			service: rapid.SampledFrom(codes).Draw(rt, "service"),
			add:     rapid.Bool().Draw(rt, "add"),
		}
		method := "cancel_subscriptions"
		if r.add {
			method = "add_subscriptions"
		}
		body := map[string]any{"token": tok,
			"subscription_identifier": map[string]string{"number": "S60058"},
			"service_identifier":      map[string]string{"code": r.service},
			"smartcard_identifier":    map[string]string{"serial_number": "serial-" + r.card},
			"priority":                rapid.SampledFrom([]string{"REGULAR", "EXPRESS"}).Draw(rt, "priority"),
			"process_immediately":     rapid.IntRange(0, 4).Draw(rt, "immediate") == 0,
		}
		r.id = e.create(ws, method, body).ID
		reqs = append(reqs, r)
	}

	final := map[string]request{}
	for _, r := range reqs {
		f := e.waitFinal(ws, tok, r.id)
		if f.LifeCycleState != "COMPLETED" && f.LifeCycleState != "REJECTED" {
			rt.Fatalf("request %s ended %s", r.id, f.LifeCycleState)
		}
		final[r.id] = f
	}
	if err := e.sim.SetFaults(cassim.Faults{}); err != nil {
		rt.Fatal(err)
	}

	// Replay each card's requests in creation order against a model CAS.
	active := map[string]map[string]bool{}
	lastSeq := map[string]int64{}
	for _, r := range reqs {
		f := final[r.id]
		if active[r.card] == nil {
			active[r.card] = map[string]bool{}
		}
		if f.SequenceNumber == nil || *f.SequenceNumber <= lastSeq[r.card] {
			seq := "none"
			if f.SequenceNumber != nil {
				seq = fmt.Sprint(*f.SequenceNumber)
			}
			rt.Fatalf("card %s: request %s has sequence %s after %d", r.card, r.id, seq, lastSeq[r.card])
		}
		lastSeq[r.card] = *f.SequenceNumber
		if str(f.ErrorCode) == paytv.ErrorCodeCASUnavailable {
			if !faulted {
				rt.Fatalf("request %s rejected as unavailable with no fault injected", r.id)
			}
			continue // nothing reached the CAS
		}
		svc := services[r.service]
		wantOK := r.add != active[r.card][svc]
		switch {
		case wantOK && f.LifeCycleState != "COMPLETED":
			rt.Fatalf("card %s: %s %s should complete, got %s %s", r.card, map[bool]string{true: "add", false: "cancel"}[r.add], r.service,
				f.LifeCycleState, str(f.ProviderErrorCode))
		case !wantOK && (f.LifeCycleState != "REJECTED" || str(f.ErrorCode) != paytv.ErrorCodeCASRejected):
			rt.Fatalf("card %s: %s %s should be refused, got %s", r.card, map[bool]string{true: "add", false: "cancel"}[r.add], r.service, f.LifeCycleState)
		case !wantOK && r.add && str(f.ProviderErrorCode) != cas.ResultServiceAlreadyActive,
			!wantOK && !r.add && str(f.ProviderErrorCode) != cas.ResultServiceNotActive:
			rt.Fatalf("request %s refused with %s", r.id, str(f.ProviderErrorCode))
		}
		if wantOK {
			active[r.card][svc] = r.add
		}
	}
	for _, ca := range cards {
		var want []string
		for svc, on := range active[ca] {
			if on {
				want = append(want, svc)
			}
		}
		sort.Strings(want)
		got, _ := e.sim.Card(ca)
		if strings.Join(got.Entitlements, ",") != strings.Join(want, ",") {
			rt.Fatalf("card %s at the CAS has %v, the outcomes imply %v", ca, got.Entitlements, want)
		}
	}
}
