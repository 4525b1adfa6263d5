package conform

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/provhub/provhub/internal/felica"
	"github.com/provhub/provhub/internal/sim/felicacard"
)

// TES runs the TES device-gateway rules (api/tes.yaml) against t, whose
// URL is the gateway's base (…/tes/devicegtwapi/1/0).
func TES(ctx context.Context, t *Target, f *Fixture) *Report {
	if t.Actor == "" {
		t.Actor = "provhub-conform"
	}
	var tf *TESFixture
	if f != nil {
		tf = f.TES
	}
	return run(ctx, "tes", t, tesRules(t, tf))
}

// loopAnswer is what a TES answer carries for a loop.
type loopAnswer struct {
	Commands []struct {
		ID, Kind, Data string
	} `json:"commands"`
	Balance *int64 `json:"balance"`
}

func tesRules(t *Target, tf *TESFixture) []rule {
	issuer, card, device := "TRANSIT1", "CONFORM-CARD", "conform-device"
	if tf != nil {
		issuer, card, device = tf.IssuerID, tf.CardID, tf.DeviceID
	}
	// Input rules name a device of their own each: a server that wrongly
	// takes one of them starts a loop there, not on the fixture's device.
	other := func(b map[string]any) map[string]any {
		if _, ok := b["deviceId"]; ok {
			b["deviceId"] = newID("conform-dev-")
		}
		return b
	}
	actor := map[string]string{"x-actor-id": t.Actor}
	header := func(session string) map[string]any {
		return map[string]any{"requestId": newID("r-"), "sessionId": session, "generationDateTime": time.Now().UTC().Format(time.RFC3339)}
	}
	base := map[string]func() map[string]any{
		"getCardCommands": func() map[string]any {
			return map[string]any{"requestHeader": header(newID("s-")), "issuerId": issuer, "cardId": card, "deviceId": device, "operation": "READ_BALANCE"}
		},
		"getParkCardCommands": func() map[string]any {
			return map[string]any{"requestHeader": header(newID("s-")), "issuerId": issuer, "cardId": card, "deviceId": device, "operation": "BLOCK_AND_READ_CARD"}
		},
		"getReaderModeCommands": func() map[string]any {
			return map[string]any{"requestHeader": header(newID("s-")), "issuerId": issuer, "deviceId": device, "operation": "READER_MODE",
				"cardContents": map[string]any{"systemCode": "0003", "idm": "0102030405060708"}}
		},
	}
	var rules []rule
	expect := func(id, says, op string, headers map[string]string, body func() any, want int) {
		rules = append(rules, rule{id: id, says: says, run: func(ctx context.Context, c *check) {
			status, m := c.post(ctx, op, "/"+op, headers, body())
			c.wantCode(status, m, want)
		}})
	}
	expect("tes.x-actor-id.missing", "x-actor-id is a required header: without it, 111", "getCardCommands", nil,
		func() any { return other(base["getCardCommands"]()) }, 111)
	expect("tes.x-actor-id.too-long", "x-actor-id has at most 32 characters: 112", "getCardCommands", map[string]string{"x-actor-id": strings.Repeat("a", 33)},
		func() any { return other(base["getCardCommands"]()) }, 112)
	for _, op := range []string{"getCardCommands", "getParkCardCommands", "getReaderModeCommands"} {
		members := []string{"issuerId", "cardId", "deviceId"}
		if op == "getReaderModeCommands" {
			members = []string{"issuerId", "deviceId"}
		}
		for _, m := range members {
			expect(fmt.Sprintf("tes.%s.missing.%s", op, m), m+" is required: without it, 111", op, actor,
				func() any { return without(other(base[op]()), m) }, 111)
		}
	}
	for _, b := range []struct {
		member     string
		value      any
		says, kind string
	}{
		{"issuerId", strings.Repeat("i", 17), "issuerId has 1 to 16 characters", "length"},
		{"cardId", strings.Repeat("c", 49), "cardId has 1 to 48 characters", "length"},
		{"deviceId", strings.Repeat("d", 49), "deviceId has 1 to 48 characters", "length"},
		{"purchaseId", strings.Repeat("p", 65), "purchaseId has 1 to 64 characters", "length"},
		{"operation", "FLY", "operation is one of the call's", "enum"},
		{"responseTimeMs", "fast", "responseTimeMs is a number", "type"},
		{"statusMessage", strings.Repeat("m", 257), "statusMessage has at most 256 characters", "length"},
		{"responses", []any{map[string]any{"id": "x", "data": "ZZ"}}, "a response's data is hex", "hex"},
	} {
		expect("tes.getCardCommands.format."+b.member+"."+b.kind, b.says+": otherwise 112", "getCardCommands", actor,
			func() any { return with(other(base["getCardCommands"]()), b.member, b.value) }, 112)
	}
	expect("tes.unknown-issuer", "an issuer the TES does not know is 113", "getCardCommands", actor,
		func() any { return with(other(base["getCardCommands"]()), "issuerId", "CONFORMNOISSUER") }, 113)
	needAccount := func(c *check) bool {
		if tf == nil {
			c.skip("needs a card account on a device: the fixture's tes part")
			return false
		}
		return true
	}
	rules = append(rules,
		rule{"tes.unknown-card", "a card the TES does not know (of a known issuer) is 119", func(ctx context.Context, c *check) {
			if !needAccount(c) {
				return
			}
			status, m := c.post(ctx, "getCardCommands", "/getCardCommands", actor, with(other(base["getCardCommands"]()), "cardId", newID("CONFORM-")))
			c.wantCode(status, m, 119)
		}},
		rule{"tes.unknown-session", "responses for a loop the TES never started are 118", func(ctx context.Context, c *check) {
			if !needAccount(c) {
				return
			}
			b := with(base["getCardCommands"](), "responses", []any{map[string]any{"id": "poll", "data": "0A"}})
			status, m := c.post(ctx, "getCardCommands", "/getCardCommands", actor, b)
			c.wantCode(status, m, 118)
		}},
		rule{"tes.loop.read-balance", "a READ_BALANCE loop on the card ends as documented: statusCode 0, no commands, the card's balance", func(ctx context.Context, c *check) {
			if !needAccount(c) {
				return
			}
			fc, err := fixtureCard(tf)
			if err != nil {
				c.skip(err.Error())
				return
			}
			end, _ := drive(ctx, c, actor, fc, base["getCardCommands"](), false)
			if end != nil && (end.Balance == nil || *end.Balance != int64(tf.Balance)) {
				c.failf("the loop ended with balance %v, the card holds %d", ptr(end.Balance), tf.Balance)
			}
		}},
		rule{"tes.loop.top-up-once", "a TOPUP loop whose every step is sent twice is answered alike and applies the purchase once", func(ctx context.Context, c *check) {
			if !needAccount(c) {
				return
			}
			if tf.PurchaseID == "" {
				c.skip("needs a purchase not yet applied: the fixture's tes.purchaseId and amount")
				return
			}
			fc, err := fixtureCard(tf)
			if err != nil {
				c.skip(err.Error())
				return
			}
			body := with(base["getCardCommands"](), "operation", "TOPUP")
			body["purchaseId"] = tf.PurchaseID
			end, steps := drive(ctx, c, actor, fc, body, true)
			if end == nil {
				return
			}
			want := int64(tf.Balance) + tf.Amount
			if steps == 1 {
				c.skip("the purchase was applied before this run (the loop ended at once): give a fresh purchaseId")
				return
			}
			purse, _ := fc.Balance()
			switch {
			case end.Balance == nil || *end.Balance != want:
				c.failf("the loop ended with balance %v, want %d", ptr(end.Balance), want)
			case int64(purse.Balance) != want:
				c.failf("the card holds %d after the top-up, want %d (applied twice, or not at all)", purse.Balance, want)
			}
			// The same purchase again: nothing more is applied.
			again := clone(body)
			again["requestHeader"] = header(newID("s-"))
			if end2, _ := drive(ctx, c, actor, fc, again, false); end2 != nil {
				if p, _ := fc.Balance(); int64(p.Balance) != want {
					c.failf("a second loop with the same purchase left the card at %d, want %d", p.Balance, want)
				}
			}
		}},
		rule{"tes.answers.well-formed", "every answer: HTTP 200, a responseHeader with responseId (1-48), sessionId (at most 48) and a number statusCode; commands with an id, a kind FELICA or APDU and hex data", func(_ context.Context, c *check) {
			wellFormed(c, func(a answer) string {
				var ans struct {
					Commands []struct{ ID, Kind, Data string } `json:"commands"`
				}
				raw, _ := json.Marshal(a.body)
				if json.Unmarshal(raw, &ans) != nil {
					return "commands are not a list of {id, kind, data}"
				}
				for _, cmd := range ans.Commands {
					if _, err := hex.DecodeString(cmd.Data); cmd.ID == "" || (cmd.Kind != "FELICA" && cmd.Kind != "APDU") || err != nil || cmd.Data == "" {
						return fmt.Sprintf("command %+v", cmd)
					}
				}
				return ""
			})
		}},
	)
	return rules
}

