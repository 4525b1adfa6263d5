// Package hub assembles the provhub server: it opens the store, checks or
// applies migrations, starts the job engine, mounts the APIs and serves HTTP
// until its context ends, then shuts down in order (stop accepting, drain
// jobs, release leases, close the database).
package hub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/provhub/provhub/api"
	"github.com/provhub/provhub/internal/apiref"
	"github.com/provhub/provhub/internal/asset"
	"github.com/provhub/provhub/internal/cardaccount"
	"github.com/provhub/provhub/internal/cas"
	"github.com/provhub/provhub/internal/console"
	"github.com/provhub/provhub/internal/crmapi"
	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/httpapi"
	"github.com/provhub/provhub/internal/issuer"
	"github.com/provhub/provhub/internal/issuerapi"
	"github.com/provhub/provhub/internal/oauth"
	"github.com/provhub/provhub/internal/outcome"
	"github.com/provhub/provhub/internal/partner"
	"github.com/provhub/provhub/internal/paytv"
	"github.com/provhub/provhub/internal/retention"
	"github.com/provhub/provhub/internal/sealed"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/tes"
	"github.com/provhub/provhub/internal/transit"
	"github.com/provhub/provhub/internal/transitapi"
	"github.com/provhub/provhub/internal/wallet"
)

// Config sets up a Hub.
type Config struct {
	// Listen is the HTTP address, e.g. 127.0.0.1:8080.
	Listen string
	// DatabaseURL is sqlite:PATH or postgres://...
	DatabaseURL string
	// Migrate applies pending migrations at start; when false a schema that
	// is behind is an error.
	Migrate bool
	// ShutdownTimeout bounds the drain of in-flight requests and jobs.
	ShutdownTimeout time.Duration
	// MaxWorkers bounds the jobs run at once by this instance.
	MaxWorkers int
	Logger     *slog.Logger
	// Clock tells the time to the engine and the domains [time.Now].
	Clock func() time.Time

	// CASURL is the address of the conditional-access system (provhub's CAS
	// protocol); CASTimeout bounds one call to it [10s].
	CASURL     string
	CASTimeout time.Duration
	// CASRetryFor and WalletRetryFor are how long a request or a wallet
	// task keeps retrying an unavailable CAS or wallet server, from its
	// first failure, before it is given up [10m each].
	CASRetryFor, WalletRetryFor time.Duration
	// TESRetryFor is how long one step of a device operation keeps asking
	// an unavailable TES before the device is told to repeat it [2s]; the
	// operation rides out a TES outage until DeviceOperationTTL.
	TESRetryFor time.Duration
	// CRMTokenIdle ends a CRM session unused this long [1h].
	CRMTokenIdle time.Duration

	// WalletURL is the wallet server; Pod names this instance in its x-pod
	// header [the host name]; WalletTimeout bounds one call [10s].
	WalletURL     string
	Pod           string
	WalletTimeout time.Duration
	// WalletPoll is the longest wait before a wallet task's first
	// getTaskStatus (transit learns a shorter one while tasks end sooner);
	// the later waits grow from it as the default schedule does (x2, x5,
	// x10, x20, then every x50) [100ms].
	WalletPoll time.Duration
	// TESURL is the transit entity server's device gateway
	// (.../tes/devicegtwapi/1/0); TESTimeout bounds one call [10s];
	// DeviceOperationTTL bounds a top-up, park or reader-mode loop [2m].
	TESURL             string
	TESTimeout         time.Duration
	DeviceOperationTTL time.Duration
	// DeviceOperationsPerSE bounds the device operations started on one
	// secure element in 10 minutes [10].
	DeviceOperationsPerSE int
	// TransitTuning adjusts the transit domain's configuration (tests).
	TransitTuning func(*transit.Config)

	// IssuerAudiences are the aud values an issuer's assertion may carry
	// (an assertion without aud is accepted too) ["provhub"].
	IssuerAudiences []string
	// OperationRetention is how long consumer operations are kept [90 days].
	OperationRetention time.Duration
	// DeviceOperationRetention, CRMRequestRetention and
	// ConsoleActionRetention are how long ended device operations (with
	// their relay steps), finished provisioning requests and operators'
	// recorded actions are kept [30 days, 180 days, 365 days].
	DeviceOperationRetention, CRMRequestRetention, ConsoleActionRetention time.Duration
	// RetentionTuning adjusts the retention job's configuration (tests).
	RetentionTuning func(*retention.Config)
	// IssuerTuning adjusts the issuer domain's configuration (tests).
	IssuerTuning func(*issuer.Config)
	// ConsoleSecureCookie marks the console's session cookie Secure (set it
	// when the hub is reached over HTTPS).
	ConsoleSecureCookie bool
	// ConsoleTuning adjusts the operator console's configuration (tests).
	ConsoleTuning func(*console.Config)

	// Version is shown on the front door (GET /).
	Version string
	// SecretKey seals the keys and secrets provhub keeps in its database
	// (required): its signing keys, partners' request-signing secrets.
	SecretKey *sealed.Key

	// PartnerListen, when set, is the address of a listener that serves
	// the partner-facing routes (transit, wallet-server and device calls,
	// and the health checks) and nothing else; Listen then serves every
	// other route and no partner route.
	PartnerListen string
	// MetricsListen, when set, is the only address that serves /metrics.
	MetricsListen string
	// TLS, when set, makes every listener speak HTTPS with it. With
	// ClientCAs set, partners may present client certificates, verified
	// against them (on the partner listener when there is one).
	TLS *tls.Config

	// EngineTuning and PayTVTuning, when set, adjust the engine's and the
	// pay-TV domain's configuration before use (tests shorten intervals).
	EngineTuning func(*engine.Config)
	PayTVTuning  func(*paytv.Config)
}

