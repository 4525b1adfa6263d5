package conform

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"
)

// Outcome is how a rule fared.
type Outcome string

const (
	Pass Outcome = "pass"
	Fail Outcome = "fail"
	Skip Outcome = "skip"
)

// Exchange is one request the kit sent and the answer it got.
type Exchange struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body"`
	Status  int               `json:"status"`
	Answer  string            `json:"answer"`
}

// Result is one rule's outcome.
type Result struct {
	ID      string    `json:"id"`
	Says    string    `json:"says"`
	Outcome Outcome   `json:"outcome"`
	Why     string    `json:"why,omitempty"`
	Request *Exchange `json:"exchange,omitempty"`
}

// Report is a run of one API's rules against one server.
type Report struct {
	API      string        `json:"api"`
	URL      string        `json:"url"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	Results  []Result      `json:"results"`
}

// Count returns how many rules ended with o.
func (r *Report) Count(o Outcome) int {
	n := 0
	for _, res := range r.Results {
		if res.Outcome == o {
			n++
		}
	}
	return n
}

// Passed tells whether no rule failed (skipped rules are not failures;
// the report lists them).
func (r *Report) Passed() bool { return r.Count(Fail) == 0 }

// Failed returns the ids of the rules that failed.
func (r *Report) Failed() []string {
	var ids []string
	for _, res := range r.Results {
		if res.Outcome == Fail {
			ids = append(ids, res.ID)
		}
	}
	return ids
}

// Summary is the report's last line.
func (r *Report) Summary() string {
	return fmt.Sprintf("%s %s: %d rules, %d passed, %d failed, %d skipped", r.API, r.URL, len(r.Results), r.Count(Pass), r.Count(Fail), r.Count(Skip))
}

// WriteText writes the report for people: a row per rule, the failures'
// requests and answers, then the summary.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tRESULT\tTHE CONTRACT SAYS")
	for _, res := range r.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", res.ID, strings.ToUpper(string(res.Outcome)), res.Says)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, res := range r.Results {
		if res.Outcome == Pass {
			continue
		}
		fmt.Fprintf(w, "\n%s %s: %s\n", strings.ToUpper(string(res.Outcome)), res.ID, res.Why)
		if x := res.Request; x != nil {
			fmt.Fprintf(w, "  sent:   %s %s", x.Method, x.URL)
			for k, v := range x.Headers {
				fmt.Fprintf(w, " [%s: %s]", k, v)
			}
			fmt.Fprintf(w, " %s\n  answer: HTTP %d %s\n", x.Body, x.Status, x.Answer)
		}
	}
	_, err := fmt.Fprintf(w, "\n%s\n", r.Summary())
	return err
}

// WriteJSON writes the report as JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteJUnit writes the report as JUnit XML: a test case per rule, a
// failure or a skip where one happened, for CI systems.
func (r *Report) WriteJUnit(w io.Writer) error {
	type failure struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	}
	type skipped struct {
		Message string `xml:"message,attr"`
	}
	type testCase struct {
		Name      string   `xml:"name,attr"`
		ClassName string   `xml:"classname,attr"`
		Failure   *failure `xml:"failure,omitempty"`
		Skipped   *skipped `xml:"skipped,omitempty"`
	}
	type suite struct {
		XMLName  xml.Name   `xml:"testsuite"`
		Name     string     `xml:"name,attr"`
		Tests    int        `xml:"tests,attr"`
		Failures int        `xml:"failures,attr"`
		Skipped  int        `xml:"skipped,attr"`
		Time     string     `xml:"time,attr"`
		Cases    []testCase `xml:"testcase"`
	}
	s := suite{Name: "provhub conform " + r.API, Tests: len(r.Results), Failures: r.Count(Fail), Skipped: r.Count(Skip),
		Time: fmt.Sprintf("%.3f", r.Duration.Seconds())}
	for _, res := range r.Results {
		c := testCase{Name: res.ID, ClassName: "conform." + r.API}
		switch res.Outcome {
		case Fail:
			text := res.Says
			if x := res.Request; x != nil {
				text += fmt.Sprintf("\nsent: %s %s %s\nanswer: HTTP %d %s", x.Method, x.URL, x.Body, x.Status, x.Answer)
			}
			c.Failure = &failure{Message: res.Why, Text: text}
		case Skip:
			c.Skipped = &skipped{Message: res.Why}
		}
		s.Cases = append(s.Cases, c)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(s); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// Target is the server under test.
type Target struct {
	// URL is the API's base URL (for the TES, its device gateway, e.g.
	// http://host/tes/devicegtwapi/1/0; for the CAS, e.g. http://host/cas/v1).
	URL string
	// HTTP makes the calls [a client with a 30 s timeout].
	HTTP *http.Client
	// Pod is the x-pod the kit sends to a wallet server [conform]; Actor
	// the x-actor-id it sends to a TES [provhub-conform].
	Pod, Actor string
}

func (t *Target) client() *http.Client {
	if t.HTTP != nil {
		return t.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// rule is one published rule.
type rule struct {
	id, says string
	run      func(ctx context.Context, c *check)
}

// check is one rule's run: the calls it made and its verdict.
type check struct {
	t       *Target
	last    *Exchange
	outcome Outcome
	why     string
	// answers collects every answer for the well-formedness rule.
	answers *[]answer
}

// answer is one answer seen, with what it answered.
type answer struct {
	op   string
	x    *Exchange
	body map[string]json.RawMessage
}

// failf marks the rule failed (the first reason is kept).
func (c *check) failf(format string, args ...any) {
	if c.outcome == "" {
		c.outcome, c.why = Fail, fmt.Sprintf(format, args...)
	}
}

// skip marks the rule skipped.
func (c *check) skip(why string) {
	if c.outcome == "" {
		c.outcome, c.why = Skip, why
	}
}

// post sends body (a JSON value, or a string sent as it is) to path with
// headers, and decodes a JSON object answer (nil when there is none).
func (c *check) post(ctx context.Context, op, path string, headers map[string]string, body any) (int, map[string]json.RawMessage) {
	var raw []byte
	switch b := body.(type) {
	case string:
		raw = []byte(b)
	default:
		raw, _ = json.Marshal(b)
	}
	x := &Exchange{Method: http.MethodPost, URL: strings.TrimRight(c.t.URL, "/") + path, Headers: headers, Body: string(raw)}
	c.last = x
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, x.URL, bytes.NewReader(raw))
	if err != nil {
		c.failf("cannot build the request: %v", err)
		return 0, nil
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.t.client().Do(req)
	if err != nil {
		x.Answer = "no answer: " + err.Error()
		c.failf("no answer: %v", err)
		return 0, nil
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	x.Status, x.Answer = resp.StatusCode, excerpt(out)
	var m map[string]json.RawMessage
	if json.Unmarshal(out, &m) != nil {
		m = nil
	}
	if c.answers != nil {
		*c.answers = append(*c.answers, answer{op: op, x: x, body: m})
	}
	return resp.StatusCode, m
}

func excerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 600 {
		s = s[:600] + "..."
	}
	return s
}

// statusCode reads responseHeader.statusCode of a TSH-family answer; ok is
// false when there is none to read.
func statusCode(m map[string]json.RawMessage) (int, bool) {
	var h struct {
		StatusCode json.RawMessage `json:"statusCode"`
	}
	if m == nil || json.Unmarshal(m["responseHeader"], &h) != nil {
		return 0, false
	}
	var f float64
	if json.Unmarshal(h.StatusCode, &f) != nil || f != float64(int(f)) {
		return 0, false
	}
	return int(f), true
}

// wantCode fails the rule unless the answer is HTTP 200 with statusCode want.
func (c *check) wantCode(status int, m map[string]json.RawMessage, want int) {
	code, ok := statusCode(m)
	switch {
	case status == 0:
	case status != http.StatusOK:
		c.failf("HTTP %d, want HTTP 200 with statusCode %d", status, want)
	case !ok:
		c.failf("no readable responseHeader.statusCode, want %d", want)
	case code != want:
		c.failf("statusCode %d, want %d", code, want)
	}
}

// newID returns a fresh id for the kit's requests.
func newID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// run runs rules in order and reports.
func run(ctx context.Context, api string, t *Target, rules []rule) *Report {
	r := &Report{API: api, URL: t.URL, Started: time.Now().UTC()}
	var answers []answer
	for _, ru := range rules {
		c := &check{t: t, answers: &answers}
		ru.run(ctx, c)
		if c.outcome == "" {
			c.outcome = Pass
		}
		res := Result{ID: ru.id, Says: ru.says, Outcome: c.outcome, Why: c.why}
		if c.outcome != Pass {
			res.Request = c.last
		}
		r.Results = append(r.Results, res)
	}
	r.Duration = time.Since(r.Started)
	return r
}

// clone copies a request body so a rule can change one member.
func clone(m map[string]any) map[string]any {
	raw, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return out
}

// without removes a member given by a dotted path (a.b, a.0.b).
func without(m map[string]any, path string) map[string]any {
	out := clone(m)
	set(out, path, nil, true)
	return out
}

// with sets a member given by a dotted path.
func with(m map[string]any, path string, v any) map[string]any {
	out := clone(m)
	set(out, path, v, false)
	return out
}

func set(m map[string]any, path string, v any, remove bool) {
	parts := strings.Split(path, ".")
	var cur any = m
	for i, p := range parts {
		last := i == len(parts)-1
		switch node := cur.(type) {
		case map[string]any:
			if last {
				if remove {
					delete(node, p)
				} else {
					node[p] = v
				}
				return
			}
			cur = node[p]
		case []any:
			var n int
			fmt.Sscan(p, &n)
			if n >= len(node) {
				return
			}
			if last {
				node[n] = v
				return
			}
			cur = node[n]
		default:
			return
		}
	}
}
