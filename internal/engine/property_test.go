package engine_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

// step is what a job's handler does on one of its runs.
type step string

const (
	stepOK       step = "ok"
	stepErr      step = "err"
	stepPanic    step = "panic"
	stepTerminal step = "terminal"
	stepSnooze   step = "snooze"
	stepDie      step = "die" // the worker's process dies mid-run
)

type plannedJob struct {
	subject     string
	maxAttempts int
	script      []step // run i does script[i]; runs past the end succeed
}

// possibleEnds replays a job's script the way the engine's states promise
// and returns every final state it can reach when up to lost runs have their
// outcome lost to a process death (a death also kills the other jobs running
// on that process, and so counts against them as a used attempt).
func (p plannedJob) possibleEnds(lost int) map[engine.State]bool {
	ends := map[engine.State]bool{}
	var walk func(run, attempt, lost int)
	walk = func(run, attempt, lost int) {
		s := stepOK
		if run < len(p.script) {
			s = p.script[run]
		}
		usedUp := func() {
			if attempt+1 >= p.maxAttempts {
				ends[engine.StateFailed] = true
			} else {
				walk(run+1, attempt+1, lost)
			}
		}
		if lost > 0 && s != stepDie {
			lost--
			if attempt+1 >= p.maxAttempts {
				ends[engine.StateFailed] = true
			} else {
				walk(run+1, attempt+1, lost)
			}
			lost++
		}
		switch s {
		case stepOK:
			ends[engine.StateCompleted] = true
		case stepTerminal:
			ends[engine.StateFailed] = true
		case stepSnooze:
			walk(run+1, attempt, lost)
		default: // err, panic, die
			usedUp()
		}
	}
	walk(0, 0, lost)
	return ends
}

// TestEngine_StateMachineProperties runs random jobs (random subjects,
// attempts and per-run outcomes, including worker deaths and cancels)
// and checks the engine's promises: a job never runs twice at once, a
// subject runs one job at a time in insertion order, no run exceeds the
// maximum attempts, and every job ends in the state its script implies.
func TestEngine_StateMachineProperties(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a property test: many runs")
	}
	if f := flag.Lookup("rapid.checks"); f != nil && f.Value.String() == "100" {
		// Each case waits for leases to expire; 30 cases per backend keep
		// the suite fast. Pass -rapid.checks=N for a longer hunt.
		_ = f.Value.Set("30")
	}
	for _, d := range storetest.Backends {
		t.Run(d.String(), func(t *testing.T) {
			db := storetest.Open(t, d)
			rapid.Check(t, func(rt *rapid.T) { runStateMachineCase(rt, db) })
		})
	}
}

