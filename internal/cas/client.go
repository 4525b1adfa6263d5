package cas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/provhub/provhub/internal/southbound"
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
	// Timeout bounds one call [southbound.DefaultTimeout].
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
		hc = southbound.NewHTTPClient(southbound.Config{Timeout: cfg.Timeout, Wrap: cfg.Wrap})
	}
	return &Client{url: strings.TrimRight(cfg.BaseURL, "/") + "/cas/v1/commands", http: hc}, nil
}

// Send delivers cmd. It returns the reply when the CAS carried the command
// out, a *Rejection when it refused it, and an error wrapping
// ErrUnavailable when the outcome is unknown and a retry is due.
func (c *Client) Send(ctx context.Context, cmd Command) (Reply, error) {
	ans, err := southbound.PostJSON(ctx, c.http, c.url, cmd, nil)
	switch {
	case errors.Is(err, southbound.ErrNoAnswer):
		return Reply{}, fmt.Errorf("%w: %s %s: %v", ErrUnavailable, cmd.Command, cmd.RequestID, err)
	case err != nil:
		return Reply{}, fmt.Errorf("cas %s: %w", cmd.Command, err)
	}
	status := ans.Status
	var reply Reply
	decodeErr := json.Unmarshal(ans.Body, &reply)
	switch {
	case status >= 500 || status == http.StatusTooManyRequests:
		msg := reply.Message
		if decodeErr != nil || msg == "" {
			msg = http.StatusText(status)
		}
		return Reply{}, fmt.Errorf("%w: http %d: %s", ErrUnavailable, status, msg)
	case decodeErr != nil:
		return Reply{}, fmt.Errorf("%w: unreadable reply (http %d): %v", ErrUnavailable, status, decodeErr)
	case reply.Result == ResultBusy:
		return Reply{}, fmt.Errorf("%w: busy: %s", ErrUnavailable, reply.Message)
	case reply.Result == ResultOK && status == http.StatusOK:
		return reply, nil
	case reply.Result == "" || reply.Result == ResultOK:
		return Reply{}, fmt.Errorf("%w: reply without a result (http %d)", ErrUnavailable, status)
	default:
		return reply, &Rejection{Result: reply.Result, Message: reply.Message}
	}
}
