package benchmark

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/provhub/provhub/internal/cliflag"
	"github.com/provhub/provhub/internal/hub"
	"github.com/provhub/provhub/internal/loopback"
	"github.com/provhub/provhub/internal/paytv"
	"github.com/provhub/provhub/internal/sealed"
	cassim "github.com/provhub/provhub/internal/sim/cas"
	storepkg "github.com/provhub/provhub/internal/store"
)

// CRM measures the CRM API end to end: concurrent clients call
// add_subscriptions over HTTP on a hub whose jobs send every request to an
// in-process CAS simulator. In the same run it measures the same client
// loop against a bare net/http JSON handler (the ceiling of any HTTP API on
// the machine) and prints the ratio, then the latency at half the rate
// reached, and the bare handler's at the same pace (what the machine allows
// any HTTP API at that rate). With --instances N it starts N provhub serve processes on one
// PostgreSQL database and spreads the clients over them.
func CRM(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("bench crm", stderr)
	db := cliflag.DB(fs, "")
	requests := fs.Int("requests", 20000, "add_subscriptions calls")
	clients := fs.Int("clients", 64, "concurrent HTTP clients")
	cards := fs.Int("smartcards", 1000, "smartcards the requests spread over")
	workers := fs.Int("workers", 200, "jobs run at once (in all, spread over the instances)")
	instances := fs.Int("instances", 0, "0: a hub in this process; N: N provhub serve processes on the one PostgreSQL database of --db")
	baseline := fs.Bool("baseline", true, "measure the bare net/http JSON handler first, with the same clients")
	halfLoad := fs.Bool("half-load", true, "then measure the latency of calls paced at half the rate reached")
	pacedRate := fs.Float64("paced-rate", 0, "pace the latency phase at this many calls a second instead of half the rate reached (to compare two builds at one rate)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	cpuProfile := profileFlag(fs)
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	stopProfile, err := startProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	if *requests <= 0 || *clients <= 0 || *cards <= 0 || *instances < 0 || *pacedRate < 0 {
		return errors.New("--requests, --clients and --smartcards must be positive, --instances and --paced-rate not negative")
	}
	url, cleanup, err := benchDB(*db)
	if err != nil {
		return err
	}
	defer cleanup()
	if *instances > 0 && !strings.HasPrefix(url, "postgres") {
		return errors.New("--instances needs a PostgreSQL --db: instances share their database")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	paced := 0
	if *halfLoad {
		paced = max(1000, *requests/4)
	}
	total := *requests + paced
	cardIDs := make([]string, *cards)
	for i := range cardIDs {
		cardIDs[i] = fmt.Sprintf("%010d", i)
	}
	bodyOf := func(token string, i int) []byte {
		body, _ := json.Marshal(map[string]any{"token": token,
			"subscription_identifier": map[string]string{"number": "BENCH-1"},
			"service_identifier":      map[string]string{"code": fmt.Sprintf("SVC%d", i / *cards)},
			"smartcard_identifier":    map[string]string{"serial_number": "SC" + cardIDs[i%*cards]}})
		return body
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *clients, MaxIdleConns: *clients * 2}, Timeout: time.Minute}
	machine := machineText()

	var (
		bare     float64
		bareCall func(i int) error // nil without a baseline
	)
	if *baseline {
		bareURL, stopBare, err := serveBareJSON()
		if err != nil {
			return err
		}
		defer stopBare()
		bareCall = func(i int) error { return benchPost(ctx, client, bareURL+"/", bodyOf("0123456789ABCDEF", i), nil) }
		if bare, err = benchBareJSON(ctx, *requests, *clients, bareCall, stdout); err != nil {
			return err
		}
	}

	sim, err := cassim.New(cassim.Config{})
	if err != nil {
		return err
	}
	simURL, stopSim, err := loopback.Serve(sim)
	if err != nil {
		return err
	}
	defer stopSim()
	sim.AddDevices(cardIDs, nil)

	keyText := sealed.NewKeyText()
	key, err := sealed.ParseKey(keyText)
	if err != nil {
		return err
	}
	h, err := hub.New(ctx, hub.Config{SecretKey: key, Listen: "127.0.0.1:0", DatabaseURL: url, Migrate: true, MaxWorkers: *workers,
		CASURL: simURL, Logger: slog.New(slog.DiscardHandler), ShutdownTimeout: 30 * time.Second})
	if err != nil {
		return err
	}
	if err := seedBenchCRM(ctx, h, *cards, (total+*cards-1) / *cards); err != nil {
		h.Close()
		return err
	}
	bases, store, stop, err := serveSeeded(ctx, h, *instances, url, keyText, *workers, stderr, "--cas-url", simURL)
	if err != nil {
		return err
	}
	defer stop()
	token, err := benchLogin(ctx, client, bases[0]+"/crmapi/rest/v2/")
	if err != nil {
		return err
	}
	call := func(i int) error {
		return benchPost(ctx, client, bases[i%len(bases)]+"/crmapi/rest/v2/conax_web_services/provisioning_requests/add_subscriptions", bodyOf(token, i), nil)
	}

	before := scrapeEngine(ctx, bases)
	start := time.Now()
	accepted, latencies, err := runClients(ctx, *requests, *clients, call)
	if err != nil {
		return err
	}
	after := scrapeEngine(ctx, bases)
	if err := waitNone(ctx, store, "requests", `SELECT count(*) FROM paytv_requests WHERE life_cycle_state = 'PENDING'`); err != nil {
		return err
	}
	completed := time.Since(start)
	counts, e2e, err := outcomes(ctx, store, `SELECT life_cycle_state, executed_at - created_at FROM paytv_requests`)
	if err != nil {
		return err
	}
	rate := float64(*requests) / accepted.Seconds()
	p50, p99 := percentiles(latencies)
	c50, c99 := percentiles(e2e)
	fmt.Fprintf(stdout, "crm add_subscriptions db=%s instances=%d requests=%d clients=%d smartcards=%d workers=%d machine=%s\n",
		store.Dialect(), max(1, *instances), *requests, *clients, *cards, *workers, machine)
	fmt.Fprintf(stdout, "  accepted (HTTP answered, PENDING stored):  %8.0f requests/s   p50 %v  p99 %v\n",
		rate, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond))
	fmt.Fprintf(stdout, "  completed through the CAS simulator:       %8.0f requests/s   p50 %v  p99 %v (accepted to executed)\n",
		float64(*requests)/completed.Seconds(), c50.Round(time.Millisecond), c99.Round(time.Millisecond))
	fmt.Fprintf(stdout, "  outcome: %d COMPLETED, %d REJECTED\n", counts["COMPLETED"], counts["REJECTED"])
	if bare > 0 {
		fmt.Fprintf(stdout, "  ratio to the bare JSON handler:             %8.3f\n", rate/bare)
	}
	if after.turn > before.turn && store.Dialect() == storepkg.Postgres {
		fmt.Fprintf(stdout, "  while accepting, %s\n", lockReport(before, after, accepted.Seconds(), len(bases)))
	}
	if paced > 0 {
		half, which := rate/2, "half that rate"
		if *pacedRate > 0 {
			half, which = *pacedRate, "the rate asked"
		}
		lat, got, err := runPaced(ctx, *requests, paced, half, *clients, call)
		if err != nil {
			return err
		}
		h50, h99 := percentiles(lat)
		fmt.Fprintf(stdout, "  at %s (%.0f/s asked, %.0f/s sent, %d calls): p50 %v  p99 %v (from each call's due time)\n",
			which, half, got, paced, h50.Round(10*time.Microsecond), h99.Round(10*time.Microsecond))
		if err := waitNone(ctx, store, "requests", `SELECT count(*) FROM paytv_requests WHERE life_cycle_state = 'PENDING'`); err != nil {
			return err
		}
		if bareCall != nil {
			// The same pace against the bare handler, once the hub is idle:
			// the latency this machine gives any HTTP API at that rate,
			// which no request path can beat.
			lat, got, err := runPaced(ctx, 0, paced, half, *clients, bareCall)
			if err != nil {
				return err
			}
			b50, b99 := percentiles(lat)
			fmt.Fprintf(stdout, "  the bare JSON handler at the same pace (%.0f/s sent): p50 %v  p99 %v\n",
				got, b50.Round(10*time.Microsecond), b99.Round(10*time.Microsecond))
		}
	}
	return nil
}

