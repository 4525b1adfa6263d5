package issuerapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/provhub/provhub/internal/asset"
	"github.com/provhub/provhub/internal/cardaccount"
	"github.com/provhub/provhub/internal/httpapi"
	"github.com/provhub/provhub/internal/issuer"
	"github.com/provhub/provhub/internal/oauth"
	"github.com/provhub/provhub/internal/wire"
)

// Base paths.
const (
	BankingPrefix = "/banking/v1"
	TokenPath     = "/authz/v1/oauth2/token"
)

// Config sets up an API.
type Config struct {
	Service *issuer.Service
	// Accounts makes opaqueCardAccountData; Assets keeps card art and
	// terms (both required).
	Accounts *cardaccount.Service
	Assets   *asset.Store
	OAuth    *oauth.Server
	Logger   *slog.Logger
}

// API serves the issuer API.
type API struct {
	svc      *issuer.Service
	accounts *cardaccount.Service
	assets   *asset.Store
	oauth    *oauth.Server
	log      *slog.Logger
}

// New returns the API.
func New(cfg Config) (*API, error) {
	if cfg.Service == nil || cfg.OAuth == nil || cfg.Accounts == nil || cfg.Assets == nil {
		return nil, errors.New("issuerapi: Config.Service, Config.Accounts, Config.Assets and Config.OAuth are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &API{svc: cfg.Service, accounts: cfg.Accounts, assets: cfg.Assets, oauth: cfg.OAuth, log: cfg.Logger.With("component", "issuerapi")}, nil
}

// Mount adds the routes to mux.
func (a *API) Mount(mux *http.ServeMux) {
	mux.HandleFunc("POST "+TokenPath, a.token)
	p := BankingPrefix + "/issuers/{issuerId}"
	mux.HandleFunc("PUT "+p+"/consumers/{consumerId}", a.call(a.registerConsumer))
	mux.HandleFunc("POST "+p+"/consumers/{consumerId}/operations:delete", a.call(a.deleteConsumer))
	mux.HandleFunc("PUT "+p+"/consumers/{consumerId}/cards", a.call(a.registerConsumerWithCards))
	mux.HandleFunc("GET "+p+"/consumers/{consumerId}/operations", a.call(a.operations))
	mux.HandleFunc("GET "+p+"/consumers/{consumerId}/operations/{operationId}", a.call(a.operation))
	mux.HandleFunc("PUT "+p+"/accounts/{accountId}", a.call(a.registerAccount))
	mux.HandleFunc("POST "+p+"/accounts/{accountId}/operations:delete", a.call(a.deleteAccount))
	mux.HandleFunc("PUT "+p+"/cards/{cardId}", a.call(a.registerCard))
	mux.HandleFunc("GET "+p+"/cards/{cardId}", a.call(a.card))
	mux.HandleFunc("POST "+p+"/cards/{cardId}/provisioningData", a.call(a.provisioningData))
	mux.HandleFunc("POST "+p+"/assets", a.call(a.addAsset))
	mux.HandleFunc("GET "+p+"/assets", a.call(a.listAssets))
	mux.HandleFunc("GET "+p+"/assets/{guid}", a.call(a.assetInfo))
	mux.HandleFunc("DELETE "+p+"/assets/{guid}", a.call(a.removeAsset))
	for _, op := range []issuer.OperationType{issuer.OpSuspend, issuer.OpResume, issuer.OpDelete} {
		verb := strings.ToLower(string(op))
		mux.HandleFunc("POST "+p+"/cards/{cardId}/operations:"+verb, a.call(a.cardOperation(op)))
		mux.HandleFunc("POST "+p+"/digitalCards/{digitalCardId}/operations:"+verb, a.call(a.digitalCardOperation(op)))
	}
	mux.HandleFunc("GET "+p+"/digitalCards/{digitalCardId}", a.call(a.digitalCard))
	notFound := func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteError(w, http.StatusNotFound, "no such resource or method")
	}
	mux.HandleFunc(BankingPrefix+"/", notFound)
	mux.HandleFunc("/authz/", notFound)
}

// caller is an authenticated banking call.
type caller struct {
	issuerID string
	by       issuer.Requestor
}

type bankingHandler func(ctx context.Context, w http.ResponseWriter, r *http.Request, c caller) error

// call checks the correlation id, the bearer token and that the token's
// issuer is the path's, then runs h and maps its error to a status.
func (a *API) call(h bankingHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		corr, err := correlationID(r, correlationPattern)
		if err != nil {
			a.answerError(ctx, w, err)
			return
		}
		p, err := a.authenticate(ctx, r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			httpapi.WriteError(w, http.StatusUnauthorized, err.Error())
			return
		}
		issuerID := r.PathValue("issuerId")
		if err := checkIssuerID(issuerID); err != nil {
			a.answerError(ctx, w, err)
			return
		}
		if issuerID != p.ClientID {
			httpapi.WriteError(w, http.StatusForbidden, "the access token does not grant access to this issuerId")
			return
		}
		c := caller{issuerID: issuerID, by: issuer.Requestor{Type: issuer.RequestorIssuer, ID: issuerID, CorrelationID: corr}}
		if err := h(ctx, w, r, c); err != nil {
			a.answerError(ctx, w, err)
		}
	}
}

