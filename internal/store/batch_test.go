package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

// Values handed to a Batcher while its batches are blocked are written
// together; a value whose write fails fails only its own caller (its batch
// is written again value by value), and every other value is stored once
// and answered with its own result.
func TestBatcher_WritesWaitingValuesTogetherAndFailsOnlyTheBadOne(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.Writer().ExecContext(ctx, `CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		gate := make(chan struct{})
		var (
			inWrite  atomic.Int64 // values handed to write
			mu       sync.Mutex
			largest  int
			afterRun atomic.Int64
		)
		b := store.NewBatcher(db, func(ctx context.Context, tx *store.Tx, in []int) ([]string, error) {
			inWrite.Add(int64(len(in)))
			<-gate
			mu.Lock()
			largest = max(largest, len(in))
			mu.Unlock()
			tx.AfterCommit(func() { afterRun.Add(int64(len(in))) })
			out := make([]string, len(in))
			for i, v := range in {
				if _, err := tx.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES ($1, 'a')`, v); err != nil {
					return nil, err
				}
				if v%50 == 13 { // a failing statement: this value's batch is rolled back
					if _, err := tx.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES ($1, 'dup')`, v); err != nil {
						return nil, err
					}
				}
				out[i] = fmt.Sprint("stored ", v)
			}
			return out, nil
		})
		const callers = 300 // more than the batches written at once on either backend
		outs := make([]string, callers)
		errs := make([]error, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outs[i], errs[i] = b.Write(ctx, i)
			}()
		}
		// Once every value is handed over while the writes are blocked,
		// some batch holds two or more: the batches written at once are
		// fewer than the values, and a batch takes every value queued.
		deadline := time.Now().Add(30 * time.Second)
		for b.Handed() < callers && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		handed := b.Handed()
		close(gate)
		wg.Wait()
		if handed < callers {
			t.Fatalf("only %d of %d values handed over in 30 s", handed, callers)
		}
		if largest < 2 {
			t.Errorf("the largest batch written held %d values: queued values were not written together", largest)
		}
		good := 0
		for i := range callers {
			bad := i%50 == 13
			var n int
			if err := db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM kv WHERE k = $1`, i).Scan(&n); err != nil {
				t.Fatal(err)
			}
			switch {
			case bad && (errs[i] == nil || n != 0):
				t.Errorf("bad value %d: err %v, %d rows", i, errs[i], n)
			case !bad && (errs[i] != nil || outs[i] != fmt.Sprint("stored ", i) || n != 1):
				t.Errorf("value %d: err %v, result %q, %d rows", i, errs[i], outs[i], n)
			case !bad:
				good++
			}
		}
		if got := afterRun.Load(); got != int64(good) {
			t.Errorf("commit hooks ran for %d values, want the %d stored", got, good)
		}
	})
}

// A value whose caller's context is done before its batch is written is
// not written; once the database closes, Write refuses.
func TestBatcher_SkipsEndedCallersAndRefusesOnceClosed(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var written atomic.Int64
		b := store.NewBatcher(db, func(ctx context.Context, tx *store.Tx, in []int) ([]int, error) {
			written.Add(int64(len(in)))
			return in, nil
		})
		ended, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := b.Write(ended, 1); !errors.Is(err, context.Canceled) {
			t.Errorf("ended caller: err %v, want context.Canceled", err)
		}
		if got, err := b.Write(context.Background(), 2); err != nil || got != 2 {
			t.Errorf("live caller: %d, %v", got, err)
		}
		if n := written.Load(); n != 1 {
			t.Errorf("%d values written, want the live caller's only", n)
		}
		b.Close()
		if _, err := b.Write(context.Background(), 3); err == nil {
			t.Error("a closed Batcher accepted a value")
		}
	})
}

// BatchesAtOnce bounds the batches written at the same time on
// PostgreSQL: with one, a batch is written only once the one before has
// committed, however many callers wait.
func TestBatcher_BatchesAtOnceBoundsTheWritesUnderWay(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.Postgres)
	var now, most atomic.Int32
	b := store.NewBatcher(db, func(ctx context.Context, tx *store.Tx, in []int) ([]int, error) {
		n := now.Add(1)
		defer now.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		// Long enough for the other callers to queue behind this batch.
		if _, err := tx.ExecContext(ctx, `SELECT pg_sleep(0.01)`); err != nil {
			return nil, err
		}
		return in, nil
	}, store.BatchesAtOnce(1))
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got, err := b.Write(context.Background(), i); err != nil || got != i {
				t.Errorf("value %d: %d %v", i, got, err)
			}
		}()
	}
	wg.Wait()
	if m := most.Load(); m != 1 {
		t.Fatalf("%d batches written at once with BatchesAtOnce(1)", m)
	}
}
