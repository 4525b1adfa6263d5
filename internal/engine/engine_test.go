package engine_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

type testArgs struct {
	N    int    `json:"n"`
	Name string `json:"name,omitempty"`
}

func (testArgs) Kind() string { return "test" }

type handlerFunc = func(ctx context.Context, job *engine.Job[testArgs]) error

// newEngine builds a started engine whose "test" kind calls h, with fast
// timings so tests do not wait for production defaults.
func newEngine(t *testing.T, db *store.DB, h handlerFunc, tune ...func(*engine.Config)) *engine.Engine {
	t.Helper()
	e := newStoppedEngine(t, db, h, tune...)
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Stop(ctx)
	})
	return e
}

func newStoppedEngine(t *testing.T, db *store.DB, h handlerFunc, tune ...func(*engine.Config)) *engine.Engine {
	t.Helper()
	reg := engine.NewRegistry()
	engine.Register(reg, h, engine.KindOptions{})
	cfg := engine.Config{
		DB:                db,
		Registry:          reg,
		FetchPollInterval: 20 * time.Millisecond,
		LeaseDuration:     5 * time.Second,
		Backoff:           func(int) time.Duration { return 5 * time.Millisecond },
	}
	for _, f := range tune {
		f(&cfg)
	}
	e, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// startEngine starts an engine made by newStoppedEngine and stops it when
// the test ends.
func startEngine(t *testing.T, e *engine.Engine) {
	t.Helper()
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Stop(ctx)
	})
}

// waitSignals waits for n occurrences of a test signal from now on (any
// already buffered are dropped first, so each counted one came after the
// call).
func waitSignals(t *testing.T, what string, ch <-chan struct{}, n int) {
	t.Helper()
	for drained := false; !drained; {
		select {
		case <-ch:
		default:
			drained = true
		}
	}
	deadline := time.After(30 * time.Second)
	for range n {
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %d %s", n, what)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitState(t *testing.T, e *engine.Engine, id int64, want engine.State) *engine.JobRow {
	t.Helper()
	var j *engine.JobRow
	waitFor(t, fmt.Sprintf("job %d to be %s", id, want), func() bool {
		var err error
		j, err = e.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return j.State == want
	})
	return j
}

func insert(t *testing.T, e *engine.Engine, n int, opts *engine.InsertOpts) int64 {
	t.Helper()
	res, err := e.Insert(context.Background(), nil, testArgs{N: n}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res.ID
}

func TestEngine_InsertedJobRunsAndCompletes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		got := make(chan int, 1)
		e := newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
			got <- job.Args.N
			return nil
		})
		id := insert(t, e, 42, nil)
		if n := <-got; n != 42 {
			t.Fatalf("handler got args %d, want 42", n)
		}
		j := waitState(t, e, id, engine.StateCompleted)
		if j.Attempt != 1 || len(j.Errors) != 0 || j.FinalizedAt.IsZero() || j.AttemptedAt.IsZero() {
			t.Fatalf("completed job = %+v", j)
		}
	})
}

func TestEngine_InsertTxCommitsWithTheCallersTransaction(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var runs atomic.Int64
		e := newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error { runs.Add(1); return nil })
		ctx := context.Background()
		var rolledBack int64
		boom := errors.New("rollback")
		err := db.InTx(ctx, func(tx *store.Tx) error {
			r, err := e.Insert(ctx, tx, testArgs{N: 1}, nil)
			rolledBack = r.ID
			if err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if _, err := e.Get(ctx, rolledBack); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("rolled back job: got %v, want ErrNotFound", err)
		}
		var kept int64
		err = db.InTx(ctx, func(tx *store.Tx) error {
			r, err := e.Insert(ctx, tx, testArgs{N: 2}, nil)
			kept = r.ID
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		waitState(t, e, kept, engine.StateCompleted)
		if runs.Load() != 1 {
			t.Fatalf("handler ran %d times, want 1", runs.Load())
		}
	})
}

func TestEngine_InsertManyKeepsOrderAndRejectsUnknownKinds(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newStoppedEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error { return nil })
		ctx := context.Background()
		params := make([]engine.InsertParams, 1500) // more than one group and one statement chunk
		for i := range params {
			params[i] = engine.InsertParams{Args: testArgs{N: i}}
		}
		params[7].Opts = &engine.InsertOpts{UniqueKey: "seven"}
		res, err := e.InsertMany(ctx, nil, params)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			j, err := e.Get(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			var a testArgs
			if err := json.Unmarshal(j.Args, &a); err != nil || a.N != i {
				t.Fatalf("result %d points at job with args %s", i, j.Args)
			}
			if i > 0 && r.ID <= res[i-1].ID && i != 8 && i != 7 {
				t.Fatalf("ids not increasing at %d", i)
			}
		}
		_, err = e.Insert(ctx, nil, otherArgs{}, nil)
		if !errors.Is(err, engine.ErrUnknownKind) {
			t.Fatalf("unknown kind: got %v", err)
		}
	})
}

type otherArgs struct{}

func (otherArgs) Kind() string { return "other" }

func TestEngine_UniqueKeyReturnsTheExistingJob(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newStoppedEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error { return nil })
		ctx := context.Background()
		const callers = 16
		ids := make([]engine.Inserted, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := e.Insert(ctx, nil, testArgs{N: i}, &engine.InsertOpts{UniqueKey: "order-1"})
				if err != nil {
					t.Error(err)
				}
				ids[i] = r
			}()
		}
		wg.Wait()
		fresh := 0
		for _, r := range ids {
			if r.ID != ids[0].ID {
				t.Fatalf("unique key gave two jobs: %d and %d", r.ID, ids[0].ID)
			}
			if !r.Existing {
				fresh++
			}
		}
		if fresh != 1 {
			t.Fatalf("%d inserts claim to have created the job, want 1", fresh)
		}
		var n int
		if err := db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM jobs`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("%d jobs stored, want 1", n)
		}
	})
}

// A multi-row insert answers each unique key once: the first row carrying a
// new key writes its job, a later row of the same batch and a key already
// stored are answered with that job, and rows without a key keep their
// order around them. Inside a transaction and through the group commit
// (whose turn writes many callers' rows in one statement).
func TestEngine_InsertManyAnswersEachUniqueKeyOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newStoppedEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error { return nil })
		ctx := context.Background()
		stored, err := e.Insert(ctx, nil, testArgs{N: -1}, &engine.InsertOpts{UniqueKey: "stored"})
		if err != nil {
			t.Fatal(err)
		}
		params := []engine.InsertParams{
			{Args: testArgs{N: 0}, Opts: &engine.InsertOpts{UniqueKey: "new"}},
			{Args: testArgs{N: 1}},
			{Args: testArgs{N: 2}, Opts: &engine.InsertOpts{UniqueKey: "new"}},
			{Args: testArgs{N: 3}, Opts: &engine.InsertOpts{UniqueKey: "stored"}},
			{Args: testArgs{N: 4}, Opts: &engine.InsertOpts{Subject: "card-1"}},
			{Args: testArgs{N: 5}, Opts: &engine.InsertOpts{Subject: "card-1", UniqueKey: "second-of-card"}},
			{Args: testArgs{N: 6}},
		}
		for _, inTx := range []bool{true, false} {
			if _, err := db.Writer().ExecContext(ctx, `DELETE FROM jobs WHERE id <> $1`, stored.ID); err != nil {
				t.Fatal(err)
			}
			var res []engine.Inserted
			if inTx {
				err = db.InTx(ctx, func(tx *store.Tx) error {
					res, err = e.InsertMany(ctx, tx, params)
					return err
				})
			} else {
				res, err = e.InsertMany(ctx, nil, params)
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != len(params) {
				t.Fatalf("in a transaction %v: %d results for %d rows", inTx, len(res), len(params))
			}
			want := []struct {
				n        int
				existing bool
			}{{0, false}, {1, false}, {0, true}, {-1, true}, {4, false}, {5, false}, {6, false}}
			for i, r := range res {
				j, err := e.Get(ctx, r.ID)
				if err != nil {
					t.Fatal(err)
				}
				var a testArgs
				if err := json.Unmarshal(j.Args, &a); err != nil {
					t.Fatal(err)
				}
				if a.N != want[i].n || r.Existing != want[i].existing {
					t.Errorf("in a transaction %v: row %d answered with job of args %d (existing %v), want %d (existing %v)",
						inTx, i, a.N, r.Existing, want[i].n, want[i].existing)
				}
			}
			if res[1].ID >= res[4].ID || res[4].ID >= res[5].ID || res[5].ID >= res[6].ID {
				t.Errorf("in a transaction %v: ids out of the rows' order: %+v", inTx, res)
			}
			var n int
			if err := db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM jobs`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 6 {
				t.Errorf("in a transaction %v: %d jobs stored, want 6 (the stored one and five new)", inTx, n)
			}
			var held bool
			if err := db.Reader().QueryRowContext(ctx, `SELECT held FROM jobs WHERE id = $1`, res[5].ID).Scan(&held); err != nil {
				t.Fatal(err)
			}
			if !held {
				t.Errorf("in a transaction %v: the second job of a subject in one batch is not held", inTx)
			}
		}
	})
}