// correlationID returns the caller's x-correlation-id, "" when absent; a
// present one must match p.
func correlationID(r *http.Request, p interface{ MatchString(string) bool }) (string, error) {
	vals, ok := r.Header[http.CanonicalHeaderKey(httpapi.CorrelationHeader)]
	if !ok {
		return "", nil
	}
	if len(vals) != 1 || !p.MatchString(vals[0]) {
		return "", bad("x-correlation-id must be 1 to 64 of the characters its pattern allows")
	}
	return vals[0], nil
}

func (a *API) authenticate(ctx context.Context, r *http.Request) (*oauth.Principal, error) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, errors.New("a bearer access token is required")
	}
	p, err := a.oauth.Verify(ctx, strings.TrimSpace(tok))
	var oe *oauth.Error
	switch {
	case errors.As(err, &oe):
		return nil, errors.New(oe.Description)
	case err != nil:
		a.log.ErrorContext(ctx, "verify access token", "err", err)
		return nil, errors.New("the access token could not be checked")
	}
	return p, nil
}

func (a *API) answerError(ctx context.Context, w http.ResponseWriter, err error) {
	var br *badRequest
	if errors.As(err, &br) {
		httpapi.WriteError(w, http.StatusBadRequest, br.msg)
		return
	}
	if p := wire.ProblemOf(err); p != nil {
		httpapi.WriteError(w, http.StatusBadRequest, p.Error())
		return
	}
	switch asset.KindOf(err) {
	case asset.KindBadContent:
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
		return
	case asset.KindNotFound:
		httpapi.WriteError(w, http.StatusNotFound, err.Error())
		return
	case asset.KindInUse:
		httpapi.WriteError(w, http.StatusConflict, err.Error())
		return
	}
	switch issuer.KindOf(err) {
	case issuer.KindBadInput:
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
	case issuer.KindNotFound:
		httpapi.WriteError(w, http.StatusNotFound, err.Error())
	case issuer.KindForbidden:
		httpapi.WriteError(w, http.StatusForbidden, err.Error())
	case issuer.KindConflict:
		httpapi.WriteError(w, http.StatusConflict, err.Error())
	default:
		a.log.ErrorContext(ctx, "issuer call failed", "err", err)
		httpapi.WriteError(w, http.StatusInternalServerError, "internal error")
	}
}

func (a *API) registerConsumer(ctx context.Context, w http.ResponseWriter, r *http.Request, c caller) error {
	consumerID := r.PathValue("consumerId")
	if err := checkID("consumerId", consumerID, idPattern); err != nil {
		return err
	}
	o, err := readObject(r, false, false)
	if err != nil {
		return err
	}
	if _, err := o.String("state", wire.Text{}); err != nil { // deprecated, ignored
		return err
	}
	if err := a.svc.RegisterConsumer(ctx, c.issuerID, consumerID, c.by); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// registerConsumerWithCards registers an end user with cards already
// registered: {"cards": [{"cardId": "..."}]} (the body is assumed).
func (a *API) registerConsumerWithCards(ctx context.Context, w http.ResponseWriter, r *http.Request, c caller) error {
	consumerID := r.PathValue("consumerId")
	if err := checkID("consumerId", consumerID, idPattern); err != nil {
		return err
	}
	o, err := readObject(r, true, true, "cards")
	if err != nil {
		return err
	}
	cards, err := o.Objects("cards", true)
	if err != nil || len(cards) == 0 || len(cards) > 100 {
		return bad("cards must be a list of 1 to 100 {\"cardId\": ...} objects")
	}
	ids := make([]string, 0, len(cards))
	for i, card := range cards {
		id, err := card.String("cardId", wire.Text{Required: true, Pattern: cardIDPattern})
		if err != nil {
			return err
		}
		if len(card.Names()) != 1 {
			return bad("cards[%d]: only cardId is known", i)
		}
		ids = append(ids, id)
	}
	if err := a.svc.RegisterConsumerWithCards(ctx, c.issuerID, consumerID, ids, c.by); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) deleteConsumer(ctx context.Context, w http.ResponseWriter, r *http.Request, c caller) error {
	consumerID := r.PathValue("consumerId")
	if err := checkID("consumerId", consumerID, idPattern); err != nil {
		return err
	}
	why, err := reason(r, false, issuer.ConsumerDeleteReasons)
	if err != nil {
		return err
	}
	op, err := a.svc.DeleteConsumer(ctx, c.issuerID, consumerID, why, c.by)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, operationResult{OperationID: op.OperationID, Status: string(op.Status)})
	return nil
}

