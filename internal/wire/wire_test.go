package wire_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/provhub/provhub/api"
	"github.com/provhub/provhub/internal/wire"
)

var (
	hexPairs    = regexp.MustCompile(`^([0-9a-fA-F]{2})*$`)
	seIDPattern = regexp.MustCompile(`^([0-9a-fA-F]{2}){1,24}$`)
)

// sendScript reads a sendScript body the way the wallet simulator does:
// the published limits of api/wallet.yaml, member by member.
func sendScript(raw []byte) error {
	b, err := wire.Decode(raw)
	if err != nil {
		return err
	}
	h, _, err := b.Object("requestHeader", true)
	if err != nil {
		return err
	}
	for _, n := range []string{"requestId", "sessionId"} {
		if _, err := h.String(n, wire.Text{Required: true, Min: 1, Max: 48}); err != nil {
			return err
		}
	}
	if _, _, err := h.Time("generationDateTime", wire.Text{}); err != nil {
		return err
	}
	for _, m := range []struct {
		name string
		t    wire.Text
	}{
		{"taskId", wire.Text{Required: true, Min: 1, Max: 64}},
		{"walletCardId", wire.Text{Required: true, Min: 1, Max: 64}},
		{"seId", wire.Text{Required: true, Min: 2, Max: 48, Pattern: seIDPattern}},
	} {
		if _, err := b.String(m.name, m.t); err != nil {
			return err
		}
	}
	cmds, err := b.Objects("apduCommands", true)
	if err != nil {
		return err
	}
	for _, c := range cmds {
		if _, err := c.String("data", wire.Text{Required: true, Max: 512, Pattern: hexPairs}); err != nil {
			return err
		}
		if _, err := c.String("messageId", wire.Text{Required: true, Min: 1, Max: 64}); err != nil {
			return err
		}
	}
	return nil
}

const goodScript = `{"requestHeader":{"requestId":"r-1","sessionId":"s-1","generationDateTime":"2026-12-02T10:00:00Z"},
	"taskId":"T-1","walletCardId":"WC-1","seId":"0102A0B1","apduCommands":[{"data":"00A4040007A0000001515350","messageId":"m1"},{"data":"80CA9F7F00","messageId":"m2"}]}`

// TestObject_ProblemsNameTheMember: each kind of wrong body is refused
// with the member named as the API names it, missing apart from malformed.
func TestObject_ProblemsNameTheMember(t *testing.T) {
	edit := func(old, new string) string {
		if !strings.Contains(goodScript, old) {
			t.Fatalf("%q is not in the body", old)
		}
		return strings.Replace(goodScript, old, new, 1)
	}
	for _, c := range []struct {
		name, body string
		fault      wire.Fault
		message    string
	}{
		{"not JSON", `{"taskId":`, wire.Malformed, "the body must be a JSON object"},
		{"an array", `[1]`, wire.Malformed, "the body must be a JSON object"},
		{"null", `null`, wire.Malformed, "the body must be a JSON object"},
		{"two objects", goodScript + `{}`, wire.Malformed, "the body must be one JSON object, with nothing after it"},
		{"no header", edit(`"requestHeader":{"requestId":"r-1","sessionId":"s-1","generationDateTime":"2026-12-02T10:00:00Z"},`, ``), wire.Missing, "requestHeader is required"},
		{"header not an object", edit(`"requestHeader":{"requestId":"r-1","sessionId":"s-1","generationDateTime":"2026-12-02T10:00:00Z"}`, `"requestHeader":"x"`), wire.Malformed, "requestHeader must be an object"},
		{"null session", edit(`"sessionId":"s-1"`, `"sessionId":null`), wire.Missing, "requestHeader.sessionId is required"},
		{"long session", edit(`"sessionId":"s-1"`, `"sessionId":"`+strings.Repeat("s", 49)+`"`), wire.Malformed, "requestHeader.sessionId must have 1 to 48 characters"},
		{"bad time", edit(`2026-12-02T10:00:00Z`, `yesterday`), wire.Malformed, "requestHeader.generationDateTime must be an RFC 3339 time"},
		{"number for a string", edit(`"taskId":"T-1"`, `"taskId":7`), wire.Malformed, "taskId must be a string"},
		{"empty task", edit(`"taskId":"T-1"`, `"taskId":""`), wire.Malformed, "taskId must have 1 to 64 characters"},
		{"odd seId", edit(`"seId":"0102A0B1"`, `"seId":"0102A0B"`), wire.Malformed, "seId must match ^([0-9a-fA-F]{2}){1,24}$"},
		{"commands not an array", edit(`"apduCommands":[`, `"apduCommands":{"x":[`) + `}`, wire.Malformed, "apduCommands must be an array"},
		{"a command not an object", edit(`{"data":"80CA9F7F00","messageId":"m2"}`, `7`), wire.Malformed, "apduCommands[1] must be an object"},
		{"a command without data", edit(`"data":"80CA9F7F00",`, ``), wire.Missing, "apduCommands[1].data is required"},
		{"a command not hex", edit(`80CA9F7F00`, `80CA9F7F0Z`), wire.Malformed, "apduCommands[1].data must match ^([0-9a-fA-F]{2})*$"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := sendScript([]byte(c.body))
			p := wire.ProblemOf(err)
			if p == nil || p.Fault != c.fault || err.Error() != c.message {
				t.Fatalf("%v (%+v), want fault %d %q", err, p, c.fault, c.message)
			}
		})
	}
	if err := sendScript([]byte(goodScript)); err != nil {
		t.Fatalf("a good body refused: %v", err)
	}
}

