// Package console is the operator console at /console: server-rendered
// pages (html/template, embedded assets, no third-party script) for the
// people who run a hub. Operators log in with accounts of their own (not
// API clients); sessions live in HttpOnly, SameSite=Strict cookies whose
// token is stored hashed; every action is a POST carrying the session's
// CSRF token, and is recorded. Pages: a dashboard (the domains' outcomes,
// what retries now, jobs by kind and state, what finished minute by minute
// per kind, health per downstream system), engine jobs with every attempt
// and error (retry a failed job, cancel a queued one), CRM requests, issuer
// operations, transit (device operations with decoded frames, wallet tasks
// to send again) and devices; every list pages on by keyset and searches
// by exact identifiers, and records and their jobs link each other. A page
// marked live refreshes its content every two seconds with a few lines of
// JavaScript.
package console

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/provhub/provhub/internal/asset"
	"github.com/provhub/provhub/internal/auth"
	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/issuer"
	"github.com/provhub/provhub/internal/paytv"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/trace"
	"github.com/provhub/provhub/internal/transit"
	"github.com/provhub/provhub/internal/wallet"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Prefix is where the console lives.
const Prefix = "/console/"

const cookieName = "provhub_console"

// Config sets up a Console.
type Config struct {
	DB      *store.DB
	Engine  *engine.Engine
	PayTV   *paytv.Service
	Issuer  *issuer.Service
	Transit *transit.Service
	// Assets shows the cards' art (nil: no art shown).
	Assets *asset.Store
	Logger *slog.Logger
	Clock  func() time.Time
	// PasswordCost is bcrypt's cost for operator passwords [11].
	PasswordCost int
	// SessionIdle ends a session unused this long [8h].
	SessionIdle time.Duration
	// SecureCookie marks the session cookie Secure (set it behind TLS).
	SecureCookie bool
}

// Console serves the operator console.
type Console struct {
	cfg Config
	db  *store.DB
	// operators holds the console's own tables.
	operators operatorStore
	log       *slog.Logger
	now       func() time.Time
	pages     map[string]*template.Template
	limiter   *auth.Limiter
	// addrLimiter counts failed logins per client address, so that names
	// sprayed from one address are blocked too.
	addrLimiter *auth.Limiter
}

// New returns a Console.
func New(cfg Config) (*Console, error) {
	if cfg.DB == nil || cfg.Engine == nil || cfg.PayTV == nil || cfg.Issuer == nil || cfg.Transit == nil {
		return nil, errors.New("console: Config.DB, Engine, PayTV, Issuer and Transit are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.PasswordCost == 0 {
		cfg.PasswordCost = 11
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = 8 * time.Hour
	}
	c := &Console{cfg: cfg, db: cfg.DB, operators: operatorStore{db: cfg.DB}, log: cfg.Logger.With("component", "console"), now: cfg.Clock, pages: map[string]*template.Template{},
		limiter: auth.NewLimiter(5, 15*time.Minute, cfg.Clock), addrLimiter: auth.NewLimiter(20, 15*time.Minute, cfg.Clock)}
	funcs := template.FuncMap{
		"ts": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04:05")
		},
		"lastError": func(errs []engine.AttemptError) string {
			if len(errs) == 0 {
				return ""
			}
			return errs[len(errs)-1].Error
		},
		"str": func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		},
	}
	for _, name := range []string{"login", "dashboard", "jobs", "job", "crm", "crm_request", "issuer", "issuer_operation", "transit", "transit_operation", "wallet_task", "devices"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		c.pages[name] = t
	}
	return c, nil
}

