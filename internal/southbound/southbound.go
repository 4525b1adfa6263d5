// Package southbound is the HTTP base of provhub's clients of the systems
// it drives (the CAS, the wallet server, the TES): one transport setting,
// one JSON POST, one rule for redirects, and for the wallet-server family
// one status error whose retry rule each API declares (status.go). The
// clients keep what differs: their headers, their answers' shapes and what
// counts as a refusal.
package southbound

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// DefaultTimeout bounds one call when a client sets none.
const DefaultTimeout = 10 * time.Second

// MaxAnswer is the most of an answer a client reads.
const MaxAnswer = 1 << 20

// Config sets up an HTTP client for one downstream system.
type Config struct {
	// Timeout bounds one call, answer included [DefaultTimeout].
	Timeout time.Duration
	// Wrap, when set, wraps the transport (to sign the requests).
	Wrap func(http.RoundTripper) http.RoundTripper
}

// NewHTTPClient returns a client for one downstream system. Workers call
// it concurrently, so it keeps a connection per caller rather than dialling
// anew past the standard two idle ones. A redirect is a failed call, never
// followed: it would re-post a request (a PIN, a script) to an address no
// one configured.
func NewHTTPClient(cfg Config) *http.Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 1024, 1024
	var rt http.RoundTripper = tr
	if cfg.Wrap != nil {
		rt = cfg.Wrap(tr)
	}
	return &http.Client{Timeout: cfg.Timeout, Transport: rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Answer is what a downstream system answered: its HTTP status and body.
type Answer struct {
	Status int
	Body   []byte
}

// ErrNoAnswer marks a call that got no complete answer (refused, cut,
// timed out): its outcome is unknown, and the clients turn it into their
// own "unavailable".
var ErrNoAnswer = errors.New("no answer")

// PostJSON posts body as JSON to url with the given headers and reads the
// answer (at most MaxAnswer bytes), a NUL in its strings read as U+FFFD
// (withoutNUL). An error wraps ErrNoAnswer when the call
// may or may not have been carried out; the address is left out of it.
func PostJSON(ctx context.Context, hc *http.Client, url string, body any, headers map[string]string) (Answer, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return Answer{}, fmt.Errorf("encode: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		return Answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Answer{}, fmt.Errorf("%w: %v", ErrNoAnswer, withoutURL(err))
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer))
	if err != nil {
		return Answer{}, fmt.Errorf("%w: read answer: %v", ErrNoAnswer, err)
	}
	return Answer{Status: resp.StatusCode, Body: withoutNUL(answer)}, nil
}

// withoutURL keeps a url.Error's cause without repeating the address.
func withoutURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && ue.Unwrap() != nil {
		return ue.Unwrap()
	}
	return err
}

// StatusCode reads a statusCode member as the published documents type it:
// a JSON number (0, 0.0 and 1e2 alike), which must be a whole number.
// Missing, null, a string or a fraction is an error: an answer whose
// outcome cannot be read.
func StatusCode(raw json.RawMessage) (int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, errors.New("statusCode is missing")
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, fmt.Errorf("statusCode %s is not a number", raw)
	}
	if f != float64(int(f)) || f < 0 || f > 99999 {
		return 0, fmt.Errorf("statusCode %s is not a status code", raw)
	}
	return int(f), nil
}