func TestEngine_HigherPriorityRunsFirst(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var mu sync.Mutex
		var order []int
		h := func(ctx context.Context, job *engine.Job[testArgs]) error {
			mu.Lock()
			order = append(order, job.Args.N)
			mu.Unlock()
			return nil
		}
		e := newStoppedEngine(t, db, h, func(c *engine.Config) { c.MaxWorkers = 1 })
		insert(t, e, 1, &engine.InsertOpts{Priority: 0})
		insert(t, e, 2, &engine.InsertOpts{Priority: 0})
		insert(t, e, 3, &engine.InsertOpts{Priority: 10})
		last := insert(t, e, 4, &engine.InsertOpts{Priority: 5})
		if err := e.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer e.Stop(context.Background())
		waitState(t, e, last, engine.StateCompleted)
		waitFor(t, "four runs", func() bool { mu.Lock(); defer mu.Unlock(); return len(order) == 4 })
		if fmt.Sprint(order) != "[3 4 1 2]" {
			t.Fatalf("run order %v, want [3 4 1 2] (priority, then insertion)", order)
		}
	})
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestEngine_ScheduledJobWaitsForItsTime(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		clock := &fakeClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
		var runs atomic.Int64
		e := newStoppedEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error { runs.Add(1); return nil },
			func(c *engine.Config) { c.Clock = clock.Now })
		signals := e.EnableSignals()
		startEngine(t, e)
		id := insert(t, e, 1, &engine.InsertOpts{RunAt: clock.Now().Add(time.Hour)})
		j, _ := e.Get(context.Background(), id)
		if j.State != engine.StateScheduled {
			t.Fatalf("state %s, want scheduled", j.State)
		}
		waitSignals(t, "promotion passes after the insert", signals.Promoted, 3)
		if runs.Load() != 0 {
			t.Fatal("scheduled job ran before its time")
		}
		clock.Add(time.Hour)
		waitState(t, e, id, engine.StateCompleted)
	})
}

func TestEngine_ErrorsRetryUntilMaxAttemptsThenFail(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var attempts []int
		var mu sync.Mutex
		e := newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
			mu.Lock()
			attempts = append(attempts, job.Attempt)
			mu.Unlock()
			return fmt.Errorf("downstream busy (attempt %d)", job.Attempt)
		})
		id := insert(t, e, 1, &engine.InsertOpts{MaxAttempts: 3})
		j := waitState(t, e, id, engine.StateFailed)
		if j.Attempt != 3 || len(j.Errors) != 3 {
			t.Fatalf("attempt=%d errors=%d, want 3 and 3", j.Attempt, len(j.Errors))
		}
		for i, ae := range j.Errors {
			if ae.Attempt != i+1 || !strings.Contains(ae.Error, fmt.Sprintf("attempt %d", i+1)) || ae.At.IsZero() {
				t.Fatalf("error %d = %+v", i, ae)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if fmt.Sprint(attempts) != "[1 2 3]" {
			t.Fatalf("handler saw attempts %v", attempts)
		}
	})
}

func TestEngine_RetryWaitsForBackoff(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		clock := &fakeClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
		var runs atomic.Int64
		e := newStoppedEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
			if runs.Add(1) == 1 {
				return errors.New("first attempt fails")
			}
			return nil
		}, func(c *engine.Config) {
			c.Clock = clock.Now
			c.Backoff = func(int) time.Duration { return time.Minute }
		})
		signals := e.EnableSignals()
		startEngine(t, e)
		id := insert(t, e, 1, nil)
		j := waitState(t, e, id, engine.StateRetryable)
		if want := clock.Now().Add(time.Minute); !j.RunAt.Equal(want) {
			t.Fatalf("retry at %s, want %s", j.RunAt, want)
		}
		waitSignals(t, "promotion passes after the failure", signals.Promoted, 3)
		if runs.Load() != 1 {
			t.Fatal("retried before the backoff elapsed")
		}
		clock.Add(time.Minute)
		waitState(t, e, id, engine.StateCompleted)
	})
}

func TestEngine_TerminalErrorFailsAtOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
			return engine.Terminal(errors.New("unknown card"))
		})
		id := insert(t, e, 1, &engine.InsertOpts{MaxAttempts: 10})
		j := waitState(t, e, id, engine.StateFailed)
		if j.Attempt != 1 || len(j.Errors) != 1 || !strings.Contains(j.Errors[0].Error, "unknown card") {
			t.Fatalf("job = %+v", j)
		}
	})
}

func TestEngine_SnoozeRunsAgainWithoutUsingAnAttempt(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var runs atomic.Int64
		e := newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
			if runs.Add(1) <= 3 {
				return engine.Snooze(10 * time.Millisecond)
			}
			return nil
		})
		id := insert(t, e, 1, &engine.InsertOpts{MaxAttempts: 1})
		j := waitState(t, e, id, engine.StateCompleted)
		if j.Attempt != 1 || j.Snoozes != 3 || len(j.Errors) != 0 {
			t.Fatalf("attempt=%d snoozes=%d errors=%v, want 1, 3, none", j.Attempt, j.Snoozes, j.Errors)
		}
	})
}

