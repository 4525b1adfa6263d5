package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

// insertChain inserts n jobs of one subject in one transaction (the first
// waits for a claim, the rest are held behind it) and returns their ids.
func insertChain(t *testing.T, db *store.DB, e *engine.Engine, subject string, n int) []int64 {
	t.Helper()
	ctx := context.Background()
	params := make([]engine.InsertParams, n)
	for i := range params {
		params[i] = engine.InsertParams{Args: testArgs{N: i}, Opts: &engine.InsertOpts{Subject: subject}}
	}
	var ids []int64
	storetest.InTx(t, db, func(tx *store.Tx) error {
		res, err := e.InsertMany(ctx, tx, params)
		for _, r := range res {
			ids = append(ids, r.ID)
		}
		return err
	})
	return ids
}

// A job completed with CompleteTx while the engine has free slots hands
// its subject's next job over in the same transaction: the next job runs
// without a claim, so a subject's chain runs on while another instance
// holds the claim lock. With no free slot the next job is only let in, and
// waits for a claim like any other (a job of higher priority may be
// waiting for that slot).
func TestEngine_CompleteTxHandsTheSubjectsNextJobOver(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		workers  int
		handOver bool
	}{
		{"free slots", 4, true},
		{"no free slot", 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := storetest.Open(t, store.Postgres)
			ctx := context.Background()
			gate := make(chan struct{})
			ran := make(chan int, 8)
			var e *engine.Engine
			e = newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
				if job.Args.N == 0 {
					<-gate
				}
				ran <- job.Args.N
				return db.InTx(ctx, func(tx *store.Tx) error { return e.CompleteTx(ctx, tx, job.JobRow) })
			}, func(c *engine.Config) {
				c.MaxWorkers = tc.workers
				c.ReleaseInterval = time.Hour // the safety net stays out of it
			})
			ids := insertChain(t, db, e, "se-1", 3)
			waitState(t, e, ids[0], engine.StateRunning)

			other, err := db.Writer().BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Rollback()
			if err := engine.TakeClaimLock(ctx, other); err != nil {
				t.Fatal(err)
			}
			close(gate)
			if n := <-ran; n != 0 {
				t.Fatalf("job %d ran first", n)
			}
			waitState(t, e, ids[0], engine.StateCompleted)
			if tc.handOver {
				for want := 1; want < 3; want++ {
					select {
					case n := <-ran:
						if n != want {
							t.Fatalf("job %d ran, want %d", n, want)
						}
					case <-time.After(20 * time.Second):
						t.Fatalf("job %d was not handed over while the claim lock was held", want)
					}
				}
				for _, id := range ids {
					if j := waitState(t, e, id, engine.StateCompleted); j.Attempt != 1 {
						t.Fatalf("job %d completed at attempt %d", id, j.Attempt)
					}
				}
				return
			}
			j, err := e.Get(ctx, ids[1])
			if err != nil {
				t.Fatal(err)
			}
			if j.State != engine.StateAvailable || j.Attempt != 0 {
				t.Fatalf("next job with no free slot: %+v, want let in (available) for a claim", j)
			}
			if err := other.Rollback(); err != nil {
				t.Fatal(err)
			}
			for _, id := range ids {
				waitState(t, e, id, engine.StateCompleted)
			}
		})
	}
}

// A hand-over whose transaction commits once Stop has begun does not start
// the job: it goes back to the queue with its attempt unused. (PostgreSQL:
// on SQLite, Stop waits for the writer's turn, which waits for the one
// writer connection this handler's open transaction holds, so Stop cannot
// begin before the commit.)
func TestEngine_AJobHandedOverDuringStopGoesBackToTheQueue(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.Postgres)
	ctx := context.Background()
	ran := make(chan int, 8)
	stopped := make(chan error, 1)
	var e *engine.Engine
	e = newStoppedEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
		ran <- job.Args.N
		return db.InTx(context.WithoutCancel(ctx), func(tx *store.Tx) error {
			if err := e.CompleteTx(ctx, tx, job.JobRow); err != nil {
				return err
			}
			// Stop begins before this transaction commits; it waits
			// for this handler.
			go func() {
				sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				stopped <- e.Stop(sctx)
			}()
			deadline := time.Now().Add(20 * time.Second)
			for !e.Stopping() && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			return nil
		})
	}, func(c *engine.Config) {
		c.MaxWorkers = 4
		c.ReleaseInterval = time.Hour
	})
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ids := insertChain(t, db, e, "se-1", 2)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if n := <-ran; n != 0 {
		t.Fatalf("job %d ran", n)
	}
	select {
	case n := <-ran:
		t.Fatalf("job %d started during Stop", n)
	default:
	}
	first, err := e.Get(ctx, ids[0])
	if err != nil || first.State != engine.StateCompleted {
		t.Fatalf("first job: %+v %v", first, err)
	}
	next, err := e.Get(ctx, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if next.State != engine.StateAvailable || next.Attempt != 0 || next.LeaseOwner != "" {
		t.Fatalf("job handed over during Stop: %+v, want back in the queue with its attempt unused", next)
	}
}