func runStateMachineCase(rt *rapid.T, db *store.DB) {
	ctx := context.Background()
	if _, err := db.Writer().ExecContext(ctx, `DELETE FROM jobs`); err != nil {
		rt.Fatal(err)
	}
	deaths := 0
	plans := rapid.Custom(func(t *rapid.T) plannedJob {
		p := plannedJob{
			subject:     rapid.SampledFrom([]string{"", "se-a", "se-b", "se-c"}).Draw(t, "subject"),
			maxAttempts: rapid.IntRange(1, 3).Draw(t, "maxAttempts"),
		}
		p.script = rapid.SliceOfN(rapid.SampledFrom([]step{stepOK, stepErr, stepPanic, stepTerminal, stepSnooze, stepSnooze, stepDie}), 0, 5).Draw(t, "script")
		return p
	})
	jobs := rapid.SliceOfN(plans, 1, 10).Draw(rt, "jobs")
	// Deaths are slow to recover from (a lease must expire): allow two.
	for i := range jobs {
		for k, s := range jobs[i].script {
			if s == stepDie {
				if deaths == 2 {
					jobs[i].script[k] = stepErr
				}
				deaths = min(deaths+1, 2)
			}
		}
	}
	cancels := rapid.SliceOfN(rapid.IntRange(0, len(jobs)-1), 0, 2).Draw(rt, "cancels")

	var (
		mu       sync.Mutex
		runs     = map[int64]int{}
		running  = map[int64]bool{}
		subjects = map[string]int64{}
		starts   = map[string][]int64{}
		problems []string
		crashReq = make(chan struct{}, 8)
		// epoch counts crashes. A crashed engine is a killed process, but
		// its handlers under way are goroutines of this test and run on:
		// from the crash on, they no longer count as running.
		epoch int
	)
	problem := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	byID := map[int64]plannedJob{}

	handler := func(ctx context.Context, job *engine.Job[testArgs]) error {
		mu.Lock()
		born := epoch
		if running[job.ID] {
			problem("job %d runs twice at once", job.ID)
		}
		if job.Subject != "" {
			if other, busy := subjects[job.Subject]; busy {
				problem("subject %s: job %d started while %d runs", job.Subject, job.ID, other)
			}
			subjects[job.Subject] = job.ID
			starts[job.Subject] = append(starts[job.Subject], job.ID)
		}
		if job.Attempt > job.MaxAttempts {
			problem("job %d runs attempt %d of %d", job.ID, job.Attempt, job.MaxAttempts)
		}
		running[job.ID] = true
		n := runs[job.ID]
		runs[job.ID] = n + 1
		plan := byID[job.ID]
		mu.Unlock()
		leave := func() {
			mu.Lock()
			if born == epoch { // else the crash already ended this run
				delete(running, job.ID)
				if job.Subject != "" {
					delete(subjects, job.Subject)
				}
			}
			mu.Unlock()
		}
		s := stepOK
		if n < len(plan.script) {
			s = plan.script[n]
		}
		time.Sleep(time.Millisecond)
		switch s {
		case stepErr:
			leave()
			return errors.New("scripted error")
		case stepPanic:
			leave()
			panic("scripted panic")
		case stepTerminal:
			leave()
			return engine.Terminal(errors.New("scripted terminal error"))
		case stepSnooze:
			leave()
			return engine.Snooze(time.Millisecond)
		case stepDie:
			leave() // the process is gone: this run is over
			crashReq <- struct{}{}
			<-ctx.Done()
			return nil
		default:
			leave()
			return nil
		}
	}

	reg := engine.NewRegistry()
	engine.Register(reg, handler, engine.KindOptions{})
	start := func() *engine.Engine {
		e, err := engine.New(engine.Config{
			DB: db, Registry: reg, MaxWorkers: 4,
			FetchPollInterval: 10 * time.Millisecond,
			LeaseDuration:     200 * time.Millisecond,
			RescueInterval:    20 * time.Millisecond,
			Backoff:           func(int) time.Duration { return time.Millisecond },
		})
		if err != nil {
			rt.Fatal(err)
		}
		if err := e.Start(ctx); err != nil {
			rt.Fatal(err)
		}
		return e
	}

	// Insert everything before starting, so byID is complete when handlers run.
	inserter, err := engine.New(engine.Config{DB: db, Registry: reg})
	if err != nil {
		rt.Fatal(err)
	}
	params := make([]engine.InsertParams, len(jobs))
	for i, p := range jobs {
		params[i] = engine.InsertParams{Args: testArgs{N: i}, Opts: &engine.InsertOpts{Subject: p.subject, MaxAttempts: p.maxAttempts}}
	}
	res, err := inserter.InsertMany(ctx, nil, params)
	inserter.Close()
	if err != nil {
		rt.Fatal(err)
	}
	ids := make([]int64, len(res))
	for i, r := range res {
		ids[i] = r.ID
		byID[r.ID] = jobs[i]
	}
	cancelled := map[int64]bool{}

	e := start()
	for _, i := range cancels {
		err := e.Cancel(ctx, ids[i])
		if err != nil && !errors.Is(err, engine.ErrNotCancelable) {
			rt.Fatalf("cancel: %v", err)
		}
		if err == nil {
			cancelled[ids[i]] = true
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-crashReq:
			// The runs under way end with the crash; a handler the crashed
			// engine starts after it counts as a live run.
			mu.Lock()
			epoch++
			clear(running)
			clear(subjects)
			mu.Unlock()
			e.Crash()
			e.Close()
			e = start()
			continue
		case <-time.After(10 * time.Millisecond):
		}
		done := true
		for _, id := range ids {
			j, err := e.Get(ctx, id)
			if err != nil {
				rt.Fatal(err)
			}
			if !j.State.Terminal() {
				done = false
				break
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			rt.Fatalf("jobs did not all finish")
		}
	}
	stopCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := e.Stop(stopCtx); err != nil {
		rt.Fatal(err)
	}
	e.Close()

	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		rt.Fatalf("invariants broken: %v", problems)
	}
	for s, seq := range starts {
		for i := 1; i < len(seq); i++ {
			if seq[i] < seq[i-1] {
				rt.Fatalf("subject %s started jobs out of order: %v", s, seq)
			}
		}
	}
	for _, id := range ids {
		j, err := e.Get(ctx, id)
		if err != nil {
			rt.Fatal(err)
		}
		want := byID[id].possibleEnds(deaths)
		if !want[j.State] && !(cancelled[id] && j.State == engine.StateCancelled) {
			rt.Fatalf("job %d (%+v) ended %s, want one of %v (cancelled=%v); errors %+v", id, byID[id], j.State, want, cancelled[id], j.Errors)
		}
		if j.Attempt > j.MaxAttempts {
			rt.Fatalf("job %d used %d of %d attempts", id, j.Attempt, j.MaxAttempts)
		}
	}
}