func (a *API) operations(ctx context.Context, w http.ResponseWriter, r *http.Request, c caller) error {
	consumerID := r.PathValue("consumerId")
	if err := checkID("consumerId", consumerID, idPattern); err != nil {
		return err
	}
	if err := onlyQuery(r.URL.Query(), "offset", "limit"); err != nil {
		return err
	}
	offset, err := queryInt(r, "offset", 0, 0, 1<<30)
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 10, 1, 50)
	if err != nil {
		return err
	}
	page, err := a.svc.Operations(ctx, c.issuerID, consumerID, offset, limit)
	if err != nil {
		return err
	}
	out := operationsPage{Operations: make([]operationJSON, 0, len(page.Operations)), RemainingOperations: page.Remaining}
	for _, op := range page.Operations {
		out.Operations = append(out.Operations, operationOut(op))
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

// onlyQuery refuses query parameters the call does not define.
func onlyQuery(q url.Values, allowed ...string) error {
	for k := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return bad("unsupported query parameter %q", k)
		}
	}
	return nil
}

func (a *API) operation(ctx context.Context, w http.ResponseWriter, r *http.Request, c caller) error {
	consumerID, operationID := r.PathValue("consumerId"), r.PathValue("operationId")
	if err := checkID("consumerId", consumerID, idPattern); err != nil {
		return err
	}
	if err := checkID("operationId", operationID, idPattern); err != nil {
		return err
	}
	op, err := a.svc.Operation(ctx, c.issuerID, consumerID, operationID)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, operationOut(*op))
	return nil
}

func (a *API) registerAccount(ctx context.Context, w http.ResponseWriter, r *http.Request, c caller) error {
	accountID := r.PathValue("accountId")
	if err := checkID("accountId", accountID, idPattern); err != nil {
		return err
	}
	o, err := readObject(r, true, false)
	if err != nil {
		return err
	}
	consumerID, err := o.String("consumerId", wire.Text{Required: true, Pattern: idPattern})
	if err != nil {
		return err
	}
	product, err := o.String("accountProductId", wire.Text{Pattern: idPattern})
	if err != nil {
		return err
	}
	state, err := o.String("state", wire.Text{Required: true, Pattern: statePattern})
	if err != nil {
		return err
	}
	if err := a.svc.RegisterAccount(ctx, c.issuerID, accountID, consumerID, product, state); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteAccount is the deprecated account deletion: like the consumer's,
// an operation that ends when the account's cards' digital cards are gone.
func (a *API) deleteAccount(ctx context.Context, w http.ResponseWriter, r *http.Request, c caller) error {
	accountID := r.PathValue("accountId")
	if err := checkID("accountId", accountID, idPattern); err != nil {
		return err
	}
	why, err := reason(r, false, issuer.CardDeleteReasons)
	if err != nil {
		return err
	}
	op, err := a.svc.DeleteAccount(ctx, c.issuerID, accountID, why, c.by)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, operationResult{OperationID: op.OperationID, Status: string(op.Status)})
	return nil
}

func (a *API) registerCard(ctx context.Context, w http.ResponseWriter, r *http.Request, c caller) error {
	cardID := r.PathValue("cardId")
	if err := checkID("cardId", cardID, cardIDPattern); err != nil {
		return err
	}
	o, err := readObject(r, true, false)
	if err != nil {
		return err
	}
	var in issuer.CardInput
	// Without consumerId the card waits for one
	// (PUT /consumers/{consumerId}/cards).
	if in.ConsumerID, err = o.String("consumerId", wire.Text{Pattern: idPattern}); err != nil {
		return err
	}
	if in.AccountID, err = o.String("accountId", wire.Text{Pattern: idPattern}); err != nil {
		return err
	}
	if in.CardProductID, err = o.String("cardProductId", wire.Text{Required: true, Pattern: cardIDPattern}); err != nil {
		return err
	}
	state, err := o.String("state", wire.Text{})
	if err != nil {
		return err
	}
	switch issuer.CardState(state) {
	case "", issuer.CardActive, issuer.CardInactive:
		in.State = issuer.CardState(state)
	default:
		return bad("state must be ACTIVE or INACTIVE")
	}
	if err := cardShows(o, &in); err != nil {
		return err
	}
	if err := a.svc.RegisterCard(ctx, c.issuerID, cardID, in, c.by); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) card(ctx context.Context, w http.ResponseWriter, r *http.Request, c caller) error {
	cardID := r.PathValue("cardId")
	if err := checkID("cardId", cardID, cardIDPattern); err != nil {
		return err
	}
	card, err := a.svc.Card(ctx, c.issuerID, cardID)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, cardOut(card))
	return nil
}

