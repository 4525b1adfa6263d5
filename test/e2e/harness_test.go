package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/provhub/provhub/api"
	"github.com/provhub/provhub/internal/console"
	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/engine/enginetest"
	"github.com/provhub/provhub/internal/httpapi"
	"github.com/provhub/provhub/internal/hub"
	"github.com/provhub/provhub/internal/issuer"
	"github.com/provhub/provhub/internal/partner"
	"github.com/provhub/provhub/internal/paytv"
	"github.com/provhub/provhub/internal/reqsign"
	"github.com/provhub/provhub/internal/sealed"
	cassim "github.com/provhub/provhub/internal/sim/cas"
	simtes "github.com/provhub/provhub/internal/sim/tes"
	simwallet "github.com/provhub/provhub/internal/sim/wallet"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
	"github.com/provhub/provhub/internal/transit"
)

// clock is real time moved forward by an offset the test controls, so
// that timers and leases keep working while scheduled dates come due.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is a running hub with its CAS and wallet-server simulators.
type env struct {
	t       *testing.T
	hub     *hub.Hub
	sim     *cassim.Simulator
	wsim    *simwallet.Simulator
	clock   *clock
	url     string
	logs    *syncBuffer
	crm     *specClient
	transit *specClient
	issuer  *specClient
	device  *specClient
	tsim    *simtes.Simulator
	hubCfg  hub.Config
	stop    func()
	// tesPartner and walletPartner are the test's TES and wallet server,
	// registered as partners for the issuers the tests use.
	tesPartner, walletPartner partnerCreds
}

// partnerCreds are a partner's id and signing secret.
type partnerCreds struct{ id, secret string }

// testIssuers are the issuers the test partners act for.
var testIssuers = []string{"TRANSIT1", "TRANSIT2", "ISSUER0001", "ISSUER0002"}

