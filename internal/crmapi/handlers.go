package crmapi

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/provhub/provhub/internal/httpapi"
	"github.com/provhub/provhub/internal/paytv"
)

// Prefix is where the API is served.
const Prefix = "/crmapi/rest/v2/"

// Config sets up an API.
type Config struct {
	Service *paytv.Service
	Logger  *slog.Logger
}

// API is the CRM provisioning-request API.
type API struct {
	svc *paytv.Service
	log *slog.Logger
	// paths maps every method path to its HTTP method, to tell a wrong
	// verb from an unknown path.
	paths map[string]string
}

// New returns the API over cfg.Service.
func New(cfg Config) (*API, error) {
	if cfg.Service == nil {
		return nil, errors.New("crmapi: Config.Service is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &API{svc: cfg.Service, log: cfg.Logger.With("component", "crmapi"), paths: map[string]string{}}, nil
}

// createMethod describes one POST method that creates a request.
type createMethod struct {
	path     string
	typ      paytv.RequestType
	takes    []string
	required []string
}

var (
	subscriptionsWS  = []string{"token", "subscription_identifier", "service_identifier", "smartcard_identifier", "process_immediately", "start_date", "scheduled_date", "priority"}
	subscriptionsSMS = []string{"token", "subscription_identifier", "service_identifier", "smartcard_identifier", "start_date"}
	subscriptionsReq = []string{"token", "subscription_identifier", "service_identifier", "smartcard_identifier"}
	pairingWS        = []string{"token", "subscription_identifier", "process_immediately", "scheduled_date", "priority", "smartcard_set", "stb_set"}
	pairingSMS       = []string{"token", "subscription_identifier", "smartcard_set", "stb_set"}
	pinDefault       = []string{"token", "subscription_identifier", "smartcard_identifier", "process_immediately", "scheduled_date", "priority"}
)

var createMethods = map[paytv.Provider][]createMethod{
	paytv.ConaxWebServices: {
		{"add_subscriptions", paytv.TypeAddSubscriptions, subscriptionsWS, subscriptionsReq},
		{"cancel_subscriptions", paytv.TypeCancelSubscriptions, subscriptionsWS, subscriptionsReq},
		{"create_pairing", paytv.TypeCreatePairing, pairingWS, []string{"token", "smartcard_set", "stb_set"}},
		{"add_to_existing_pairing", paytv.TypeAddToExistingPairing,
			[]string{"token", "subscription_identifier", "smartcard_identifier", "process_immediately", "scheduled_date", "priority", "smartcard_set", "stb_set"},
			[]string{"token", "smartcard_identifier"}},
		{"reset_pin_to_default_value", paytv.TypeResetPINToDefault, pinDefault, []string{"token", "subscription_identifier", "smartcard_identifier"}},
		{"reset_pin_to_given_value", paytv.TypeResetPINToGivenValue, append(append([]string{}, pinDefault...), "pin"),
			[]string{"token", "subscription_identifier", "smartcard_identifier", "pin"}},
	},
	paytv.ConaxSMSSAS: {
		{"add_subscriptions", paytv.TypeAddSubscriptions, subscriptionsSMS, subscriptionsReq},
		{"cancel_subscriptions", paytv.TypeCancelSubscriptions, subscriptionsSMS, subscriptionsReq},
		{"create_pairing", paytv.TypeCreatePairing, pairingSMS, []string{"token", "smartcard_set", "stb_set"}},
	},
}

var (
	showParams = []string{"token", "provisioning_request_identifier", "fields_set"}
	listParams = []string{"token", "type", "life_cycle_state", "reference_number", "number_of_results", "offset", "fields_set"}
)

// Mount adds the API's routes to mux.
func (a *API) Mount(mux *http.ServeMux) {
	a.route(mux, http.MethodPost, "authentication/token", a.login)
	a.route(mux, http.MethodPost, "authentication/web_api_key/token", a.loginWithKey)
	a.route(mux, http.MethodPost, "authentication/token/release", a.release)
	for _, provider := range []paytv.Provider{paytv.ConaxWebServices, paytv.ConaxSMSSAS} {
		base := string(provider) + "/provisioning_requests/"
		a.route(mux, http.MethodGet, base+"show", a.show(provider))
		a.route(mux, http.MethodGet, base+"list", a.list(provider))
		for _, m := range createMethods[provider] {
			a.route(mux, http.MethodPost, base+m.path, a.create(provider, m))
		}
	}
	mux.HandleFunc(Prefix, a.unknown)
}

func (a *API) route(mux *http.ServeMux, method, path string, h http.HandlerFunc) {
	a.paths[Prefix+path] = method
	mux.HandleFunc(method+" "+Prefix+path, h)
}

// unknown answers paths that are no method, and methods called with the
// wrong HTTP verb.
func (a *API) unknown(w http.ResponseWriter, r *http.Request) {
	if verb, ok := a.paths[r.URL.Path]; ok {
		w.Header().Set("Allow", verb)
		httpapi.WriteEnvelopeError(w, http.StatusMethodNotAllowed, CodeInvalidParameter, invalidParameterMessage,
			"this method is called with HTTP "+verb)
		return
	}
	httpapi.WriteEnvelopeError(w, http.StatusNotFound, CodeNotFound, messages[CodeNotFound],
		"no method at "+r.URL.Path)
}

// readBody reads a POST body within the size limit.
func readBody(r *http.Request) ([]byte, error) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, invalid("the body is too large")
		}
		return nil, invalid("the body could not be read")
	}
	return raw, nil
}

