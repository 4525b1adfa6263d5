package benchmark

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/provhub/provhub/internal/hub"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/transit"
)

// runClients makes n calls, call(0) to call(n-1), from clients goroutines,
// and returns the time they took, each call's latency and the first error.
func runClients(ctx context.Context, n, clients int, call func(i int) error) (time.Duration, []time.Duration, error) {
	var (
		next     atomic.Int64
		mu       sync.Mutex
		lat      = make([]time.Duration, 0, n)
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				err := call(i)
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return time.Since(start), lat, firstErr
}

// waitNone polls countQuery until it counts nothing.
func waitNone(ctx context.Context, db *store.DB, what, countQuery string) error {
	for {
		var left int
		if err := db.Reader().QueryRowContext(ctx, countQuery).Scan(&left); err != nil {
			return err
		}
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d %s still open: %w", left, what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// outcomes reads (label, duration in µs) rows: how many of each label, and
// every duration.
func outcomes(ctx context.Context, db *store.DB, query string) (map[string]int, []time.Duration, error) {
	rows, err := db.Reader().QueryContext(ctx, query)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	counts := map[string]int{}
	var ds []time.Duration
	for rows.Next() {
		var label string
		var us int64
		if err := rows.Scan(&label, &us); err != nil {
			return nil, nil, err
		}
		counts[label]++
		ds = append(ds, time.Duration(us)*time.Microsecond)
	}
	return counts, ds, rows.Err()
}

// benchCards provisions n transit cards on a scratch hub, one per secure
// element, and marks them personalised (the benchmarks measure what comes
// after); register then adds each card's device and the wallet card id
// the hub gave it to the simulators. It refuses a database that holds transit cards.
func benchCards(ctx context.Context, h *hub.Hub, n int, register func(i int, se, wc, acc string) error) ([]string, error) {
	var existing int
	if err := h.DB().Reader().QueryRowContext(ctx, `SELECT count(*) FROM transit_cards`).Scan(&existing); err != nil {
		return nil, err
	}
	if existing > 0 {
		return nil, errors.New("the database holds transit cards; run the benchmark on a scratch database")
	}
	cards := make([]string, n)
	for i := range n {
		se, acc := fmt.Sprintf("%08X", i), fmt.Sprintf("ACC-%d", i)
		c, err := h.Transit().ProvisionCard(ctx, transit.ProvisionInput{IssuerID: "BENCH", CardAccountID: acc, SEID: se, DeviceID: "dev-" + se})
		if err != nil {
			return nil, err
		}
		if err := register(i, se, c.WalletCardID, acc); err != nil {
			return nil, err
		}
		if _, err := h.DB().Writer().ExecContext(ctx, `UPDATE transit_cards SET state = 'ACTIVE' WHERE card_id = $1`, c.CardID); err != nil {
			return nil, err
		}
		cards[i] = c.CardID
	}
	return cards, nil
}