// seedBenchCRM loads the benchmark's organisation: smartcards, services
// and the CRM user. It refuses a database that holds requests.
func seedBenchCRM(ctx context.Context, h *hub.Hub, cards, services int) error {
	var pending int
	if err := h.DB().Reader().QueryRowContext(ctx, `SELECT count(*) FROM paytv_requests`).Scan(&pending); err != nil {
		return err
	}
	if pending > 0 {
		return errors.New("the database holds provisioning requests; run the benchmark on a scratch database")
	}
	ref := paytv.ReferenceData{Organisation: "BENCH", Subscriptions: []paytv.SubscriptionData{{Number: "BENCH-1"}}}
	for i := range cards {
		ca := fmt.Sprintf("%010d", i)
		ref.Smartcards = append(ref.Smartcards, paytv.ItemData{SerialNumber: "SC" + ca, CAID: ca})
	}
	for i := range services {
		ref.Services = append(ref.Services, paytv.ServiceData{Code: fmt.Sprintf("SVC%d", i), CAID: fmt.Sprintf("%d", 1000+i)})
	}
	if _, err := h.PayTV().Import(ctx, ref); err != nil {
		return err
	}
	return h.PayTV().AddUser(ctx, paytv.NewUser{Organisation: "BENCH", Username: "bench", Password: "bench-password"})
}