func (a *API) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token, err := func() (string, error) {
		raw, err := readBody(r)
		if err != nil {
			return "", err
		}
		b, err := parseBody(raw, []string{"username", "password", "organisation", "organization", "unit"})
		if err != nil {
			return "", err
		}
		var c paytv.Credentials
		if c.Username, err = b.str("username", true); err != nil {
			return "", err
		}
		if c.Password, err = b.str("password", true); err != nil {
			return "", err
		}
		org, err := b.str("organisation", false)
		if err != nil {
			return "", err
		}
		alt, err := b.str("organization", false)
		if err != nil {
			return "", err
		}
		switch {
		case org != "" && alt != "" && org != alt:
			return "", invalid("organisation and organization differ")
		case org == "" && alt == "":
			return "", missing("organisation is required")
		case org == "":
			org = alt
		}
		c.Organisation = org
		if c.Unit, err = b.str("unit", false); err != nil {
			return "", err
		}
		c.ClientAddress = clientAddress(r)
		return a.svc.Login(ctx, c)
	}()
	if err != nil {
		writeError(ctx, a.log, w, err)
		return
	}
	httpapi.WriteEnvelopeOK(w, map[string]string{"token": token})
}

// loginWithKey is the Web API key login: the key is the HTTP Basic user
// name, the password empty; the body, optional, may name the unit.
func (a *API) loginWithKey(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token, err := func() (string, error) {
		raw, err := readBody(r)
		if err != nil {
			return "", err
		}
		var c paytv.KeyCredentials
		if len(bytes.TrimSpace(raw)) > 0 {
			b, err := parseBody(raw, []string{"unit"})
			if err != nil {
				return "", err
			}
			if c.Unit, err = b.str("unit", false); err != nil {
				return "", err
			}
		}
		key, password, ok := r.BasicAuth()
		switch {
		case !ok || key == "":
			return "", missing("a Web API key is required, as the HTTP Basic user name with an empty password")
		case password != "":
			return "", invalid("the HTTP Basic password must be empty: the Web API key is the user name")
		}
		c.Key, c.ClientAddress = key, clientAddress(r)
		return a.svc.LoginWithKey(ctx, c)
	}()
	if err != nil {
		writeError(ctx, a.log, w, err)
		return
	}
	httpapi.WriteEnvelopeOK(w, map[string]string{"token": token})
}

func (a *API) release(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	err := func() error {
		raw, err := readBody(r)
		if err != nil {
			return err
		}
		b, err := parseBody(raw, []string{"token"})
		if err != nil {
			return err
		}
		token, err := b.str("token", true)
		if err != nil {
			return err
		}
		return a.svc.Release(ctx, token)
	}()
	if err != nil {
		writeError(ctx, a.log, w, err)
		return
	}
	httpapi.WriteEnvelopeOK(w, map[string]any{})
}

func (a *API) show(provider paytv.Provider) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		data, err := func() (any, error) {
			q, err := parseQuery(r.URL.RawQuery, showParams)
			if err != nil {
				return nil, err
			}
			sess, err := a.authenticate(r, q)
			if err != nil {
				return nil, err
			}
			ident, err := q.identifier("provisioning_request_identifier")
			if err != nil {
				return nil, err
			}
			fs, err := q.one("fields_set")
			if err != nil {
				return nil, err
			}
			fields, err := fieldsSet(fs)
			if err != nil {
				return nil, err
			}
			req, err := a.svc.Show(ctx, sess, provider, *ident)
			if err != nil {
				return nil, err
			}
			return project(req, fields)
		}()
		if err != nil {
			writeError(ctx, a.log, w, err)
			return
		}
		httpapi.WriteEnvelopeOK(w, data)
	}
}

func (a *API) list(provider paytv.Provider) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		data, err := func() (any, error) {
			q, err := parseQuery(r.URL.RawQuery, listParams)
			if err != nil {
				return nil, err
			}
			sess, err := a.authenticate(r, q)
			if err != nil {
				return nil, err
			}
			f, fields, err := listFilter(q)
			if err != nil {
				return nil, err
			}
			reqs, err := a.svc.List(ctx, sess, provider, f)
			if err != nil {
				return nil, err
			}
			out := make([]any, 0, len(reqs))
			for _, req := range reqs {
				p, err := project(req, fields)
				if err != nil {
					return nil, err
				}
				out = append(out, p)
			}
			return out, nil
		}()
		if err != nil {
			writeError(ctx, a.log, w, err)
			return
		}
		httpapi.WriteEnvelopeOK(w, data)
	}
}