// Hub is a configured provhub server.
type Hub struct {
	cfg      Config
	log      *slog.Logger
	db       *store.DB
	engine   *engine.Engine
	paytv    *paytv.Service
	transit  *transit.Service
	issuer   *issuer.Service
	assets   *asset.Store
	accounts *cardaccount.Service
	// downstream is what the last probe of the systems the hub calls found.
	downstream *downstream
	oauth      *oauth.Server
	partners   *partner.Registry
	retention  *retention.Service
	console    *console.Console
	registry   *prometheus.Registry
	handler    http.Handler
	listener   net.Listener
	// partnerHandler and metricsHandler serve PartnerListen and
	// MetricsListen; their listeners are bound by Listen.
	partnerHandler, metricsHandler   http.Handler
	partnerListener, metricsListener net.Listener
}

// New opens the database, migrates (or checks the schema) and builds the
// engine and the HTTP handler. Nothing runs until Run.
func New(ctx context.Context, cfg Config) (*Hub, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	if cfg.SecretKey == nil {
		return nil, errors.New("hub: Config.SecretKey is required")
	}
	db, err := store.Open(ctx, store.Config{URL: cfg.DatabaseURL})
	if err != nil {
		return nil, err
	}
	h := &Hub{cfg: cfg, log: cfg.Logger, db: db, registry: prometheus.NewRegistry()}
	if err := h.prepareSchema(ctx); err != nil {
		db.Close()
		return nil, err
	}
	h.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	// The engine first, with the registry in which each service registers
	// its job kinds as it is made: no service exists without its engine.
	// Nothing runs before Run starts it.
	jobs := engine.NewRegistry()
	engCfg := engine.Config{
		DB: db, Registry: jobs, Logger: cfg.Logger, Metrics: h.registry, MaxWorkers: cfg.MaxWorkers, Clock: cfg.Clock,
	}
	if cfg.EngineTuning != nil {
		cfg.EngineTuning(&engCfg)
	}
	if h.engine, err = engine.New(engCfg); err != nil {
		db.Close()
		return nil, err
	}
	casClient, err := cas.NewClient(cas.ClientConfig{BaseURL: cfg.CASURL, Timeout: cfg.CASTimeout})
	if err != nil {
		h.close()
		return nil, err
	}
	h.partners, err = partner.New(partner.Config{DB: db, SecretKey: cfg.SecretKey, Logger: cfg.Logger, Clock: cfg.Clock})
	if err != nil {
		h.close()
		return nil, err
	}
	// The flags' CAS and TES serve every organisation and issuer that has
	// no partner of its own registered to be called.
	south := &southbound{partners: h.partners, clock: cfg.Clock, tes: map[string]*tes.Client{}, cas: map[string]*cas.Client{}, defC: casClient}
	outcomes := outcome.New(h.registry)
	payCfg := paytv.Config{DB: db, Engine: h.engine, Jobs: jobs, CAS: casClient, CASFor: south.casFor, Logger: cfg.Logger, Outcomes: outcomes, Clock: cfg.Clock, TokenIdle: cfg.CRMTokenIdle,
		SendRetryFor: cfg.CASRetryFor}
	if cfg.PayTVTuning != nil {
		cfg.PayTVTuning(&payCfg)
	}
	h.paytv, err = paytv.New(payCfg)
	if err != nil {
		h.close()
		return nil, err
	}
	if cfg.Pod == "" {
		cfg.Pod, _ = os.Hostname()
		if cfg.Pod == "" {
			cfg.Pod = "provhub"
		}
	}
	walletClient, err := wallet.NewClient(wallet.ClientConfig{BaseURL: cfg.WalletURL, Pod: cfg.Pod, Timeout: cfg.WalletTimeout, Clock: cfg.Clock})
	if err != nil {
		h.close()
		return nil, err
	}
	actor := cfg.Pod
	if len(actor) > 32 {
		actor = actor[:32]
	}
	tesClient, err := tes.NewClient(tes.ClientConfig{BaseURL: cfg.TESURL, Actor: actor, Timeout: cfg.TESTimeout, Clock: cfg.Clock})
	if err != nil {
		h.close()
		return nil, err
	}
	south.defT, south.actor = tesClient, actor
	h.downstream = newDownstream(map[string]string{"cas": cfg.CASURL, "wallet server": cfg.WalletURL, "tes": cfg.TESURL})
	h.assets = asset.New(db, cfg.Clock)
	trCfg := transit.Config{DB: db, Engine: h.engine, Jobs: jobs, Wallet: walletClient, Assets: h.assets, TES: tesRouter{south}, Logger: cfg.Logger, Outcomes: outcomes, Clock: cfg.Clock, OperationTTL: cfg.DeviceOperationTTL, OperationsPerSE: cfg.DeviceOperationsPerSE,
		DeviceTokenKey: cfg.SecretKey.Derive("device-token"), RetryFor: cfg.WalletRetryFor, TESRetryFor: cfg.TESRetryFor,
		PollSchedule: pollSchedule(cfg.WalletPoll)}
	if cfg.TransitTuning != nil {
		cfg.TransitTuning(&trCfg)
	}
	h.transit, err = transit.New(trCfg)
	if err != nil {
		h.close()
		return nil, err
	}
	isCfg := issuer.Config{DB: db, Engine: h.engine, Jobs: jobs, Transit: h.transit, Assets: h.assets, Logger: cfg.Logger, Outcomes: outcomes, Clock: cfg.Clock, OperationRetention: cfg.OperationRetention}
	if cfg.IssuerTuning != nil {
		cfg.IssuerTuning(&isCfg)
	}
	h.issuer, err = issuer.New(isCfg)
	if err != nil {
		h.close()
		return nil, err
	}
	h.accounts, err = cardaccount.New(cardaccount.Config{DB: db, Key: cfg.SecretKey, Issuers: h.issuer, Clock: cfg.Clock})
	if err != nil {
		h.close()
		return nil, err
	}
	h.oauth, err = oauth.New(oauth.Config{DB: db, Logger: cfg.Logger, Clock: cfg.Clock, Audiences: cfg.IssuerAudiences,
		SecretKey: cfg.SecretKey})
	if err != nil {
		h.close()
		return nil, err
	}
	retCfg := retention.Config{DB: db, Engine: h.engine, Jobs: jobs, Logger: cfg.Logger, Clock: cfg.Clock, Purgers: []retention.Purger{
		{Name: "device operations", Retention: cfg.DeviceOperationRetention, Purge: h.transit.PurgeOperations},
		{Name: "provisioning requests", Retention: cfg.CRMRequestRetention, Purge: h.paytv.PurgeRequests},
		{Name: "console actions", Retention: cfg.ConsoleActionRetention,
			Purge: func(ctx context.Context, tx *store.Tx, cutoff time.Time) (int64, error) {
				return h.console.PurgeActions(ctx, tx, cutoff)
			}},
	}}
	if cfg.RetentionTuning != nil {
		cfg.RetentionTuning(&retCfg)
	}
	if h.retention, err = retention.New(retCfg); err != nil {
		h.close()
		return nil, err
	}
	crm, err := crmapi.New(crmapi.Config{Service: h.paytv, Logger: cfg.Logger})
	if err != nil {
		h.close()
		return nil, err
	}
	tapi, err := transitapi.New(transitapi.Config{Service: h.transit, Accounts: h.accounts, Assets: h.assets, Partners: h.partners, Logger: cfg.Logger, Clock: cfg.Clock})
	if err != nil {
		h.close()
		return nil, err
	}
	iapi, err := issuerapi.New(issuerapi.Config{Service: h.issuer, Accounts: h.accounts, Assets: h.assets, OAuth: h.oauth, Logger: cfg.Logger})
	if err != nil {
		h.close()
		return nil, err
	}
	conCfg := console.Config{DB: db, Engine: h.engine, PayTV: h.paytv, Issuer: h.issuer, Transit: h.transit, Assets: h.assets, Logger: cfg.Logger, Clock: cfg.Clock,
		SecureCookie: cfg.ConsoleSecureCookie}
	if cfg.ConsoleTuning != nil {
		cfg.ConsoleTuning(&conCfg)
	}
	h.console, err = console.New(conCfg)
	if err != nil {
		h.close()
		return nil, err
	}
	ready := map[string]httpapi.ReadyCheck{
		"database": func(ctx context.Context) error {
			if err := db.Ping(ctx); err != nil {
				return err
			}
			return db.CheckSchema(ctx)
		},
	}
	now := cfg.Clock
	if now == nil {
		now = time.Now
	}
	h.registry.MustRegister(newOutcomeCollector(now,
		outcomeSource{"crm_requests", h.paytv.OutcomeCounts},
		outcomeSource{"wallet_tasks", h.transit.TaskOutcomeCounts},
		outcomeSource{"device_operations", h.transit.OperationOutcomeCounts},
		outcomeSource{"issuer_operations", h.issuer.OutcomeCounts}))
	metrics := prometheus.Gatherer(h.registry)
	if cfg.MetricsListen != "" {
		metrics = nil
		m := http.NewServeMux()
		httpapi.MountHealth(m, h.registry, ready, h.downstream.report)
		h.metricsHandler = m
	}
	mw := httpapi.NewMiddleware(httpapi.Options{Logger: cfg.Logger, Metrics: h.registry})
	mux := http.NewServeMux()
	h.console.Mount(mux)
	crm.Mount(mux)
	iapi.Mount(mux)
	mux.Handle("GET /openapi/", api.Handler())
	mux.Handle("GET "+apiref.Prefix, apiref.Handler())
	mux.Handle("GET /{$}", frontDoorHandler(cfg.Version, metrics != nil))
	httpapi.MountHealth(mux, metrics, ready, h.downstream.report)
	if cfg.PartnerListen == "" {
		tapi.Mount(mux)
	} else {
		pmux := http.NewServeMux()
		tapi.Mount(pmux)
		httpapi.MountHealth(pmux, nil, ready, h.downstream.report)
		h.partnerHandler = mw.Wrap(pmux)
	}
	h.handler = mw.Wrap(mux)
	return h, nil
}