// With the periodic look for due jobs an hour away, snoozed, retried and
// scheduled jobs still run: the engine notes when each is due.
func TestEngine_DueJobsRunWithoutWaitingForThePoll(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var runs atomic.Int64
		e := newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
			switch n := runs.Add(1); {
			case job.Args.N == 1 && n <= 2:
				return engine.Snooze(20 * time.Millisecond)
			case job.Args.N == 2 && job.Attempt == 1:
				return errors.New("try again")
			}
			return nil
		}, func(c *engine.Config) {
			c.FetchPollInterval = time.Hour
			c.Backoff = func(int) time.Duration { return 20 * time.Millisecond }
		})
		snoozer := insert(t, e, 1, nil)
		waitState(t, e, snoozer, engine.StateCompleted)
		retried := insert(t, e, 2, nil)
		waitState(t, e, retried, engine.StateCompleted)
		later := insert(t, e, 3, &engine.InsertOpts{RunAt: time.Now().Add(30 * time.Millisecond)})
		waitState(t, e, later, engine.StateCompleted)
	})
}

func TestEngine_PanickingHandlerIsRetriedNotFatal(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
			if job.Attempt == 1 {
				panic("nil map")
			}
			return nil
		})
		id := insert(t, e, 1, nil)
		j := waitState(t, e, id, engine.StateCompleted)
		if j.Attempt != 2 || len(j.Errors) != 1 || !strings.Contains(j.Errors[0].Error, "panicked: nil map") {
			t.Fatalf("job = %+v", j)
		}
	})
}

func TestEngine_HandlerTimeoutEndsTheAttempt(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
			<-ctx.Done()
			return ctx.Err()
		}, func(c *engine.Config) { c.DefaultTimeout = 20 * time.Millisecond })
		id := insert(t, e, 1, &engine.InsertOpts{MaxAttempts: 2})
		j := waitState(t, e, id, engine.StateFailed)
		if len(j.Errors) != 2 || !strings.Contains(j.Errors[0].Error, "deadline exceeded") {
			t.Fatalf("errors = %+v", j.Errors)
		}
	})
}

// subjectRecorder checks, from inside handlers, that a subject never has two
// jobs running and records the order in which each subject's jobs started.
type subjectRecorder struct {
	mu       sync.Mutex
	running  map[string]int64
	started  map[string][]int64
	overlaps []string
	maxPar   int
	par      int
}

func newSubjectRecorder() *subjectRecorder {
	return &subjectRecorder{running: map[string]int64{}, started: map[string][]int64{}}
}

func (r *subjectRecorder) enter(subject string, id int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if other, busy := r.running[subject]; busy {
		r.overlaps = append(r.overlaps, fmt.Sprintf("subject %s: job %d started while %d ran", subject, id, other))
	}
	r.running[subject] = id
	r.started[subject] = append(r.started[subject], id)
	r.par++
	r.maxPar = max(r.maxPar, r.par)
}

func (r *subjectRecorder) leave(subject string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.running, subject)
	r.par--
}

func (r *subjectRecorder) check(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.overlaps) > 0 {
		t.Fatalf("subject overlaps: %v", r.overlaps[:min(5, len(r.overlaps))])
	}
	for s, ids := range r.started {
		for i := 1; i < len(ids); i++ {
			if ids[i] < ids[i-1] {
				t.Fatalf("subject %s started %d after %d: not FIFO (%v)", s, ids[i], ids[i-1], ids)
			}
		}
	}
}

func TestEngine_SubjectRunsJobsOneAtATimeInInsertionOrder(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		rec := newSubjectRecorder()
		e := newStoppedEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
			rec.enter(job.Subject, job.ID)
			time.Sleep(time.Millisecond)
			rec.leave(job.Subject)
			return nil
		}, func(c *engine.Config) { c.MaxWorkers = 20 })
		var last int64
		for i := range 60 {
			// Later jobs have higher priority: within a subject, insertion order still wins.
			last = insert(t, e, i, &engine.InsertOpts{Subject: "se-1", Priority: i})
		}
		if err := e.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer e.Stop(context.Background())
		waitState(t, e, last, engine.StateCompleted)
		rec.check(t)
		if got := len(rec.started["se-1"]); got != 60 {
			t.Fatalf("%d jobs started, want 60", got)
		}
	})
}

func TestEngine_SubjectRetryKeepsItsPlace(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		rec := newSubjectRecorder()
		var failed atomic.Bool
		e := newStoppedEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
			rec.enter(job.Subject, job.ID)
			defer rec.leave(job.Subject)
			if job.Args.N == 0 && failed.CompareAndSwap(false, true) {
				return errors.New("busy")
			}
			return nil
		}, func(c *engine.Config) {
			c.Backoff = func(int) time.Duration { return 100 * time.Millisecond }
		})
		first := insert(t, e, 0, &engine.InsertOpts{Subject: "card-9"})
		second := insert(t, e, 1, &engine.InsertOpts{Subject: "card-9"})
		if err := e.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer e.Stop(context.Background())
		waitState(t, e, second, engine.StateCompleted)
		j1, _ := e.Get(context.Background(), first)
		j2, _ := e.Get(context.Background(), second)
		if j1.State != engine.StateCompleted || j1.Attempt != 2 {
			t.Fatalf("first job %s attempt %d", j1.State, j1.Attempt)
		}
		if !j2.AttemptedAt.After(j1.FinalizedAt) && !j2.AttemptedAt.Equal(j1.FinalizedAt) {
			t.Fatalf("second job started at %s before the first finished at %s", j2.AttemptedAt, j1.FinalizedAt)
		}
		rec.check(t)
		if fmt.Sprint(rec.started["card-9"]) != fmt.Sprint([]int64{first, first, second}) {
			t.Fatalf("starts %v", rec.started["card-9"])
		}
	})
}

func TestEngine_DifferentSubjectsRunInParallel(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const n = 4
		var arrived sync.WaitGroup
		arrived.Add(n)
		release := make(chan struct{})
		e := newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
			arrived.Done()
			<-release // returns only once all n run at the same time
			return nil
		})
		var ids []int64
		for i := range n {
			ids = append(ids, insert(t, e, i, &engine.InsertOpts{Subject: fmt.Sprintf("se-%d", i)}))
		}
		done := make(chan struct{})
		go func() { arrived.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("jobs of different subjects did not run at the same time")
		}
		close(release)
		for _, id := range ids {
			waitState(t, e, id, engine.StateCompleted)
		}
	})
}

func TestEngine_CancelQueuedAndRunningJobs(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		started := make(chan int64, 10)
		e := newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
			if job.Args.N == 1 {
				started <- job.ID
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		})
		ctx := context.Background()
		queued := insert(t, e, 2, &engine.InsertOpts{RunAt: time.Now().Add(time.Hour)})
		if err := e.Cancel(ctx, queued); err != nil {
			t.Fatal(err)
		}
		if j, _ := e.Get(ctx, queued); j.State != engine.StateCancelled {
			t.Fatalf("queued job is %s after cancel", j.State)
		}
		running := insert(t, e, 1, nil)
		<-started
		if err := e.Cancel(ctx, running); err != nil {
			t.Fatal(err)
		}
		j := waitState(t, e, running, engine.StateCancelled)
		if j.Attempt != 1 {
			t.Fatalf("attempt %d", j.Attempt)
		}
		if err := e.Cancel(ctx, running); !errors.Is(err, engine.ErrNotCancelable) {
			t.Fatalf("cancel finished job: %v", err)
		}
		if err := e.Cancel(ctx, 999999); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("cancel missing job: %v", err)
		}
	})
}