// listFilter reads list's filters, paging and fields_set.
func listFilter(q query) (paytv.ListFilter, []string, error) {
	var f paytv.ListFilter
	typ, err := q.one("type")
	if err != nil {
		return f, nil, err
	}
	if typ != "" && !validType(paytv.RequestType(typ)) {
		return f, nil, invalid("type: unknown provisioning request type " + typ)
	}
	f.Type = paytv.RequestType(typ)
	state, err := q.one("life_cycle_state")
	if err != nil {
		return f, nil, err
	}
	switch paytv.LifeCycleState(state) {
	case "", paytv.Pending, paytv.Completed, paytv.Rejected:
	default:
		return f, nil, invalid("life_cycle_state must be PENDING, COMPLETED or REJECTED")
	}
	f.LifeCycleState = paytv.LifeCycleState(state)
	if f.ReferenceNumber, err = q.one("reference_number"); err != nil {
		return f, nil, err
	}
	if f.Type == "" && f.LifeCycleState == "" && f.ReferenceNumber == "" {
		return f, nil, missing("one of type, life_cycle_state and reference_number is required")
	}
	if f.Limit, err = q.count("number_of_results", defaultResults, maxResults); err != nil {
		return f, nil, err
	}
	if f.Offset, err = q.count("offset", 0, 1<<31-1); err != nil {
		return f, nil, err
	}
	fs, err := q.one("fields_set")
	if err != nil {
		return f, nil, err
	}
	fields, err := fieldsSet(fs)
	return f, fields, err
}

func validType(t paytv.RequestType) bool {
	for _, k := range paytv.AllRequestTypes {
		if k == t {
			return true
		}
	}
	return false
}

func (a *API) create(provider paytv.Provider, m createMethod) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		data, err := func() (any, error) {
			raw, err := readBody(r)
			if err != nil {
				return nil, err
			}
			b, err := parseBody(raw, m.takes)
			if err != nil {
				return nil, err
			}
			token, err := b.str("token", true)
			if err != nil {
				return nil, err
			}
			sess, err := a.svc.Authenticate(ctx, token)
			if err != nil {
				return nil, err
			}
			in, err := createInput(b, m)
			if err != nil {
				return nil, err
			}
			in.Provider = provider
			req, err := a.svc.Create(ctx, sess, in)
			if err != nil {
				return nil, err
			}
			return project(req, nil)
		}()
		if err != nil {
			writeError(ctx, a.log, w, err)
			return
		}
		httpapi.WriteEnvelopeOK(w, data)
	}
}

// createInput reads a create method's parameters.
func createInput(b body, m createMethod) (paytv.CreateInput, error) {
	in := paytv.CreateInput{Type: m.typ}
	for _, name := range m.required {
		if !b.has(name) {
			return in, missing(name + " is required")
		}
	}
	var err error
	if in.Subscription, err = b.identifier("subscription_identifier", false); err != nil {
		return in, err
	}
	if in.Service, err = b.identifier("service_identifier", false); err != nil {
		return in, err
	}
	if in.Smartcard, err = b.identifier("smartcard_identifier", false); err != nil {
		return in, err
	}
	if in.SmartcardSet, err = b.caIDSet("smartcard_set", "smartcard_ca_id"); err != nil {
		return in, err
	}
	if in.STBSet, err = b.caIDSet("stb_set", "stb_ca_id"); err != nil {
		return in, err
	}
	if m.typ == paytv.TypeAddToExistingPairing && len(in.SmartcardSet)+len(in.STBSet) == 0 {
		return in, missing("smartcard_set or stb_set is required")
	}
	if in.PIN, err = b.str("pin", false); err != nil {
		return in, err
	}
	in.ProcessImmediatelyGiven = b.has("process_immediately")
	if in.ProcessImmediately, err = b.boolean("process_immediately"); err != nil {
		return in, err
	}
	start, err := b.date("start_date")
	if err != nil {
		return in, err
	}
	scheduled, err := b.date("scheduled_date")
	if err != nil {
		return in, err
	}
	if start != nil && scheduled != nil && !start.Equal(*scheduled) {
		return in, invalid("start_date and scheduled_date differ; give one")
	}
	in.ScheduledAt = scheduled
	if in.ScheduledAt == nil {
		in.ScheduledAt = start
	}
	priority, err := b.str("priority", false)
	if err != nil {
		return in, err
	}
	switch paytv.Priority(priority) {
	case "", paytv.Regular, paytv.Express:
		in.Priority = paytv.Priority(priority)
	default:
		return in, invalid("priority must be REGULAR or EXPRESS")
	}
	return in, nil
}

func (a *API) authenticate(r *http.Request, q query) (*paytv.Session, error) {
	token, err := q.one("token")
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, missing("token is required")
	}
	return a.svc.Authenticate(r.Context(), token)
}

// clientAddress is the caller's IP address, for login rate limits.
// Forwarding headers are not trusted: behind a proxy every client shares
// the proxy's limit.
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return strings.TrimSpace(r.RemoteAddr)
	}
	return host
}
