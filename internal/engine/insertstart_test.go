package engine_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

// On PostgreSQL a job without a subject or a unique key, due now and
// inserted without a transaction while the engine has a free worker slot,
// is written running and starts at its insert: it needs no claim, so it
// runs while another instance holds the claim lock. The jobs that must
// wait for a claim (a unique key, a subject, a later run time) do not.
func TestEngine_AJobWithoutSubjectStartsAtItsInsert(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.Postgres)
	ran := make(chan int64, 8)
	e := newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
		ran <- job.ID
		return nil
	})
	ctx := context.Background()
	other := holdClaimLock(t, db)

	keyed := insert(t, e, 1, &engine.InsertOpts{UniqueKey: "once"})
	withSubject := insert(t, e, 2, &engine.InsertOpts{Subject: "card-1"})
	later := insert(t, e, 3, &engine.InsertOpts{RunAt: time.Now().Add(time.Hour)})
	plain := insert(t, e, 4, nil)
	select {
	case got := <-ran:
		if got != plain {
			t.Fatalf("job %d ran while the claim lock was held; only %d needs no claim", got, plain)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the job inserted running did not start while another instance held the claim lock")
	}
	j := waitState(t, e, plain, engine.StateCompleted)
	if j.Attempt != 1 || j.LeaseOwner != "" || j.AttemptedAt.IsZero() {
		t.Fatalf("job started at its insert, once completed: %+v", j)
	}
	for id, want := range map[int64]engine.State{keyed: engine.StateAvailable, withSubject: engine.StateAvailable, later: engine.StateScheduled} {
		if j, err := e.Get(ctx, id); err != nil || j.State != want || j.Attempt != 0 {
			t.Fatalf("job %d while the claim lock is held: %+v %v, want %s and no attempt", id, j, err, want)
		}
	}
	if err := other.Rollback(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{keyed, withSubject} {
		waitState(t, e, id, engine.StateCompleted)
	}
}

// Inserts that start their jobs and Stop race: no handler starts once Stop
// has returned, and every job inserted is either run or left for a claim,
// never running under the stopped engine.
func TestEngine_InsertsRacingStopLeaveNoJobRunningUnderTheStoppedEngine(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var started, afterStop atomic.Int64
		var stopped atomic.Bool
		e := newStoppedEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
			started.Add(1)
			if stopped.Load() {
				afterStop.Add(1)
			}
			return nil
		}, func(c *engine.Config) { c.MaxWorkers = 4 })
		if err := e.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		var wg sync.WaitGroup
		var inserted atomic.Int64
		quit := make(chan struct{})
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-quit:
						return
					default:
					}
					if _, err := e.Insert(ctx, nil, testArgs{N: g*100000 + i}, nil); err != nil {
						t.Error(err)
						return
					}
					inserted.Add(1)
				}
			}()
		}
		waitFor(t, "jobs run before the stop", func() bool { return started.Load() >= 50 })
		stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := e.Stop(stopCtx); err != nil {
			t.Fatal(err)
		}
		stopped.Store(true)
		// Inserts go on after the stop: they are stored for a later claim.
		waitFor(t, "inserts after the stop", func() bool { return inserted.Load() >= started.Load()+20 })
		close(quit)
		wg.Wait()
		if n := afterStop.Load(); n != 0 {
			t.Fatalf("%d handlers started after Stop returned", n)
		}
		var running, completed, available int64
		if err := db.Writer().QueryRowContext(ctx, `SELECT
				COUNT(*) FILTER (WHERE state = 'running'),
				COUNT(*) FILTER (WHERE state = 'completed'),
				COUNT(*) FILTER (WHERE state = 'available')
			FROM jobs`).Scan(&running, &completed, &available); err != nil {
			t.Fatal(err)
		}
		if running != 0 || completed != started.Load() || completed+available != inserted.Load() {
			t.Fatalf("after the stop: %d running, %d completed, %d available; %d handlers ran, %d inserted",
				running, completed, available, started.Load(), inserted.Load())
		}
	})
}

// A claimed job that finds every slot taken (inserts that start their jobs
// took them while the claim ran) waits for one: it starts when a handler
// returns, in that handler's slot, and Stop gives it back to the queue
// with its attempt unused.
func TestEngine_AClaimedJobWithoutASlotWaitsForOne(t *testing.T) {
	t.Parallel()
	for _, stop := range []bool{false, true} {
		name := "a handler returns"
		if stop {
			name = "the engine stops"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				release := make(chan struct{})
				started := make(chan int, 4)
				var most, now atomic.Int32
				e := newStoppedEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
					n := now.Add(1)
					defer now.Add(-1)
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					started <- job.Args.N
					if job.Args.N == 1 {
						select {
						case <-release:
						case <-ctx.Done():
							return ctx.Err()
						}
					}
					return nil
				}, func(c *engine.Config) { c.MaxWorkers = 1 })
				if err := e.Start(ctx); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					_ = e.Stop(ctx)
				})
				next := func() int {
					select {
					case n := <-started:
						return n
					case <-time.After(20 * time.Second):
						t.Fatal("no job started")
						return 0
					}
				}
				first := insert(t, e, 1, nil)
				if n := next(); n != 1 {
					t.Fatalf("job %d started first", n)
				}
				var second int64
				storetest.InTx(t, db, func(tx *store.Tx) error {
					r, err := e.Insert(ctx, tx, testArgs{N: 2}, nil)
					second = r.ID
					return err
				})
				if err := e.ClaimAndStart(ctx, second); err != nil {
					t.Fatal(err)
				}
				if w := e.WaitingForSlot(); w != 1 {
					t.Fatalf("%d claimed jobs wait for a slot, want 1", w)
				}
				if !stop {
					close(release)
					if n := next(); n != 2 {
						t.Fatalf("job %d started, want the waiting one", n)
					}
					waitState(t, e, first, engine.StateCompleted)
					if j := waitState(t, e, second, engine.StateCompleted); j.Attempt != 1 {
						t.Fatalf("waiting job completed at attempt %d, want 1", j.Attempt)
					}
					if m := most.Load(); m != 1 {
						t.Fatalf("%d handlers ran at once with MaxWorkers 1", m)
					}
					return
				}
				stopCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
				defer cancel()
				if err := e.Stop(stopCtx); err != nil {
					t.Fatal(err)
				}
				j, err := e.Get(ctx, second)
				if err != nil {
					t.Fatal(err)
				}
				if j.State != engine.StateAvailable || j.Attempt != 0 || len(j.Errors) != 0 || j.LeaseOwner != "" {
					t.Fatalf("waiting job after Stop: %+v, want available with its attempt unused", j)
				}
				select {
				case n := <-started:
					t.Fatalf("job %d started during Stop", n)
				default:
				}
			})
		})
	}
}
