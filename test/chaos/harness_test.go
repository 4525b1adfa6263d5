package chaos

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/oauth"
	"github.com/provhub/provhub/internal/reqsign"
	cassim "github.com/provhub/provhub/internal/sim/cas"
	simtes "github.com/provhub/provhub/internal/sim/tes"
	simwallet "github.com/provhub/provhub/internal/sim/wallet"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

// plan is one version of the suite.
type plan struct {
	name string
	// load is how long the flows run; kills hub processes are killed in
	// that time, at random moments.
	load  time.Duration
	kills int
	// outage is how long the CAS and the wallet server are unreachable,
	// once, in the middle of the load.
	outage time.Duration
	// pgInstances hubs share the PostgreSQL schema; pgCuts times every
	// connection to PostgreSQL is cut and new ones refused for a few
	// seconds; restartPG restarts the server itself once.
	pgInstances int
	pgCuts      int
	restartPG   bool
	// The load: CRM clients, wallet life-cycle slots, consumers deleted
	// at once, cards running device loops, and smartcards.
	crmClients, walletSlots, consumers, deviceCards, smartcards int
	// faultPercent is the chance, per call, of each downstream fault.
	faultPercent int
	// minAccepted is what every flow must have had accepted before the
	// load may end (it then runs longer than load on a slow machine).
	minAccepted int
}

// The names the suite sets the hub up with.
const (
	issuerID   = "CHAOSBANK1"
	issuerKid  = "chaos-key"
	crmOrg     = "CHAOSORG"
	crmUser    = "chaos"
	subNumber  = "CHAOS-SUB"
	tesPartner = "chaos-tes"
	walPartner = "chaos-wallet"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// provhubBinary builds cmd/provhub once per test binary.
func provhubBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "provhub-chaos-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "provhub")
		// Without the race detector, even under go test -race: the hubs
		// must carry a real load on two cores (the in-process end-to-end
		// tests run the same code with it).
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/provhub/provhub/cmd/provhub").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// creds are a partner's id and signing secret.
type creds struct{ id, secret string }

// cluster is provhub's processes, the simulators behind TCP proxies, and
// the credentials the clients use.
type cluster struct {
	t       *testing.T
	plan    plan
	dialect store.Dialect
	dir     string
	bin     string
	// dbURL is what the hubs use (through pgProxy on PostgreSQL);
	// directURL reaches the database without the proxy, for set-up and
	// the audits.
	dbURL, directURL string
	keyFile          string
	pgProxy          *proxy
	// db reads the hub's records for the audits; writer is only for
	// planting faults that the audits must catch.
	db, writer *sql.DB

	cas       *cassim.Simulator
	wallet    *simwallet.Simulator
	tes       *simtes.Simulator
	casProxy  *proxy
	walProxy  *proxy
	tesProxy  *proxy
	tesCreds  creds
	walCreds  creds
	issuerKey *ecdsa.PrivateKey
	crmPass   string

	mu    sync.Mutex
	hubs  []*hubProc
	kills int
	// lastKill is when the last hub process was killed (for the drain
	// figure).
	lastKill time.Time
	rng      *rand.Rand
	http     *http.Client
}

// hubProc is one `provhub serve` process, restarted on the same address
// and pod name after each kill.
type hubProc struct {
	name, addr string
	cmd        *exec.Cmd
	exited     chan struct{}
	logPath    string
}

func (h *hubProc) url() string { return "http://" + h.addr }

func newCluster(t *testing.T, p plan, d store.Dialect) *cluster {
	t.Helper()
	c := &cluster{t: t, plan: p, dialect: d, dir: t.TempDir(), bin: provhubBinary(t),
		rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7)), http: &http.Client{Timeout: 15 * time.Second}}
	c.directURL = storetest.NewURL(t, d)
	c.dbURL = c.directURL
	if d == store.Postgres {
		u, err := url.Parse(c.directURL)
		if err != nil {
			t.Fatal(err)
		}
		c.pgProxy = newProxy(t, u.Host)
		u.Host = c.pgProxy.addr()
		c.dbURL = u.String()
	}
	c.startSims()
	c.setUp()
	instances := 1
	if d == store.Postgres {
		instances = p.pgInstances
	}
	for i := range instances {
		h := &hubProc{name: fmt.Sprintf("hub-%d", i+1), addr: freeAddr(t)}
		h.logPath = filepath.Join(c.dir, h.name+".log")
		c.hubs = append(c.hubs, h)
		c.wallet.SetPodURL(h.name, h.url())
		c.start(h)
	}
	c.wallet.SetHubURL(c.hubs[0].url())
	t.Cleanup(c.stopAll)
	return c
}