// PartnerHandler serves the partner listener (nil without PartnerListen).
func (h *Hub) PartnerHandler() http.Handler { return h.partnerHandler }

func (h *Hub) prepareSchema(ctx context.Context) error {
	if h.cfg.Migrate {
		applied, err := h.db.Migrate(ctx)
		if err != nil {
			return err
		}
		if len(applied) > 0 {
			h.log.Info("migrations applied", "versions", applied, "db", h.db.String())
		}
		return nil
	}
	if err := h.db.CheckSchema(ctx); err != nil {
		return fmt.Errorf("%w; or start with --migrate=true", err)
	}
	return nil
}

// Handler is the hub's HTTP handler (for tests that serve it themselves).
func (h *Hub) Handler() http.Handler { return h.handler }

// Engine is the hub's job engine.
func (h *Hub) Engine() *engine.Engine { return h.engine }

// PayTV is the hub's pay-TV domain service.
func (h *Hub) PayTV() *paytv.Service { return h.paytv }

// Transit is the hub's transit domain service.
func (h *Hub) Transit() *transit.Service { return h.transit }

// Issuer is the hub's issuer domain service.
func (h *Hub) Issuer() *issuer.Service { return h.issuer }

// Console is the hub's operator console.
func (h *Hub) Console() *console.Console { return h.console }

