package wallet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/provhub/provhub/api"
	"github.com/provhub/provhub/internal/apdu"
)

// fakeWS answers with the status code and task state it is told, and
// checks every request and its own answer against api/wallet.yaml.
type fakeWS struct {
	t      *testing.T
	mu     sync.Mutex
	code   int
	task   string
	http   int
	raw    string
	delay  time.Duration
	pods   []string
	bodies []map[string]any
}

func (f *fakeWS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	code, task, status, raw, delay := f.code, f.task, f.http, f.raw, f.delay
	f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	f.mu.Lock()
	f.pods = append(f.pods, r.Header.Get("x-pod"))
	f.bodies = append(f.bodies, m)
	f.mu.Unlock()
	time.Sleep(delay)
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	if raw != "" {
		_, _ = w.Write([]byte(raw))
		return
	}
	hdr := ResponseHeader{ResponseID: "r1", SessionID: "s1", GenerationDateTime: time.Now().UTC().Format(time.RFC3339), StatusCode: code}
	var res any = HeaderOnlyResponse{ResponseHeader: hdr}
	if r.URL.Path == "/getTaskStatus" {
		res = GetTaskStatusResponse{ResponseHeader: hdr, TaskStatus: task}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

// specCheck wraps a transport and validates traffic against the document.
type specCheck struct {
	t    *testing.T
	doc  *openapi3.T
	next http.RoundTripper
	// badAnswers: the fake server breaks the document on purpose.
	badAnswers bool
}

func (s *specCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	router, err := legacy.NewRouter(s.doc)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := router.FindRoute(req)
	if err != nil {
		s.t.Errorf("%s: not in api/wallet.yaml: %v", req.URL.Path, err)
		return s.next.RoundTrip(req)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{MultiError: true}}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		s.t.Errorf("%s: request does not conform: %v", req.URL.Path, err)
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := s.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	if !s.badAnswers {
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
			Body: io.NopCloser(bytes.NewReader(raw)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
		if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
			s.t.Errorf("%s: answer does not conform: %v", req.URL.Path, err)
		}
	}
	return resp, nil
}

func newTestClient(t *testing.T, ws *fakeWS, timeout time.Duration, badAnswers bool) *Client {
	t.Helper()
	srv := httptest.NewServer(ws)
	t.Cleanup(srv.Close)
	raw, err := api.Files.ReadFile("wallet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("api/wallet.yaml: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: srv.URL}}
	c, err := NewClient(ClientConfig{BaseURL: srv.URL, Pod: "hub-pod-1", Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	c.http.Transport = &specCheck{t: t, doc: doc, next: c.http.Transport, badAnswers: badAnswers}
	return c
}

func TestClient_StatusCodesBecomeTypedErrors(t *testing.T) {
	ws := &fakeWS{t: t}
	c := newTestClient(t, ws, time.Second, false)
	ctx := context.Background()
	sel, _ := apdu.Select(apdu.AID{0xA0, 0, 0, 1, 0x51, 0x53, 0x50})
	script, err := Script("task1", []apdu.Command{sel}, []string{"select"})
	if err != nil {
		t.Fatal(err)
	}
	send := func() error {
		return c.SendScript(ctx, SendScriptRequest{RequestHeader: c.Header("sess-1"), TaskID: "task1",
			WalletCardID: "wc-1", SEID: "0A0B0C", APDUCommands: script})
	}
	cases := []struct {
		code      int
		retryable bool
	}{
		{StatusMissing, false}, {StatusBadFormat, false}, {StatusUnknownCard, false}, {StatusNotAllowed, false},
		{StatusOperationFailed, false}, {StatusDeviceBusy, true}, {StatusServerError, true},
	}
	for _, cs := range cases {
		ws.mu.Lock()
		ws.code = cs.code
		ws.mu.Unlock()
		err := send()
		var se *StatusError
		if !errors.As(err, &se) || se.Code != cs.code || Retryable(err) != cs.retryable {
			t.Errorf("status %d: got %v (retryable %v), want StatusError retryable=%v", cs.code, err, Retryable(err), cs.retryable)
		}
	}
	ws.mu.Lock()
	ws.code = StatusOK
	ws.mu.Unlock()
	if err := send(); err != nil {
		t.Fatalf("status 0: %v", err)
	}
	if err := c.UpdateCard(ctx, UpdateCardRequest{RequestHeader: c.Header("sess-1"), TaskID: "task2", WalletCardID: "wc-1",
		SEID: "0A0B0C", Operation: OpMetadataUpdate, CardDescriptor: &CardDescriptor{CardholderName: "A. Rider", LabelColor: "rgb12,34,56"}}); err != nil {
		t.Fatalf("updateCard: %v", err)
	}
	ws.mu.Lock()
	ws.task = TaskCompleted
	ws.mu.Unlock()
	if st, err := c.GetTaskStatus(ctx, GetTaskStatusRequest{RequestHeader: c.Header("sess-1"), TaskID: "task2", SEID: "0A0B0C"}); err != nil || st != TaskCompleted {
		t.Fatalf("getTaskStatus: %q %v", st, err)
	}
	for i, p := range ws.pods {
		if p != "hub-pod-1" {
			t.Errorf("call %d: x-pod %q", i, p)
		}
	}
	first := ws.bodies[0]
	hdr := first["requestHeader"].(map[string]any)
	if _, err := time.Parse(time.RFC3339, hdr["generationDateTime"].(string)); err != nil || hdr["sessionId"] != "sess-1" || hdr["requestId"] == "" {
		t.Errorf("request header %v", hdr)
	}
	cmd := first["apduCommands"].([]any)[0].(map[string]any)
	if cmd["data"] != "00A4040007A000000151535000" || cmd["messageId"] != "task1-1" || cmd["messageName"] != "select" {
		t.Errorf("apdu command %v", cmd)
	}
}

func TestClient_UnknownOutcomesAreRetryable(t *testing.T) {
	ctx := context.Background()
	for name, ws := range map[string]*fakeWS{
		"HTTP 500":        {http: http.StatusInternalServerError},
		"not JSON":        {raw: "<html>"},
		"no header":       {raw: `{}`},
		"timeout":         {delay: 300 * time.Millisecond},
		"bad task status": {task: "DONE"},
	} {
		t.Run(name, func(t *testing.T) {
			ws.t = t
			c := newTestClient(t, ws, 100*time.Millisecond, true)
			_, err := c.GetTaskStatus(ctx, GetTaskStatusRequest{RequestHeader: c.Header("s"), TaskID: "t", SEID: "0A"})
			if !errors.Is(err, ErrUnavailable) || !Retryable(err) {
				t.Fatalf("got %v, want a retryable ErrUnavailable", err)
			}
		})
	}
	if _, err := NewClient(ClientConfig{BaseURL: "http://x"}); err == nil {
		t.Error("a client without a pod name was built")
	}
	if _, err := Script("t", []apdu.Command{{INS: 0xD6, Data: make([]byte, 300), Le: apdu.NoLe}}, nil); err == nil {
		t.Error("a command longer than the API carries was accepted")
	}
}

// statusCode is published as a number: 0.0 and 432.0 are 0 and 432; a
// string, a fraction or no statusCode at all is an answer whose outcome
// cannot be read (retried as unavailable).
func TestClient_StatusCodeIsReadAsTheNumberItIsPublishedAs(t *testing.T) {
	ctx := context.Background()
	hdr := func(code string) string {
		return `{"responseHeader":{"responseId":"r","sessionId":"s"` + code + `}}`
	}
	for _, c := range []struct {
		name, raw string
		want      int // -1: unavailable
	}{
		{"0.0", hdr(`,"statusCode":0.0`), 0},
		{"0e0", hdr(`,"statusCode":0e0`), 0},
		{"432.0", hdr(`,"statusCode":432.0`), StatusNotAllowed},
		{"a string", hdr(`,"statusCode":"0"`), -1},
		{"a fraction", hdr(`,"statusCode":0.5`), -1},
		{"missing", hdr(``), -1},
		{"null", hdr(`,"statusCode":null`), -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			c := c
			ws := &fakeWS{t: t, raw: c.raw}
			cl := newTestClient(t, ws, time.Second, true)
			err := cl.UpdateCard(ctx, UpdateCardRequest{RequestHeader: cl.Header("s"), TaskID: "t", WalletCardID: "wc", SEID: "0A", Operation: OpSuspend})
			var se *StatusError
			switch {
			case c.want == 0 && err != nil:
				t.Fatalf("statusCode %s: %v", c.name, err)
			case c.want > 0 && (!errors.As(err, &se) || se.Code != c.want):
				t.Fatalf("statusCode %s: %v, want %d", c.name, err, c.want)
			case c.want == -1 && (!errors.Is(err, ErrUnavailable) || !Retryable(err)):
				t.Fatalf("statusCode %s: %v, want a retryable ErrUnavailable", c.name, err)
			}
		})
	}
}
