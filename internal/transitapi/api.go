package transitapi

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/provhub/provhub/internal/apdu"
	"github.com/provhub/provhub/internal/httpapi"
	"github.com/provhub/provhub/internal/transit"
	"github.com/provhub/provhub/internal/wallet"
)

// Paths of the two families.
const (
	WalletPrefix  = "/tsh/wsapi/1/0/"
	TransitPrefix = "/tsh/transitapi/1/0/"
)

// Status codes answered.
const (
	codeOK                 = 0
	codeMissing            = 111
	codeBadFormat          = 112
	codeUnknownCard        = 119
	codeAlreadyProvisioned = 167
	codeNotAllowed         = 432
	codeServerError        = 921
)

// Config sets up an API.
type Config struct {
	Service *transit.Service
	Logger  *slog.Logger
	Clock   func() time.Time
}

// API serves the transit calls.
type API struct {
	svc *transit.Service
	log *slog.Logger
	now func() time.Time
}

// New returns the API over cfg.Service.
func New(cfg Config) (*API, error) {
	if cfg.Service == nil {
		return nil, errors.New("transitapi: Config.Service is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &API{svc: cfg.Service, log: cfg.Logger.With("component", "transitapi"), now: cfg.Clock}, nil
}

// Mount adds the routes to mux.
func (a *API) Mount(mux *http.ServeMux) {
	mux.HandleFunc("POST "+WalletPrefix+"provisionCard", a.handle(a.provisionCard))
	mux.HandleFunc("POST "+TransitPrefix+"submitCardPersoData", a.handle(a.submitPersoData))
	mux.HandleFunc("POST "+TransitPrefix+"updateCardState", a.handle(a.updateCardState))
	mux.HandleFunc("POST "+TransitPrefix+"updateCardMetadata", a.handle(a.updateCardMetadata))
}

// failure is a refusal with its status code.
type failure struct {
	code int
	msg  string
}

func (f *failure) Error() string { return f.msg }

func missing(name string) error { return &failure{codeMissing, name + " is missing"} }

func badFormat(format string, args ...any) error {
	return &failure{codeBadFormat, fmt.Sprintf(format, args...)}
}

// body is a decoded request: members still raw.
type body map[string]json.RawMessage

type handler func(ctx context.Context, b body) (extra map[string]any, err error)

// handle decodes, validates the request header, runs h and answers.
func (a *API) handle(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		raw, err := io.ReadAll(r.Body)
		sessionID := "unknown"
		var extra map[string]any
		if err != nil {
			err = badFormat("the body is too large or unreadable")
		} else {
			var b body
			dec := json.NewDecoder(bytes.NewReader(raw))
			if derr := dec.Decode(&b); derr != nil || b == nil || dec.More() {
				err = badFormat("the body is not a JSON object")
			} else {
				if sid, herr := requestHeader(b); herr != nil {
					err = herr
				} else {
					sessionID = sid
					extra, err = h(ctx, b)
				}
			}
		}
		code, msg := codeOK, ""
		if err != nil {
			code, msg = a.classify(ctx, err)
		}
		out := map[string]any{"responseHeader": httpapi.NewResponseHeader(sessionID, code, msg, a.now())}
		for k, v := range extra {
			out[k] = v
		}
		httpapi.WriteJSON(w, http.StatusOK, out)
	}
}

func (a *API) classify(ctx context.Context, err error) (int, string) {
	var f *failure
	if errors.As(err, &f) {
		return f.code, f.msg
	}
	switch transit.KindOf(err) {
	case transit.KindMissing:
		return codeMissing, err.Error()
	case transit.KindBadFormat:
		return codeBadFormat, err.Error()
	case transit.KindUnknownCard:
		return codeUnknownCard, err.Error()
	case transit.KindAlreadyProvisioned:
		return codeAlreadyProvisioned, err.Error()
	case transit.KindNotAllowed:
		return codeNotAllowed, err.Error()
	}
	a.log.ErrorContext(ctx, "transit call failed", "err", err)
	return codeServerError, "unexpected server error"
}

// requestHeader checks the request header and returns its session id.
func requestHeader(b body) (string, error) {
	raw, ok := b["requestHeader"]
	if !ok || string(raw) == "null" {
		return "", missing("requestHeader")
	}
	var h body
	if err := json.Unmarshal(raw, &h); err != nil || h == nil {
		return "", badFormat("requestHeader must be an object")
	}
	for _, n := range []string{"requestId", "sessionId"} {
		if _, err := h.str("requestHeader."+n, n, 1, 48, nil, true); err != nil {
			return "", err
		}
	}
	if _, ok := h["generationDateTime"]; ok {
		s, err := h.str("requestHeader.generationDateTime", "generationDateTime", 1, 64, nil, false)
		if err != nil {
			return "", err
		}
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			return "", badFormat("requestHeader.generationDateTime must be an RFC 3339 time")
		}
	}
	sid, _ := h.str("", "sessionId", 1, 48, nil, true)
	return sid, nil
}