// Mount adds the console's routes to mux.
func (c *Console) Mount(root *http.ServeMux) {
	mux := refusingNUL{root}
	static, _ := fs.Sub(assets, "static")
	mux.Handle("GET "+Prefix+"static/", http.StripPrefix(Prefix+"static/", http.FileServerFS(static)))
	mux.HandleFunc("GET "+Prefix+"login", c.loginPage)
	mux.HandleFunc("POST "+Prefix+"login", c.loginPost)
	mux.HandleFunc("POST "+Prefix+"logout", c.authed(c.logoutPost))
	mux.HandleFunc("GET "+Prefix+"{$}", c.authed(c.dashboard))
	mux.HandleFunc("GET "+Prefix+"jobs", c.authed(c.jobs))
	mux.HandleFunc("GET "+Prefix+"jobs/{id}", c.authed(c.job))
	mux.HandleFunc("POST "+Prefix+"jobs/{id}/retry", c.authed(c.jobAction("retry")))
	mux.HandleFunc("POST "+Prefix+"jobs/{id}/cancel", c.authed(c.jobAction("cancel")))
	mux.HandleFunc("GET "+Prefix+"crm", c.authed(c.crm))
	mux.HandleFunc("GET "+Prefix+"crm/{number}", c.authed(c.crmRequest))
	mux.HandleFunc("GET "+Prefix+"issuer", c.authed(c.issuerOps))
	mux.HandleFunc("GET "+Prefix+"issuer/{id}", c.authed(c.issuerOperation))
	mux.HandleFunc("GET "+Prefix+"transit/operations/{id}", c.authed(c.transitOperation))
	mux.HandleFunc("GET "+Prefix+"transit", c.authed(c.transit))
	mux.HandleFunc("GET "+Prefix+"transit/tasks/{id}", c.authed(c.walletTask))
	mux.HandleFunc("POST "+Prefix+"tasks/{id}/resend", c.authed(c.resendTask))
	mux.HandleFunc("GET "+Prefix+"devices", c.authed(c.devices))
	mux.HandleFunc("GET "+Prefix+"assets/{guid}", c.authed(c.cardArt))
	mux.HandleFunc("GET /console", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, Prefix, http.StatusSeeOther) })
}

// refusingNUL registers the console's routes, each behind a check that
// refuses a request holding a NUL character in its path, query or form
// with HTTP 400: no page takes one, and PostgreSQL can neither store nor
// compare one, so it would otherwise fail the page (an HTTP 500, before
// login too).
type refusingNUL struct{ mux *http.ServeMux }

func (m refusingNUL) Handle(pattern string, h http.Handler) {
	m.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The form is read here, once: a page reading it again would not
		// learn that it could not be read (too long, malformed).
		if err := r.ParseForm(); err != nil {
			securityHeaders(w)
			http.Error(w, "bad request: the form cannot be read", http.StatusBadRequest)
			return
		}
		if holdsNUL(r) {
			securityHeaders(w)
			http.Error(w, "bad request: a NUL character", http.StatusBadRequest)
			return
		}
		h.ServeHTTP(w, r)
	}))
}

func (m refusingNUL) HandleFunc(pattern string, h http.HandlerFunc) { m.Handle(pattern, h) }

// holdsNUL reports whether r's path, or its query or form (parsed
// already), holds a NUL.
func holdsNUL(r *http.Request) bool {
	if strings.IndexByte(r.URL.Path, 0) >= 0 {
		return true
	}
	for _, vs := range r.Form {
		for _, v := range vs {
			if strings.IndexByte(v, 0) >= 0 {
				return true
			}
		}
	}
	return false
}

type handler func(w http.ResponseWriter, r *http.Request, s *session)

// authed sends a visitor without a session to the login page, and checks
// the CSRF token (and the Origin, when sent) of every POST.
func (c *Console) authed(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w)
		var token string
		if ck, err := r.Cookie(cookieName); err == nil {
			token = ck.Value
		}
		s, err := c.session(r.Context(), token)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		if s == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, Prefix+"login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "log in first", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			if origin := r.Header.Get("Origin"); origin != "" && !sameOrigin(origin, r) {
				http.Error(w, "cross-origin request refused", http.StatusForbidden)
				return
			}
			if !s.validCSRF(r.PostFormValue("csrf")) {
				http.Error(w, "the form is stale: reload the page", http.StatusForbidden)
				return
			}
		}
		h(w, r, s)
	}
}

// clientAddress is the connection's IP address (a proxy in front is one
// address for all: see docs/security.md).
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host
}