// OAuth is the hub's authorisation server for the issuer API.
func (h *Hub) OAuth() *oauth.Server { return h.oauth }

// Retention is the hub's purge of records past their retention.
func (h *Hub) Retention() *retention.Service { return h.retention }

// Partners is the hub's registry of TES and wallet-server partners.
func (h *Hub) Partners() *partner.Registry { return h.partners }

// Assets returns the issuers' card art and terms.
func (h *Hub) Assets() *asset.Store { return h.assets }

// Accounts returns the card-account side of wallet provisioning.
func (h *Hub) Accounts() *cardaccount.Service { return h.accounts }

// DB is the hub's database.
func (h *Hub) DB() *store.DB { return h.db }

// Listen binds the HTTP address; Run binds it itself when Listen was not
// called. It returns the bound address (useful with port 0).
func (h *Hub) Listen() (string, error) {
	if h.listener != nil {
		return h.listener.Addr().String(), nil
	}
	l, err := net.Listen("tcp", h.cfg.Listen)
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w", h.cfg.Listen, err)
	}
	h.listener = l
	for _, side := range []struct {
		addr string
		l    *net.Listener
	}{{h.cfg.PartnerListen, &h.partnerListener}, {h.cfg.MetricsListen, &h.metricsListener}} {
		if side.addr == "" {
			continue
		}
		pl, err := net.Listen("tcp", side.addr)
		if err != nil {
			h.closeListeners()
			return "", fmt.Errorf("listen on %s: %w", side.addr, err)
		}
		*side.l = pl
	}
	return l.Addr().String(), nil
}