// str reads a string member with its length bounds and pattern.
func (b body) str(label, name string, min, max int, pattern *regexp.Regexp, required bool) (string, error) {
	if label == "" {
		label = name
	}
	raw, ok := b[name]
	if !ok || string(raw) == "null" {
		if required {
			return "", missing(label)
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", badFormat("%s must be a string", label)
	}
	if len(s) < min || len(s) > max {
		return "", badFormat("%s must have %d to %d characters", label, min, max)
	}
	if pattern != nil && !pattern.MatchString(s) {
		return "", badFormat("%s has a bad format", label)
	}
	return s, nil
}

var (
	seIDPattern = regexp.MustCompile(`^([0-9a-fA-F]{2}){1,24}$`)
	hexPattern  = regexp.MustCompile(`^([0-9a-fA-F]{2})+$`)
	dgiPattern  = regexp.MustCompile(`^[0-9a-fA-F]{4}$`)
)

// issuerAndCard reads the two members every TES call names a card with.
func issuerAndCard(b body) (string, string, error) {
	issuer, err := b.str("", "issuerId", 1, 16, nil, true)
	if err != nil {
		return "", "", err
	}
	card, err := b.str("", "cardId", 1, 48, nil, true)
	return issuer, card, err
}

func (a *API) provisionCard(ctx context.Context, b body) (map[string]any, error) {
	var in transit.ProvisionInput
	var err error
	fields := []struct {
		name     string
		dst      *string
		max      int
		pattern  *regexp.Regexp
		required bool
	}{
		{"issuerId", &in.IssuerID, 16, nil, true},
		{"cardAccountId", &in.CardAccountID, 48, nil, true},
		{"walletCardId", &in.WalletCardID, 64, nil, true},
		{"seId", &in.SEID, 48, seIDPattern, true},
		{"deviceId", &in.DeviceID, 48, nil, false},
	}
	for _, f := range fields {
		if *f.dst, err = b.str("", f.name, 1, f.max, f.pattern, f.required); err != nil {
			return nil, err
		}
	}
	c, err := a.svc.ProvisionCard(ctx, in)
	if err != nil {
		return nil, err
	}
	return map[string]any{"cardId": c.CardID}, nil
}

// persoData is the wire form of cardPersoData (assumed): data groups in hex.
type persoData struct {
	DGIs []struct {
		DGI  string `json:"dgi"`
		Data string `json:"data"`
	} `json:"dgis"`
}

func (a *API) submitPersoData(ctx context.Context, b body) (map[string]any, error) {
	issuer, card, err := issuerAndCard(b)
	if err != nil {
		return nil, err
	}
	raw, ok := b["cardPersoData"]
	if !ok || string(raw) == "null" {
		return nil, missing("cardPersoData")
	}
	var p persoData
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, badFormat("cardPersoData must be {\"dgis\": [{\"dgi\": \"0101\", \"data\": \"...\"}]}")
	}
	if len(p.DGIs) == 0 {
		return nil, missing("cardPersoData.dgis")
	}
	dgis := make([]apdu.DGI, len(p.DGIs))
	for i, d := range p.DGIs {
		if !dgiPattern.MatchString(d.DGI) || !hexPattern.MatchString(d.Data) {
			return nil, badFormat("cardPersoData.dgis[%d]: dgi is 4 hex digits and data non-empty hex", i)
		}
		id, _ := hex.DecodeString(d.DGI)
		value, _ := hex.DecodeString(d.Data)
		dgis[i] = apdu.DGI{ID: uint16(id[0])<<8 | uint16(id[1]), Value: value}
	}
	t, err := a.svc.SubmitPersoData(ctx, issuer, card, dgis)
	if err != nil {
		return nil, err
	}
	return map[string]any{"taskId": t.TaskID}, nil
}

