package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/provhub/provhub/internal/httpapi"
)

func newChain(t *testing.T, logs *bytes.Buffer, reg *prometheus.Registry, maxBody int64) *httpapi.Middleware {
	t.Helper()
	log := slog.New(httpapi.LogHandler(slog.NewJSONHandler(logs, nil)))
	return httpapi.NewMiddleware(httpapi.Options{Logger: log, Metrics: reg, MaxBodyBytes: maxBody})
}

func TestWrap_CorrelationIDIsKeptWhenValidAndGeneratedOtherwise(t *testing.T) {
	var logs bytes.Buffer
	m := newChain(t, &logs, prometheus.NewRegistry(), 0)
	var seen string
	h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = httpapi.CorrelationID(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	tests := []struct {
		name, header string
		keep         bool
	}{
		{"valid", "order 42_a.b-c", true},
		{"too long", strings.Repeat("a", 65), false},
		{"bad characters", "id;drop", false},
		{"absent", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/x", nil)
			if tc.header != "" {
				req.Header.Set(httpapi.CorrelationHeader, tc.header)
			}
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, req)
			got := rr.Header().Get(httpapi.CorrelationHeader)
			if got != seen {
				t.Fatalf("answer header %q, context %q", got, seen)
			}
			if tc.keep != (got == tc.header) {
				t.Fatalf("header %q gave id %q (keep=%v)", tc.header, got, tc.keep)
			}
			if !httpapi.ValidCorrelationID(got) {
				t.Fatalf("generated id %q is not valid", got)
			}
		})
	}
	if !strings.Contains(logs.String(), `"correlation_id":"order 42_a.b-c"`) {
		t.Fatalf("access log lacks the correlation id: %s", logs.String())
	}
}

func TestWrap_PanicAnswers500AndIsLogged(t *testing.T) {
	var logs bytes.Buffer
	m := newChain(t, &logs, prometheus.NewRegistry(), 0)
	h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("boom") }))
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/x", nil))
	if rr.Code != http.StatusInternalServerError {
		t.Fatalf("status %d", rr.Code)
	}
	var body httpapi.ErrorBody
	if err := json.Unmarshal(rr.Body.Bytes(), &body); err != nil || body.Error == "" {
		t.Fatalf("body %q", rr.Body.String())
	}
	if !strings.Contains(logs.String(), "handler panicked") {
		t.Fatal("panic not logged")
	}
}

func TestWrap_BodyLimitIsEnforced(t *testing.T) {
	m := newChain(t, &bytes.Buffer{}, prometheus.NewRegistry(), 32)
	var decodeErr error
	h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v map[string]string
		decodeErr = httpapi.DecodeJSON(r, &v)
	}))
	big := `{"a":"` + strings.Repeat("x", 100) + `"}`
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(big)))
	if !errors.Is(decodeErr, httpapi.ErrBodyTooLarge) {
		t.Fatalf("got %v, want ErrBodyTooLarge", decodeErr)
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(`{"a":"b"} {}`)))
	if decodeErr == nil {
		t.Fatal("trailing data accepted")
	}
}

