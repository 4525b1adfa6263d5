package tes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/provhub/provhub/internal/southbound"
)

// StatusError is a non-zero statusCode from the TES.
type StatusError = southbound.StatusError[family]

// family is the TES device gateway's status codes.
type family struct{}

func (family) Name() string         { return "tes" }
func (family) Text(code int) string { return StatusText(code) }

// Retryable reports whether the TES flags the code as worth retrying.
func (family) Retryable(code int) bool {
	switch code {
	case StatusDeviceUnreachable, StatusBusy, StatusTTLExpired, StatusServerError:
		return true
	}
	return false
}

// ErrUnavailable marks a call whose outcome is unknown: HTTP 5xx, a
// timeout, a refused connection or an unreadable answer. Repeating it with
// the same session and responses is safe.
var ErrUnavailable = errors.New("TES unavailable")

// Retryable reports whether err, returned by a Client, is worth retrying.
func Retryable(err error) bool { return southbound.Retryable[family](err, ErrUnavailable) }

// ClientConfig sets up a Client.
type ClientConfig struct {
	// BaseURL is the device gateway's base, e.g.
	// http://tes.example/tes/devicegtwapi/1/0.
	BaseURL string
	// Actor is sent as x-actor-id (1 to 32 characters).
	Actor string
	// Timeout bounds one call [10s].
	Timeout time.Duration
	// Clock stamps generationDateTime [time.Now].
	Clock func() time.Time
	// Wrap, when set, wraps the client's transport (to sign its requests).
	Wrap func(http.RoundTripper) http.RoundTripper
}

// Client calls a TES device gateway.
type Client struct {
	base, actor string
	http        *http.Client
	now         func() time.Time
}

// NewClient returns a client of the gateway at cfg.BaseURL.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.BaseURL == "" {
		return nil, errors.New("tes client: BaseURL is required")
	}
	if cfg.Actor == "" || len(cfg.Actor) > 32 {
		return nil, errors.New("tes client: Actor must have 1 to 32 characters")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Client{base: strings.TrimRight(cfg.BaseURL, "/"), actor: cfg.Actor, now: cfg.Clock,
		http: southbound.NewHTTPClient(southbound.Config{Timeout: cfg.Timeout, Wrap: cfg.Wrap})}, nil
}

// Header builds a request header for one call of the loop sessionID.
func (c *Client) Header(sessionID string) RequestHeader {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return RequestHeader{RequestID: hex.EncodeToString(b[:]), SessionID: sessionID, GenerationDateTime: c.now().UTC().Format(time.RFC3339)}
}

// CardCommands calls getCardCommands.
func (c *Client) CardCommands(ctx context.Context, req CardCommandsRequest) (*CommandsResponse, error) {
	return c.call(ctx, "getCardCommands", PathCardCommands, req)
}

// ParkCardCommands calls getParkCardCommands.
func (c *Client) ParkCardCommands(ctx context.Context, req ParkCardCommandsRequest) (*CommandsResponse, error) {
	return c.call(ctx, "getParkCardCommands", PathParkCardCommands, req)
}

// ReaderModeCommands calls getReaderModeCommands.
func (c *Client) ReaderModeCommands(ctx context.Context, req ReaderModeCommandsRequest) (*CommandsResponse, error) {
	return c.call(ctx, "getReaderModeCommands", PathReaderModeCommands, req)
}

func (c *Client) call(ctx context.Context, op, path string, body any) (*CommandsResponse, error) {
	ans, err := southbound.PostJSON(ctx, c.http, c.base+path, body, map[string]string{"x-actor-id": c.actor})
	switch {
	case errors.Is(err, southbound.ErrNoAnswer):
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, op, err)
	case err != nil:
		return nil, fmt.Errorf("tes %s: %w", op, err)
	}
	return DecodeAnswer(op, ans.Status, ans.Body)
}

// DecodeAnswer reads a TES answer. A non-zero statusCode is a
// *StatusError (returned with the decoded answer); an answer that cannot
// be trusted is ErrUnavailable.
func DecodeAnswer(op string, httpStatus int, answer []byte) (*CommandsResponse, error) {
	if httpStatus != http.StatusOK {
		return nil, fmt.Errorf("%w: %s: HTTP %d", ErrUnavailable, op, httpStatus)
	}
	var res CommandsResponse
	if err := json.Unmarshal(answer, &res); err != nil {
		return nil, fmt.Errorf("%w: %s: unreadable answer: %v", ErrUnavailable, op, err)
	}
	if res.ResponseHeader.ResponseID == "" {
		return nil, fmt.Errorf("%w: %s: answer without a responseHeader", ErrUnavailable, op)
	}
	for i, cmd := range res.Commands {
		if cmd.ID == "" || (cmd.Kind != KindFeliCa && cmd.Kind != KindAPDU) || !isHex(cmd.Data) {
			return nil, fmt.Errorf("%w: %s: command %d is malformed", ErrUnavailable, op, i+1)
		}
	}
	if res.ResponseHeader.StatusCode != StatusOK {
		return &res, &StatusError{Op: op, Code: res.ResponseHeader.StatusCode, Message: res.ResponseHeader.StatusMessage}
	}
	return &res, nil
}

func isHex(s string) bool {
	if s == "" || len(s)%2 != 0 || len(s) > 512 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
