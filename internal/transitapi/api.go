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
	"github.com/provhub/provhub/internal/asset"
	"github.com/provhub/provhub/internal/cardaccount"
	"github.com/provhub/provhub/internal/httpapi"
	"github.com/provhub/provhub/internal/partner"
	"github.com/provhub/provhub/internal/southbound"
	"github.com/provhub/provhub/internal/tes"
	"github.com/provhub/provhub/internal/transit"
	"github.com/provhub/provhub/internal/wallet"
	"github.com/provhub/provhub/internal/wire"
)

// Paths of the two families.
const (
	WalletPrefix  = "/tsh/wsapi/1/0/"
	TransitPrefix = "/tsh/transitapi/1/0/"
	DevicePrefix  = "/tsh/deviceapi/1/0/"
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
	codeUnknownDevice      = 117
	codeUnknownOperation   = 118
	codeUnknownIssuer      = 113
	codeBusy               = 321
	codeUnknownAccount     = 116
	codeBlocked            = 159
	codeInvalidInfo        = 166
	codeDeclined           = 170
	codeOTPWrong           = 420
	codeOTPLocked          = 421
	codeFailed             = 911
)

// Config sets up an API.
type Config struct {
	Service *transit.Service
	// Accounts resolves card accounts for checkCardAccount and
	// provisionCard; Assets serves getAsset (both required).
	Accounts *cardaccount.Service
	Assets   *asset.Store
	// Partners authenticates the TES and wallet-server calls (required).
	Partners *partner.Registry
	Logger   *slog.Logger
	Clock    func() time.Time
	// StartsPerSecond and StartsBurst bound, per partner and per instance,
	// the device operations a partner starts (topupCard, parkCard,
	// startReaderMode) [20/s, burst 40].
	StartsPerSecond float64
	StartsBurst     int
}

// API serves the transit calls.
type API struct {
	svc      *transit.Service
	accounts *cardaccount.Service
	assets   *asset.Store
	partners *partner.Registry
	starts   *startLimiter
	log      *slog.Logger
	now      func() time.Time
}