type envOptions struct {
	dialect      store.Dialect
	maxWorkers   int
	sendAttempts int
	casTimeout   time.Duration
	// walletTaskDelay is how long the wallet simulator keeps a task
	// PROCESSING [5ms].
	walletTaskDelay time.Duration
	// inlinePollFor is transit's InlinePollFor [its default].
	inlinePollFor time.Duration
	// purgeInterval is how often old consumer operations are removed [1h].
	purgeInterval time.Duration
	// deviceTTL bounds a device operation, in the hub and the TES [2m].
	deviceTTL time.Duration
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	logs := &syncBuffer{}
	// As provhub serve logs: every record made with a request's context
	// carries its correlation id.
	logger := slog.New(httpapi.LogHandler(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	e := &env{t: t, clock: &clock{}, logs: logs}
	sim, err := cassim.New(cassim.Config{Logger: logger, Seed: 7, Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.sim = sim
	casSrv := httptest.NewServer(sim)
	t.Cleanup(casSrv.Close)
	if o.walletTaskDelay == 0 {
		o.walletTaskDelay = 5 * time.Millisecond
	}
	wsim, err := simwallet.New(simwallet.Config{Logger: logger, TaskDelay: o.walletTaskDelay, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	e.wsim = wsim
	walletURL := newSpecProxy(t, wsim, "wallet.yaml")
	if o.dialect == 0 {
		o.dialect = store.SQLite
	}
	if o.maxWorkers == 0 {
		o.maxWorkers = 20
	}
	if o.sendAttempts == 0 {
		o.sendAttempts = 4
	}
	if o.casTimeout == 0 {
		o.casTimeout = 2 * time.Second
	}
	if o.deviceTTL == 0 {
		o.deviceTTL = 2 * time.Minute
	}
	tsim, err := simtes.New(simtes.Config{Logger: logger, Clock: e.clock.Now, SessionTTL: o.deviceTTL, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	e.tsim = tsim
	tesURL := newSpecProxy(t, tsim, "tes.yaml") + "/tes/devicegtwapi/1/0"
	e.hubCfg = hub.Config{
		SecretKey:   sealed.NewKey(),
		DatabaseURL: storetest.NewURL(t, o.dialect), Migrate: true, Logger: logger, Clock: e.clock.Now,
		MaxWorkers: o.maxWorkers, CASURL: casSrv.URL, CASTimeout: o.casTimeout,
		WalletURL: walletURL, Pod: "hub-test-pod", WalletTimeout: o.casTimeout,
		TESURL: tesURL, TESTimeout: o.casTimeout, DeviceOperationTTL: o.deviceTTL,
		TransitTuning: func(c *transit.Config) {
			c.Attempts = o.sendAttempts
			c.RetryBackoff = func(int) time.Duration { return 50 * time.Millisecond }
			c.PollSchedule = []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond}
			c.TESRetryWait, c.TESRetryFor = 20*time.Millisecond, 60*time.Millisecond
			if o.inlinePollFor != 0 {
				c.InlinePollFor = o.inlinePollFor
			}
		},
		IssuerTuning: func(c *issuer.Config) {
			c.PollSchedule = []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond}
			c.PurgeInterval = o.purgeInterval
		},
		ConsoleTuning: func(c *console.Config) {
			c.PasswordCost = 4
		},
		EngineTuning: func(c *engine.Config) {
			c.FetchPollInterval = 20 * time.Millisecond
		},
		PayTVTuning: func(c *paytv.Config) {
			c.SendAttempts = o.sendAttempts
			c.PasswordCost = 4 // bcrypt's cheapest: the tests check logins, not bcrypt
			c.SendTimeout = o.casTimeout
			c.RetryBackoff = func(int) time.Duration { return 50 * time.Millisecond }
			c.ImmediateWait = 10 * time.Second
		},
	}
	e.startHub()
	t.Cleanup(func() { e.stopHub() })
	e.tesPartner = e.addPartner("tes-test", partner.RoleTES, testIssuers...)
	e.walletPartner = e.addPartner("wallet-test", partner.RoleWallet, testIssuers...)
	e.wsim.SetPartner(e.walletPartner.id, e.walletPartner.secret)
	e.loadReferenceData()
	t.Cleanup(wsim.Wait)
	return e
}

// startHub starts a hub on the environment's database and points the
// clients, and the simulated devices, at it.
func (e *env) startHub() {
	t := e.t
	t.Helper()
	h, err := hub.New(context.Background(), e.hubCfg)
	if err != nil {
		t.Fatal(err)
	}
	e.hub = h
	ctx, cancel := context.WithCancel(context.Background())
	if err := h.Engine().Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Issuer().SchedulePurge(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.Handler())
	e.url = srv.URL
	e.stop = func() {
		srv.Close()
		stopCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
		defer stop()
		if err := h.Engine().Stop(stopCtx); err != nil {
			t.Errorf("stop engine: %v", err)
		}
		cancel()
		h.Close()
	}
	e.crm = newSpecClient(t, srv.URL, "crm.yaml", "/crmapi/rest/v2")
	e.transit = newSpecClient(t, srv.URL, "transit.yaml", "")
	e.transit.sign = e.signAsPartner
	e.issuer = newSpecClient(t, srv.URL, "issuer.yaml", "")
	e.device = newSpecClient(t, srv.URL, "device.yaml", "/tsh/deviceapi/1/0")
	// The simulated devices call back the pod that redirected them, here
	// through a proxy that checks their calls and the hub's answers
	// against api/device.yaml.
	deviceURL := newSpecProxy(t, h.Handler(), "device.yaml")
	e.wsim.SetPodURL(e.hubCfg.Pod, deviceURL)
	e.wsim.SetHubURL(deviceURL) // for a device no pod has called yet (reader mode)
	// The wallet server's own calls (checkCardAccount, getAsset,
	// provisionCard), checked against api/transit.yaml.
	e.wsim.SetWalletAPIURL(newSpecProxy(t, h.Handler(), "transit.yaml"))
}

// stopHub stops the hub as provhub serve does on SIGTERM.
func (e *env) stopHub() {
	if e.stop != nil {
		e.stop()
		e.stop = nil
	}
}

// addPartner registers a signing partner on the hub.
func (e *env) addPartner(id string, role partner.Role, issuers ...string) partnerCreds {
	e.t.Helper()
	secret, err := e.hub.Partners().Add(context.Background(), partner.NewPartner{ID: id, Role: role, Issuers: issuers, Signing: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return partnerCreds{id: id, secret: secret}
}

// signAsPartner signs the transit calls as the partner whose role the
// path is for: the wallet server's calls as it, the TES's as it, and the
// device API's getDeviceCommands not at all (it carries a device token).
func (e *env) signAsPartner(req *http.Request, body []byte) {
	switch p := req.URL.Path; {
	case strings.HasPrefix(p, "/tsh/wsapi/"), strings.HasSuffix(p, "/startReaderMode"):
		reqsign.Sign(req, body, e.walletPartner.id, e.walletPartner.secret, e.clock.Now())
	case strings.HasPrefix(p, "/tsh/transitapi/"):
		reqsign.Sign(req, body, e.tesPartner.id, e.tesPartner.secret, e.clock.Now())
	}
}

// restartHub stops the hub and starts a new one on the same database.
func (e *env) restartHub() {
	e.stopHub()
	e.startHub()
}

// both runs fn on a fresh environment per backend; the quick loop
// (-short) runs it on SQLite alone, and the store and engine packages'
// own tests keep both backends in that loop.
func both(t *testing.T, o envOptions, fn func(t *testing.T, e *env)) {
	backends := storetest.Backends
	if testing.Short() {
		backends = []store.Dialect{store.SQLite}
	}
	for _, d := range backends {
		t.Run(d.String(), func(t *testing.T) {
			o := o
			o.dialect = d
			fn(t, newEnv(t, o))
		})
	}
}

func (e *env) loadReferenceData() {
	t := e.t
	t.Helper()
	raw, err := os.ReadFile("testdata/crm-reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref paytv.ReferenceData
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := e.hub.PayTV().Import(ctx, ref); err != nil {
		t.Fatal(err)
	}
	var cards, stbs []string
	for _, c := range ref.Smartcards {
		if c.SerialNumber != "sc-unknown-to-cas" {
			cards = append(cards, c.CAID)
		}
	}
	for _, b := range ref.STBs {
		stbs = append(stbs, b.CAID)
	}
	e.sim.AddDevices(cards, stbs)
	for _, u := range []paytv.NewUser{
		{Organisation: "CRMDEMO", Username: "mpadministrator", Password: "mp-admin-1234", PersonName: "MP Administrator"},
		{Organisation: "CRMDEMO", Username: "operator", Password: "op-secret"},
		{Organisation: "OTHERORG", Username: "mpadministrator", Password: "other-org-pass"},
	} {
		if err := e.hub.PayTV().AddUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
}

// newSpecProxy serves h behind a proxy that checks every request it gets,
// and every HTTP 200 answer, against an OpenAPI document: the hub's calls
// to a simulator are validated as the tests' own calls are.
func newSpecProxy(t *testing.T, h http.Handler, doc string) string {
	t.Helper()
	raw, err := api.Files.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	loader := openapi3.NewLoader()
	spec, err := loader.LoadFromData(raw)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var router routers.Router
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		rt := router
		mu.Unlock()
		// A server sees only the path; the router matches whole URLs.
		full := r.Clone(r.Context())
		full.URL.Scheme, full.URL.Host = "http", r.Host
		full.Body = io.NopCloser(bytes.NewReader(body))
		route, params, err := rt.FindRoute(full)
		if err != nil {
			t.Errorf("%s %s: not in %s", r.Method, r.URL.Path, doc)
			http.Error(w, "not in the document", http.StatusNotFound)
			return
		}
		in := &openapi3filter.RequestValidationInput{Request: full, PathParams: params, Route: route,
			Options: &openapi3filter.Options{MultiError: true, AuthenticationFunc: bearerPresent}}
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("%s %s: the hub's request does not conform to %s: %v", r.Method, r.URL.Path, doc, err)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		// Answers broken on purpose by a fault knob are not JSON; every other
		// HTTP 200 answer must conform.
		if rec.Code == http.StatusOK && json.Valid(rec.Body.Bytes()) {
			out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
				Body: io.NopCloser(bytes.NewReader(rec.Body.Bytes())), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
			if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
				t.Errorf("%s %s: the simulator's answer does not conform to %s: %v", r.Method, r.URL.Path, doc, err)
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(srv.Close)
	// Keep the document's base path (e.g. /tes/devicegtwapi/1/0).
	base := ""
	if len(spec.Servers) > 0 && strings.HasPrefix(spec.Servers[0].URL, "/") {
		base = strings.TrimRight(spec.Servers[0].URL, "/")
	}
	spec.Servers = openapi3.Servers{{URL: srv.URL + base}}
	rt, err := legacy.NewRouter(spec)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	router = rt
	mu.Unlock()
	return srv.URL
}

// specClient calls one API and checks every request and response against
// its OpenAPI document.
type specClient struct {
	t      *testing.T
	base   string
	prefix string
	router routers.Router
	http   *http.Client
	// sign, when set, adds a partner's signature to each request.
	sign func(req *http.Request, body []byte)
}

func newSpecClient(t *testing.T, serverURL, doc, prefix string) *specClient {
	t.Helper()
	raw, err := api.Files.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	loader := openapi3.NewLoader()
	spec, err := loader.LoadFromData(raw)
	if err != nil {
		t.Fatalf("load %s: %v", doc, err)
	}
	if err := spec.Validate(loader.Context); err != nil {
		t.Fatalf("%s is not a valid OpenAPI document: %v", doc, err)
	}
	spec.Servers = openapi3.Servers{{URL: serverURL + prefix}}
	router, err := legacy.NewRouter(spec)
	if err != nil {
		t.Fatal(err)
	}
	return &specClient{t: t, base: serverURL + prefix, prefix: prefix, router: router, http: &http.Client{Timeout: 30 * time.Second}}
}

// specRule says what the request must be with respect to the document.
type specRule int

const (
	conforming    specRule = iota // a request a client is allowed to send
	nonConforming                 // bad input on purpose: the document must refuse it too
)

// envelope is a CRM answer.
type envelope struct {
	Status struct {
		Code        string  `json:"code"`
		Message     *string `json:"message"`
		Description *string `json:"description"`
	} `json:"status"`
	Data json.RawMessage `json:"data"`
	HTTP int             `json:"-"`
	Raw  string          `json:"-"`
}

func (c *specClient) do(rule specRule, method, path, rawQuery string, body []byte) envelope {
	c.t.Helper()
	status, raw := c.call(rule, method, path, rawQuery, body)
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		c.t.Fatalf("%s %s: answer is not an envelope (HTTP %d): %s", method, path, status, raw)
	}
	env.HTTP, env.Raw = status, string(raw)
	return env
}

// call sends one request, checks it and its answer against the document,
// and returns the HTTP status and body.
func (c *specClient) call(rule specRule, method, path, rawQuery string, body []byte) (int, []byte) {
	c.t.Helper()
	var hdr http.Header
	if body != nil {
		hdr = http.Header{"Content-Type": {"application/json"}}
	}
	status, _, raw := c.send(rule, method, path, rawQuery, body, hdr)
	return status, raw
}

// send is call with the request's headers given, and the answer's too.
func (c *specClient) send(rule specRule, method, path, rawQuery string, body []byte, hdr http.Header) (int, http.Header, []byte) {
	c.t.Helper()
	u := c.base + path
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if c.sign != nil && req.Header.Get(reqsign.HeaderSignature) == "" {
		c.sign(req, body)
	}
	ctx := context.Background()
	route, params, routeErr := c.router.FindRoute(req)
	var in *openapi3filter.RequestValidationInput
	if routeErr == nil {
		in = &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{MultiError: true, AuthenticationFunc: bearerPresent}}
		valErr := openapi3filter.ValidateRequest(ctx, in)
		switch {
		case rule == conforming && valErr != nil:
			c.t.Errorf("%s %s: the request does not conform to the API document: %v", method, path, valErr)
		case rule == nonConforming && valErr == nil:
			c.t.Errorf("%s %s: the API document accepts a request the test sends as bad input", method, path)
		}
		// The checker writes the document's defaults into the body it read
		// (and its length and GetBody); the hub must get the body the test
		// sent, so that its own defaults are what is tested.
		resetBody(req, body)
	} else if rule == conforming {
		c.t.Errorf("%s %s: not in the API document: %v", method, path, routeErr)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if in != nil {
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode,
			Header: resp.Header, Body: io.NopCloser(bytes.NewReader(raw)),
			Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			c.t.Errorf("%s %s: the answer does not conform to the API document: %v\n%s", method, path, err, raw)
		}
	}
	return resp.StatusCode, resp.Header, raw
}

// resetBody gives req body again, with its length and a GetBody that
// returns it, whatever a checker made of them.
func resetBody(req *http.Request, body []byte) {
	if len(body) == 0 {
		req.Body, req.ContentLength, req.GetBody = http.NoBody, 0, nil
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
}

// bearerPresent is the document's security check: a bearer scheme needs an
// Authorization header carrying a bearer token (whether the token is good
// is the hub's business, not the document's).
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if s := in.SecurityScheme; s != nil && s.Type == "http" && s.Scheme == "basic" {
		if _, _, ok := in.RequestValidationInput.Request.BasicAuth(); !ok {
			return errors.New("no Basic credential")
		}
		return nil
	}
	if s := in.SecurityScheme; s != nil && s.Type == "apiKey" && s.In == "header" {
		// A partner's signature: present, whether it verifies is the hub's business.
		if in.RequestValidationInput.Request.Header.Get(s.Name) == "" {
			return fmt.Errorf("no %s header", s.Name)
		}
		return nil
	}
	if in.SecurityScheme == nil || in.SecurityScheme.Type != "http" || in.SecurityScheme.Scheme != "bearer" {
		return fmt.Errorf("unexpected security scheme %s", in.SecuritySchemeName)
	}
	scheme, tok, ok := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return errors.New("no bearer token")
	}
	return nil
}

func (c *specClient) post(rule specRule, path string, body any) envelope {
	c.t.Helper()
	raw, ok := body.([]byte)
	if !ok {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			c.t.Fatal(err)
		}
	}
	return c.do(rule, http.MethodPost, path, "", raw)
}

func (c *specClient) get(rule specRule, path string, q url.Values) envelope {
	c.t.Helper()
	return c.do(rule, http.MethodGet, path, q.Encode(), nil)
}

// ok fails the test unless the answer is OK, and decodes its data.
func (env envelope) ok(t *testing.T, into any) {
	t.Helper()
	if env.Status.Code != "OK" || env.HTTP != http.StatusOK {
		t.Fatalf("want OK, got HTTP %d %s", env.HTTP, env.Raw)
	}
	if into != nil {
		if err := json.Unmarshal(env.Data, into); err != nil {
			t.Fatalf("decode data: %v (%s)", err, env.Data)
		}
	}
}

// code fails the test unless the answer carries code with null data.
func (env envelope) code(t *testing.T, code string) {
	t.Helper()
	if env.Status.Code != code {
		t.Fatalf("want %s, got HTTP %d %s", code, env.HTTP, env.Raw)
	}
	if code != "OK" && (string(env.Data) != "null" || env.Status.Description == nil || *env.Status.Description == "") {
		t.Fatalf("a %s answer must have null data and a description: %s", code, env.Raw)
	}
}

func (e *env) login(user, password string) string {
	e.t.Helper()
	var data struct{ Token string }
	e.crm.post(conforming, "/authentication/token", map[string]string{
		"username": user, "password": password, "organisation": "CRMDEMO"}).ok(e.t, &data)
	return data.Token
}

// request is the part of a provisioning request the tests read.
type request struct {
	ID                       string  `json:"id"`
	Number                   string  `json:"number"`
	Type                     string  `json:"type"`
	SequenceNumber           *int64  `json:"sequence_number"`
	ScheduledDate            string  `json:"scheduled_date"`
	ExecutedDate             *string `json:"executed_date"`
	Priority                 string  `json:"priority"`
	ProcessImmediately       *int    `json:"process_immediately"`
	LifeCycleState           string  `json:"life_cycle_state"`
	Request                  *string `json:"request"`
	Response                 *string `json:"response"`
	ReferenceNumber          *string `json:"reference_number"`
	ErrorCode                *string `json:"error_code"`
	ErrorDescription         *string `json:"error_description"`
	ProviderErrorCode        *string `json:"provider_error_code"`
	ProviderErrorDescription *string `json:"provider_error_description"`
	LogInformation           struct {
		CreatedByUser struct{ Username string } `json:"created_by_user"`
		CreatedByUnit struct{ Name string }     `json:"created_by_unit"`
	} `json:"log_information"`
	ParametersSet []map[string]*string `json:"parameters_set"`
}

func (e *env) create(provider, method string, body map[string]any) request {
	e.t.Helper()
	var r request
	e.crm.post(conforming, "/"+provider+"/provisioning_requests/"+method, body).ok(e.t, &r)
	return r
}

func (e *env) show(provider, token, id string) request {
	e.t.Helper()
	var r request
	e.crm.get(conforming, "/"+provider+"/provisioning_requests/show", url.Values{
		"token": {token}, "provisioning_request_identifier": {"id=" + id}}).ok(e.t, &r)
	return r
}

// waitFinal polls show until the request leaves PENDING.
func (e *env) waitFinal(provider, token, id string) request {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := e.show(provider, token, id)
		if r.LifeCycleState != "PENDING" {
			return r
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("request %s still PENDING after 20s", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// jobOf returns the engine job of a provisioning request.
func (e *env) jobOf(id string) *engine.JobRow {
	e.t.Helper()
	return enginetest.RequireUnique[paytv.SendArgs](e.t, e.hub.Engine(), paytv.SendJobKey(id)).JobRow
}

func str(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func contains(haystack, needle string) bool { return strings.Contains(haystack, needle) }

// waitFor polls cond until it holds, failing the test after 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