func (h *Hub) closeListeners() {
	for _, l := range []net.Listener{h.listener, h.partnerListener, h.metricsListener} {
		if l != nil {
			l.Close()
		}
	}
	h.listener, h.partnerListener, h.metricsListener = nil, nil, nil
}

// PartnerAddr is the bound address of the partner listener ("" when not
// configured or not yet bound).
func (h *Hub) PartnerAddr() string { return addrOf(h.partnerListener) }

// MetricsAddr is the bound address of the metrics listener.
func (h *Hub) MetricsAddr() string { return addrOf(h.metricsListener) }

func addrOf(l net.Listener) string {
	if l == nil {
		return ""
	}
	return l.Addr().String()
}

// tlsFor returns the TLS configuration of a listener: the hub's, asking
// for client certificates (verified when given) where partners call.
func (h *Hub) tlsFor(partners bool) *tls.Config {
	if h.cfg.TLS == nil {
		return nil
	}
	c := h.cfg.TLS.Clone()
	c.MinVersion = max(c.MinVersion, tls.VersionTLS12)
	if partners && c.ClientCAs != nil {
		c.ClientAuth = tls.VerifyClientCertIfGiven
	} else {
		c.ClientAuth, c.ClientCAs = tls.NoClientCert, nil
	}
	return c
}

