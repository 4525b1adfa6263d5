package cas

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// ErrUnavailable marks a failure worth retrying: the CAS was busy, timed
// out, answered with a server error or could not be reached. The command
// may or may not have been carried out; resending it with the same
// RequestID is safe.
var ErrUnavailable = errors.New("cas unavailable")

// Rejection is the CAS's final refusal of a command.
type Rejection struct {
	Result  string
	Message string
}

func (r *Rejection) Error() string {
	return fmt.Sprintf("cas rejected the command: %s: %s", r.Result, r.Message)
}

// ClientConfig sets up a Client.
type ClientConfig struct {
	// BaseURL is the CAS's address, e.g. http://127.0.0.1:9300.
	BaseURL string
	// Timeout bounds one call [10s].
	Timeout time.Duration
	// HTTPClient is used when set (its Timeout is left as it is).
	HTTPClient *http.Client
	// Wrap, when set (and HTTPClient is not), wraps the client's transport
	// (to sign its requests).
	Wrap func(http.RoundTripper) http.RoundTripper
}

// Client sends commands to a CAS over HTTP.
type Client struct {
	url  string
	http *http.Client
}

// NewClient returns a client of the CAS at cfg.BaseURL.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.BaseURL == "" {
		return nil, errors.New("cas client: BaseURL is required")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		if cfg.Timeout <= 0 {
			cfg.Timeout = 10 * time.Second
		}
		// Workers call the CAS concurrently: keep a connection per worker
		// rather than dialling anew when the default two idle ones are taken.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 1024, 1024
		var rt http.RoundTripper = tr
		if cfg.Wrap != nil {
			rt = cfg.Wrap(tr)
		}
		// A redirect is a failed call, never followed: it would re-post a
		// PIN to an address nobody configured.
		hc = &http.Client{Timeout: cfg.Timeout, Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &Client{url: strings.TrimRight(cfg.BaseURL, "/") + "/cas/v1/commands", http: hc}, nil
}

// Send delivers cmd. It returns the reply when the CAS carried the command
// out, a *Rejection when it refused it, and an error wrapping
// ErrUnavailable when the outcome is unknown and a retry is due.
func (c *Client) Send(ctx context.Context, cmd Command) (Reply, error) {
	body, err := json.Marshal(cmd)
	if err != nil {
		return Reply{}, fmt.Errorf("encode cas command: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return Reply{}, fmt.Errorf("cas request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return Reply{}, fmt.Errorf("%w: %s %s: %v", ErrUnavailable, cmd.Command, cmd.RequestID, stripURL(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Reply{}, fmt.Errorf("%w: read reply: %v", ErrUnavailable, err)
	}
	var reply Reply
	decodeErr := json.Unmarshal(raw, &reply)
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		msg := reply.Message
		if decodeErr != nil || msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return Reply{}, fmt.Errorf("%w: http %d: %s", ErrUnavailable, resp.StatusCode, msg)
	case decodeErr != nil:
		return Reply{}, fmt.Errorf("%w: unreadable reply (http %d): %v", ErrUnavailable, resp.StatusCode, decodeErr)
	case reply.Result == ResultBusy:
		return Reply{}, fmt.Errorf("%w: busy: %s", ErrUnavailable, reply.Message)
	case reply.Result == ResultOK && resp.StatusCode == http.StatusOK:
		return reply, nil
	case reply.Result == "" || reply.Result == ResultOK:
		return Reply{}, fmt.Errorf("%w: reply without a result (http %d)", ErrUnavailable, resp.StatusCode)
	default:
		return reply, &Rejection{Result: reply.Result, Message: reply.Message}
	}
}

// stripURL keeps url.Error's cause without repeating the address.
func stripURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && ue.Unwrap() != nil {
		return ue.Unwrap()
	}
	return err
}
