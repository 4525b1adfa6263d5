package conform

import (
	"context"
	"encoding/json"
	"net/http"
)

// CAS runs the rules of provhub's CAS protocol (api/cas.yaml) against t,
// whose URL is the protocol's base (…/cas/v1).
func CAS(ctx context.Context, t *Target, f *Fixture) *Report {
	var cf *CASFixture
	if f != nil {
		cf = f.CAS
	}
	return run(ctx, "cas", t, casRules(cf))
}

// casReply is a CAS answer.
type casReply struct {
	RequestID       string `json:"request_id"`
	Result          string `json:"result"`
	ReferenceNumber string `json:"reference_number"`
}

func readReply(m map[string]json.RawMessage) casReply {
	raw, _ := json.Marshal(m)
	var r casReply
	_ = json.Unmarshal(raw, &r)
	return r
}

func casRules(cf *CASFixture) []rule {
	card, service := "0000000000", "1"
	if cf != nil {
		card, service = cf.SmartcardCAID, cf.ServiceCAID
	}
	add := func() map[string]any {
		return map[string]any{"request_id": newID("conform-"), "command": "ADD_SUBSCRIPTIONS", "smartcard_ca_id": card, "service_ca_ids": []any{service}}
	}
	var rules []rule
	expect := func(id, says string, body func() any, wantStatus int, wantResult string) {
		rules = append(rules, rule{id: id, says: says, run: func(ctx context.Context, c *check) {
			status, m := c.post(ctx, "command", "/commands", nil, body())
			r := readReply(m)
			switch {
			case status == 0:
			case status != wantStatus || r.Result != wantResult:
				c.failf("HTTP %d result %q, want HTTP %d result %s", status, r.Result, wantStatus, wantResult)
			}
		}})
	}
	expect("cas.not-a-command", "a body that is not JSON is HTTP 400 BAD_REQUEST", func() any { return "{" }, http.StatusBadRequest, "BAD_REQUEST")
	expect("cas.missing.request_id", "request_id is required: HTTP 400 BAD_REQUEST", func() any { return without(add(), "request_id") }, http.StatusBadRequest, "BAD_REQUEST")
	expect("cas.missing.command", "command is required: HTTP 400 BAD_REQUEST", func() any { return without(add(), "command") }, http.StatusBadRequest, "BAD_REQUEST")
	expect("cas.format.command", "command is one of the protocol's: HTTP 400 BAD_REQUEST", func() any { return with(add(), "command", "FORMAT_DISK") }, http.StatusBadRequest, "BAD_REQUEST")
	expect("cas.format.unknown-member", "a command has no other members: HTTP 400 BAD_REQUEST", func() any { return with(add(), "colour", "blue") }, http.StatusBadRequest, "BAD_REQUEST")
	rules = append(rules, rule{"cas.format.pin", "pin is four digits: any other is refused, HTTP 200 INVALID_PIN", func(ctx context.Context, c *check) {
		if cf == nil {
			c.skip("needs a smartcard the CAS knows: the fixture's cas part")
			return
		}
		status, m := c.post(ctx, "command", "/commands", nil, map[string]any{"request_id": newID("conform-"), "command": "RESET_PIN", "smartcard_ca_id": card, "pin": "12a4"})
		if r := readReply(m); status != 0 && (status != http.StatusOK || r.Result != "INVALID_PIN") {
			c.failf("HTTP %d result %q, want HTTP 200 result INVALID_PIN", status, r.Result)
		}
	}})
	expect("cas.unknown-smartcard", "a smartcard the CAS does not know is UNKNOWN_SMARTCARD", func() any {
		return with(add(), "smartcard_ca_id", newID("99"))
	}, http.StatusOK, "UNKNOWN_SMARTCARD")
	rules = append(rules,
		rule{"cas.request-ids", "a command carried out is OK with a reference_number; the same request_id again gets the same answer and does nothing again; the same request_id for another command is REQUEST_ID_REUSED; the state rules hold (SERVICE_ALREADY_ACTIVE, SERVICE_NOT_ACTIVE)", func(ctx context.Context, c *check) {
			if cf == nil {
				c.skip("needs a smartcard and a service: the fixture's cas part")
				return
			}
			send := func(body map[string]any, want string) casReply {
				status, m := c.post(ctx, "command", "/commands", nil, body)
				r := readReply(m)
				if c.outcome == "" && (status != http.StatusOK || r.Result != want) {
					c.failf("HTTP %d result %q, want HTTP 200 result %s", status, r.Result, want)
				}
				return r
			}
			first := add()
			status, m := c.post(ctx, "command", "/commands", nil, first)
			wasActive := status == http.StatusOK && readReply(m).Result == "SERVICE_ALREADY_ACTIVE"
			if wasActive { // leave it as found, below
				send(with(add(), "command", "CANCEL_SUBSCRIPTIONS"), "OK")
				first = add()
			} else {
				c.last = nil
			}
			ok := first
			r1 := send(ok, "OK")
			if c.outcome == "" && r1.ReferenceNumber == "" {
				c.failf("an OK answer without reference_number")
			}
			r2 := send(ok, "OK")
			if c.outcome == "" && r2.ReferenceNumber != r1.ReferenceNumber {
				c.failf("the repeated request got reference %q, the first %q", r2.ReferenceNumber, r1.ReferenceNumber)
			}
			send(with(ok, "command", "CANCEL_SUBSCRIPTIONS"), "REQUEST_ID_REUSED")
			send(add(), "SERVICE_ALREADY_ACTIVE")
			send(with(add(), "command", "CANCEL_SUBSCRIPTIONS"), "OK")
			send(with(add(), "command", "CANCEL_SUBSCRIPTIONS"), "SERVICE_NOT_ACTIVE")
			if wasActive {
				send(add(), "OK")
			}
		}},
		rule{"cas.answers.well-formed", "every answer is JSON with a result, and the request's request_id", func(_ context.Context, c *check) {
			for _, a := range *c.answers {
				r := readReply(a.body)
				var sent struct {
					RequestID string `json:"request_id"`
				}
				_ = json.Unmarshal([]byte(a.x.Body), &sent)
				why := ""
				switch {
				case a.body == nil:
					why = "the answer is not a JSON object"
				case r.Result == "":
					why = "the answer has no result"
				case sent.RequestID != "" && r.RequestID != sent.RequestID:
					why = "the answer's request_id is not the request's"
				}
				if why != "" {
					c.last = a.x
					c.failf("%s", why)
					return
				}
			}
		}},
	)
	return rules
}