func ptr(p *int64) any {
	if p == nil {
		return "none"
	}
	return *p
}

// fixtureCard is the fixture's card, emulated: provhub's transit card
// layout (internal/felica's purse) with the fixture's IDm and balance.
func fixtureCard(tf *TESFixture) (*felicacard.Card, error) {
	raw, err := hex.DecodeString(tf.IDm)
	if err != nil || len(raw) != 8 {
		return nil, fmt.Errorf("the fixture's tes.idm is not 16 hex digits")
	}
	var id felica.IDm
	copy(id[:], raw)
	return felicacard.Transit(id, tf.Balance), nil
}

// drive runs a loop to its end on the emulated card, as a device would:
// each batch's commands on the card, their responses in the next call. With
// twice, every call is sent a second time and must be answered alike. It
// returns the last answer (nil when the rule failed) and the calls made.
func drive(ctx context.Context, c *check, headers map[string]string, card *felicacard.Card, body map[string]any, twice bool) (*loopAnswer, int) {
	for step := 1; step <= 16; step++ {
		status, m := c.post(ctx, "getCardCommands", "/getCardCommands", headers, body)
		c.wantCode(status, m, 0)
		if c.outcome != "" {
			return nil, step
		}
		if twice {
			status2, m2 := c.post(ctx, "getCardCommands", "/getCardCommands", headers, body)
			c.wantCode(status2, m2, 0)
			if c.outcome == "" && !bytes.Equal(m["commands"], m2["commands"]) {
				c.failf("the same step sent twice got other commands: %s, then %s", m["commands"], m2["commands"])
			}
			if c.outcome != "" {
				return nil, step
			}
		}
		var ans loopAnswer
		raw, _ := json.Marshal(m)
		if err := json.Unmarshal(raw, &ans); err != nil {
			c.failf("the answer is not a loop answer: %v", err)
			return nil, step
		}
		if len(ans.Commands) == 0 {
			return &ans, step
		}
		var responses []any
		for _, cmd := range ans.Commands {
			packet, err := hex.DecodeString(cmd.Data)
			if err != nil {
				c.failf("command %s is not hex", cmd.ID)
				return nil, step
			}
			responses = append(responses, map[string]any{"id": cmd.ID, "data": strings.ToUpper(hex.EncodeToString(card.Exec(packet)))})
		}
		body = clone(body)
		body["responses"] = responses
		body["statusCode"] = 0
		body["responseTimeMs"] = 12.5
	}
	c.failf("the loop did not end in 16 steps")
	return nil, 16
}