// TestText_Bounds: the three ways a length is published, and a pattern.
func TestText_Bounds(t *testing.T) {
	for _, c := range []struct {
		t    wire.Text
		s    string
		want string // "" when accepted
	}{
		{wire.Text{Min: 10, Max: 10}, "ISSUER0001", ""},
		{wire.Text{Min: 10, Max: 10}, "ISSUER001", "id must have 10 characters"},
		{wire.Text{Min: 1}, strings.Repeat("x", 5000), ""},
		{wire.Text{Min: 1}, "", "id must have at least 1 characters"},
		{wire.Text{Max: 3}, "", ""},
		{wire.Text{Max: 3}, "abcd", "id must have 0 to 3 characters"},
		{wire.Text{Pattern: regexp.MustCompile(`^[A-Z_]{1,32}$`)}, "CARD_LOST", ""},
		{wire.Text{Pattern: regexp.MustCompile(`^[A-Z_]{1,32}$`)}, "card lost", "id must match ^[A-Z_]{1,32}$"},
		{wire.Text{Max: 64}, "Ada\x00Lovelace", "id must not hold a NUL character"},
		{wire.Text{Pattern: regexp.MustCompile(`^.{1,32}$`)}, "\x00", "id must not hold a NUL character"},
	} {
		err := c.t.Check("id", c.s)
		if got := ""; err != nil {
			got = err.Error()
			if got != c.want {
				t.Errorf("%+v %q: %q, want %q", c.t, c.s, got, c.want)
			}
		} else if c.want != "" {
			t.Errorf("%+v %q accepted, want %q", c.t, c.s, c.want)
		}
	}
}

// TestObject_MembersAndUnknown: the listing and typed reads of members.
func TestObject_MembersAndUnknown(t *testing.T) {
	o, err := wire.Decode([]byte(`{"b":1,"a":"x","n":null,"o":{"k":true},"f":2.5,"arr":[1,2]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := o.Unknown("a", "o"); strings.Join(got, ",") != "arr,b,f,n" {
		t.Errorf("unknown %v", got)
	}
	if got := o.Names(); strings.Join(got, ",") != "a,arr,b,f,n,o" {
		t.Errorf("names %v", got)
	}
	if o.Has("n") || !o.Has("a") || o.Has("zz") {
		t.Error("Has: null and absent members count as absent")
	}
	if err := o.Require("a", "n"); err == nil || err.Error() != "n is required" {
		t.Errorf("require: %v", err)
	}
	if v, found, err := o.Number("f", true); err != nil || !found || v != 2.5 {
		t.Errorf("number f: %v %v %v", v, found, err)
	}
	if _, _, err := o.Number("a", false); err == nil || err.Error() != "a must be a number" {
		t.Errorf("number a: %v", err)
	}
	if _, found, err := o.Number("n", false); err != nil || found {
		t.Errorf("number n: %v %v", found, err)
	}
	inner, found, err := o.Object("o", true)
	if err != nil || !found || inner.Label("k") != "o.k" {
		t.Fatalf("object o: %v %v %q", found, err, inner.Label("k"))
	}
	if _, err := inner.String("k", wire.Text{}); err == nil || err.Error() != "o.k must be a string" {
		t.Errorf("o.k: %v", err)
	}
	var nums []int
	if err := o.Into("arr", true, "an array of numbers", &nums); err != nil || len(nums) != 2 {
		t.Errorf("into arr: %v %v", nums, err)
	}
	if err := o.Into("a", true, "an array of numbers", &nums); err == nil || err.Error() != "a must be an array of numbers" {
		t.Errorf("into a: %v", err)
	}
	if err := o.Into("zz", true, "anything", &nums); wire.ProblemOf(err) == nil || wire.ProblemOf(err).Fault != wire.Missing {
		t.Errorf("into zz: %v", err)
	}
}

// FuzzDecode: no body makes the reader panic, and every refusal is a
// Problem.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(goodScript))
	f.Add([]byte(`{"requestHeader":null}`))
	f.Add([]byte(`{"apduCommands":[{"data":null}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if err := sendScript(raw); err != nil && wire.ProblemOf(err) == nil {
			t.Fatalf("a refusal that is not a Problem: %v", err)
		}
	})
}

// BenchmarkObject_TaskRequest measures, side by side, what reading a
// sendScript body costs through this package and through validating it
// against api/wallet.yaml with kin-openapi's request filter (what a
// document-driven check would do on every call).
func BenchmarkObject_TaskRequest(b *testing.B) {
	body := []byte(goodScript)
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := sendScript(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("openapi", func(b *testing.B) {
		raw, err := api.Files.ReadFile("wallet.yaml")
		if err != nil {
			b.Fatal(err)
		}
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(raw)
		if err != nil {
			b.Fatal(err)
		}
		doc.Servers = openapi3.Servers{{URL: "http://ws.example"}}
		router, err := legacy.NewRouter(doc)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			req, _ := http.NewRequest(http.MethodPost, "http://ws.example/sendScript", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("x-pod", "pod-1")
			route, params, err := router.FindRoute(req)
			if err != nil {
				b.Fatal(err)
			}
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route}
			if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
				b.Fatal(err)
			}
			var v map[string]json.RawMessage // the handler still decodes the body
			if err := json.Unmarshal(body, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