// New returns the API over cfg.Service.
func New(cfg Config) (*API, error) {
	if cfg.Service == nil || cfg.Partners == nil || cfg.Accounts == nil || cfg.Assets == nil {
		return nil, errors.New("transitapi: Config.Service, Config.Accounts, Config.Assets and Config.Partners are required")
	}
	if cfg.StartsPerSecond <= 0 {
		cfg.StartsPerSecond = 20
	}
	if cfg.StartsBurst <= 0 {
		cfg.StartsBurst = 40
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &API{svc: cfg.Service, accounts: cfg.Accounts, assets: cfg.Assets, partners: cfg.Partners, log: cfg.Logger.With("component", "transitapi"), now: cfg.Clock,
		starts: newStartLimiter(cfg.StartsPerSecond, cfg.StartsBurst, cfg.Clock)}, nil
}

// Mount adds the routes to mux.
func (a *API) Mount(mux *http.ServeMux) {
	mux.HandleFunc("POST "+WalletPrefix+"checkCardAccount", a.handle(partner.RoleWallet, a.checkCardAccount))
	mux.HandleFunc("POST "+WalletPrefix+"getAsset", a.handle(partner.RoleWallet, a.getAsset))
	mux.HandleFunc("POST "+WalletPrefix+"provisionCard", a.handle(partner.RoleWallet, a.provisionCard))
	mux.HandleFunc("POST "+TransitPrefix+"submitCardPersoData", a.handle(partner.RoleTES, a.submitPersoData))
	mux.HandleFunc("POST "+TransitPrefix+"updateCardState", a.handle(partner.RoleTES, a.updateCardState))
	mux.HandleFunc("POST "+TransitPrefix+"updateCardMetadata", a.handle(partner.RoleTES, a.updateCardMetadata))
	mux.HandleFunc("POST "+TransitPrefix+"topupCard", a.handle(partner.RoleTES, a.topupCard))
	mux.HandleFunc("POST "+TransitPrefix+"parkCard", a.handle(partner.RoleTES, a.parkCard))
	mux.HandleFunc("POST "+TransitPrefix+"getOperationStatus", a.handle(partner.RoleTES, a.operationStatus))
	// A device proves its calls with the operation's device token instead.
	mux.HandleFunc("POST "+DevicePrefix+"getDeviceCommands", a.handle("", a.deviceCommands))
	mux.HandleFunc("POST "+DevicePrefix+"startReaderMode", a.handle(partner.RoleWallet, a.startReaderMode))
}

// actFor refuses, with 113 (unknown issuer), an issuer the calling partner
// is not registered for: from its side, that issuer does not exist.
func actFor(ctx context.Context, issuerID string) error {
	p := partner.FromContext(ctx)
	if p == nil || !p.Serves(issuerID) {
		return &failure{codeUnknownIssuer, "unknown issuer " + issuerID + " (not one this partner is registered for)"}
	}
	return nil
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

// body is a decoded request: members still raw, read with package wire
// against the limits of api/transit.yaml.
type body = wire.Object

type handler func(ctx context.Context, b body) (extra map[string]any, err error)

// handle authenticates the partner of role (none for the device API, whose
// calls carry a device token), decodes, validates the request header, runs
// h and answers. A call that is not authenticated is answered HTTP 401 (a
// partner of another role 403) before its body is looked at.
func (a *API) handle(role partner.Role, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		raw, err := io.ReadAll(r.Body)
		sessionID := "unknown"
		var extra map[string]any
		if err == nil && role != "" {
			p, aerr := a.partners.Authenticate(r, raw)
			if status, code, msg, refused := a.refusal(ctx, r, role, p, aerr); refused {
				httpapi.WriteJSON(w, status, map[string]any{"responseHeader": httpapi.NewResponseHeader(sessionID, code, msg, a.now())})
				return
			}
			ctx = partner.WithPartner(ctx, p)
		}
		if err != nil {
			err = badFormat("the body is too large or unreadable")
		} else if perr := podHeader(r); perr != nil {
			err = perr
		} else {
			b, derr := wire.Decode(raw)
			if derr != nil {
				err = derr
			} else if sid, herr := southbound.ReadRequestHeader(b, true); herr != nil {
				err = herr
			} else {
				sessionID = sid
				extra, err = h(ctx, b)
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

// refusal says how to answer a partner call that authentication refused or
// whose partner has another role.
func (a *API) refusal(ctx context.Context, r *http.Request, role partner.Role, p *partner.Partner, err error) (status, code int, msg string, refused bool) {
	var ae *partner.AuthError
	switch {
	case errors.As(err, &ae):
		code = codeBadFormat
		if ae.Missing {
			code = codeMissing
		}
		a.log.WarnContext(ctx, "partner call refused", "path", r.URL.Path, "remote", r.RemoteAddr, "reason", ae.Msg)
		return http.StatusUnauthorized, code, ae.Msg, true
	case err != nil:
		a.log.ErrorContext(ctx, "authenticate partner", "err", err)
		return http.StatusInternalServerError, codeServerError, "unexpected server error", true
	case p.Role != role:
		a.log.WarnContext(ctx, "partner call of another role refused", "path", r.URL.Path, "partner_id", p.ID, "role", p.Role)
		return http.StatusForbidden, codeBadFormat, fmt.Sprintf("partner %s is registered as %s; this call is for %s partners", p.ID, p.Role, role), true
	}
	return 0, 0, "", false
}

func (a *API) classify(ctx context.Context, err error) (int, string) {
	var f *failure
	if errors.As(err, &f) {
		return f.code, f.msg
	}
	if p := wire.ProblemOf(err); p != nil {
		return southbound.StatusOf(p), p.Error()
	}
	switch cardaccount.KindOf(err) {
	case cardaccount.KindBadFormat:
		return codeBadFormat, err.Error()
	case cardaccount.KindUnknownAccount:
		return codeUnknownAccount, err.Error()
	case cardaccount.KindBlocked:
		return codeBlocked, err.Error()
	case cardaccount.KindInvalidInfo:
		return codeInvalidInfo, err.Error()
	case cardaccount.KindDeclined:
		return codeDeclined, err.Error()
	case cardaccount.KindOTPWrong:
		return codeOTPWrong, err.Error()
	case cardaccount.KindOTPLocked:
		return codeOTPLocked, err.Error()
	}
	switch asset.KindOf(err) {
	case asset.KindNotFound:
		return codeFailed, err.Error()
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
	case transit.KindBusy:
		return codeBusy, err.Error()
	case transit.KindUnknownOperation:
		return codeUnknownOperation, err.Error()
	case transit.KindNoOperation:
		return codeUnknownDevice, err.Error()
	case transit.KindBadStep:
		return codeBadFormat, err.Error()
	case transit.KindUnavailable:
		return codeServerError, err.Error()
	}
	a.log.ErrorContext(ctx, "transit call failed", "err", err)
	return codeServerError, "unexpected server error"
}

var (
	seIDPattern = regexp.MustCompile(`^([0-9a-fA-F]{2}){1,24}$`)
	hexPattern  = regexp.MustCompile(`^([0-9a-fA-F]{2})+$`)
	dgiPattern  = regexp.MustCompile(`^[0-9a-fA-F]{4}$`)
)

// issuerAndCard reads the two members every TES call names a card with,
// and checks the partner acts for the issuer.
func issuerAndCard(ctx context.Context, b body) (string, string, error) {
	issuer, err := b.String("issuerId", wire.Text{Required: true, Min: 1, Max: 16})
	if err != nil {
		return "", "", err
	}
	card, err := b.String("cardId", wire.Text{Required: true, Min: 1, Max: 48})
	if err != nil {
		return "", "", err
	}
	return issuer, card, actFor(ctx, issuer)
}

// persoData is the wire form of cardPersoData (assumed): data groups in hex.
type persoData struct {
	DGIs []struct {
		DGI  string `json:"dgi"`
		Data string `json:"data"`
	} `json:"dgis"`
}

func (a *API) submitPersoData(ctx context.Context, b body) (map[string]any, error) {
	issuer, card, err := issuerAndCard(ctx, b)
	if err != nil {
		return nil, err
	}
	var p persoData
	if err := b.Into("cardPersoData", true, `{"dgis": [{"dgi": "0101", "data": "..."}]}`, &p); err != nil {
		return nil, err
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
	issuer, card, err := issuerAndCard(ctx, b)
	if err != nil {
		return nil, err
	}
	action, err := b.String("action", wire.Text{Required: true, Min: 1, Max: 16})
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
	issuer, card, err := issuerAndCard(ctx, b)
	if err != nil {
		return nil, err
	}
	if err := b.Require("cardDescriptor"); err != nil {
		return nil, err
	}
	var d wallet.CardDescriptor
	dec := json.NewDecoder(bytes.NewReader(b.Raw("cardDescriptor")))
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

// labelColor is the published pattern's intent, rgb(r,g,b), and, since
// the published pattern's parentheses are regex groups, its literal
// reading rgbr,g,b too; each component 0 to 255.
var labelColor = regexp.MustCompile(`^rgb(?:\(([0-9]{1,3}),([0-9]{1,3}),([0-9]{1,3})\)|([0-9]{1,3}),([0-9]{1,3}),([0-9]{1,3}))$`)

// validLabelColor applies labelColor and the components' range.
func validLabelColor(s string) bool {
	m := labelColor.FindStringSubmatch(s)
	if m == nil {
		return false
	}
	for _, c := range m[1:] {
		if c != "" && atoi(c) > 255 {
			return false
		}
	}
	return true
}

func atoi(s string) int {
	n := 0
	for _, r := range s {
		n = n*10 + int(r-'0')
	}
	return n
}

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
		if strings.IndexByte(l.v, 0) >= 0 {
			return badFormat("cardDescriptor.%s must not hold a NUL character", l.name)
		}
	}
	if d.LabelColor != "" && !validLabelColor(d.LabelColor) {
		return badFormat("cardDescriptor.labelColor has a bad format")
	}
	for _, g := range d.CardArtManifest {
		if strings.IndexByte(g, 0) >= 0 {
			return badFormat("cardDescriptor.cardArtManifest entries must not hold a NUL character")
		}
		if len(g) > 64 {
			return badFormat("cardDescriptor.cardArtManifest entries have at most 64 characters")
		}
	}
	if d.MobileApp != nil && (d.MobileApp.Identifier == "" || len(d.MobileApp.Identifier) > 128) {
		return badFormat("cardDescriptor.mobileApp.identifier must have 1 to 128 characters")
	}
	if d.MobileApp != nil && strings.IndexByte(d.MobileApp.Identifier, 0) >= 0 {
		return badFormat("cardDescriptor.mobileApp.identifier must not hold a NUL character")
	}
	return nil
}

func (a *API) topupCard(ctx context.Context, b body) (map[string]any, error) {
	issuer, card, err := issuerAndCard(ctx, b)
	if err != nil {
		return nil, err
	}
	purchase, err := b.String("purchaseId", wire.Text{Required: true, Min: 1, Max: 64})
	if err != nil {
		return nil, err
	}
	if err := a.starts.allow(ctx); err != nil {
		return nil, err
	}
	op, err := a.svc.StartTopUp(ctx, issuer, card, purchase)
	if err != nil {
		return nil, err
	}
	return map[string]any{"operationId": op.OperationID}, nil
}

func (a *API) parkCard(ctx context.Context, b body) (map[string]any, error) {
	issuer, card, err := issuerAndCard(ctx, b)
	if err != nil {
		return nil, err
	}
	if err := a.starts.allow(ctx); err != nil {
		return nil, err
	}
	op, err := a.svc.StartPark(ctx, issuer, card)
	if err != nil {
		return nil, err
	}
	return map[string]any{"operationId": op.OperationID}, nil
}

// OperationView is a device operation as getOperationStatus answers it.
type OperationView struct {
	OperationID   string `json:"operationId"`
	Kind          string `json:"kind"`
	Status        string `json:"status"`
	CardID        string `json:"cardId,omitempty"`
	PurchaseID    string `json:"purchaseId,omitempty"`
	StatusCode    *int   `json:"statusCode,omitempty"`
	StatusMessage string `json:"statusMessage,omitempty"`
	Balance       *int64 `json:"balance,omitempty"`
	CardAccountID string `json:"cardAccountId,omitempty"`
	Steps         int    `json:"steps"`
}

func (a *API) operationStatus(ctx context.Context, b body) (map[string]any, error) {
	issuer, err := b.String("issuerId", wire.Text{Required: true, Min: 1, Max: 16})
	if err != nil {
		return nil, err
	}
	id, err := b.String("operationId", wire.Text{Required: true, Min: 1, Max: 64})
	if err != nil {
		return nil, err
	}
	if err := actFor(ctx, issuer); err != nil {
		return nil, err
	}
	op, err := a.svc.Operation(ctx, issuer, id)
	if err != nil {
		return nil, err
	}
	return map[string]any{"operation": OperationView{OperationID: op.OperationID, Kind: string(op.Kind), Status: string(op.Status),
		CardID: op.CardID, PurchaseID: op.PurchaseID, StatusCode: op.StatusCode, StatusMessage: op.Message, Balance: op.Balance,
		CardAccountID: op.CardAccountID, Steps: op.Step}}, nil
}

var (
	idmPattern  = regexp.MustCompile(`^[0-9a-fA-F]{16}$`)
	codePattern = regexp.MustCompile(`^[0-9a-fA-F]{4}$`)
)

func (a *API) deviceCommands(ctx context.Context, b body) (map[string]any, error) {
	call, err := parseDeviceCall(b)
	if err != nil {
		return nil, err
	}
	ans, err := a.svc.DeviceCommands(ctx, call)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"operationId": ans.OperationID, "done": ans.Done}
	if ans.Step > 0 {
		out["step"] = ans.Step
	}
	if len(ans.Commands) > 0 {
		out["commands"] = ans.Commands
	}
	if ans.Balance != nil {
		out["balance"] = *ans.Balance
	}
	if ans.CardAccountID != "" {
		out["cardAccountId"] = ans.CardAccountID
	}
	if ans.Done && ans.StatusCode != 0 {
		return out, &failure{ans.StatusCode, ans.Message}
	}
	return out, nil
}

// parseDeviceCall reads getDeviceCommands' body.
func parseDeviceCall(b body) (transit.DeviceCall, error) {
	var call transit.DeviceCall
	var err error
	if call.Token, err = b.String("deviceToken", wire.Text{Required: true, Min: 1, Max: 128}); err != nil {
		return call, err
	}
	if call.SEID, err = b.String("seId", wire.Text{Required: true, Min: 1, Max: 48, Pattern: seIDPattern}); err != nil {
		return call, err
	}
	if call.WalletCardID, err = b.String("walletCardId", wire.Text{Min: 1, Max: 64}); err != nil {
		return call, err
	}
	if call.OperationID, err = b.String("operationId", wire.Text{Min: 1, Max: 64}); err != nil {
		return call, err
	}
	if err := b.Require("step"); err != nil {
		return call, err
	}
	if err := json.Unmarshal(b.Raw("step"), &call.Step); err != nil || call.Step < 0 || call.Step > 1000 {
		return call, badFormat("step must be an integer from 0 to 1000")
	}
	if b.Has("responses") {
		if err := json.Unmarshal(b.Raw("responses"), &call.Responses); err != nil || len(call.Responses) > 64 {
			return call, badFormat("responses must be at most 64 {id, data} items")
		}
		for i, r := range call.Responses {
			if r.ID == "" || len(r.ID) > 64 || len(r.Data) > 512 || (r.Data != "" && !hexPattern.MatchString(r.Data)) {
				return call, badFormat("responses[%d] needs an id of 1 to 64 characters and data in hex", i)
			}
		}
	}
	if raw := b.Raw("responseTimeMs"); raw != nil {
		var ms float64
		if err := json.Unmarshal(raw, &ms); err != nil || ms < 0 {
			return call, badFormat("responseTimeMs must be a number >= 0")
		}
		call.ResponseTimeMs = &ms
	}
	if raw := b.Raw("statusCode"); raw != nil {
		var code int
		if err := json.Unmarshal(raw, &code); err != nil || (code != 0 && code != 231 && code != 232) {
			return call, badFormat("statusCode must be 0, 231 or 232")
		}
		call.StatusCode = &code
	}
	call.StatusMessage, err = b.String("statusMessage", wire.Text{Max: 256})
	return call, err
}

// readerModeStart is startReaderMode's body.
type readerModeStart struct {
	seID, deviceID, issuerID string
	contents                 tes.CardContents
}

func parseReaderModeStart(b body) (readerModeStart, error) {
	var r readerModeStart
	var err error
	if r.seID, err = b.String("seId", wire.Text{Required: true, Min: 1, Max: 48, Pattern: seIDPattern}); err != nil {
		return r, err
	}
	if r.deviceID, err = b.String("deviceId", wire.Text{Required: true, Min: 1, Max: 48}); err != nil {
		return r, err
	}
	if r.issuerID, err = b.String("issuerId", wire.Text{Required: true, Min: 1, Max: 16}); err != nil {
		return r, err
	}
	cc := &r.contents
	if err := b.Into("cardContents", true, "{systemCode, idm, pmm?, cardServiceId?, areaCodeList?}", cc); err != nil {
		return r, err
	}
	switch {
	case cc.SystemCode == "" || cc.IDm == "":
		return r, missing("cardContents.systemCode and cardContents.idm")
	case !codePattern.MatchString(cc.SystemCode) || !idmPattern.MatchString(cc.IDm) || (cc.PMm != "" && !idmPattern.MatchString(cc.PMm)) ||
		len(cc.CardServiceID) > 64 || len(cc.AreaCodeList) > 32:
		return r, badFormat("cardContents: systemCode is 4 hex digits, idm and pmm 16, cardServiceId at most 64 characters")
	}
	for i, ar := range cc.AreaCodeList {
		if !codePattern.MatchString(ar.AreaCode) || !codePattern.MatchString(ar.KeyVersion) {
			return r, badFormat("cardContents.areaCodeList[%d]: areaCode and keyVersion are 4 hex digits", i)
		}
	}
	return r, nil
}

func (a *API) startReaderMode(ctx context.Context, b body) (map[string]any, error) {
	r, err := parseReaderModeStart(b)
	if err != nil {
		return nil, err
	}
	if err := actFor(ctx, r.issuerID); err != nil {
		return nil, err
	}
	if err := a.starts.allow(ctx); err != nil {
		return nil, err
	}
	op, err := a.svc.StartReaderMode(ctx, r.seID, r.deviceID, r.issuerID, r.contents)
	if err != nil {
		return nil, err
	}
	// The wallet server hands the token to its device, which presents it
	// on every getDeviceCommands.
	return map[string]any{"operationId": op.OperationID, "deviceToken": a.svc.DeviceToken(op.OperationID)}, nil
}