func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	c.log.ErrorContext(r.Context(), "console page failed", "path", r.URL.Path, "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// page is what every template gets.
type page struct {
	Title    string
	Operator string
	CSRF     string
	Live     bool
	Nav      string
	Data     any
	Error    string
}

// render writes a page, or only its content when the page's own script
// asks for a refresh.
func (c *Console) render(w http.ResponseWriter, r *http.Request, name string, p page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	tmpl := "layout"
	if r.Header.Get("X-Console-Partial") == "1" {
		tmpl = "content"
	}
	if err := c.pages[name].ExecuteTemplate(w, tmpl, p); err != nil {
		c.log.ErrorContext(r.Context(), "render console page", "page", name, "err", err)
	}
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	c.render(w, r, "login", page{Title: "Log in", Data: safeNext(r.URL.Query().Get("next"))})
}

// safeNext keeps a redirect target inside the console.
func safeNext(next string) string {
	if strings.HasPrefix(next, Prefix) && !strings.HasPrefix(next, "//") && !strings.Contains(next, "\\") {
		return next
	}
	return Prefix
}

func (c *Console) loginPost(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	// A login from another site's page is refused like any other
	// cross-origin form (login CSRF would put the victim in our session).
	if origin := r.Header.Get("Origin"); origin != "" && !sameOrigin(origin, r) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	formErr := r.ParseForm()
	user, password := r.PostFormValue("username"), r.PostFormValue("password")
	next := safeNext(r.PostFormValue("next"))
	// Cut before any limiter lookup or log line.
	if formErr != nil || len(user) > auth.MaxUsernameLength || len(password) > auth.MaxPasswordLength {
		w.WriteHeader(http.StatusBadRequest)
		c.render(w, r, "login", page{Title: "Log in", Data: next, Error: "Unknown operator or wrong password."})
		return
	}
	key, addrKey := "console:"+user, "console-address:"+clientAddress(r)
	for _, l := range []struct {
		lim *auth.Limiter
		key string
	}{{c.limiter, key}, {c.addrLimiter, addrKey}} {
		if blocked, wait := l.lim.Blocked(l.key); blocked {
			w.WriteHeader(http.StatusTooManyRequests)
			c.render(w, r, "login", page{Title: "Log in", Data: next, Error: fmt.Sprintf("Too many failed logins; try again in %s.", wait.Round(time.Second))})
			return
		}
	}
	token, err := c.login(r.Context(), user, password)
	if errors.Is(err, errBadLogin) {
		c.limiter.Fail(key)
		c.addrLimiter.Fail(addrKey)
		c.log.WarnContext(r.Context(), "console login failed", "username", user, "client", clientAddress(r))
		w.WriteHeader(http.StatusUnauthorized)
		c.render(w, r, "login", page{Title: "Log in", Data: next, Error: "Unknown operator or wrong password."})
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.limiter.Reset(key)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: token, Path: "/console", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: c.cfg.SecureCookie})
	c.log.InfoContext(r.Context(), "console login", "username", user)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logoutPost(w http.ResponseWriter, r *http.Request, s *session) {
	if err := c.logout(r.Context(), s); err != nil {
		c.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/console", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}

func (c *Console) base(s *session, title, nav string, live bool, data any) page {
	return page{Title: title, Operator: s.Username, CSRF: s.csrf, Live: live, Nav: nav, Data: data}
}

// systems names the downstream system behind each job kind.
var systems = map[string]string{
	"paytv.send_request":        "CAS",
	"transit.wallet_task":       "wallet server",
	"transit.push_notification": "wallet server (notifications)",
	"transit.device_operation":  "TES and devices",
	"issuer.operation":          "wallet server (through wallet tasks)",
	"issuer.purge_operations":   "provhub (housekeeping)",
	"retention.purge":           "provhub (housekeeping)",
}

type dashboardData struct {
	Kinds  []string
	States []engine.State
	Counts map[string]map[engine.State]int
	Chart  chart
	Health []healthRow
	// Outcomes are the domains' outcomes of the last 24 hours; Failing
	// tells whether any of them failed (the dashboard is then not green).
	Outcomes []outcomeRow
	Failing  bool
	// Retrying are the unfinished jobs that failed an attempt, per kind.
	Retrying []retryRow
}

// outcomeRow is one domain's outcomes: successes, waits and failures
// (each failure with its code), each linking to the records.
type outcomeRow struct {
	Domain string
	Cells  []outcomeCell
}

type outcomeCell struct {
	Label, Class, Link string
	Count              int
}

type retryRow struct {
	engine.KindRetrying
	System string
}

// outcomeRows reads the domains' outcome counts since a time.
func (c *Console) outcomeRows(ctx context.Context, since time.Time) ([]outcomeRow, bool, error) {
	domains := []struct {
		name, link string
		ok, bad    string
		count      func(context.Context, time.Time) (map[string]int, error)
		filter     string
	}{
		{"CRM provisioning requests (to the CAS)", "/console/crm", "COMPLETED", "REJECTED", c.cfg.PayTV.OutcomeCounts, "state"},
		{"wallet tasks (to the wallet server)", "/console/transit", "COMPLETED", "FAILED", c.cfg.Transit.TaskOutcomeCounts, "status"},
		{"device operations (TES and devices)", "/console/transit", "COMPLETED", "FAILED", c.cfg.Transit.OperationOutcomeCounts, ""},
		{"issuer operations", "/console/issuer", "SUCCESSFUL", "FAILED", c.cfg.Issuer.OutcomeCounts, "status"},
	}
	var rows []outcomeRow
	failing := false
	for _, d := range domains {
		counts, err := d.count(ctx, since)
		if err != nil {
			return nil, false, err
		}
		keys := make([]string, 0, len(counts))
		for k := range counts {
			keys = append(keys, k)
		}
		// Successes first, then what waits, then the failures by code.
		rank := func(k string) int {
			switch state, _, _ := strings.Cut(k, " "); state {
			case d.ok:
				return 0
			case d.bad:
				return 2
			}
			return 1
		}
		slices.SortFunc(keys, func(a, b string) int {
			if ra, rb := rank(a), rank(b); ra != rb {
				return ra - rb
			}
			return strings.Compare(a, b)
		})
		row := outcomeRow{Domain: d.name}
		for _, k := range keys {
			state, _, _ := strings.Cut(k, " ")
			cell := outcomeCell{Label: k, Count: counts[k], Class: "wait", Link: d.link}
			switch state {
			case d.ok:
				cell.Class = "ok"
			case d.bad:
				cell.Class, failing = "bad", true
			}
			if d.filter != "" {
				cell.Link += "?" + d.filter + "=" + url.QueryEscape(state)
			}
			row.Cells = append(row.Cells, cell)
		}
		rows = append(rows, row)
	}
	return rows, failing, nil
}

type healthRow struct {
	engine.KindHealth
	System    string
	ErrorRate string
}

func (c *Console) dashboard(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	counts, err := c.cfg.Engine.Counts(ctx)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := dashboardData{States: engine.States, Counts: map[string]map[engine.State]int{}}
	for _, k := range counts {
		if d.Counts[k.Kind] == nil {
			d.Counts[k.Kind] = map[engine.State]int{}
			d.Kinds = append(d.Kinds, k.Kind)
		}
		d.Counts[k.Kind][k.State] = k.Count
	}
	buckets, err := c.cfg.Engine.Throughput(ctx, 15, time.Minute)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d.Chart = newChart(buckets)
	if d.Outcomes, d.Failing, err = c.outcomeRows(ctx, c.now().Add(-24*time.Hour)); err != nil {
		c.fail(w, r, err)
		return
	}
	retrying, err := c.cfg.Engine.Retrying(ctx)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, k := range retrying {
		d.Retrying = append(d.Retrying, retryRow{KindRetrying: k, System: systems[k.Kind]})
	}
	health, err := c.cfg.Engine.Health(ctx, c.now().Add(-15*time.Minute))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, h := range health {
		h.MeanTime = h.MeanTime.Round(time.Millisecond)
		row := healthRow{KindHealth: h, System: systems[h.Kind]}
		if row.System == "" {
			row.System = "-"
		}
		if h.Attempts > 0 {
			row.ErrorRate = fmt.Sprintf("%.1f%%", 100*float64(h.Attempts-h.Finished+h.Failed)/float64(h.Attempts))
		}
		d.Health = append(d.Health, row)
	}
	c.render(w, r, "dashboard", c.base(s, "Dashboard", "dashboard", true, d))
}

// chart is a bar chart of finished jobs per minute, drawn as SVG: each
// bar stacks the completed jobs of each kind (a series per kind, in the
// legend's colours), then the failed ones in red.
type chart struct {
	Bars   []bar
	Max    int
	Series []series
}

// series is one job kind of the chart, with its colour class.
type series struct {
	Kind, Class string
}

type bar struct {
	X         int
	Segments  []segment
	Label     string
	Completed int
	Failed    int
	// Tooltip says what the bar holds, kind by kind.
	Tooltip string
	// Tick puts the bar's time under the axis (every fifth bar).
	Tick bool
}

// segment is one coloured part of a bar.
type segment struct {
	Y, H  int
	Class string
}

// seriesClasses are the colours of the chart's series (kinds beyond them
// share the last).
var seriesClasses = []string{"s0", "s1", "s2", "s3", "s4", "s5"}

func newChart(bs []engine.Bucket) chart {
	ch := chart{Max: 1}
	kinds := map[string]bool{}
	for _, b := range bs {
		ch.Max = max(ch.Max, b.Completed+b.Failed)
		for k, f := range b.ByKind {
			kinds[k] = kinds[k] || f.Completed > 0
		}
	}
	class := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		if !kinds[k] {
			continue // only failures: drawn red, named in the tooltip
		}
		class[k] = seriesClasses[min(len(ch.Series), len(seriesClasses)-1)]
		ch.Series = append(ch.Series, series{Kind: k, Class: class[k]})
	}
	const height = 100
	for i, b := range bs {
		br := bar{X: 36 + i*20, Label: b.Start.UTC().Format("15:04"), Completed: b.Completed, Failed: b.Failed, Tick: i%5 == 0}
		y := height
		var tip []string
		for _, k := range slices.Sorted(maps.Keys(b.ByKind)) {
			f := b.ByKind[k]
			if f.Completed > 0 {
				h := f.Completed * height / ch.Max
				y -= h
				br.Segments = append(br.Segments, segment{Y: y, H: h, Class: class[k]})
			}
			line := fmt.Sprintf("%s %d completed", k, f.Completed)
			if f.Failed > 0 {
				line += fmt.Sprintf(", %d failed", f.Failed)
			}
			tip = append(tip, line)
		}
		if b.Failed > 0 {
			h := b.Failed * height / ch.Max
			br.Segments = append(br.Segments, segment{Y: y - h, H: h, Class: "bad"})
		}
		br.Tooltip = fmt.Sprintf("%s: %d completed, %d failed", br.Label, b.Completed, b.Failed)
		if len(tip) > 0 {
			br.Tooltip += "\n" + strings.Join(tip, "\n")
		}
		ch.Bars = append(ch.Bars, br)
	}
	return ch
}

type jobsData struct {
	Jobs   []*engine.JobRow
	State  string
	Kind   string
	States []engine.State
	Kinds  []string
	Pager  pager
}

func (c *Console) jobs(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	before, _ := strconv.ParseInt(q.Get("before"), 10, 64)
	f := engine.ListFilter{State: engine.State(q.Get("state")), Kind: q.Get("kind"), Search: strings.TrimSpace(q.Get("q")), Before: before, Limit: pageSize + 1}
	jobs, err := c.cfg.Engine.List(r.Context(), f)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var kinds []string
	for k := range systems {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	d := jobsData{State: q.Get("state"), Kind: q.Get("kind"), States: engine.States, Kinds: kinds}
	d.Jobs, d.Pager = pageOf(r, "before", jobs, func(j *engine.JobRow) string { return strconv.FormatInt(j.ID, 10) })
	c.render(w, r, "jobs", c.base(s, "Jobs", "jobs", true, d))
}

// pageSize is how many rows a console list shows at a time.
const pageSize = 100

// pager is what a list shows to move through its pages: the search it was
// asked, the link to the rows after the last shown ("" on the last page),
// and the link back to the first page ("" on the first).
type pager struct {
	Search      string
	Next, First string
}

// listQuery reads a list's search and page from the URL, asking for one
// row more than a page to tell whether another page follows.
func listQuery(r *http.Request, status, param string) store.ListQuery {
	q := r.URL.Query()
	return store.ListQuery{Status: status, Search: strings.TrimSpace(q.Get("q")), Before: q.Get(param), Limit: pageSize + 1}
}

// pageOf cuts rows (read with listQuery) to a page, and links the next
// page by the key of its last row under the URL parameter param.
func pageOf[T any](r *http.Request, param string, rows []T, key func(T) string) ([]T, pager) {
	p := pager{Search: strings.TrimSpace(r.URL.Query().Get("q"))}
	link := func(value string) string {
		q := r.URL.Query()
		if value == "" {
			q.Del(param)
		} else {
			q.Set(param, value)
		}
		if len(q) == 0 {
			return r.URL.Path
		}
		return r.URL.Path + "?" + q.Encode()
	}
	if len(rows) > pageSize {
		rows = rows[:pageSize]
		p.Next = link(key(rows[len(rows)-1]))
	}
	if r.URL.Query().Get(param) != "" {
		p.First = link("")
	}
	return rows, p
}

// jobOf is the console page of a record's job, found by its unique key
// ("" when it has gone: finished jobs are removed after a while).
func (c *Console) jobOf(ctx context.Context, uniqueKey string) string {
	j, err := c.cfg.Engine.GetByUniqueKey(ctx, uniqueKey)
	if err != nil {
		if !errors.Is(err, engine.ErrNotFound) {
			c.log.WarnContext(ctx, "find a record's job", "unique_key", uniqueKey, "err", err)
		}
		return ""
	}
	return fmt.Sprintf("%sjobs/%d", Prefix, j.ID)
}

type jobData struct {
	Job       *engine.JobRow
	Actions   []Action
	Retryable bool
	Cancel    bool
	Flash     string
	// Record links the domain record the job works for ("" when none).
	Record, RecordLabel string
}

// recordOf is the console page of the domain record a job works for,
// read from its kind and arguments.
func (c *Console) recordOf(ctx context.Context, j *engine.JobRow) (link, label string) {
	var args struct {
		RequestID   string `json:"request_id"`
		OperationID string `json:"operation_id"`
	}
	_ = json.Unmarshal(j.Args, &args)
	switch j.Kind {
	case "paytv.send_request":
		if req, err := c.cfg.PayTV.RequestByID(ctx, args.RequestID); err == nil {
			return fmt.Sprintf("/console/crm/%d", req.Number), fmt.Sprintf("CRM request %d", req.Number)
		}
	case "issuer.operation":
		if args.OperationID != "" {
			return "/console/issuer/" + url.PathEscape(args.OperationID), "issuer operation " + args.OperationID
		}
	case "transit.device_operation":
		if args.OperationID != "" {
			return "/console/transit/operations/" + url.PathEscape(args.OperationID), "device operation " + args.OperationID
		}
	case "transit.wallet_task":
		id := fmt.Sprintf("pvh-%d", j.ID)
		return "/console/transit/tasks/" + id, "wallet task " + id
	}
	return "", ""
}

func (c *Console) job(w http.ResponseWriter, r *http.Request, s *session) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	j, err := c.cfg.Engine.Get(r.Context(), id)
	if errors.Is(err, engine.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	acts, err := c.actions(r.Context(), fmt.Sprintf("job:%d", id))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := jobData{Job: j, Actions: acts, Flash: r.URL.Query().Get("done"),
		Retryable: j.State == engine.StateFailed || j.State == engine.StateCancelled,
		Cancel:    !j.State.Terminal()}
	d.Record, d.RecordLabel = c.recordOf(r.Context(), j)
	c.render(w, r, "job", c.base(s, fmt.Sprintf("Job %d", id), "jobs", true, d))
}

// jobAction retries or cancels a job and records who did it and how it went.
func (c *Console) jobAction(action string) handler {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		ctx := r.Context()
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		switch action {
		case "retry":
			err = c.cfg.Engine.Retry(ctx, id)
		case "cancel":
			err = c.cfg.Engine.Cancel(ctx, id)
		}
		outcome := "done"
		switch {
		case errors.Is(err, engine.ErrNotFound):
			http.NotFound(w, r)
			return
		case errors.Is(err, engine.ErrNotRetryable), errors.Is(err, engine.ErrNotCancelable):
			outcome = "refused: " + err.Error()
		case err != nil:
			c.fail(w, r, err)
			return
		}
		if err := c.recordAction(context.WithoutCancel(ctx), s.Username, action, fmt.Sprintf("job:%d", id), outcome); err != nil {
			c.fail(w, r, err)
			return
		}
		c.log.InfoContext(ctx, "console action", "username", s.Username, "action", action, "job_id", id, "outcome", outcome)
		http.Redirect(w, r, fmt.Sprintf("%sjobs/%d?done=%s", Prefix, id, url.QueryEscape(action+": "+outcome)), http.StatusSeeOther)
	}
}

type crmData struct {
	Requests []*paytv.Request
	State    string
	States   []string
	Pager    pager
}

func (c *Console) crm(w http.ResponseWriter, r *http.Request, s *session) {
	state := r.URL.Query().Get("state")
	reqs, err := c.cfg.PayTV.Recent(r.Context(), listQuery(r, state, "before"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := crmData{State: state, States: []string{"PENDING", "COMPLETED", "REJECTED"}}
	d.Requests, d.Pager = pageOf(r, "before", reqs, func(req *paytv.Request) string { return strconv.FormatInt(req.Number, 10) })
	c.render(w, r, "crm", c.base(s, "CRM requests", "crm", true, d))
}

type issuerData struct {
	Operations []issuer.Operation
	Status     string
	Statuses   []string
	Pager      pager
}

func (c *Console) issuerOps(w http.ResponseWriter, r *http.Request, s *session) {
	status := r.URL.Query().Get("status")
	ops, err := c.cfg.Issuer.RecentOperations(r.Context(), listQuery(r, status, "before"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := issuerData{Status: status, Statuses: []string{"PENDING", "SUCCESSFUL", "FAILED"}}
	d.Operations, d.Pager = pageOf(r, "before", ops, func(op issuer.Operation) string { return op.OperationID })
	c.render(w, r, "issuer", c.base(s, "Issuer operations", "issuer", true, d))
}

type transitData struct {
	Operations []*transit.DeviceOperation
	Tasks      []transit.TaskView
	// OpsPager pages the device operations (ops_before), Pager the
	// tasks (before); one search finds both.
	OpsPager, Pager pager
	Status          string
	Statuses        []string
	Flash           string
	Actions         map[string][]Action
	// Resent marks the FAILED tasks already sent again.
	Resent map[string]bool
}

func (c *Console) transit(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	status := r.URL.Query().Get("status")
	ops, err := c.cfg.Transit.RecentOperations(ctx, listQuery(r, "", "ops_before"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	tasks, err := c.cfg.Transit.RecentTasks(ctx, listQuery(r, status, "before"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := transitData{Status: status, Statuses: []string{"QUEUED", "PROCESSING", "COMPLETED", "FAILED"},
		Flash: r.URL.Query().Get("done"), Actions: map[string][]Action{}, Resent: map[string]bool{}}
	d.Operations, d.OpsPager = pageOf(r, "ops_before", ops, func(op *transit.DeviceOperation) string { return op.OperationID })
	d.Tasks, d.Pager = pageOf(r, "before", tasks, func(t transit.TaskView) string { return t.TaskID })
	for _, t := range d.Tasks {
		if t.Status == transit.TaskFailed {
			acts, err := c.actions(ctx, "task:"+t.TaskID)
			if err != nil {
				c.fail(w, r, err)
				return
			}
			d.Actions[t.TaskID] = acts
			for _, a := range acts {
				d.Resent[t.TaskID] = d.Resent[t.TaskID] || strings.HasPrefix(a.Outcome, "sent again")
			}
		}
	}
	c.render(w, r, "transit", c.base(s, "Transit", "transit", true, d))
}

// walletTaskData is a wallet task's page.
type walletTaskData struct {
	Task     *transit.TaskView
	CodeText string
	Script   []scriptRow
	Actions  []Action
	Flash    string
	// Resendable: FAILED, of a kind that can be sent again, not sent yet.
	Resendable bool
}

// scriptRow is one command of a task's script, decoded.
type scriptRow struct {
	ID, Step string
	Frame    trace.Frame
	Withheld bool
}

func (c *Console) walletTask(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	t, lines, err := c.cfg.Transit.TaskDetail(ctx, r.PathValue("id"))
	if transit.KindOf(err) == transit.KindUnknownCard {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	acts, err := c.actions(ctx, "task:"+t.TaskID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := walletTaskData{Task: t, Actions: acts, Flash: r.URL.Query().Get("done")}
	if t.StatusCode != nil {
		d.CodeText = wallet.StatusText(*t.StatusCode)
	}
	d.Resendable = t.Status == transit.TaskFailed && transit.Resendable(t.Operation)
	for _, a := range acts {
		d.Resendable = d.Resendable && !strings.HasPrefix(a.Outcome, "sent again")
	}
	for _, l := range lines {
		d.Script = append(d.Script, scriptRow{ID: l.ID, Step: l.Name, Frame: trace.Command(l.ID, "APDU", l.APDU), Withheld: l.Withheld})
	}
	c.render(w, r, "wallet_task", c.base(s, "Wallet task "+t.TaskID, "transit", true, d))
}

// resendTask sends a FAILED wallet task again, as a new task, and records it.
func (c *Console) resendTask(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	id := r.PathValue("id")
	outcome := "done"
	t, err := c.cfg.Transit.ResendTask(ctx, id)
	switch kind := transit.KindOf(err); {
	case err == nil:
		outcome = "sent again as " + t.TaskID
	case kind == transit.KindUnknownCard:
		http.NotFound(w, r)
		return
	case kind != 0:
		outcome = "refused: " + err.Error()
	default:
		c.fail(w, r, err)
		return
	}
	if err := c.recordAction(context.WithoutCancel(ctx), s.Username, "resend", "task:"+id, outcome); err != nil {
		c.fail(w, r, err)
		return
	}
	c.log.InfoContext(ctx, "console action", "username", s.Username, "action", "resend", "task_id", id, "outcome", outcome)
	http.Redirect(w, r, Prefix+"transit?done="+url.QueryEscape("resend "+id+": "+outcome), http.StatusSeeOther)
}

func (c *Console) devices(w http.ResponseWriter, r *http.Request, s *session) {
	ses, err := c.cfg.Transit.SecureElements(r.Context(), listQuery(r, "", "after"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	view := devicesView{Art: map[string]string{}}
	view.SecureElements, view.Pager = pageOf(r, "after", ses, func(se transit.SecureElement) string { return se.SEID })
	for _, se := range view.SecureElements {
		for _, card := range se.Cards {
			if g := c.artOf(r.Context(), card); g != "" {
				view.Art[card.CardID] = g
			}
		}
	}
	c.render(w, r, "devices", c.base(s, "Devices", "devices", true, view))
}

// devicesView is the devices page: the secure elements, and the first
// card-art GUID of each card that has one.
type devicesView struct {
	SecureElements []transit.SecureElement
	Art            map[string]string
	Pager          pager
}

// artOf is the art a card shows: that of its last METADATA_UPDATE, or
// else the art its issuer registered for it.
func (c *Console) artOf(ctx context.Context, card transit.Card) string {
	var meta struct {
		CardArtManifest []string `json:"cardArtManifest"`
	}
	if len(card.Metadata) > 0 && json.Unmarshal(card.Metadata, &meta) == nil && len(meta.CardArtManifest) > 0 {
		return meta.CardArtManifest[0]
	}
	if p, err := c.cfg.Issuer.Profile(ctx, card.IssuerID, card.CardAccountID); err == nil && len(p.CardArt) > 0 {
		return p.CardArt[0]
	}
	return ""
}

// cardArt serves a card-art image to an operator. Only images are
// served, never as anything else than their checked type: a terms
// document (which may be HTML) is not shown here.
func (c *Console) cardArt(w http.ResponseWriter, r *http.Request, _ *session) {
	if c.cfg.Assets == nil {
		http.NotFound(w, r)
		return
	}
	a, content, err := c.cfg.Assets.Get(r.Context(), r.PathValue("guid"), func(string) bool { return true })
	if asset.KindOf(err) == asset.KindNotFound || (err == nil && a.Kind != asset.CardArt) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", a.ContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "private, max-age=3600")
	_, _ = w.Write(content)
}

// crmRequestData is a CRM request's page: the request and its job's page.
type crmRequestData struct {
	Req *paytv.Request
	Job string
}

func (c *Console) crmRequest(w http.ResponseWriter, r *http.Request, s *session) {
	n, err := strconv.ParseInt(r.PathValue("number"), 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	req, err := c.cfg.PayTV.RequestByNumber(r.Context(), n)
	if paytv.KindOf(err) == paytv.KindNotFound {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, "crm_request", c.base(s, fmt.Sprintf("CRM request %d", n), "crm", true,
		crmRequestData{Req: req, Job: c.jobOf(r.Context(), paytv.SendJobKey(req.ID))}))
}

// issuerOperationData is an issuer operation's page: the operation and
// its job's page.
type issuerOperationData struct {
	*issuer.Operation
	Job string
}

func (c *Console) issuerOperation(w http.ResponseWriter, r *http.Request, s *session) {
	op, err := c.cfg.Issuer.OperationByID(r.Context(), r.PathValue("id"))
	if issuer.KindOf(err) == issuer.KindNotFound {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, "issuer_operation", c.base(s, "Operation "+op.OperationID, "issuer", true,
		issuerOperationData{Operation: op, Job: c.jobOf(r.Context(), issuer.OperationJobKey(op.OperationID))}))
}

type transitOperationData struct {
	Op    *transit.DeviceOperation
	Steps []transit.OperationStep
	// Trace is Steps decoded, step by step.
	Trace []trace.Step
	// Job is the page of the job that runs the operation.
	Job string
}

func (c *Console) transitOperation(w http.ResponseWriter, r *http.Request, s *session) {
	op, steps, err := c.cfg.Transit.OperationDetail(r.Context(), r.PathValue("id"))
	if transit.KindOf(err) == transit.KindUnknownOperation {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	requests, answers := make([]string, len(steps)), make([]string, len(steps))
	for i, st := range steps {
		requests[i], answers[i] = st.Request, st.Answer
	}
	c.render(w, r, "transit_operation", c.base(s, "Operation "+op.OperationID, "transit", true,
		transitOperationData{Op: op, Steps: steps, Trace: trace.Steps(requests, answers), Job: c.jobOf(r.Context(), transit.OperationJobKey(op.OperationID))}))
}
