package benchmark

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/provhub/provhub/internal/cliflag"
	"github.com/provhub/provhub/internal/hub"
	"github.com/provhub/provhub/internal/loopback"
	"github.com/provhub/provhub/internal/partner"
	"github.com/provhub/provhub/internal/reqsign"
	"github.com/provhub/provhub/internal/sealed"
	simwallet "github.com/provhub/provhub/internal/sim/wallet"
	storepkg "github.com/provhub/provhub/internal/store"
)

// Wallet measures wallet tasks end to end: concurrent clients call the
// hub's updateCardMetadata over HTTP, and each queued task runs against an
// in-process wallet-server simulator (updateCard, then getTaskStatus polls)
// until COMPLETED. With --instances N the tasks are queued on N provhub
// serve processes sharing one PostgreSQL database, each running jobs.
func Wallet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("bench wallet", stderr)
	db := cliflag.DB(fs, "")
	tasks := fs.Int("tasks", 5000, "wallet tasks")
	ses := fs.Int("secure-elements", 1000, "secure elements (one card each) the tasks spread over")
	clients := fs.Int("clients", 32, "concurrent HTTP clients")
	workers := fs.Int("workers", 200, "jobs run at once")
	taskDelay := fs.Duration("task-delay", time.Millisecond, "how long the simulator keeps a task PROCESSING")
	poll := fs.Duration("poll", 2*time.Millisecond, "the hub's first getTaskStatus wait (serve --wallet-poll; the later ones grow from it)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	instances := fs.Int("instances", 0, "0: a hub in this process; N: N provhub serve processes on the one PostgreSQL database of --db")
	cpuProfile := profileFlag(fs)
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	if *tasks <= 0 || *ses <= 0 || *clients <= 0 || *instances < 0 {
		return errors.New("--tasks, --secure-elements and --clients must be positive, --instances not negative")
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

	sim, err := simwallet.New(simwallet.Config{TaskDelay: *taskDelay})
	if err != nil {
		return err
	}
	simURL, stopSim, err := loopback.Serve(sim)
	if err != nil {
		return err
	}
	defer stopSim()

	keyText := sealed.NewKeyText()
	key, err := sealed.ParseKey(keyText)
	if err != nil {
		return err
	}
	h, err := hub.New(ctx, hub.Config{SecretKey: key, Listen: "127.0.0.1:0", DatabaseURL: url, Migrate: true, MaxWorkers: *workers,
		WalletURL: simURL, Pod: "bench", WalletPoll: *poll, Logger: slog.New(slog.DiscardHandler), ShutdownTimeout: 30 * time.Second})
	if err != nil {
		return err
	}
	cards, err := benchCards(ctx, h, *ses, func(i int, se, wc, _ string) error {
		return errors.Join(sim.AddDevice(se, "dev"), sim.AddCard(wc, se, []byte{0xA0, 0, 0, 1, 0x51, 0x53, 0x50, byte(i >> 8), byte(i)}))
	})
	if err != nil {
		h.Close()
		return err
	}
	// The load comes from a TES partner, signing every call as one would.
	secret, err := h.Partners().Add(ctx, partner.NewPartner{ID: "bench-tes", Role: partner.RoleTES, Issuers: []string{"BENCH"}, Signing: true})
	if err != nil {
		h.Close()
		return err
	}
	// The instances share the seeding hub's secret key, which seals the
	// partner's secret.
	bases, store, stop, err := serveSeeded(ctx, h, *instances, url, keyText, *workers, stderr,
		"--wallet-url", simURL, "--wallet-poll", poll.String())
	if err != nil {
		return err
	}
	defer func() {
		stop()
		sim.Wait()
	}()
	hc := &http.Client{Timeout: time.Minute, Transport: &reqsign.Signer{ID: "bench-tes", Secret: secret, Base: &http.Transport{MaxIdleConnsPerHost: *clients}}}
	// The profile covers the load, not the set-up before it.
	stopProfile, err := startProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	before := scrapeEngine(ctx, bases)
	start := time.Now()
	accepted, latencies, err := runClients(ctx, *tasks, *clients, func(i int) error {
		body := fmt.Appendf(nil, `{"requestHeader":{"requestId":"r%d","sessionId":"bench"},"issuerId":"BENCH","cardId":%q,"cardDescriptor":{"cardholderName":"Rider %d"}}`,
			i, cards[i%*ses], i)
		endpoint := bases[i%len(bases)] + "/tsh/transitapi/1/0/updateCardMetadata"
		if code, err := sendOnce(ctx, hc, endpoint, body); err != nil || code != 0 {
			return fmt.Errorf("updateCardMetadata: status %d, %v", code, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := waitNone(ctx, store, "tasks", `SELECT count(*) FROM transit_tasks WHERE status IN ('QUEUED', 'PROCESSING')`); err != nil {
		reportOpenTasks(store, stderr)
		return err
	}
	completed := time.Since(start)
	after := scrapeEngine(ctx, bases)
	counts, lat, err := outcomes(ctx, store, `SELECT status, updated_at - created_at FROM transit_tasks`)
	if err != nil {
		return err
	}
	done := counts["COMPLETED"]
	p50, p99 := percentiles(lat)
	a50, a99 := percentiles(latencies)
	fmt.Fprintf(stdout, "wallet tasks db=%s instances=%d tasks=%d secure-elements=%d clients=%d workers=%d task-delay=%v poll=%v machine=%s\n",
		store.Dialect(), max(1, *instances), *tasks, *ses, *clients, *workers, *taskDelay, *poll, machineText())
	fmt.Fprintf(stdout, "  accepted (queued over HTTP):          %8.0f tasks/s   p50 %v p99 %v\n", float64(*tasks)/accepted.Seconds(),
		a50.Round(10*time.Microsecond), a99.Round(10*time.Microsecond))
	fmt.Fprintf(stdout, "  completed through the wallet server:  %8.0f tasks/s   queued->completed p50 %v p99 %v\n",
		float64(*tasks)/completed.Seconds(), p50.Round(time.Millisecond), p99.Round(time.Millisecond))
	fmt.Fprintf(stdout, "  outcome: %d COMPLETED of %d; 321 answers from the simulator: %d\n", done, *tasks, sim.Stats().Busy)
	if after.turn > before.turn && store.Dialect() == storepkg.Postgres {
		fmt.Fprintf(stdout, "  %s\n", lockReport(before, after, completed.Seconds(), len(bases)))
	}
	return nil
}

// reportOpenTasks writes the tasks a run left open, with their jobs, for
// whoever reads why it did not finish.
func reportOpenTasks(db *storepkg.DB, w io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := db.Reader().QueryContext(ctx, `SELECT t.task_id, t.se_id, t.status, COALESCE(t.message, ''), COALESCE(j.state, 'no job'),
		COALESCE(j.attempt, 0), COALESCE(j.held, FALSE), COALESCE(j.lease_owner, '') FROM transit_tasks t LEFT JOIN jobs j ON j.id = t.job_id
		WHERE t.status IN ('QUEUED', 'PROCESSING') ORDER BY t.task_id LIMIT 20`)
	if err != nil {
		fmt.Fprintf(w, "open tasks: %v\n", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var id, se, status, msg, state, owner string
		var attempt int
		var held bool
		if err := rows.Scan(&id, &se, &status, &msg, &state, &attempt, &held, &owner); err != nil {
			fmt.Fprintf(w, "open tasks: %v\n", err)
			return
		}
		fmt.Fprintf(w, "open task %s (secure element %s): %s %q; job %s, attempt %d, held %v, lease owner %q\n", id, se, status, msg, state, attempt, held, owner)
	}
}