func TestEngine_RetryPutsAFailedJobBack(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var fail atomic.Bool
		fail.Store(true)
		e := newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
			if fail.Load() {
				return errors.New("down")
			}
			return nil
		})
		ctx := context.Background()
		id := insert(t, e, 1, &engine.InsertOpts{MaxAttempts: 1})
		waitState(t, e, id, engine.StateFailed)
		fail.Store(false)
		if err := e.Retry(ctx, id); err != nil {
			t.Fatal(err)
		}
		j := waitState(t, e, id, engine.StateCompleted)
		if j.Attempt != 2 || j.MaxAttempts != 2 || len(j.Errors) != 1 {
			t.Fatalf("job = %+v", j)
		}
		if err := e.Retry(ctx, id); !errors.Is(err, engine.ErrNotRetryable) {
			t.Fatalf("retry completed job: %v", err)
		}
	})
}

func TestEngine_CompleteTxCommitsTheJobWithDomainWrites(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.Writer().ExecContext(ctx, `CREATE TABLE cards (id TEXT PRIMARY KEY, state TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Writer().ExecContext(ctx, `INSERT INTO cards VALUES ('c1', 'PENDING')`); err != nil {
			t.Fatal(err)
		}
		var e *engine.Engine
		e = newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
			return db.InTx(ctx, func(tx *store.Tx) error {
				if _, err := tx.ExecContext(ctx, `UPDATE cards SET state = 'ACTIVE' WHERE id = 'c1'`); err != nil {
					return err
				}
				inner, err := e.GetTx(ctx, tx, job.ID)
				if err != nil || inner.State != engine.StateRunning {
					return fmt.Errorf("job inside tx: %v %v", inner, err)
				}
				return e.CompleteTx(ctx, tx, job.JobRow)
			})
		})
		id := insert(t, e, 1, nil)
		j := waitState(t, e, id, engine.StateCompleted)
		if len(j.Errors) != 0 || j.Attempt != 1 {
			t.Fatalf("job = %+v", j)
		}
		var state string
		if err := db.Reader().QueryRowContext(ctx, `SELECT state FROM cards WHERE id = 'c1'`).Scan(&state); err != nil {
			t.Fatal(err)
		}
		if state != "ACTIVE" {
			t.Fatalf("card %s", state)
		}
		err := db.InTx(ctx, func(tx *store.Tx) error { return e.CompleteTx(ctx, tx, j) })
		if !errors.Is(err, engine.ErrJobLost) {
			t.Fatalf("completing a finished job: got %v, want ErrJobLost", err)
		}
	})
}

// TestEngine_FenceTxLetsOnlyTheOwningAttemptWrite: a handler's fenced
// transaction commits while its attempt owns the job; the same fence for
// an attempt that no longer does (the job was taken back, or has ended)
// fails with ErrJobLost, and the transaction's writes are rolled back.
func TestEngine_FenceTxLetsOnlyTheOwningAttemptWrite(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.Writer().ExecContext(ctx, `CREATE TABLE queued (id TEXT PRIMARY KEY)`); err != nil {
			t.Fatal(err)
		}
		var e *engine.Engine
		lostWorker := func(j *engine.JobRow) error {
			return db.InTx(ctx, func(tx *store.Tx) error {
				if err := e.FenceTx(ctx, tx, j); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO queued VALUES ('by-a-lost-worker')`)
				return err
			})
		}
		staleWhileRunning := make(chan error, 1)
		e = newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
			err := db.InTx(ctx, func(tx *store.Tx) error {
				if err := e.FenceTx(ctx, tx, job.JobRow); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO queued VALUES ('by-owner')`)
				return err
			})
			if err != nil {
				return engine.Terminal(err)
			}
			// The same job as the attempt before this one, which lost it.
			old := *job.JobRow
			old.Attempt--
			staleWhileRunning <- lostWorker(&old)
			return nil
		})
		id := insert(t, e, 1, nil)
		done := waitState(t, e, id, engine.StateCompleted)
		if err := <-staleWhileRunning; !errors.Is(err, engine.ErrJobLost) {
			t.Fatalf("a replaced attempt's fence while the job runs: got %v, want ErrJobLost", err)
		}
		if err := lostWorker(done); !errors.Is(err, engine.ErrJobLost) {
			t.Fatalf("a fence after the job ended: got %v, want ErrJobLost", err)
		}
		var rows []string
		r, err := db.Reader().QueryContext(ctx, `SELECT id FROM queued ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		for r.Next() {
			var s string
			if err := r.Scan(&s); err != nil {
				t.Fatal(err)
			}
			rows = append(rows, s)
		}
		if len(rows) != 1 || rows[0] != "by-owner" {
			t.Fatalf("rows %v, want only the owner's", rows)
		}
	})
}

// TestEngine_AStalledInstancesJobIsRescuedWhenItsLeaseExpires: an
// instance that still holds its instance lock but no longer heartbeats (a
// hung process) keeps its jobs until their leases expire; then another
// instance takes them back and the attempt counts. (On SQLite one engine
// runs per database file, so the case is PostgreSQL's.)
func TestEngine_AStalledInstancesJobIsRescuedWhenItsLeaseExpires(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.Postgres)
	started := make(chan struct{}, 1)
	fast := func(c *engine.Config) {
		c.LeaseDuration = 300 * time.Millisecond
		c.RescueInterval = 50 * time.Millisecond
		c.LivenessInterval = 50 * time.Millisecond
	}
	stalled := newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
		started <- struct{}{}
		<-ctx.Done()
		return nil
	}, fast)
	id := insert(t, stalled, 1, &engine.InsertOpts{Subject: "se-1"})
	next := insert(t, stalled, 2, &engine.InsertOpts{Subject: "se-1"})
	<-started
	t.Cleanup(stalled.Stall())

	// The rescuer's own lease is long: the rescued run must not lose it in
	// turn on a loaded machine, where its completion can take longer than
	// the stalled instance's 300 ms.
	alive := newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error { return nil }, func(c *engine.Config) {
		c.LeaseDuration = 30 * time.Second
		c.RescueInterval = 50 * time.Millisecond
		c.LivenessInterval = 50 * time.Millisecond
	})
	j := waitState(t, alive, id, engine.StateCompleted)
	if j.Attempt != 2 || len(j.Errors) != 1 || !strings.Contains(j.Errors[0].Error, "lease expired") {
		t.Fatalf("rescued job = %+v", j)
	}
	j2 := waitState(t, alive, next, engine.StateCompleted)
	if j2.AttemptedAt.Before(j.FinalizedAt) {
		t.Fatal("the next job of the subject ran before the rescued one finished")
	}
}

