package issuerapi

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/provhub/provhub/internal/issuer"
	"github.com/provhub/provhub/internal/wire"
)

// Published patterns, anchored, with their lengths.
var (
	idPattern          = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	cardIDPattern      = regexp.MustCompile(`^[A-Za-z0-9_-]{1,48}$`)
	reasonPattern      = regexp.MustCompile(`^[a-zA-Z0-9 ]{1,64}$`)
	correlationPattern = regexp.MustCompile(`^[a-zA-Z0-9_\-\. ]{1,64}$`)
	tokenCorrelation   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	statePattern       = regexp.MustCompile(`^[A-Z_]{1,32}$`)
	reasonCodePattern  = regexp.MustCompile(`^[A-Z_]{1,32}$`)
)

// badRequest is a 400 with its message.
type badRequest struct{ msg string }

func (b *badRequest) Error() string { return b.msg }

func bad(format string, args ...any) error { return &badRequest{fmt.Sprintf(format, args...)} }

// Path parameter checks; each names the parameter in its refusal.
func checkIssuerID(id string) error {
	if len(id) != 10 {
		return bad("issuerId must have exactly 10 characters")
	}
	return nil
}

func checkID(name, v string, p *regexp.Regexp) error {
	if !p.MatchString(v) {
		return bad("%s must match %s", name, p)
	}
	return nil
}

// object is a decoded JSON object body; members still raw, read with
// package wire against the limits of api/issuer.yaml.
type object = wire.Object

// readObject reads an optional (or required) JSON object body. Members not
// in allowed are refused when strict.
func readObject(r *http.Request, required, strict bool, allowed ...string) (object, error) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return object{}, bad("the body is too large or unreadable")
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		if required {
			return object{}, bad("a JSON body is required")
		}
		return wire.Decode([]byte("{}"))
	}
	o, err := wire.Decode(raw)
	if err != nil {
		return object{}, err
	}
	if unknown := o.Unknown(allowed...); strict && len(unknown) > 0 {
		return object{}, bad("unknown member %q", unknown[0])
	}
	return o, nil
}

// reason reads the {reason, reasonCode} body of an action; codes, when not
// nil, lists the accepted reason codes.
func reason(r *http.Request, strict bool, codes []string) (issuer.Reason, error) {
	o, err := readObject(r, false, strict, "reason", "reasonCode")
	if err != nil {
		return issuer.Reason{}, err
	}
	text, err := o.String("reason", wire.Text{Pattern: reasonPattern})
	if err != nil {
		return issuer.Reason{}, err
	}
	code, err := o.String("reasonCode", wire.Text{Pattern: reasonCodePattern})
	if err != nil {
		return issuer.Reason{}, err
	}
	if code != "" && codes != nil && !slices.Contains(codes, code) {
		return issuer.Reason{}, bad("reasonCode must be one of %v", codes)
	}
	return issuer.Reason{Text: text, Code: code}, nil
}

// queryInt reads an optional integer query parameter within [lo, hi].
func queryInt(r *http.Request, name string, def, lo, hi int) (int, error) {
	vals, ok := r.URL.Query()[name]
	if !ok {
		return def, nil
	}
	if len(vals) != 1 {
		return 0, bad("%s must be given once", name)
	}
	n, err := strconv.Atoi(vals[0])
	if err != nil || n < lo || n > hi {
		return 0, bad("%s must be an integer from %d to %d", name, lo, hi)
	}
	return n, nil
}

// timestamp is the API's time format: ISO 8601, UTC, milliseconds.
func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// operationJSON is the Consumer Operation object.
type operationJSON struct {
	OperationID   string       `json:"operationId"`
	Operation     string       `json:"operation"`
	Status        string       `json:"status"`
	StartTime     string       `json:"startTime"`
	EndTime       string       `json:"endTime,omitempty"`
	RequestorType string       `json:"requestorType"`
	RequestorID   string       `json:"requestorId"`
	Reason        string       `json:"reason,omitempty"`
	ReasonCode    string       `json:"reasonCode,omitempty"`
	Details       *detailsJSON `json:"details,omitempty"`
	ErrorCode     string       `json:"errorCode,omitempty"`
	Error         string       `json:"error,omitempty"`
	CorrelationID string       `json:"correlationId,omitempty"`
}

type detailsJSON struct {
	CardID        string `json:"cardId,omitempty"`
	DigitalCardID string `json:"digitalCardId,omitempty"`
	AccountID     string `json:"accountId,omitempty"`
}

func operationOut(op issuer.Operation) operationJSON {
	out := operationJSON{
		OperationID: op.OperationID, Operation: string(op.Type), Status: string(op.Status), StartTime: timestamp(op.StartTime),
		RequestorType: op.RequestorType, RequestorID: op.RequestorID, Reason: op.Reason, ReasonCode: op.ReasonCode,
		ErrorCode: op.ErrorCode, Error: op.Error, CorrelationID: op.CorrelationID,
	}
	if op.EndTime != nil {
		out.EndTime = timestamp(*op.EndTime)
	}
	if op.CardID != "" || op.DigitalCardID != "" || op.AccountID != "" {
		out.Details = &detailsJSON{CardID: op.CardID, DigitalCardID: op.DigitalCardID, AccountID: op.AccountID}
	}
	return out
}

type operationResult struct {
	OperationID string `json:"operationId"`
	Status      string `json:"status"`
}

type operationsPage struct {
	Operations          []operationJSON `json:"operations"`
	RemainingOperations int             `json:"remainingOperations"`
}

type digitalCardJSON struct {
	DigitalCardID string `json:"digitalCardId"`
	CardID        string `json:"cardId"`
	State         string `json:"state"`
}

type cardJSON struct {
	ConsumerID    string            `json:"consumerId,omitempty"`
	CardID        string            `json:"cardId"`
	AccountID     string            `json:"accountId,omitempty"`
	CardProductID string            `json:"cardProductId"`
	State         string            `json:"state"`
	StateReason   string            `json:"stateReason,omitempty"`
	Ongoing       string            `json:"ongoingOperation,omitempty"`
	LastDigits    string            `json:"lastDigits,omitempty"`
	TermsID       string            `json:"termsAndConditionsId,omitempty"`
	CardArt       []string          `json:"cardArtManifest,omitempty"`
	CreatedAt     string            `json:"creationTime"`
	UpdatedAt     string            `json:"lastUpdateTime"`
	DigitalCards  []digitalCardJSON `json:"digitalCards"`
}

func digitalOut(d issuer.DigitalCard) digitalCardJSON {
	return digitalCardJSON{DigitalCardID: d.DigitalCardID, CardID: d.CardID, State: string(d.State)}
}

func cardOut(c *issuer.Card) cardJSON {
	out := cardJSON{ConsumerID: c.ConsumerID, CardID: c.CardID, AccountID: c.AccountID, CardProductID: c.CardProductID,
		State: string(c.State), StateReason: c.StateReason, Ongoing: c.OngoingOperation,
		LastDigits: c.LastDigits, TermsID: c.TermsID, CardArt: c.CardArt,
		CreatedAt: timestamp(c.CreatedAt), UpdatedAt: timestamp(c.UpdatedAt), DigitalCards: []digitalCardJSON{}}
	for _, d := range c.DigitalCards {
		out.DigitalCards = append(out.DigitalCards, digitalOut(d))
	}
	return out
}