func (a *API) cardOperation(op issuer.OperationType) bankingHandler {
	codes := map[issuer.OperationType][]string{
		issuer.OpSuspend: issuer.CardSuspendReasons,
		issuer.OpResume:  issuer.CardResumeReasons,
		issuer.OpDelete:  issuer.CardDeleteReasons,
	}[op]
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request, c caller) error {
		cardID := r.PathValue("cardId")
		if err := checkID("cardId", cardID, cardIDPattern); err != nil {
			return err
		}
		why, err := reason(r, false, codes)
		if err != nil {
			return err
		}
		res, err := a.svc.CardOperation(ctx, c.issuerID, cardID, op, why, c.by)
		if err != nil {
			return err
		}
		httpapi.WriteJSON(w, http.StatusOK, operationResult{OperationID: res.OperationID, Status: string(res.Status)})
		return nil
	}
}

func (a *API) digitalCard(ctx context.Context, w http.ResponseWriter, r *http.Request, c caller) error {
	id := r.PathValue("digitalCardId")
	if err := checkID("digitalCardId", id, idPattern); err != nil {
		return err
	}
	dc, err := a.svc.DigitalCard(ctx, c.issuerID, id)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, digitalOut(*dc))
	return nil
}

func (a *API) digitalCardOperation(op issuer.OperationType) bankingHandler {
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request, c caller) error {
		id := r.PathValue("digitalCardId")
		if err := checkID("digitalCardId", id, idPattern); err != nil {
			return err
		}
		why, err := reason(r, true, nil)
		if err != nil {
			return err
		}
		res, err := a.svc.DigitalCardOperation(ctx, c.issuerID, id, op, why, c.by)
		if err != nil {
			return err
		}
		httpapi.WriteJSON(w, http.StatusOK, operationResult{OperationID: res.OperationID, Status: string(res.Status)})
		return nil
	}
}

// tokenRequest is the token endpoint's body, form or JSON.
type tokenRequest struct {
	GrantType string `json:"grant_type"`
	Assertion string `json:"assertion"`
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
}

// tokenError is the token endpoint's refusal: RFC 6749's error and
// error_description, which also fits the API's {"error": ...} body.
type tokenError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func (a *API) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	refuse := func(code, desc string) {
		w.Header().Set("Pragma", "no-cache")
		httpapi.WriteJSON(w, http.StatusBadRequest, tokenError{Error: code, Description: desc})
	}
	if _, err := correlationID(r, tokenCorrelation); err != nil {
		refuse(oauth.CodeInvalidRequest, err.Error())
		return
	}
	req, err := parseTokenRequest(r)
	if err != nil {
		refuse(oauth.CodeInvalidRequest, err.Error())
		return
	}
	tok, err := a.oauth.Exchange(ctx, req.GrantType, req.Assertion)
	var oe *oauth.Error
	switch {
	case errors.As(err, &oe):
		a.log.InfoContext(ctx, "token refused", "reason", oe.Description)
		refuse(oe.Code, oe.Description)
		return
	case err != nil:
		a.log.ErrorContext(ctx, "token exchange failed", "err", err)
		httpapi.WriteError(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Pragma", "no-cache")
	httpapi.WriteJSON(w, http.StatusOK, tokenResponse{AccessToken: tok.AccessToken, TokenType: tok.TokenType, ExpiresIn: tok.ExpiresIn, Scope: tok.Scope})
}

// parseTokenRequest reads grant_type and assertion from a form or JSON body.
func parseTokenRequest(r *http.Request) (tokenRequest, error) {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(r.Header.Get("Content-Type"), ";")[0]))
	switch ct {
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return tokenRequest{}, errors.New("the form body is unreadable")
		}
		for _, k := range []string{"grant_type", "assertion"} {
			if len(r.PostForm[k]) > 1 {
				return tokenRequest{}, errors.New(k + " must be given once")
			}
		}
		return tokenRequest{GrantType: r.PostForm.Get("grant_type"), Assertion: r.PostForm.Get("assertion")}, nil
	case "application/json":
		var req tokenRequest
		dec := json.NewDecoder(r.Body)
		if err := dec.Decode(&req); err != nil || dec.More() {
			return tokenRequest{}, errors.New("the body must be one JSON object with string grant_type and assertion")
		}
		return req, nil
	}
	return tokenRequest{}, errors.New("the body must be application/x-www-form-urlencoded or application/json")
}
