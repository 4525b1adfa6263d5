package benchmark

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/provhub/provhub/internal/cliflag"
	"github.com/provhub/provhub/internal/hub"
	"github.com/provhub/provhub/internal/loopback"
	"github.com/provhub/provhub/internal/partner"
	"github.com/provhub/provhub/internal/reqsign"
	"github.com/provhub/provhub/internal/sealed"
	simwallet "github.com/provhub/provhub/internal/sim/wallet"
	"github.com/provhub/provhub/internal/transit"
)

// Wallet measures wallet tasks end to end: concurrent clients call the
// hub's updateCardMetadata over HTTP, and each queued task runs against an
// in-process wallet-server simulator (updateCard, then getTaskStatus polls)
// until COMPLETED.
func Wallet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("bench wallet", stderr)
	db := cliflag.DB(fs, "")
	tasks := fs.Int("tasks", 5000, "wallet tasks")
	ses := fs.Int("secure-elements", 1000, "secure elements (one card each) the tasks spread over")
	clients := fs.Int("clients", 32, "concurrent HTTP clients")
	workers := fs.Int("workers", 200, "jobs run at once")
	taskDelay := fs.Duration("task-delay", time.Millisecond, "how long the simulator keeps a task PROCESSING")
	poll := fs.Duration("poll", 2*time.Millisecond, "the hub's first getTaskStatus wait (it doubles up to 8x)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	cpuProfile := profileFlag(fs)
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	if *tasks <= 0 || *ses <= 0 || *clients <= 0 {
		return errors.New("--tasks, --secure-elements and --clients must be positive")
	}
	url, cleanup, err := benchDB(*db)
	if err != nil {
		return err
	}
	defer cleanup()
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

	h, err := hub.New(ctx, hub.Config{SecretKey: sealed.NewKey(), Listen: "127.0.0.1:0", DatabaseURL: url, Migrate: true, MaxWorkers: *workers,
		WalletURL: simURL, Pod: "bench", Logger: slog.New(slog.DiscardHandler), ShutdownTimeout: 30 * time.Second,
		TransitTuning: func(c *transit.Config) {
			c.PollSchedule = []time.Duration{*poll, 2 * *poll, 4 * *poll, 8 * *poll}
		}})
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
	addr, err := h.Listen()
	if err != nil {
		h.Close()
		return err
	}
	stopHub := loopback.RunHub(ctx, h)
	defer func() {
		stopHub()
		sim.Wait()
	}()

	// The load comes from a TES partner, signing every call as one would.
	secret, err := h.Partners().Add(ctx, partner.NewPartner{ID: "bench-tes", Role: partner.RoleTES, Issuers: []string{"BENCH"}, Signing: true})
	if err != nil {
		return err
	}
	endpoint := "http://" + addr + "/tsh/transitapi/1/0/updateCardMetadata"
	hc := &http.Client{Timeout: time.Minute, Transport: &reqsign.Signer{ID: "bench-tes", Secret: secret, Base: &http.Transport{MaxIdleConnsPerHost: *clients}}}
	// The profile covers the load, not the set-up before it.
	stopProfile, err := startProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	start := time.Now()
	accepted, _, err := runClients(ctx, *tasks, *clients, func(i int) error {
		body := fmt.Appendf(nil, `{"requestHeader":{"requestId":"r%d","sessionId":"bench"},"issuerId":"BENCH","cardId":%q,"cardDescriptor":{"cardholderName":"Rider %d"}}`,
			i, cards[i%*ses], i)
		if code, err := sendOnce(ctx, hc, endpoint, body); err != nil || code != 0 {
			return fmt.Errorf("updateCardMetadata: status %d, %v", code, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := waitNone(ctx, h.DB(), "tasks", `SELECT count(*) FROM transit_tasks WHERE status IN ('QUEUED', 'PROCESSING')`); err != nil {
		return err
	}
	completed := time.Since(start)
	counts, lat, err := outcomes(ctx, h.DB(), `SELECT status, updated_at - created_at FROM transit_tasks`)
	if err != nil {
		return err
	}
	done := counts["COMPLETED"]
	p50, p99 := percentiles(lat)
	fmt.Fprintf(stdout, "wallet tasks db=%s tasks=%d secure-elements=%d clients=%d workers=%d task-delay=%v\n",
		h.DB().Dialect(), *tasks, *ses, *clients, *workers, *taskDelay)
	fmt.Fprintf(stdout, "  accepted (queued over HTTP):          %8.0f tasks/s\n", float64(*tasks)/accepted.Seconds())
	fmt.Fprintf(stdout, "  completed through the wallet server:  %8.0f tasks/s   queued->completed p50 %v p99 %v\n",
		float64(*tasks)/completed.Seconds(), p50.Round(time.Millisecond), p99.Round(time.Millisecond))
	fmt.Fprintf(stdout, "  outcome: %d COMPLETED of %d; 321 answers from the simulator: %d\n", done, *tasks, sim.Stats().Busy)
	return nil
}