// TestEngine_ADeadInstancesJobsComeBackAtOnceNotWhenTheirLeasesExpire
// kills an engine (its process gone: its instance lock with it) while it
// runs a job whose lease lasts an hour. A new engine takes the job back
// at once (on SQLite when it starts, on PostgreSQL because the dead
// instance's lock is free), and the attempt counts.
func TestEngine_ADeadInstancesJobsComeBackAtOnceNotWhenTheirLeasesExpire(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		started := make(chan struct{}, 1)
		hour := func(c *engine.Config) {
			c.LeaseDuration = time.Hour
			c.LivenessInterval = 50 * time.Millisecond
		}
		dead := newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
			started <- struct{}{}
			<-ctx.Done()
			return nil
		}, hour)
		id := insert(t, dead, 1, &engine.InsertOpts{Subject: "se-1"})
		next := insert(t, dead, 2, &engine.InsertOpts{Subject: "se-1"})
		<-started
		dead.Crash()

		alive := newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error { return nil }, hour)
		j := waitState(t, alive, id, engine.StateCompleted)
		if j.Attempt != 2 || len(j.Errors) != 1 || !strings.Contains(j.Errors[0].Error, "was lost") {
			t.Fatalf("rescued job = %+v", j)
		}
		waitState(t, alive, next, engine.StateCompleted)
	})
}

// TestEngine_TwoEnginesCannotRunOnOneSQLiteDatabase: the second is
// refused, so taking back every running job at start is safe.
func TestEngine_TwoEnginesCannotRunOnOneSQLiteDatabase(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error { return nil })
	second := newStoppedEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error { return nil })
	if err := second.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "one instance") {
		t.Fatalf("a second engine on one SQLite file: %v", err)
	}
}

func TestEngine_StopWaitsForHandlersThenReleasesTheRest(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		started := make(chan int, 2)
		e := newStoppedEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
			started <- job.Args.N
			if job.Args.N == 1 {
				time.Sleep(50 * time.Millisecond) // finishes within the drain timeout
				return nil
			}
			<-ctx.Done() // only stops when cancelled
			return ctx.Err()
		})
		quick := insert(t, e, 1, nil)
		slow := insert(t, e, 2, nil)
		if err := e.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		<-started
		<-started
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		jq, _ := e.Get(context.Background(), quick)
		js, _ := e.Get(context.Background(), slow)
		if jq.State != engine.StateCompleted {
			t.Fatalf("drained job is %s, want completed", jq.State)
		}
		if js.State != engine.StateAvailable || js.Attempt != 0 || js.LeaseOwner != "" {
			t.Fatalf("released job = %+v, want available with its attempt given back", js)
		}
		if len(js.Errors) != 1 || !strings.Contains(js.Errors[0].Error, "released at shutdown") {
			t.Fatalf("released job errors %+v", js.Errors)
		}
	})
}

func TestEngine_GroupCommitWritesConcurrentInsertsTogether(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newStoppedEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error { return nil },
			func(c *engine.Config) { c.GroupCommitMaxWait = 20 * time.Millisecond })
		const n = 200
		var wg sync.WaitGroup
		ids := make([]int64, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := e.Insert(context.Background(), nil, testArgs{N: i}, nil)
				if err != nil {
					t.Error(err)
				}
				ids[i] = r.ID
			}()
		}
		wg.Wait()
		seen := map[int64]bool{}
		for _, id := range ids {
			if id == 0 || seen[id] {
				t.Fatalf("bad or duplicate id %d", id)
			}
			seen[id] = true
		}
		if g := e.InsertGroups(); g >= n/4 {
			t.Fatalf("%d inserts took %d group commits; want them batched", n, g)
		}
	})
}

// TestEngine_MaxWorkersBoundsTheHandlersRunningAtOnce holds every handler
// for a while and records how many ran at the same moment: never more than
// MaxWorkers, however fast the writer claims. (The bound holds whatever the
// machine's speed; the pause only gives an unbounded engine the chance to
// show itself.)
func TestEngine_MaxWorkersBoundsTheHandlersRunningAtOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const workers, jobs = 2, 12
		var now, most atomic.Int32
		e := newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
			n := now.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(20 * time.Millisecond)
			now.Add(-1)
			return nil
		}, func(c *engine.Config) { c.MaxWorkers = workers })
		// Half the jobs are inserted in transactions (the writer claims
		// them), half without, at the same time (on PostgreSQL those
		// start at their insert when a slot is free): both kinds of start
		// share the bound.
		ids := make([]int64, jobs)
		var wg sync.WaitGroup
		for i := range jobs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := context.Background()
				var r engine.Inserted
				var err error
				if i%2 == 0 {
					r, err = e.Insert(ctx, nil, testArgs{N: i}, nil)
				} else {
					err = db.InTx(ctx, func(tx *store.Tx) error {
						r, err = e.Insert(ctx, tx, testArgs{N: i}, nil)
						return err
					})
				}
				if err != nil {
					t.Error(err)
				}
				ids[i] = r.ID
			}()
		}
		wg.Wait()
		for _, id := range ids {
			waitState(t, e, id, engine.StateCompleted)
		}
		if m := most.Load(); m > workers {
			t.Fatalf("%d handlers ran at once with MaxWorkers %d", m, workers)
		}
	})
}

// TestEngine_OnDiscardRunsInTheTransactionThatEndsAJobForGood covers the
// three ways a job is given up: its last attempt fails, it is cancelled
// while queued, and the rescuer finds its last attempt's worker dead. The
// hook's write commits with each, and only with those.
func TestEngine_OnDiscardRunsInTheTransactionThatEndsAJobForGood(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.Writer().ExecContext(ctx, `CREATE TABLE discarded (job_id BIGINT PRIMARY KEY, state TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		onDiscard := func(ctx context.Context, tx *store.Tx, j *engine.JobRow, state engine.State) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO discarded (job_id, state) VALUES ($1, $2)`, j.ID, string(state))
			return err
		}
		started := make(chan struct{}, 1)
		build := func(h handlerFunc) *engine.Engine {
			reg := engine.NewRegistry()
			engine.Register(reg, h, engine.KindOptions{MaxAttempts: 1, OnDiscard: onDiscard})
			e, err := engine.New(engine.Config{DB: db, Registry: reg, FetchPollInterval: 20 * time.Millisecond,
				LeaseDuration: 300 * time.Millisecond, RescueInterval: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(e.Close)
			return e
		}
		discarded := func(id int64) string {
			var state string
			switch err := db.Writer().QueryRowContext(ctx, `SELECT state FROM discarded WHERE job_id = $1`, id).Scan(&state); {
			case errors.Is(err, sql.ErrNoRows):
				return ""
			case err != nil:
				t.Fatal(err)
			}
			return state
		}
		e := build(func(ctx context.Context, job *engine.Job[testArgs]) error {
			switch job.Args.Name {
			case "fail":
				return errors.New("down")
			case "hang":
				started <- struct{}{}
				<-ctx.Done()
			}
			return nil
		})
		queued, err := e.Insert(ctx, nil, testArgs{Name: "later"}, &engine.InsertOpts{RunAt: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(ctx); err != nil {
			t.Fatal(err)
		}
		ok := insertNamed(t, e, "ok")
		failing := insertNamed(t, e, "fail")
		waitState(t, e, failing, engine.StateFailed)
		waitState(t, e, ok, engine.StateCompleted)
		if err := e.Cancel(ctx, queued.ID); err != nil {
			t.Fatal(err)
		}
		hang := insertNamed(t, e, "hang")
		<-started
		e.Crash()
		rescuer := build(func(ctx context.Context, job *engine.Job[testArgs]) error { return nil })
		if err := rescuer.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = rescuer.Stop(sctx)
		})
		waitState(t, rescuer, hang, engine.StateFailed)
		for id, want := range map[int64]string{failing: "failed", queued.ID: "cancelled", hang: "failed", ok: ""} {
			if got := discarded(id); got != want {
				t.Errorf("job %d: hook saw %q, want %q", id, got, want)
			}
		}
	})
}

