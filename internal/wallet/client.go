package wallet

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

	"github.com/provhub/provhub/internal/apdu"
	"github.com/provhub/provhub/internal/southbound"
)

// StatusError is a non-zero statusCode from the wallet server.
type StatusError = southbound.StatusError[family]

// family is the wallet server's status codes.
type family struct{}

func (family) Name() string         { return "wallet" }
func (family) Text(code int) string { return StatusText(code) }

// Retryable reports whether the same call may succeed later: 321 (another
// task runs on the device) and 921 (server error).
func (family) Retryable(code int) bool {
	return code == StatusDeviceBusy || code == StatusServerError
}

// ErrUnavailable marks a call whose outcome is unknown: HTTP 5xx, a
// timeout, a refused connection or an unreadable answer. Repeating it with
// the same taskId is safe.
var ErrUnavailable = errors.New("wallet server unavailable")

// Retryable reports whether err, returned by a Client, is worth retrying.
func Retryable(err error) bool { return southbound.Retryable[family](err, ErrUnavailable) }

// ClientConfig sets up a Client.
type ClientConfig struct {
	// BaseURL is the wallet server's address (the paths are appended).
	BaseURL string
	// Pod names this hub instance in the x-pod header.
	Pod string
	// Timeout bounds one call [10s].
	Timeout time.Duration
	// Clock stamps generationDateTime [time.Now].
	Clock func() time.Time
}

// Client calls a wallet server.
type Client struct {
	base string
	pod  string
	http *http.Client
	now  func() time.Time
}

// NewClient returns a client of the wallet server at cfg.BaseURL.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.BaseURL == "" || cfg.Pod == "" {
		return nil, errors.New("wallet client: BaseURL and Pod are required")
	}
	if len(cfg.Pod) > 128 {
		return nil, errors.New("wallet client: Pod is longer than 128 characters")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Client{base: strings.TrimRight(cfg.BaseURL, "/"), pod: cfg.Pod, now: cfg.Clock,
		http: southbound.NewHTTPClient(southbound.Config{Timeout: cfg.Timeout})}, nil
}

// Header builds a request header for one call of the use case sessionID.
func (c *Client) Header(sessionID string) RequestHeader {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return RequestHeader{RequestID: hex.EncodeToString(b[:]), SessionID: sessionID,
		GenerationDateTime: c.now().UTC().Format(time.RFC3339)}
}

// MaxCommand is the longest command APDU a script line carries (512 hex
// digits); MaxStoreDataBlock is the STORE DATA payload that fits it.
const (
	MaxCommand        = 256
	MaxStoreDataBlock = MaxCommand - 5
)

// Script turns command APDUs into a sendScript command list; message ids
// are prefix-1, prefix-2, ...
func Script(prefix string, cmds []apdu.Command, names []string) ([]APDUCommand, error) {
	out := make([]APDUCommand, len(cmds))
	for i, c := range cmds {
		b, err := c.Bytes()
		if err != nil {
			return nil, fmt.Errorf("script command %d: %w", i+1, err)
		}
		if len(b) > MaxCommand {
			return nil, fmt.Errorf("script command %d: %d bytes, the API carries at most %d", i+1, len(b), MaxCommand)
		}
		out[i] = APDUCommand{Data: strings.ToUpper(hex.EncodeToString(b)), MessageID: fmt.Sprintf("%s-%d", prefix, i+1)}
		if i < len(names) {
			out[i].MessageName = names[i]
		}
	}
	return out, nil
}

// SendScript asks the wallet server to run a script on a secure element.
func (c *Client) SendScript(ctx context.Context, req SendScriptRequest) error {
	var res HeaderOnlyResponse
	return c.call(ctx, "sendScript", req, &res, &res.ResponseHeader)
}

// UpdateCard asks the wallet server to change a digital card.
func (c *Client) UpdateCard(ctx context.Context, req UpdateCardRequest) error {
	var res HeaderOnlyResponse
	return c.call(ctx, "updateCard", req, &res, &res.ResponseHeader)
}

// PushNotification asks the wallet server to show a notification about a
// digital card on the user's device.
func (c *Client) PushNotification(ctx context.Context, req PushNotificationRequest) error {
	var res HeaderOnlyResponse
	return c.call(ctx, "pushNotification", req, &res, &res.ResponseHeader)
}

// GetTaskStatus returns a task's state: PROCESSING, COMPLETED or FAILED.
func (c *Client) GetTaskStatus(ctx context.Context, req GetTaskStatusRequest) (string, error) {
	var res GetTaskStatusResponse
	if err := c.call(ctx, "getTaskStatus", req, &res, &res.ResponseHeader); err != nil {
		return "", err
	}
	switch res.TaskStatus {
	case TaskProcessing, TaskCompleted, TaskFailed:
		return res.TaskStatus, nil
	}
	return "", fmt.Errorf("%w: getTaskStatus answered task status %q", ErrUnavailable, res.TaskStatus)
}

func (c *Client) call(ctx context.Context, op string, body, res any, hdr *ResponseHeader) error {
	ans, err := southbound.PostJSON(ctx, c.http, c.base+"/"+op, body, map[string]string{"x-pod": c.pod})
	switch {
	case errors.Is(err, southbound.ErrNoAnswer):
		return fmt.Errorf("%w: %s: %v", ErrUnavailable, op, err)
	case err != nil:
		return fmt.Errorf("wallet %s: %w", op, err)
	}
	return decodeAnswer(op, ans.Status, ans.Body, res, hdr)
}

// decodeAnswer reads a wallet server's answer into res, whose response
// header is hdr, and turns it into the call's error.
func decodeAnswer(op string, httpStatus int, answer []byte, res any, hdr *ResponseHeader) error {
	if httpStatus != http.StatusOK {
		return fmt.Errorf("%w: %s: HTTP %d", ErrUnavailable, op, httpStatus)
	}
	if err := json.Unmarshal(answer, res); err != nil {
		return fmt.Errorf("%w: %s: unreadable answer: %v", ErrUnavailable, op, err)
	}
	if hdr.ResponseID == "" {
		return fmt.Errorf("%w: %s: answer without a responseHeader", ErrUnavailable, op)
	}
	if hdr.StatusCode != StatusOK {
		return &StatusError{Op: op, Code: hdr.StatusCode, Message: hdr.StatusMessage}
	}
	return nil
}
