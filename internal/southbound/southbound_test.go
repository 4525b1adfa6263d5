package southbound_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/provhub/provhub/internal/southbound"
)

func TestPostJSON_SendsJSONWithHeadersAndReadsTheAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("x-pod") != "pod-1" || string(body) != `{"a":1}` {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	ans, err := southbound.PostJSON(context.Background(), southbound.NewHTTPClient(southbound.Config{}), srv.URL, map[string]int{"a": 1}, map[string]string{"x-pod": "pod-1"})
	if err != nil || ans.Status != http.StatusAccepted || string(ans.Body) != `{"ok":true}` {
		t.Fatalf("answer %d %q, %v", ans.Status, ans.Body, err)
	}
}

func TestPostJSON_NeverFollowsARedirect(t *testing.T) {
	followed := false
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed = true }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL, http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	ans, err := southbound.PostJSON(context.Background(), southbound.NewHTTPClient(southbound.Config{}), srv.URL, map[string]string{"pin": "1234"}, nil)
	if err != nil || ans.Status != http.StatusTemporaryRedirect || followed {
		t.Fatalf("redirect: status %d, err %v, followed %v", ans.Status, err, followed)
	}
}

func TestPostJSON_NoAnswerIsErrNoAnswerWithoutTheAddress(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/secret-path"
	srv.Close()
	_, err := southbound.PostJSON(context.Background(), southbound.NewHTTPClient(southbound.Config{}), url, 1, nil)
	if !errors.Is(err, southbound.ErrNoAnswer) || strings.Contains(err.Error(), "secret-path") {
		t.Fatalf("refused connection: %v", err)
	}
}

func TestNewHTTPClient_PoolsConnectionsAndWrapsTheTransport(t *testing.T) {
	wrapped := false
	hc := southbound.NewHTTPClient(southbound.Config{Wrap: func(rt http.RoundTripper) http.RoundTripper {
		tr, ok := rt.(*http.Transport)
		if !ok || tr.MaxIdleConnsPerHost < 1024 {
			t.Errorf("transport %T keeps too few idle connections", rt)
		}
		wrapped = true
		return rt
	}})
	if !wrapped || hc.Timeout != southbound.DefaultTimeout {
		t.Fatalf("wrapped %v, timeout %s", wrapped, hc.Timeout)
	}
}

func TestPostJSON_ReadsAtMostMaxAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("x", southbound.MaxAnswer+100)))
	}))
	defer srv.Close()
	ans, err := southbound.PostJSON(context.Background(), southbound.NewHTTPClient(southbound.Config{}), srv.URL, 1, nil)
	if err != nil || len(ans.Body) != southbound.MaxAnswer {
		t.Fatalf("read %d bytes, %v", len(ans.Body), err)
	}
}

// TestPostJSON_ReadsANULInAnAnswerAsTheReplacementCharacter: a partner's
// message with a NUL reaches the client as U+FFFD, which the database can
// store with the outcome.
func TestPostJSON_ReadsANULInAnAnswerAsTheReplacementCharacter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"result":"REFUSED","message":"no\u0000such card"}`))
	}))
	defer srv.Close()
	ans, err := southbound.PostJSON(context.Background(), southbound.NewHTTPClient(southbound.Config{}), srv.URL, map[string]int{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var reply struct{ Message string }
	if err := json.Unmarshal(ans.Body, &reply); err != nil || reply.Message != "no\uFFFDsuch card" {
		t.Fatalf("message %q, %v", reply.Message, err)
	}
}