// startSims serves the CAS, wallet-server and TES simulators, each behind a
// proxy that can take it away.
func (c *cluster) startSims() {
	t := c.t
	var err error
	if c.cas, err = cassim.New(cassim.Config{}); err != nil {
		t.Fatal(err)
	}
	if c.wallet, err = simwallet.New(simwallet.Config{TaskDelay: 5 * time.Millisecond, DeviceRetryFor: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if c.tes, err = simtes.New(simtes.Config{SessionTTL: 2 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	c.tes.AddIssuer(issuerID)
	for _, s := range []struct {
		h http.Handler
		p **proxy
	}{{c.cas, &c.casProxy}, {c.wallet, &c.walProxy}, {c.tes, &c.tesProxy}} {
		srv := httptest.NewServer(s.h)
		t.Cleanup(srv.Close)
		*s.p = newProxy(t, strings.TrimPrefix(srv.URL, "http://"))
	}
	c.wallet.Wait()
}

// setUp prepares the database with provhub's own commands, as an operator
// would, and loads the simulators with the same devices and accounts.
func (c *cluster) setUp() {
	t := c.t
	c.keyFile = filepath.Join(c.dir, "secret.key")
	c.run("", "secret-key", "--out", c.keyFile)
	c.run("", "migrate", "--db", c.directURL)

	// Pay-TV reference data: smartcards the CAS knows, services, one
	// subscription.
	ref := map[string]any{"organisation": crmOrg,
		"units":         []map[string]string{{"name": "Chaos unit"}},
		"subscriptions": []map[string]string{{"number": subNumber}},
		"stbs":          []map[string]string{{"serial_number": "STB-CHAOS", "ca_id": "STB-CHAOS"}},
	}
	var services, smartcards []map[string]string
	for i := range len(chaosServices) {
		services = append(services, map[string]string{"code": chaosServices[i], "ca_id": serviceCAID(i)})
	}
	var cardIDs []string
	for i := range c.plan.smartcards {
		smartcards = append(smartcards, map[string]string{"serial_number": smartcardSerial(i), "ca_id": smartcardCAID(i)})
		cardIDs = append(cardIDs, smartcardCAID(i))
	}
	ref["services"], ref["smartcards"] = services, smartcards
	raw, _ := json.Marshal(ref)
	refFile := filepath.Join(c.dir, "crm.json")
	if err := os.WriteFile(refFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	c.run("", "crm", "import", refFile, "--db", c.directURL)
	c.cas.AddDevices(cardIDs, []string{"STB-CHAOS"})
	c.crmPass = "chaos-crm-password"
	c.run(c.crmPass+"\n", "crm", "user", "add", "--db", c.directURL, "--username", crmUser, "--organisation", crmOrg)

	// The issuer and its key.
	prefix := filepath.Join(c.dir, "issuer")
	c.run("", "issuer", "keygen", "--out", prefix)
	c.run("", "issuer", "add", "--db", c.directURL, "--secret-key-file", c.keyFile, "--id", issuerID, "--kid", issuerKid, "--public-key", prefix+".pub")
	pem, err := os.ReadFile(prefix + ".key")
	if err != nil {
		t.Fatal(err)
	}
	if c.issuerKey, err = oauth.ParsePrivateKey(pem); err != nil {
		t.Fatal(err)
	}

	// The TES and the wallet server as partners, signing their calls.
	for _, p := range []struct {
		id, role string
		into     *creds
	}{{tesPartner, "tes", &c.tesCreds}, {walPartner, "wallet", &c.walCreds}} {
		file := filepath.Join(c.dir, p.id+".secret")
		c.run("", "partner", "add", "--db", c.directURL, "--secret-key-file", c.keyFile, "--id", p.id, "--role", p.role,
			"--issuer", issuerID, "--signing", "--secret-out", file)
		secret, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		*p.into = creds{p.id, strings.TrimSpace(string(secret))}
	}
	c.wallet.SetPartner(c.walCreds.id, c.walCreds.secret)

	sdb, err := store.Open(context.Background(), store.Config{URL: c.directURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sdb.Close() })
	c.db, c.writer = sdb.Reader(), sdb.Writer()
}

// run runs a provhub command to its end.
func (c *cluster) run(stdin string, args ...string) string {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("provhub %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

// start starts h's process and waits until it is ready.
func (c *cluster) start(h *hubProc) {
	c.t.Helper()
	if err := c.tryStart(h); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) tryStart(h *hubProc) error {
	logFile, err := os.OpenFile(h.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(c.bin, "serve", "--listen", h.addr, "--db", c.dbURL, "--secret-key-file", c.keyFile, "--pod", h.name,
		"--cas-url", c.casProxy.url(), "--wallet-url", c.walProxy.url(), "--tes-url", c.tesProxy.url()+"/tes/devicegtwapi/1/0",
		"--cas-timeout", "3s", "--tes-timeout", "3s", "--wallet-timeout", "3s", "--device-operation-ttl", "45s", "--device-operations-per-se", "1000", "--max-workers", "40",
		"--shutdown-timeout", "5s", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", h.name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	c.mu.Lock()
	h.cmd, h.exited = cmd, exited
	c.mu.Unlock()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("%s exited while starting:\n%s", h.name, tail(h.logPath, 30))
		default:
		}
		if resp, err := c.http.Get(h.url() + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after 2 minutes:\n%s", h.name, tail(h.logPath, 30))
}

// kill SIGKILLs h and starts it again on the same database.
func (c *cluster) kill(h *hubProc) {
	c.t.Helper()
	c.mu.Lock()
	cmd, exited := h.cmd, h.exited
	c.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	c.mu.Lock()
	c.kills++
	c.lastKill = time.Now()
	c.mu.Unlock()
	// The restart may meet PostgreSQL being cut or restarted: try again.
	var err error
	for range 5 {
		if err = c.tryStart(h); err == nil {
			return
		}
		time.Sleep(time.Second)
	}
	c.t.Errorf("restart %s: %v", h.name, err)
}

// stopAll stops every hub with SIGTERM (a drained stop). When the test
// failed, the hubs' logs are kept in PROVHUB_TEST_ARTIFACTS.
func (c *cluster) stopAll() {
	defer c.keepLogs()
	for _, h := range c.hubs {
		c.mu.Lock()
		cmd, exited := h.cmd, h.exited
		c.mu.Unlock()
		if cmd == nil {
			continue
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
}

func (c *cluster) keepLogs() {
	dir := os.Getenv("PROVHUB_TEST_ARTIFACTS")
	if dir == "" || !c.t.Failed() {
		return
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(c.t.Name())
	if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
		return
	}
	for _, h := range c.hubs {
		if raw, err := os.ReadFile(h.logPath); err == nil {
			_ = os.WriteFile(filepath.Join(dir, name, h.name+".log"), raw, 0o644)
		}
	}
	c.t.Logf("hub logs kept in %s", filepath.Join(dir, name))
}

// hubURL picks a hub at random: clients of several instances spread
// their calls.
func (c *cluster) hubURL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hubs[c.rng.IntN(len(c.hubs))].url()
}

// partnerCall posts a signed partner call and decodes the answer; err is
// set when no answer arrived (the call may or may not have been taken).
func (c *cluster) partnerCall(ctx context.Context, p creds, path string, body map[string]any, into any) error {
	body["requestHeader"] = map[string]string{"requestId": randomID(), "sessionId": "chaos",
		"generationDateTime": time.Now().UTC().Format(time.RFC3339)}
	raw, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.hubURL()+path, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	reqsign.Sign(req, raw, p.id, p.secret, time.Now())
	return c.do(req, into)
}

// do runs req and decodes a JSON answer. A 5xx or a non-JSON answer is an
// error, like no answer.
func (c *cluster) do(req *http.Request, into any) error {
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 500 {
		return fmt.Errorf("%s: HTTP %d: %s", req.URL.Path, resp.StatusCode, raw)
	}
	if into == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(raw, into); err != nil {
		return fmt.Errorf("%s: HTTP %d: %w: %s", req.URL.Path, resp.StatusCode, err, raw)
	}
	return nil
}

// issuerToken exchanges a fresh assertion for an access token.
func (c *cluster) issuerToken(ctx context.Context) (string, error) {
	now := time.Now()
	assertion, err := oauth.SignAssertion(c.issuerKey, oauth.Assertion{IssuerID: issuerID, Kid: issuerKid, Expires: now.Add(5 * time.Minute), IssuedAt: now})
	if err != nil {
		return "", err
	}
	form := url.Values{"grant_type": {oauth.GrantType}, "assertion": {assertion}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.hubURL()+"/authz/v1/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var out struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := c.do(req, &out); err != nil {
		return "", err
	}
	if out.AccessToken == "" {
		return "", fmt.Errorf("token refused: %s", out.Error)
	}
	return out.AccessToken, nil
}

// bank calls the issuer API; status is 0 when no answer arrived.
func (c *cluster) bank(ctx context.Context, token, method, path string, body any, into any) (int, error) {
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.hubURL()+"/banking/v1/issuers/"+issuerID+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if into != nil && resp.StatusCode < 300 && len(raw) > 0 {
		if err := json.Unmarshal(raw, into); err != nil {
			return resp.StatusCode, fmt.Errorf("%s: %w: %s", path, err, raw)
		}
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, nil
}

// proxy forwards TCP connections to a target and can cut every open
// connection and refuse new ones: what a network fault or a server's
// restart looks like from the client's side.
type proxy struct {
	l       net.Listener
	target  string
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	refused bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() { l.Close(); p.cut() })
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }
func (p *proxy) url() string  { return "http://" + p.addr() }

func (p *proxy) serve() {
	for {
		in, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refused := p.refused
		p.mu.Unlock()
		if refused {
			in.Close()
			continue
		}
		go p.pipe(in)
	}
}

func (p *proxy) pipe(in net.Conn) {
	out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		in.Close()
		return
	}
	p.mu.Lock()
	p.conns[in], p.conns[out] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
	go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
	<-done
	in.Close()
	out.Close()
	p.mu.Lock()
	delete(p.conns, in)
	delete(p.conns, out)
	p.mu.Unlock()
}

// cut closes every open connection.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// refuse makes new connections fail (closed at once) or work again.
func (p *proxy) refuse(on bool) {
	p.mu.Lock()
	p.refused = on
	p.mu.Unlock()
	if on {
		p.cut()
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func tail(path string, n int) string {
	raw, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func randomID() string {
	return fmt.Sprintf("%016x", rand.Uint64())
}

// The pay-TV reference data's names.
var chaosServices = []string{"BASIC", "SPORTS", "MOVIES", "KIDS"}

func serviceCAID(i int) string     { return fmt.Sprintf("%d", 3001+i) }
func smartcardSerial(i int) string { return fmt.Sprintf("CHS%05d", i) }
func smartcardCAID(i int) string   { return fmt.Sprintf("07%08d", i) }

// sleepCtx sleeps d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// intN draws from the cluster's random source, which the clients share.
func (c *cluster) intN(n int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rng.IntN(n)
}
