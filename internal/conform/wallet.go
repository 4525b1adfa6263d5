package conform

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Wallet runs the wallet-server rules (api/wallet.yaml) against t.
func Wallet(ctx context.Context, t *Target, f *Fixture) *Report {
	if t.Pod == "" {
		t.Pod = "conform"
	}
	var wf *WalletFixture
	if f != nil {
		wf = f.Wallet
	}
	return run(ctx, "wallet", t, walletRules(t, wf))
}

// walletCall is one wallet operation with a request that conforms.
type walletCall struct {
	op   string
	body func() map[string]any
}

func walletRules(t *Target, wf *WalletFixture) []rule {
	seID, card := "0A0B0C0D", "conform-wc"
	if wf != nil {
		seID, card = wf.SEID, wf.WalletCardID
	}
	header := func() map[string]any {
		return map[string]any{"requestId": newID("r-"), "sessionId": "conform", "generationDateTime": time.Now().UTC().Format(time.RFC3339)}
	}
	pod := map[string]string{"x-pod": t.Pod}
	calls := []walletCall{
		{"sendScript", func() map[string]any {
			return map[string]any{"requestHeader": header(), "taskId": newID("conform-"), "walletCardId": card, "seId": seID,
				"apduCommands": []any{map[string]any{"data": "00A4040007A000000151000000", "messageId": "select", "messageName": "SELECT"}}}
		}},
		{"updateCard", func() map[string]any {
			return map[string]any{"requestHeader": header(), "taskId": newID("conform-"), "walletCardId": card, "seId": seID,
				"operation": "METADATA_UPDATE", "cardDescriptor": map[string]any{"cardholderName": "Conform"}}
		}},
		{"getTaskStatus", func() map[string]any {
			return map[string]any{"requestHeader": header(), "taskId": newID("conform-"), "seId": seID}
		}},
	}
	var rules []rule
	expect := func(id, says, op string, headers map[string]string, body func() any, want int) {
		rules = append(rules, rule{id: id, says: says, run: func(ctx context.Context, c *check) {
			status, m := c.post(ctx, op, "/"+op, headers, body())
			c.wantCode(status, m, want)
		}})
	}
	// Headers.
	expect("wallet.x-pod.missing", "x-pod is a required header: without it, 111", "getTaskStatus", nil,
		func() any { return calls[2].body() }, 111)
	expect("wallet.x-pod.too-long", "x-pod has at most 128 characters: 112", "getTaskStatus", map[string]string{"x-pod": strings.Repeat("p", 129)},
		func() any { return calls[2].body() }, 112)
	// Required members, member by member.
	required := map[string][]string{
		"sendScript":    {"requestHeader", "requestHeader.requestId", "requestHeader.sessionId", "taskId", "walletCardId", "seId", "apduCommands"},
		"updateCard":    {"requestHeader", "taskId", "walletCardId", "seId", "operation"},
		"getTaskStatus": {"requestHeader", "taskId", "seId"},
	}
	for _, call := range calls {
		for _, m := range required[call.op] {
			expect(fmt.Sprintf("wallet.%s.missing.%s", call.op, m), m+" is required: without it, 111", call.op, pod,
				func() any { return without(call.body(), m) }, 111)
		}
	}
	for _, m := range []string{"apduCommands.0.data", "apduCommands.0.messageId"} {
		expect("wallet.sendScript.missing."+strings.ReplaceAll(m, ".0.", "[]."), m+" is required in every command: without it, 111", "sendScript", pod,
			func() any {
				b := calls[0].body()
				cmd := map[string]any{"data": "00A4040007A000000151000000", "messageId": "select"}
				delete(cmd, m[strings.LastIndex(m, ".")+1:])
				b["apduCommands"] = []any{cmd}
				return b
			}, 111)
	}
	// Constraints, member by member: 112.
	type bad struct {
		op, member string
		value      any
		says, kind string
	}
	for _, b := range []bad{
		{"getTaskStatus", "taskId", strings.Repeat("t", 65), "taskId has 1 to 64 characters", "length"},
		{"getTaskStatus", "taskId", 7, "taskId is a string", "type"},
		{"getTaskStatus", "seId", "0A1", "seId is whole bytes of hex", "pattern"},
		{"getTaskStatus", "seId", "ZZ", "seId is hex", "hex"},
		{"getTaskStatus", "seId", strings.Repeat("00", 25), "seId has at most 24 bytes", "length"},
		{"getTaskStatus", "requestHeader.requestId", strings.Repeat("r", 49), "requestId has 1 to 48 characters", "length"},
		{"getTaskStatus", "requestHeader.sessionId", strings.Repeat("s", 49), "sessionId has 1 to 48 characters", "length"},
		{"getTaskStatus", "requestHeader.generationDateTime", "yesterday", "generationDateTime is a date-time", "date-time"},
		{"updateCard", "walletCardId", strings.Repeat("w", 65), "walletCardId has 1 to 64 characters", "length"},
		{"updateCard", "operation", "PAUSE", "operation is SUSPEND, RESUME, DELETE, METADATA_UPDATE, REDIRECT or ERASE", "enum"},
		{"updateCard", "cardDescriptor.appletCurrencyCode", "EURO", "appletCurrencyCode has 3 characters", "length"},
		{"updateCard", "cardDescriptor.displayCardNumber", strings.Repeat("1", 17), "displayCardNumber has 1 to 16 characters", "length"},
		{"updateCard", "cardDescriptor.cardholderName", strings.Repeat("n", 129), "cardholderName has 1 to 128 characters", "length"},
		{"updateCard", "cardDescriptor.labelColor", "red", "labelColor is rgb(r,g,b)", "pattern"},
		{"updateCard", "cardDescriptor.contactEmail", strings.Repeat("e", 33), "contactEmail has at most 32 characters", "length"},
		{"updateCard", "cardDescriptor.shortDescription", strings.Repeat("d", 33), "shortDescription has at most 32 characters", "length"},
		{"updateCard", "cardDescriptor.cardArtManifest", []any{strings.Repeat("g", 65)}, "cardArtManifest items have at most 64 characters", "length"},
		{"updateCard", "cardDescriptor.mobileApp", map[string]any{"identifier": strings.Repeat("a", 129)}, "mobileApp.identifier has at most 128 characters", "length"},
		{"sendScript", "apduCommands.0.data", "0G", "a command's data is hex", "hex"},
		{"sendScript", "apduCommands.0.data", strings.Repeat("00", 257), "a command's data has at most 512 hex digits", "length"},
		{"sendScript", "apduCommands.0.messageId", strings.Repeat("m", 65), "messageId has 1 to 64 characters", "length"},
		{"sendScript", "apduCommands.0.messageName", strings.Repeat("m", 101), "messageName has at most 100 characters", "length"},
	} {
		call := calls[map[string]int{"sendScript": 0, "updateCard": 1, "getTaskStatus": 2}[b.op]]
		id := fmt.Sprintf("wallet.%s.format.%s.%s", b.op, strings.ReplaceAll(b.member, ".0.", "[]."), b.kind)
		expect(id, b.says+": otherwise 112", b.op, pod, func() any { return with(call.body(), b.member, b.value) }, 112)
	}
	for _, m := range []struct{ member, says string }{
		{"cardActions", "cardActions needs maxLoadedBalance and minLoadAmount"},
		{"mobileApp", "mobileApp needs an identifier"},
	} {
		expect("wallet.updateCard.missing.cardDescriptor."+m.member, m.says+": without, 111", "updateCard", pod,
			func() any { return with(calls[1].body(), "cardDescriptor."+m.member, map[string]any{}) }, 111)
	}
	// Behaviour.
	expect("wallet.getTaskStatus.unknown-task", "a task id the server never saw is 121", "getTaskStatus", pod,
		func() any { return calls[2].body() }, 121)
	expect("wallet.updateCard.unknown-card", "a wallet card the server does not know is 119", "updateCard", pod,
		func() any { return with(calls[1].body(), "walletCardId", newID("conform-unknown-")) }, 119)
	needCard := func(c *check) bool {
		if wf == nil {
			c.skip("needs a card on a secure element: the fixture's wallet part")
			return false
		}
		return true
	}
	// start sends an updateCard that the server takes, waiting out 321s.
	start := func(ctx context.Context, c *check, body map[string]any) bool {
		for range 20 {
			status, m := c.post(ctx, "updateCard", "/updateCard", pod, body)
			code, _ := statusCode(m)
			if status == 200 && code == 321 {
				time.Sleep(250 * time.Millisecond)
				continue
			}
			c.wantCode(status, m, 0)
			return c.outcome == ""
		}
		c.failf("still 321 after 5 s")
		return false
	}
	// end polls a task until it leaves PROCESSING.
	end := func(ctx context.Context, c *check, taskID string) string {
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			status, m := c.post(ctx, "getTaskStatus", "/getTaskStatus", pod, map[string]any{"requestHeader": header(), "taskId": taskID, "seId": seID})
			c.wantCode(status, m, 0)
			if c.outcome != "" {
				return ""
			}
			var st string
			_ = json.Unmarshal(m["taskStatus"], &st)
			switch st {
			case "COMPLETED", "FAILED":
				return st
			case "PROCESSING":
				time.Sleep(50 * time.Millisecond)
			default:
				c.failf("taskStatus %q is not PROCESSING, COMPLETED or FAILED", st)
				return ""
			}
		}
		c.failf("task %s still PROCESSING after 30 s", taskID)
		return ""
	}
	rules = append(rules,
		rule{"wallet.task.ends", "a task the server took is PROCESSING, then COMPLETED or FAILED (getTaskStatus)", func(ctx context.Context, c *check) {
			if !needCard(c) {
				return
			}
			body := calls[1].body()
			if start(ctx, c, body) {
				if st := end(ctx, c, body["taskId"].(string)); st != "" && st != "COMPLETED" {
					c.failf("a METADATA_UPDATE of the fixture's card ended %s", st)
				}
			}
		}},
		rule{"wallet.task.idempotent", "a task id sent again with the same body is answered alike, and stays the one task", func(ctx context.Context, c *check) {
			if !needCard(c) {
				return
			}
			body := calls[1].body()
			if !start(ctx, c, body) {
				return
			}
			first := end(ctx, c, body["taskId"].(string))
			again := clone(body)
			again["requestHeader"] = header()
			status, m := c.post(ctx, "updateCard", "/updateCard", pod, again)
			c.wantCode(status, m, 0)
			if st := end(ctx, c, body["taskId"].(string)); c.outcome == "" && st != first {
				c.failf("the task was %s, then %s after the repeat", first, st)
			}
		}},
		rule{"wallet.task.one-per-secure-element", "two tasks on one secure element: the second is 321, or both run one after the other", func(ctx context.Context, c *check) {
			if !needCard(c) {
				return
			}
			a, b := calls[1].body(), calls[1].body()
			if !start(ctx, c, a) {
				return
			}
			status, m := c.post(ctx, "updateCard", "/updateCard", pod, b)
			code, _ := statusCode(m)
			switch {
			case status == 200 && code == 321:
				end(ctx, c, a["taskId"].(string))
			case status == 200 && code == 0:
				if end(ctx, c, a["taskId"].(string)) != "COMPLETED" || end(ctx, c, b["taskId"].(string)) != "COMPLETED" {
					c.failf("two tasks taken on one secure element did not both complete")
				}
			default:
				c.wantCode(status, m, 321)
			}
		}},
		rule{"wallet.state.resume-active", "RESUME of a card that is not suspended is 432", func(ctx context.Context, c *check) {
			if !needCard(c) {
				return
			}
			status, m := c.post(ctx, "updateCard", "/updateCard", pod, with(calls[1].body(), "operation", "RESUME"))
			c.wantCode(status, m, 432)
		}},
		rule{"wallet.answers.well-formed", "every answer: HTTP 200, a responseHeader with responseId (1-48), sessionId (at most 48) and a number statusCode; getTaskStatus's taskStatus PROCESSING, COMPLETED or FAILED", func(_ context.Context, c *check) {
			wellFormed(c, func(a answer) string {
				if a.op == "getTaskStatus" {
					if code, _ := statusCode(a.body); code == 0 {
						var st string
						_ = json.Unmarshal(a.body["taskStatus"], &st)
						if st != "PROCESSING" && st != "COMPLETED" && st != "FAILED" {
							return fmt.Sprintf("taskStatus %q", st)
						}
					}
				}
				return ""
			})
		}},
	)
	return rules
}

// wellFormed checks every answer collected so far: HTTP 200 with a
// TSH-family responseHeader, and extra's check.
func wellFormed(c *check, extra func(answer) string) {
	for _, a := range *c.answers {
		if a.x.Status != 200 {
			continue // already a failure of the rule that sent it, or a documented HTTP 500
		}
		var h map[string]json.RawMessage
		var why string
		switch {
		case a.body == nil:
			why = "the answer is not a JSON object"
		case json.Unmarshal(a.body["responseHeader"], &h) != nil || h == nil:
			why = "no responseHeader object"
		}
		if why == "" {
			var id, sid string
			var code float64
			switch {
			case json.Unmarshal(h["responseId"], &id) != nil || id == "" || len(id) > 48:
				why = "responseHeader.responseId is not a string of 1 to 48 characters"
			case h["sessionId"] != nil && (json.Unmarshal(h["sessionId"], &sid) != nil || len(sid) > 48):
				why = "responseHeader.sessionId is not a string of at most 48 characters"
			case json.Unmarshal(h["statusCode"], &code) != nil:
				why = "responseHeader.statusCode is not a number"
			default:
				why = extra(a)
			}
		}
		if why != "" {
			c.last = a.x
			c.failf("%s", why)
			return
		}
	}
}