func insertNamed(t *testing.T, e *engine.Engine, name string) int64 {
	t.Helper()
	res, err := e.Insert(context.Background(), nil, testArgs{Name: name}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.ID
}

// insertFirstAndSecond inserts jobs "first" and "second" of subject card-1
// in one transaction, so the second is held behind the first before the
// first can run. (Inserted apart, on PostgreSQL, the second could be
// inserted held while the first completes in another transaction, and miss
// that release: the race the ReleaseInterval safety net bounds.)
func insertFirstAndSecond(t *testing.T, db *store.DB, e *engine.Engine) (first, second engine.Inserted) {
	t.Helper()
	ctx := context.Background()
	if err := db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if first, err = e.Insert(ctx, tx, testArgs{Name: "first"}, &engine.InsertOpts{Subject: "card-1"}); err != nil {
			return err
		}
		second, err = e.Insert(ctx, tx, testArgs{Name: "second"}, &engine.InsertOpts{Subject: "card-1"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return first, second
}

// TestEngine_CompleteTxLetsTheSubjectsNextJobIn: a job completed in the
// handler's own transaction frees its subject in that transaction, so the
// next job of the subject runs even if the handler never returns (its
// process was killed right after the commit), without waiting for the
// safety net that releases stuck subjects.
func TestEngine_CompleteTxLetsTheSubjectsNextJobIn(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var e *engine.Engine
		hang := make(chan struct{})
		defer close(hang)
		e = newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
			if job.Args.Name != "first" {
				return nil
			}
			if err := db.InTx(ctx, func(tx *store.Tx) error { return e.CompleteTx(ctx, tx, job.JobRow) }); err != nil {
				return err
			}
			select { // as if killed after the commit: no outcome follows
			case <-hang:
			case <-ctx.Done():
			}
			return nil
		}, func(c *engine.Config) {
			c.MaxWorkers = 4
			c.RescueInterval = time.Hour // the safety nets stay out of it
			c.ReleaseInterval = time.Hour
		})
		first, second := insertFirstAndSecond(t, db, e)
		waitState(t, e, first.ID, engine.StateCompleted)
		waitState(t, e, second.ID, engine.StateCompleted)
	})
}

// TestEngine_ACompleteTxRolledBackLeavesTheCompletionToTheOutcome: a
// handler whose transaction completed its job and then rolled back, and
// which returns nil anyway, has its job completed by the outcome, and the
// subject's next job let in with it: only a committed CompleteTx counts.
// (A completion counted before its commit left the subject held until the
// safety net's pass, switched off here.)
func TestEngine_ACompleteTxRolledBackLeavesTheCompletionToTheOutcome(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var e *engine.Engine
		undone := errors.New("a later write of the handler failed")
		e = newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
			if job.Args.Name != "first" {
				return nil
			}
			err := db.InTx(ctx, func(tx *store.Tx) error {
				if err := e.CompleteTx(ctx, tx, job.JobRow); err != nil {
					return err
				}
				return undone
			})
			if !errors.Is(err, undone) {
				return fmt.Errorf("the transaction ended with %v, want it rolled back", err)
			}
			return nil // the handler's own choice: its work is done another way
		}, func(c *engine.Config) {
			c.MaxWorkers = 4
			c.RescueInterval = time.Hour
			c.ReleaseInterval = time.Hour
		})
		first, second := insertFirstAndSecond(t, db, e)
		if j := waitState(t, e, first.ID, engine.StateCompleted); len(j.Errors) != 0 {
			t.Errorf("first job's errors = %v, want none", j.Errors)
		}
		waitState(t, e, second.ID, engine.StateCompleted)
	})
}

// TestEngine_TheReleaserNeverWaitsForARowAnotherTransactionHolds: on
// PostgreSQL the safety net that lets in stuck subjects' first held jobs
// skips a job whose row another transaction holds, and lets it in on a
// later pass. A releaser that waited for such a row was one side of the
// deadlocks seen with several instances (another instance's turn locking
// the held jobs of several subjects in its own order).
func TestEngine_TheReleaserNeverWaitsForARowAnotherTransactionHolds(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.Postgres)
	ctx := context.Background()
	e := newStoppedEngine(t, db, func(context.Context, *engine.Job[testArgs]) error { return nil })
	a := insert(t, e, 1, &engine.InsertOpts{Subject: "card-a"})
	b := insert(t, e, 2, &engine.InsertOpts{Subject: "card-b"})
	// Both stuck: held, with nothing else of their subject waiting.
	if _, err := db.Writer().ExecContext(ctx, `UPDATE jobs SET held = TRUE WHERE id IN ($1, $2)`, a, b); err != nil {
		t.Fatal(err)
	}
	held := func(id int64) bool {
		t.Helper()
		var h bool
		if err := db.Reader().QueryRowContext(ctx, `SELECT held FROM jobs WHERE id = $1`, id).Scan(&h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	other, err := db.Writer().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback()
	if _, err := other.ExecContext(ctx, `SELECT id FROM jobs WHERE id = $1 FOR UPDATE`, a); err != nil {
		t.Fatal(err)
	}

	// The deadline only bounds a failure: a releaser that waits for the
	// row would wait until the other transaction ends.
	pass, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	n, err := engine.ReleaseStuck(pass, db)
	if err != nil {
		t.Fatalf("release pass while another transaction holds a job's row: %v", err)
	}
	if n != 1 {
		t.Errorf("released %d jobs, want 1 (the job no other transaction holds)", n)
	}
	if held(b) {
		t.Error("the free subject's job is still held")
	}
	if !held(a) {
		t.Error("the job whose row another transaction holds was released under it")
	}
	if err := other.Rollback(); err != nil {
		t.Fatal(err)
	}
	if n, err := engine.ReleaseStuck(ctx, db); err != nil || n != 1 {
		t.Fatalf("next pass released %d jobs (err %v), want 1", n, err)
	}
	if held(a) {
		t.Error("the skipped job is still held after the next pass")
	}
}

// TestEngine_EachMaintenanceServiceRunsOnItsOwnTicker: the releaser, the
// rescuer, the liveness service and the cleaner each make passes, and one
// slow service does not hold the others (they no longer share one loop).
func TestEngine_EachMaintenanceServiceRunsOnItsOwnTicker(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newStoppedEngine(t, db, func(context.Context, *engine.Job[testArgs]) error { return nil }, func(c *engine.Config) {
			c.ReleaseInterval = 5 * time.Millisecond
			c.RescueInterval = 5 * time.Millisecond
			c.LivenessInterval = 5 * time.Millisecond
			c.CleanupInterval = 5 * time.Millisecond
		})
		s := e.EnableSignals()
		startEngine(t, e)
		for name, ch := range map[string]<-chan struct{}{
			"releaser passes": s.Released, "rescuer passes": s.Rescued,
			"liveness passes": s.LivenessChecked, "cleaner passes": s.Cleaned,
		} {
			waitSignals(t, name, ch, 3)
		}
	})
}