func TestWrap_CountsRequestsByRouteAndStatus(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newChain(t, &bytes.Buffer{}, reg, 0)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := m.Wrap(mux)
	for range 3 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/things/7", nil))
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/nowhere", nil))
	want := `
# HELP provhub_http_requests_total HTTP requests served, by route and status.
# TYPE provhub_http_requests_total counter
provhub_http_requests_total{method="GET",route="GET /things/{id}",status="418"} 3
provhub_http_requests_total{method="GET",route="unmatched",status="404"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "provhub_http_requests_total"); err != nil {
		t.Fatal(err)
	}
}

func TestErrorStyles(t *testing.T) {
	t.Run("issuer", func(t *testing.T) {
		rr := httptest.NewRecorder()
		httpapi.WriteError(rr, http.StatusNotFound, "consumer not found")
		if rr.Code != 404 || strings.TrimSpace(rr.Body.String()) != `{"error":"consumer not found"}` {
			t.Fatalf("%d %s", rr.Code, rr.Body)
		}
	})
	t.Run("crm", func(t *testing.T) {
		rr := httptest.NewRecorder()
		httpapi.WriteEnvelopeOK(rr, map[string]string{"token": "t"})
		if strings.TrimSpace(rr.Body.String()) != `{"status":{"code":"OK","message":null,"description":null},"data":{"token":"t"}}` {
			t.Fatal(rr.Body.String())
		}
		rr = httptest.NewRecorder()
		httpapi.WriteEnvelopeError(rr, http.StatusBadRequest, "MISSING_MANDATORY_PARAMETER", "token is required", "")
		if rr.Code != 400 || strings.TrimSpace(rr.Body.String()) != `{"status":{"code":"MISSING_MANDATORY_PARAMETER","message":"token is required","description":null},"data":null}` {
			t.Fatal(rr.Body.String())
		}
	})
	t.Run("wallet", func(t *testing.T) {
		rr := httptest.NewRecorder()
		now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
		httpapi.WriteStatusCode(rr, httpapi.NewResponseHeader("sess-1", 111, "missing mandatory parameter: seId", now))
		var got struct {
			ResponseHeader httpapi.ResponseHeader `json:"responseHeader"`
		}
		if err := json.Unmarshal(rr.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		h := got.ResponseHeader
		if rr.Code != 200 || h.StatusCode != 111 || h.SessionID != "sess-1" || h.ResponseID == "" || h.GenerationDateTime != "2026-05-01T10:00:00Z" {
			t.Fatalf("%d %+v", rr.Code, h)
		}
	})
}

func TestHealth_ReadyzReportsFailedChecks(t *testing.T) {
	mux := http.NewServeMux()
	ok := true
	httpapi.MountHealth(mux, prometheus.NewRegistry(), map[string]httpapi.ReadyCheck{
		"database": func(ctx context.Context) error {
			if ok {
				return nil
			}
			return errors.New("schema behind")
		},
	}, func() map[string]string { return map[string]string{"cas": "unreachable"} })
	get := func(path string) *httptest.ResponseRecorder {
		rr := httptest.NewRecorder()
		mux.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, path, nil))
		return rr
	}
	if rr := get("/healthz"); rr.Code != 200 {
		t.Fatalf("healthz %d", rr.Code)
	}
	// What the hub knows of the systems it calls is said, and does not
	// make it unready.
	if rr := get("/readyz"); rr.Code != 200 || !strings.Contains(rr.Body.String(), `"downstream":{"cas":"unreachable"}`) {
		t.Fatalf("readyz %d %s", rr.Code, rr.Body)
	}
	ok = false
	rr := get("/readyz")
	if rr.Code != http.StatusServiceUnavailable || !strings.Contains(rr.Body.String(), "schema behind") {
		t.Fatalf("readyz %d %s", rr.Code, rr.Body)
	}
	if rr := get("/metrics"); rr.Code != 200 {
		t.Fatalf("metrics %d", rr.Code)
	}
}

func TestNewServer_SetsEveryTimeout(t *testing.T) {
	s := httpapi.NewServer(httpapi.ServerConfig{Addr: "127.0.0.1:0"})
	if s.ReadHeaderTimeout == 0 || s.ReadTimeout == 0 || s.WriteTimeout == 0 || s.IdleTimeout == 0 {
		t.Fatalf("server %+v", s)
	}
}

func FuzzValidCorrelationID(f *testing.F) {
	for _, s := range []string{"abc", "", "a b.c-d_e", strings.Repeat("x", 64), strings.Repeat("x", 65), "é", "a\nb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ok := httpapi.ValidCorrelationID(s)
		if !ok {
			return
		}
		if len(s) < 1 || len(s) > 64 {
			t.Fatalf("accepted length %d", len(s))
		}
		for _, c := range s {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_-. ", c)) {
				t.Fatalf("accepted %q", c)
			}
		}
	})
}

func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"a":"b"}`))
	f.Add([]byte(`{"a":`))
	f.Add([]byte(`[] {}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Body = http.MaxBytesReader(httptest.NewRecorder(), req.Body, 64)
		var v map[string]any
		if err := httpapi.DecodeJSON(req, &v); err == nil && len(body) > 64 {
			t.Fatalf("accepted %d bytes over a 64-byte limit", len(body))
		}
	})
}