// serveBareJSON serves a handler that decodes the request's JSON and
// answers a small envelope, nothing else: what the machine allows any HTTP
// API.
func serveBareJSON() (url string, stop func(), err error) {
	return loopback.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in map[string]any
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"status": map[string]string{"code": "OK", "description": ""},
			"data": map[string]any{"id": "0123456789ABCDEF0123456789ABCDEF", "number": "1", "life_cycle_state": "PENDING"}})
	}))
}

// benchBareJSON runs the client loop against the bare handler (call posts
// to it). It prints and returns its rate.
func benchBareJSON(ctx context.Context, n, clients int, call func(i int) error, stdout io.Writer) (float64, error) {
	took, lat, err := runClients(ctx, n, clients, call)
	if err != nil {
		return 0, err
	}
	rate := float64(n) / took.Seconds()
	p50, p99 := percentiles(lat)
	fmt.Fprintf(stdout, "bare net/http JSON handler, same clients:   %8.0f requests/s   p50 %v  p99 %v\n", rate, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond))
	return rate, nil
}

// runPaced sends n calls (numbered from first) at rate per second, each
// due at its own time, through clients goroutines; a call's latency runs
// from when it was due, so a hub that falls behind shows it (no
// coordinated omission). It returns the latencies and the rate sent.
func runPaced(ctx context.Context, first, n int, rate float64, clients int, call func(i int) error) ([]time.Duration, float64, error) {
	type due struct {
		i  int
		at time.Time
	}
	work := make(chan due, n)
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	var (
		mu       sync.Mutex
		lat      = make([]time.Duration, 0, n)
		firstErr error
		wg       sync.WaitGroup
	)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range work {
				if wait := time.Until(d.at); wait > 0 {
					time.Sleep(wait)
				}
				err := call(d.i)
				took := time.Since(d.at)
				mu.Lock()
				lat = append(lat, took)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	for k := range n {
		if ctx.Err() != nil {
			break
		}
		work <- due{i: first + k, at: start.Add(time.Duration(k) * interval)}
	}
	close(work)
	wg.Wait()
	return lat, float64(n) / time.Since(start).Seconds(), firstErr
}

// serveInstances are provhub serve processes started by a benchmark.
type serveInstances struct {
	cmds   []*exec.Cmd
	urls   []string
	dir    string
	stderr io.Writer
}

// serveSeeded serves the hub a benchmark seeded: itself, on a loopback
// port, with no instances; else the hub goes and that many provhub serve
// processes take its place on its database (url) and secret key, sharing
// workers, with the serve flags in extra. It returns the bases to call, the
// database to read outcomes from and what stops it all.
func serveSeeded(ctx context.Context, h *hub.Hub, instances int, url, keyText string, workers int, stderr io.Writer,
	extra ...string) (bases []string, db *storepkg.DB, stop func(), err error) {
	if instances == 0 {
		addr, err := h.Listen()
		if err != nil {
			h.Close()
			return nil, nil, nil, err
		}
		return []string{"http://" + addr}, h.DB(), loopback.RunHub(ctx, h), nil
	}
	h.Close()
	procs, err := startServeInstances(ctx, instances, url, keyText, max(1, workers/instances), stderr, extra...)
	if err != nil {
		return nil, nil, nil, err
	}
	if db, err = openStore(ctx, url); err != nil {
		procs.stop()
		return nil, nil, nil, err
	}
	return procs.urls, db, func() { db.Close(); procs.stop() }, nil
}

// machineText names the machine a figure was measured on.
func machineText() string {
	return fmt.Sprintf("%d cores (GOMAXPROCS %d), %s/%s", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH)
}

// startServeInstances starts n provhub serve processes (this binary) on
// one database, with the secret key given and the serve flags in extra
// (where the simulators are), each on a free loopback port, and waits
// until each is ready.
func startServeInstances(ctx context.Context, n int, dbURL, keyText string, workers int, stderr io.Writer, extra ...string) (*serveInstances, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "provhub-bench-serve-")
	if err != nil {
		return nil, err
	}
	keyFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(keyFile, []byte(keyText+"\n"), 0o600); err != nil {
		return nil, err
	}
	p := &serveInstances{dir: dir, stderr: stderr}
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			p.stop()
			return nil, err
		}
		addr := l.Addr().String()
		l.Close()
		args := append([]string{"serve", "--db", dbURL, "--listen", addr, "--secret-key-file", keyFile,
			"--max-workers", strconv.Itoa(workers), "--pod", fmt.Sprintf("bench-%d", i+1), "--log-level", "error"}, extra...)
		cmd := exec.Command(exe, args...)
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			p.stop()
			return nil, err
		}
		p.cmds = append(p.cmds, cmd)
		p.urls = append(p.urls, "http://"+addr)
	}
	for _, u := range p.urls {
		if err := waitReady(ctx, u); err != nil {
			p.stop()
			return nil, err
		}
	}
	return p, nil
}