func (a *API) updateCardState(ctx context.Context, b body) (map[string]any, error) {
	issuer, card, err := issuerAndCard(b)
	if err != nil {
		return nil, err
	}
	action, err := b.str("", "action", 1, 16, nil, true)
	if err != nil {
		return nil, err
	}
	switch action {
	case "DELETE", "SUSPEND", "RESUME", "ERASE":
	default:
		return nil, badFormat("action must be DELETE, SUSPEND, RESUME or ERASE")
	}
	t, err := a.svc.UpdateState(ctx, issuer, card, transit.Operation(action))
	if err != nil {
		return nil, err
	}
	return map[string]any{"taskId": t.TaskID}, nil
}

func (a *API) updateCardMetadata(ctx context.Context, b body) (map[string]any, error) {
	issuer, card, err := issuerAndCard(b)
	if err != nil {
		return nil, err
	}
	raw, ok := b["cardDescriptor"]
	if !ok || string(raw) == "null" {
		return nil, missing("cardDescriptor")
	}
	var d wallet.CardDescriptor
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, badFormat("cardDescriptor: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if err := checkDescriptor(d); err != nil {
		return nil, err
	}
	t, err := a.svc.UpdateMetadata(ctx, issuer, card, d)
	if err != nil {
		return nil, err
	}
	return map[string]any{"taskId": t.TaskID}, nil
}

var labelColor = regexp.MustCompile(`^rgb([0-9]{1,3},[0-9]{1,3},[0-9]{1,3})$`)

// checkDescriptor applies the published lengths of the card descriptor,
// so that the wallet server never refuses what the hub accepted.
func checkDescriptor(d wallet.CardDescriptor) error {
	limits := []struct {
		name     string
		v        string
		min, max int
	}{
		{"appletCurrencyCode", d.AppletCurrencyCode, 3, 3}, {"displayCardNumber", d.DisplayCardNumber, 1, 16},
		{"cardholderName", d.CardholderName, 1, 128}, {"shortDescription", d.ShortDescription, 0, 32},
		{"longDescription", d.LongDescription, 0, 64}, {"privacyPolicyURL", d.PrivacyPolicyURL, 0, 128},
		{"termsAndConditionsURL", d.TermsAndConditionsURL, 0, 128}, {"contactWebsite", d.ContactWebsite, 0, 128},
		{"contactEmail", d.ContactEmail, 0, 32}, {"contactNumber", d.ContactNumber, 0, 32}, {"contactName", d.ContactName, 0, 128},
	}
	for _, l := range limits {
		if l.v != "" && (len(l.v) < l.min || len(l.v) > l.max) {
			return badFormat("cardDescriptor.%s must have %d to %d characters", l.name, l.min, l.max)
		}
	}
	if d.LabelColor != "" && !labelColor.MatchString(d.LabelColor) {
		return badFormat("cardDescriptor.labelColor has a bad format")
	}
	for _, g := range d.CardArtManifest {
		if len(g) > 64 {
			return badFormat("cardDescriptor.cardArtManifest entries have at most 64 characters")
		}
	}
	if d.MobileApp != nil && (d.MobileApp.Identifier == "" || len(d.MobileApp.Identifier) > 128) {
		return badFormat("cardDescriptor.mobileApp.identifier must have 1 to 128 characters")
	}
	return nil
}
