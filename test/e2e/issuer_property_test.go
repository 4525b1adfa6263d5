package e2e

import (
	"flag"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"

	"pgregory.net/rapid"

	"github.com/provhub/provhub/internal/issuer"
)

// cardModel is what a card and its digital cards should be after a run of
// issuer actions.
type cardModel struct {
	state, reason string
	held          []string
	digital       map[string]string // walletCardId -> ACTIVE | SUSPENDED | DELETED
}

// resumable mirrors the published resumption rules.
func resumable(suspendedFor, code string) bool {
	switch suspendedFor {
	case issuer.ReasonCardLost:
		return code == issuer.ReasonCardFound
	case issuer.ReasonUserDecision:
		return code == issuer.ReasonUserDecision || code == issuer.ReasonIssuerDecision
	case issuer.ReasonIssuerDecision:
		return code == issuer.ReasonIssuerDecision
	}
	return false
}

// TestIssuer_CardLifeCycleProperties runs random card and digital-card
// actions and checks, after each, that the answer (accepted or 403) is the
// one the life cycle allows, that every accepted operation ends SUCCESSFUL,
// and that the hub's card, its digital cards and the emulated secure
// elements all agree with the model: a card's suspension suspends its
// active digital cards and its resumption resumes exactly those; a digital
// card suspended on its own stays suspended; deletion deletes them all.
func TestIssuer_CardLifeCycleProperties(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: a property test: many runs")
	}
	if f := flag.Lookup("rapid.checks"); f != nil && f.Value.String() == "100" {
		_ = f.Value.Set("10") // each step goes through the wallet simulator; -rapid.checks=N for more
	}
	e := newEnv(t, envOptions{})
	keys, _ := e.issuerKeys()
	tok := e.accessToken(keys[issuerA], issuerA)
	var caseNo atomic.Int64
	rapid.Check(t, func(rt *rapid.T) {
		n := caseNo.Add(1)
		cardID := fmt.Sprintf("PROP-%d", n)
		e.registerCard(tok, cardID, fmt.Sprintf("prop-consumer-%d", n), "")
		m := &cardModel{state: "ACTIVE", digital: map[string]string{}}
		ses := map[string]string{}
		// A transit card account has one digital card (its cardId is the
		// account id), so a card has at most one.
		if rapid.Bool().Draw(rt, "has a digital card") {
			se := fmt.Sprintf("5E%06X", n)
			wc := e.digital(se, cardID, true)
			m.digital[wc], ses[wc] = "ACTIVE", se
		}
		wcs := make([]string, 0, len(ses))
		for wc := range ses {
			wcs = append(wcs, wc)
		}
		slices.Sort(wcs)
		consumer := fmt.Sprintf("prop-consumer-%d", n)
		for step := range rapid.IntRange(1, 12).Draw(rt, "steps") {
			actions := []string{"card suspend", "card resume", "card delete"}
			if len(wcs) > 0 {
				actions = append(actions, "digital suspend", "digital resume", "digital delete")
			}
			action := rapid.SampledFrom(actions).Draw(rt, fmt.Sprintf("action %d", step))
			var path string
			body := map[string]string{}
			allowed := false
			apply := func() {}
			switch action {
			case "card suspend":
				code := rapid.SampledFrom(issuer.CardSuspendReasons).Draw(rt, "suspend reason")
				path, body["reasonCode"] = "/cards/"+cardID+"/operations:suspend", code
				allowed = m.state == "ACTIVE"
				apply = func() {
					m.state, m.reason, m.held = "SUSPENDED", code, nil
					for _, wc := range wcs {
						if m.digital[wc] == "ACTIVE" {
							m.digital[wc] = "SUSPENDED"
							m.held = append(m.held, wc)
						}
					}
				}
			case "card resume":
				code := rapid.SampledFrom(issuer.CardResumeReasons).Draw(rt, "resume reason")
				path, body["reasonCode"] = "/cards/"+cardID+"/operations:resume", code
				allowed = m.state == "SUSPENDED" && resumable(m.reason, code)
				apply = func() {
					m.state, m.reason = "ACTIVE", ""
					for _, wc := range m.held {
						if m.digital[wc] == "SUSPENDED" {
							m.digital[wc] = "ACTIVE"
						}
					}
					m.held = nil
				}
			case "card delete":
				path = "/cards/" + cardID + "/operations:delete"
				allowed = m.state != "DELETED"
				apply = func() {
					m.state = "DELETED"
					for wc := range m.digital {
						m.digital[wc] = "DELETED"
					}
				}
			default:
				wc := rapid.SampledFrom(wcs).Draw(rt, "digital card")
				verb := action[len("digital "):]
				path = "/digitalCards/" + wc + "/operations:" + verb
				switch verb {
				case "suspend":
					allowed = m.digital[wc] == "ACTIVE"
					apply = func() { m.digital[wc] = "SUSPENDED" }
				case "resume":
					allowed = m.digital[wc] == "SUSPENDED" && m.state == "ACTIVE"
					apply = func() { m.digital[wc] = "ACTIVE" }
				case "delete":
					allowed = m.digital[wc] != "DELETED"
					apply = func() { m.digital[wc] = "DELETED" }
				}
			}
			status, raw := e.bank(conforming, tok, "POST", "/issuers/"+issuerA+path, "", body)
			switch {
			case allowed && status == http.StatusOK:
				var r opResult
				e.must(http.StatusOK, &r, status, raw)
				if op := e.waitOperation(tok, consumer, r.OperationID); op.Status != "SUCCESSFUL" {
					rt.Fatalf("%s %v: %+v", action, body, op)
				}
				apply()
			case !allowed && status == http.StatusForbidden:
			default:
				rt.Fatalf("%s %v on %+v: HTTP %d %s (allowed by the model: %v)", action, body, m, status, raw, allowed)
			}
			var card cardOut
			e.mustBank(http.StatusOK, &card, conforming, tok, "GET", "/issuers/"+issuerA+"/cards/"+cardID, "", nil)
			if card.State != m.state {
				rt.Fatalf("after %s: card %s, model %s", action, card.State, m.state)
			}
			for _, dc := range card.DigitalCards {
				if dc.State != m.digital[dc.DigitalCardID] {
					rt.Fatalf("after %s: digital card %s is %s, model %s", action, dc.DigitalCardID, dc.State, m.digital[dc.DigitalCardID])
				}
				se, _ := e.wsim.SecureElement(ses[dc.DigitalCardID])
				switch {
				case m.digital[dc.DigitalCardID] == "DELETED" && len(se.Instances) != 0:
					rt.Fatalf("after %s: deleted %s still on its secure element", action, dc.DigitalCardID)
				case m.digital[dc.DigitalCardID] != "DELETED" && (len(se.Instances) != 1 || se.Instances[0].Locked != (m.digital[dc.DigitalCardID] == "SUSPENDED")):
					rt.Fatalf("after %s: secure element of %s: %+v, model %s", action, dc.DigitalCardID, se.Instances, m.digital[dc.DigitalCardID])
				}
			}
		}
	})
}