// The heartbeat extends the lease of a job while its handler runs, and
// cancels a handler whose job another instance asked to cancel (Cancel on
// that instance could only mark the job).
func TestEngine_HeartbeatExtendsLeasesAndCancelsWhatAnotherInstanceAsked(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		started := make(chan int64, 1)
		e := newStoppedEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
			started <- job.ID
			<-ctx.Done()
			return ctx.Err()
		}, func(c *engine.Config) { c.HeartbeatInterval = 20 * time.Millisecond })
		signals := e.EnableSignals()
		startEngine(t, e)
		ctx := context.Background()
		id := insert(t, e, 1, nil)
		<-started
		lease := func() int64 {
			var at int64
			if err := db.Reader().QueryRowContext(ctx, `SELECT lease_expires_at FROM jobs WHERE id = $1`, id).Scan(&at); err != nil {
				t.Fatal(err)
			}
			return at
		}
		first := lease()
		waitSignals(t, "heartbeats", signals.Beat, 2)
		if later := lease(); later <= first {
			t.Fatalf("lease expires at %d after two heartbeats, was %d", later, first)
		}
		if j, _ := e.Get(ctx, id); j.State != engine.StateRunning {
			t.Fatalf("job is %s before any cancel", j.State)
		}
		if _, err := db.Writer().ExecContext(ctx, `UPDATE jobs SET cancel_requested = TRUE WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		waitState(t, e, id, engine.StateCancelled)
	})
}

// An instance whose lock's connection is cut (a fail-over, a proxy
// restart) stops the handlers it runs, since the others may now count it
// dead, then takes its lock again on a new connection and runs jobs as
// before, rather than stopping every handler at each liveness pass for the
// rest of its life. (On SQLite the lock is a file lock; the case is
// PostgreSQL's.)
func TestEngine_AnInstanceWhoseLockConnectionIsCutTakesItsLockAgain(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.Postgres)
	ctx := context.Background()
	started := make(chan int, 10)
	stopped := make(chan int, 10)
	proceed := make(chan struct{})
	var firstRuns atomic.Int32
	e := newStoppedEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
		// Job 1 runs until it is stopped, the first time; job 2 until the
		// test lets it end.
		if job.Args.N == 1 && firstRuns.Add(1) > 1 {
			return nil
		}
		started <- job.Args.N
		select {
		case <-ctx.Done():
			stopped <- job.Args.N
			return ctx.Err()
		case <-proceed:
			return nil
		}
	}, func(c *engine.Config) { c.LivenessInterval = 20 * time.Millisecond })
	signals := e.EnableSignals()
	startEngine(t, e)

	first := insert(t, e, 1, nil)
	<-started
	pid, err := engine.InstanceLockPID(ctx, db.Writer(), e)
	if err != nil || pid == 0 {
		t.Fatalf("instance lock: pid %d, %v", pid, err)
	}
	if _, err := db.Writer().ExecContext(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	if n := <-stopped; n != 1 {
		t.Fatalf("job %d stopped, want 1", n)
	}

	// The lock comes back, held by another session.
	deadline := time.Now().Add(30 * time.Second)
	for {
		again, err := engine.InstanceLockPID(ctx, db.Writer(), e)
		if err != nil {
			t.Fatal(err)
		}
		if again != 0 && again != pid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the instance never took its lock again after its connection was cut")
		}
		waitSignals(t, "liveness passes", signals.LivenessChecked, 1)
	}
	waitState(t, e, first, engine.StateCompleted)

	// A job started now is left to run however many passes go by.
	second := insert(t, e, 2, nil)
	if n := <-started; n != 2 {
		t.Fatalf("job %d started, want 2", n)
	}
	waitSignals(t, "liveness passes", signals.LivenessChecked, 5)
	select {
	case n := <-stopped:
		t.Fatalf("job %d was stopped after the lock was taken again", n)
	default:
	}
	close(proceed)
	waitState(t, e, second, engine.StateCompleted)
}

// TestEngine_ASubjectWhoseFirstJobIsHeldBehindALaterOneStillRuns replays a
// race of transactions on PostgreSQL that stalled a secure element's tasks
// for good with two instances. One transaction inserts a job while the
// subject's job runs, so it is held; before it commits, the running job
// ends (its release cannot see the uncommitted job) and a later job is
// inserted, which finds nothing busy and is not held. Both commit before a
// claim (here another instance holds the claim lock meanwhile). The later
// job then waits behind the earlier one (the subject's order), and the
// earlier one waits to be let in: the releaser must let it in, and the two
// must run in their order.
func TestEngine_ASubjectWhoseFirstJobIsHeldBehindALaterOneStillRuns(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.Postgres)
	ctx := context.Background()
	finish := make(chan struct{})
	e := newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
		if job.Args.Name == "running" {
			select {
			case <-finish:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}, func(c *engine.Config) { c.ReleaseInterval = 50 * time.Millisecond })
	subject := &engine.InsertOpts{Subject: "se-1"}
	running, err := e.Insert(ctx, nil, testArgs{Name: "running"}, subject)
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, e, running.ID, engine.StateRunning)
	lock := holdClaimLock(t, db)

	// The first insert, held behind the running job, stays uncommitted
	// while the running job ends and the later insert commits.
	inserted, commit, done := make(chan engine.Inserted, 1), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- db.InTx(ctx, func(tx *store.Tx) error {
			res, err := e.Insert(ctx, tx, testArgs{Name: "first"}, subject)
			if err != nil {
				return err
			}
			inserted <- res
			<-commit
			return nil
		})
	}()
	var first engine.Inserted
	select {
	case first = <-inserted:
	case err := <-done:
		t.Fatalf("the first insert ended before its commit: %v", err)
	}
	close(finish)
	waitState(t, e, running.ID, engine.StateCompleted)
	second, err := e.Insert(ctx, nil, testArgs{Name: "second"}, subject)
	if err != nil {
		t.Fatal(err)
	}
	close(commit)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The later job was written unheld (the releaser only ever lets jobs
	// in, so this holds whenever it is read; the earlier job, held when
	// written, may already be let in by now).
	var secondHeld bool
	if err := db.Reader().QueryRowContext(ctx, `SELECT held FROM jobs WHERE id = $1`, second.ID).Scan(&secondHeld); err != nil {
		t.Fatal(err)
	}
	if secondHeld || first.ID > second.ID {
		t.Fatalf("the race was not replayed: first job %d, second job %d held %v", first.ID, second.ID, secondHeld)
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}

	a := waitState(t, e, first.ID, engine.StateCompleted)
	b := waitState(t, e, second.ID, engine.StateCompleted)
	if b.AttemptedAt.Before(a.FinalizedAt) {
		t.Errorf("the later job started at %v, before the earlier one ended at %v", b.AttemptedAt, a.FinalizedAt)
	}
}

// TestEngine_TheReleaserLetsInAFirstHeldJobWhenNothingGoesBeforeIt: the
// safety net lets in a subject's first held job exactly when no job of the
// subject runs and no unheld job waits before it; an unheld job waiting
// after it does not stop it (the race replayed above).
func TestEngine_TheReleaserLetsInAFirstHeldJobWhenNothingGoesBeforeIt(t *testing.T) {
	t.Parallel()
	type row struct {
		state engine.State
		held  bool
	}
	cases := []struct {
		name    string
		jobs    []row // in id order, one subject
		release bool  // whether the first held job is let in
	}{
		{"held alone", []row{{engine.StateAvailable, true}}, true},
		{"held before an unheld job", []row{{engine.StateAvailable, true}, {engine.StateAvailable, false}}, true},
		{"held before an unheld retryable job", []row{{engine.StateAvailable, true}, {engine.StateRetryable, false}}, true},
		{"held after an unheld waiting job", []row{{engine.StateAvailable, false}, {engine.StateAvailable, true}}, false},
		{"held after an unheld retryable job", []row{{engine.StateRetryable, false}, {engine.StateAvailable, true}}, false},
		{"held after a running job", []row{{engine.StateRunning, false}, {engine.StateAvailable, true}}, false},
		{"held before a running job", []row{{engine.StateAvailable, true}, {engine.StateRunning, false}}, false},
		{"held after a scheduled job", []row{{engine.StateScheduled, false}, {engine.StateAvailable, true}}, true},
		{"held after a completed job", []row{{engine.StateCompleted, false}, {engine.StateAvailable, true}}, true},
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newStoppedEngine(t, db, func(context.Context, *engine.Job[testArgs]) error { return nil })
		for i, c := range cases {
			subject := fmt.Sprintf("se-%d", i)
			var ids []int64
			for n, r := range c.jobs {
				id := insert(t, e, n, &engine.InsertOpts{Subject: subject})
				if _, err := db.Writer().ExecContext(ctx, `UPDATE jobs SET state = $2, held = $3 WHERE id = $1`, id, string(r.state), r.held); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			if _, err := engine.ReleaseStuck(ctx, db); err != nil {
				t.Fatal(err)
			}
			for n, r := range c.jobs {
				if !r.held {
					continue
				}
				var held bool
				if err := db.Reader().QueryRowContext(ctx, `SELECT held FROM jobs WHERE id = $1`, ids[n]).Scan(&held); err != nil {
					t.Fatal(err)
				}
				if held == c.release {
					t.Errorf("%s: the held job is held %v after a pass, want let in %v", c.name, held, c.release)
				}
			}
		}
	})
}

// TestEngine_AnErrorTextPostgreSQLCannotStoreDoesNotStallTheEngine: a
// handler's error is often a partner's words, and may hold a NUL byte,
// which PostgreSQL's JSON refuses. The attempt's outcome must still be
// written, and the jobs after it still run.
func TestEngine_AnErrorTextPostgreSQLCannotStoreDoesNotStallTheEngine(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
			if job.Args.Name == "nul" {
				return errors.New("partner said \x00\xff here")
			}
			return nil
		})
		bad, err := e.Insert(context.Background(), nil, testArgs{Name: "nul"}, &engine.InsertOpts{MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		j := waitState(t, e, bad.ID, engine.StateFailed)
		if len(j.Errors) != 1 || !strings.HasPrefix(j.Errors[0].Error, "partner said ") || !strings.HasSuffix(j.Errors[0].Error, " here") {
			t.Fatalf("errors = %+v", j.Errors)
		}
		waitState(t, e, insertNamed(t, e, "after"), engine.StateCompleted)
	})
}

// TestEngine_AnOutcomeThatCannotBeWrittenDoesNotHoldUpTheOthers: when the
// write of one attempt's outcome fails every time (here its kind's discard
// hook), the outcomes written beside it, and the claims after it, go on;
// the failing one is tried again until it is written.
func TestEngine_AnOutcomeThatCannotBeWrittenDoesNotHoldUpTheOthers(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var broken atomic.Bool
		broken.Store(true)
		var hookCalls atomic.Int32
		reg := engine.NewRegistry()
		engine.Register(reg, func(ctx context.Context, job *engine.Job[testArgs]) error {
			if job.Args.Name == "fail" {
				return errors.New("down")
			}
			return nil
		}, engine.KindOptions{MaxAttempts: 1, OnDiscard: func(ctx context.Context, tx *store.Tx, j *engine.JobRow, state engine.State) error {
			hookCalls.Add(1)
			if broken.Load() {
				return errors.New("the domain record cannot be written")
			}
			return nil
		}})
		e, err := engine.New(engine.Config{DB: db, Registry: reg, FetchPollInterval: 20 * time.Millisecond, LeaseDuration: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		startEngine(t, e)
		failing := insertNamed(t, e, "fail")
		waitFor(t, "the discard hook to fail twice", func() bool { return hookCalls.Load() >= 2 })
		for i := range 5 {
			waitState(t, e, insertNamed(t, e, fmt.Sprintf("ok %d", i)), engine.StateCompleted)
		}
		if j, err := e.Get(ctx, failing); err != nil || j.State != engine.StateRunning {
			t.Fatalf("the job whose outcome cannot be written: %+v, %v; want it still running", j, err)
		}
		broken.Store(false)
		waitState(t, e, failing, engine.StateFailed)
	})
}

// TestEngine_StopDoesNotWaitForeverForAnOutcomeItCannotWrite: Stop gives
// up on such an outcome once its context ends, and the job comes back
// through the next engine's start, as a dead instance's would.
func TestEngine_StopDoesNotWaitForeverForAnOutcomeItCannotWrite(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var broken atomic.Bool
		broken.Store(true)
		var hookCalls atomic.Int32
		build := func() *engine.Engine {
			reg := engine.NewRegistry()
			engine.Register(reg, func(ctx context.Context, job *engine.Job[testArgs]) error {
				return errors.New("down")
			}, engine.KindOptions{MaxAttempts: 1, OnDiscard: func(ctx context.Context, tx *store.Tx, j *engine.JobRow, state engine.State) error {
				hookCalls.Add(1)
				if broken.Load() {
					return errors.New("the domain record cannot be written")
				}
				return nil
			}})
			e, err := engine.New(engine.Config{DB: db, Registry: reg, FetchPollInterval: 20 * time.Millisecond,
				LeaseDuration: time.Minute, ShutdownGrace: 10 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(e.Close)
			return e
		}
		first := build()
		if err := first.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		id := insertNamed(t, first, "fail")
		waitFor(t, "the discard hook to fail", func() bool { return hookCalls.Load() >= 1 })
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := first.Stop(ctx); err == nil || !strings.Contains(err.Error(), "not written") {
			t.Fatalf("Stop = %v, want the unwritten outcome named", err)
		}
		broken.Store(false)
		second := build()
		startEngine(t, second)
		waitState(t, second, id, engine.StateFailed)
	})
}