// serveStopGrace is how long a serve process may take to shut down once
// interrupted before it is killed: a benchmark must end even when an
// instance does not.
const serveStopGrace = 45 * time.Second

func (p *serveInstances) stop() {
	for _, c := range p.cmds {
		_ = c.Process.Signal(os.Interrupt)
	}
	for i, c := range p.cmds {
		exited := make(chan struct{})
		go func() { _ = c.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(serveStopGrace):
			fmt.Fprintf(p.stderr, "provhub serve %s did not stop within %v of its interrupt: killed\n", p.urls[i], serveStopGrace)
			_ = c.Process.Kill()
			<-exited
		}
	}
	os.RemoveAll(p.dir)
}

// waitReady polls base's /readyz until it answers 200.
func waitReady(ctx context.Context, base string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is not ready after 30 s", base)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// engineTimes are the engine's turn and claim-lock seconds and the turns
// that took the lock or found it busy, summed over instances.
type engineTimes struct{ turn, lockWait, lockHeld, lockTurns, lockBusy float64 }

// lockReport says, for a run of wall seconds between the scrapes before and
// after, how much of the writers' turns and of the wall time the claim
// lock took, and how long a turn held it.
func lockReport(before, after engineTimes, wall float64, instances int) string {
	turns := after.turn - before.turn
	held := after.lockHeld - before.lockHeld
	n := after.lockTurns - before.lockTurns
	perTurn := 0.0
	if n > 0 {
		perTurn = 1000 * held / n
	}
	return fmt.Sprintf("claim lock: waited %.1f%%, held %.1f%% of the writers' turns (%.2f s of turns over %d instances); held %.0f%% of the %.1f s run, in %.0f turns of %.2f ms each; %.0f turns found it busy",
		100*(after.lockWait-before.lockWait)/turns, 100*held/turns, turns, instances, 100*held/wall, wall, n, perTurn, after.lockBusy-before.lockBusy)
}

// scrapeEngine reads the engine's time counters from each instance's
// /metrics (a counter that cannot be read counts 0).
func scrapeEngine(ctx context.Context, bases []string) engineTimes {
	var t engineTimes
	for _, b := range bases {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b+"/metrics", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(raw), "\n") {
			name, value, ok := strings.Cut(line, " ")
			if !ok {
				continue
			}
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				continue
			}
			switch name {
			case "provhub_engine_turn_seconds_total":
				t.turn += v
			case "provhub_engine_claim_lock_wait_seconds_total":
				t.lockWait += v
			case "provhub_engine_claim_lock_held_seconds_total":
				t.lockHeld += v
			case "provhub_engine_claim_lock_turns_total":
				t.lockTurns += v
			case "provhub_engine_claim_lock_busy_total":
				t.lockBusy += v
			}
		}
	}
	return t
}

// openStore opens a database without migrating it.
func openStore(ctx context.Context, url string) (*storepkg.DB, error) {
	return storepkg.Open(ctx, storepkg.Config{URL: url, MaxConns: 4})
}

func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	slices.Sort(ds)
	return ds[len(ds)*50/100], ds[min(len(ds)-1, len(ds)*99/100)]
}

func benchLogin(ctx context.Context, client *http.Client, base string) (string, error) {
	var data struct{ Token string }
	body, _ := json.Marshal(map[string]string{"username": "bench", "password": "bench-password", "organisation": "BENCH"})
	if err := benchPost(ctx, client, base+"authentication/token", body, &data); err != nil {
		return "", err
	}
	return data.Token, nil
}

func benchPost(ctx context.Context, client *http.Client, url string, body []byte, data any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Status struct{ Code, Description string }
		Data   json.RawMessage
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	if env.Status.Code != "OK" {
		return fmt.Errorf("%s: %s %s", url, env.Status.Code, env.Status.Description)
	}
	if data != nil {
		return json.Unmarshal(env.Data, data)
	}
	return nil
}
