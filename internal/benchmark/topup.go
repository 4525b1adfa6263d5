package benchmark

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/provhub/provhub/internal/cliflag"
	"github.com/provhub/provhub/internal/hub"
	"github.com/provhub/provhub/internal/loopback"
	"github.com/provhub/provhub/internal/sealed"
	simtes "github.com/provhub/provhub/internal/sim/tes"
	simwallet "github.com/provhub/provhub/internal/sim/wallet"
	"github.com/provhub/provhub/internal/transit"
)

// TopUp measures top-ups end to end: for each device, one after the
// other (one operation per device at a time), the hub starts a top-up,
// redirects the device through an in-process wallet-server simulator, and
// relays the FeliCa command loop between the device and an in-process TES
// simulator until the TES has applied the purchase.
func TopUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("bench topup", stderr)
	db := cliflag.DB(fs, "")
	devices := fs.Int("devices", 100, "devices, one transit card each, topped up in parallel")
	perDevice := fs.Int("topups", 20, "top-ups per device, one after the other")
	workers := fs.Int("workers", 200, "jobs run at once")
	poll := fs.Duration("poll", 2*time.Millisecond, "the hub's first getTaskStatus wait for the REDIRECT task (it doubles up to 8x)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	cpuProfile := profileFlag(fs)
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	if *devices <= 0 || *perDevice <= 0 {
		return errors.New("--devices and --topups must be positive")
	}
	url, cleanup, err := benchDB(*db)
	if err != nil {
		return err
	}
	defer cleanup()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	sims, err := loopback.StartSims(simwallet.Config{TaskDelay: time.Millisecond}, simtes.Config{})
	if err != nil {
		return err
	}
	defer sims.Stop()
	wsim, tsim := sims.Wallet, sims.TES

	h, err := hub.New(ctx, hub.Config{SecretKey: sealed.NewKey(), Listen: "127.0.0.1:0", DatabaseURL: url, Migrate: true, MaxWorkers: *workers,
		WalletURL: sims.WalletURL, TESURL: sims.TESURL, Pod: "bench", Logger: slog.New(slog.DiscardHandler),
		ShutdownTimeout: 30 * time.Second, TransitTuning: func(c *transit.Config) {
			c.TESRetryWait, c.TESRetryFor = 5*time.Millisecond, 15*time.Millisecond
			c.PollSchedule = []time.Duration{*poll, 2 * *poll, 4 * *poll, 8 * *poll}
			// Each simulated device tops up back to back, far past the bound
			// a real one meets.
			c.OperationsPerSE = *perDevice + 1
		}})
	if err != nil {
		return err
	}
	cards, err := benchCards(ctx, h, *devices, func(_ int, se, wc, acc string) error {
		return errors.Join(wsim.AddDevice(se, "dev-"+se), wsim.AddCard(wc, se, nil), wsim.SetCardBalance(wc, 0),
			tsim.AddAccount(simtes.Account{ID: acc, IssuerID: "BENCH", DeviceID: "dev-" + se}))
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
	wsim.SetHubURL("http://" + addr)
	stopHub := loopback.RunHub(ctx, h)
	defer func() {
		stopHub()
		wsim.Wait()
	}()

	var (
		mu       sync.Mutex
		lat      []time.Duration
		firstErr error
		wg       sync.WaitGroup
	)
	// The profile covers the load, not the set-up before it.
	stopProfile, err := startProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	start := time.Now()
	for i := range *devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range *perDevice {
				purchase := fmt.Sprintf("P-%d-%d", i, k)
				t0 := time.Now()
				err := tsim.AddPurchase(simtes.Purchase{ID: purchase, CardAccountID: cards[i], Amount: 10})
				if err == nil {
					err = topUpOnce(ctx, h.Transit(), cards[i], purchase)
				}
				mu.Lock()
				lat = append(lat, time.Since(t0))
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return firstErr
	}
	n := *devices * *perDevice
	p50, p99 := percentiles(lat)
	applied := tsim.Stats().PurchasesApplied
	fmt.Fprintf(stdout, "top-ups db=%s devices=%d top-ups=%d workers=%d poll=%v\n", h.DB().Dialect(), *devices, n, *workers, *poll)
	fmt.Fprintf(stdout, "  completed end to end:  %8.0f top-ups/s   start->COMPLETED p50 %v p99 %v\n",
		float64(n)/elapsed.Seconds(), p50.Round(time.Millisecond), p99.Round(time.Millisecond))
	fmt.Fprintf(stdout, "  purchases applied by the TES: %d of %d; relay steps per top-up: 4\n", applied, n)
	if applied != n {
		return fmt.Errorf("the TES applied %d purchases, want %d", applied, n)
	}
	return nil
}

// topUpOnce starts a top-up and waits until it has ended.
func topUpOnce(ctx context.Context, svc *transit.Service, cardID, purchase string) error {
	op, err := svc.StartTopUp(ctx, "BENCH", cardID, purchase)
	if err != nil {
		return err
	}
	for {
		cur, err := svc.Operation(ctx, "BENCH", op.OperationID)
		if err != nil {
			return err
		}
		switch cur.Status {
		case transit.OperationCompleted:
			return nil
		case transit.OperationFailed:
			return fmt.Errorf("top-up %s failed: %v %s", op.OperationID, cur.StatusCode, cur.Message)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