// Run serves until ctx ends, then stops accepting requests, drains in-flight
// requests and jobs within ShutdownTimeout, releases the leases of jobs still
// running, and closes the database. It returns nil after a clean shutdown.
func (h *Hub) Run(ctx context.Context) error {
	addr, err := h.Listen()
	if err != nil {
		h.close()
		return err
	}
	if err := h.engine.Start(ctx); err != nil {
		h.close()
		return err
	}
	if err := h.issuer.SchedulePurge(ctx); err != nil {
		h.log.Warn("schedule the operation purge", "err", err)
	}
	if err := h.retention.Schedule(ctx); err != nil {
		h.log.Warn("schedule the retention purge", "err", err)
	}
	go h.checkpointLoop(ctx)
	go h.downstream.loop(ctx, h.log, 30*time.Second)
	type served struct {
		srv *http.Server
		l   net.Listener
	}
	// Without a partner listener the main one is where partners call.
	servers := []served{{httpapi.NewServer(httpapi.ServerConfig{Handler: h.handler, Logger: h.log, TLS: h.tlsFor(h.partnerListener == nil)}), h.listener}}
	if h.partnerListener != nil {
		servers = append(servers, served{httpapi.NewServer(httpapi.ServerConfig{Handler: h.partnerHandler, Logger: h.log, TLS: h.tlsFor(true)}), h.partnerListener})
	}
	if h.metricsListener != nil {
		servers = append(servers, served{httpapi.NewServer(httpapi.ServerConfig{Handler: h.metricsHandler, Logger: h.log}), h.metricsListener})
	}
	serveErrs := make(chan error, len(servers))
	for _, s := range servers {
		go func() {
			if s.srv.TLSConfig != nil {
				serveErrs <- s.srv.ServeTLS(s.l, "", "")
			} else {
				serveErrs <- s.srv.Serve(s.l)
			}
		}()
	}
	h.log.Info("provhub serving", "addr", addr, "partner_addr", h.PartnerAddr(), "metrics_addr", h.MetricsAddr(),
		"tls", h.cfg.TLS != nil, "client_ca", h.cfg.TLS != nil && h.cfg.TLS.ClientCAs != nil, "db", h.db.String())

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-serveErrs:
	}
	h.log.Info("shutting down", "timeout", h.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	for _, s := range servers {
		if err := s.srv.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("stop http: %w", err))
		}
	}
	if err := h.engine.Stop(sctx); err != nil {
		errs = append(errs, err)
	}
	h.close()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("serve: %w", serveErr))
	}
	return errors.Join(errs...)
}

// checkpointEvery is how often SQLite's write-ahead log is folded into the
// database and truncated: the longest an erased PIN's old page image stays
// in the -wal file.
const checkpointEvery = 30 * time.Second

func (h *Hub) checkpointLoop(ctx context.Context) {
	if h.db.Dialect() != store.SQLite {
		return
	}
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := h.db.Checkpoint(ctx); err != nil && ctx.Err() == nil {
				h.log.Warn("checkpoint the write-ahead log", "err", err)
			}
		}
	}
}

// Close stops the engine's writer and closes the database, for a hub whose
// Run was never called (Run closes by itself). Stop the engine first.
func (h *Hub) Close() { h.close() }

func (h *Hub) close() {
	h.engine.Close()
	if err := h.db.Close(); err != nil {
		h.log.Warn("close database", "err", err)
	}
}
