package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	errCancelRequested = errors.New("job cancelled")
	errShutdown        = errors.New("engine shutting down")
)

// runState is what exists while the engine runs jobs.
type runState struct {
	stopLoops context.CancelFunc // heartbeat, maintenance, listener: they run until handlers are done
	stopJobs  context.CancelCauseFunc
	jobsCtx   context.Context //nolint:containedctx // parent of every handler context; cancelled by Stop
	loops     sync.WaitGroup
	handlers  sync.WaitGroup
	pending   sync.WaitGroup // outcomes handed to the writer and not yet written

	// crashed makes this run behave like a killed process: nothing more is
	// written (used by tests of the rescuer).
	crashed atomic.Bool

	// claimMu is held by the writer from a claim until its jobs have
	// started, and by Stop while it sets stopping: no handler starts once
	// Stop waits for the handlers (a WaitGroup must not grow from zero
	// while it is waited on).
	claimMu sync.Mutex

	mu      sync.Mutex
	running map[int64]context.CancelCauseFunc
	busy    int // slots in use: handlers running, and slots reserved
	// waiting are claimed jobs that found no free slot: inserts that
	// start their jobs at once (Engine.insertBatched) took slots while the
	// claim ran. They are leased to this engine (the heartbeat extends
	// their leases), start in claim order as handlers return, and are given
	// back to the queue by Stop.
	waiting  []*JobRow
	stopping bool

	// live proves this engine alive to the others while it runs.
	live *liveness
}

// freeSlots is how many more jobs this run may start now.
func (rs *runState) freeSlots(maxWorkers int) int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.stopping {
		return 0
	}
	return max(maxWorkers-rs.busy-len(rs.waiting), 0)
}

func (e *Engine) running() *runState {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.run
}

// Start makes the engine claim and run jobs until Stop.
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.run != nil {
		return errors.New("engine already started")
	}
	live, err := e.acquireLiveness(ctx)
	if err != nil {
		return err
	}
	base := context.WithoutCancel(ctx)
	loopCtx, stopLoops := context.WithCancel(base)
	jobsCtx, stopJobs := context.WithCancelCause(base)
	rs := &runState{
		stopLoops: stopLoops,
		stopJobs:  stopJobs,
		jobsCtx:   jobsCtx,
		running:   map[int64]context.CancelCauseFunc{},
		live:      live,
	}
	// Jobs left running by a dead engine (this one's previous process,
	// or another instance known dead) come back now, not when their
	// leases expire.
	if n, err := e.recoverOrphans(ctx, live); err != nil {
		e.log.Warn("take back the jobs of dead engines", "err", err)
	} else if n > 0 {
		e.metrics.rescued.Add(float64(n))
		e.log.Warn("took back jobs left running by a dead engine", "jobs", n)
	}
	e.run = rs
	e.startMaintenance(loopCtx, rs)
	if pool := e.db.Pool(); pool != nil {
		rs.loops.Add(1)
		go e.listen(loopCtx, rs, pool)
	}
	e.wake()
	e.log.Info("engine started", "instance", e.cfg.InstanceID, "max_workers", e.cfg.MaxWorkers, "kinds", len(e.cfg.Registry.kinds))
	return nil
}

// Stop stops claiming, lets running handlers finish until ctx ends, then
// cancels the rest and gives their jobs back to the queue without using an
// attempt. Outcomes are written before Stop returns.
func (e *Engine) Stop(ctx context.Context) error {
	rs := e.running()
	if rs == nil {
		return nil
	}
	rs.claimMu.Lock()
	rs.mu.Lock()
	rs.stopping = true
	rs.mu.Unlock()
	rs.claimMu.Unlock()
	e.giveBackWaiting(rs)

	drained := make(chan struct{})
	go func() { rs.handlers.Wait(); close(drained) }()
	var err error
	select {
	case <-drained:
	case <-ctx.Done():
		rs.stopJobs(errShutdown)
		select {
		case <-drained:
		case <-time.After(e.cfg.ShutdownGrace):
			rs.mu.Lock()
			n := len(rs.running)
			rs.mu.Unlock()
			err = fmt.Errorf("stop engine: %d handlers ignored cancellation; their leases expire and they are rescued", n)
		}
	}
	if err == nil {
		err = e.waitOutcomes(ctx, rs)
	}
	rs.stopLoops()
	rs.loops.Wait()
	rs.stopJobs(errShutdown)
	// Released even when handlers ignored cancellation (the database is
	// closed next, which waits for this connection); their jobs may then be
	// taken back by a peer while they still run, which their idempotency
	// keys (request ids, task ids) make harmless.
	rs.live.release()
	e.mu.Lock()
	e.run = nil
	e.mu.Unlock()
	e.log.Info("engine stopped", "instance", e.cfg.InstanceID)
	return err
}

// waitOutcomes waits until the outcomes of the run's attempts are written,
// until ctx ends and ShutdownGrace more. An outcome the writer could not
// write by then (the database unreachable, a discard hook failing) stays
// unwritten: its job is still running under this instance, and comes back
// to the queue when the liveness lock is released (a peer, or this
// instance's next start, takes it back) or its lease expires.
func (e *Engine) waitOutcomes(ctx context.Context, rs *runState) error {
	written := make(chan struct{})
	go func() { rs.pending.Wait(); close(written) }()
	select {
	case <-written:
		return nil
	case <-ctx.Done():
	}
	select {
	case <-written:
		return nil
	case <-time.After(e.cfg.ShutdownGrace):
		return errors.New("stop engine: outcomes of finished attempts not written; their jobs are taken back as a dead instance's")
	}
}

// reserve takes up to n free worker slots for jobs inserted running
// (Engine.insertBatched) and reports how many it took: none once Stop has
// begun, nor while claimed jobs wait for a slot. Each slot counts as a
// running handler from now on, so that Stop waits for it; startReserved
// uses it, or unreserve gives it back.
func (rs *runState) reserve(maxWorkers, n int) int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.stopping || rs.crashed.Load() {
		return 0
	}
	k := min(n, max(maxWorkers-rs.busy-len(rs.waiting), 0))
	rs.busy += k
	rs.handlers.Add(k)
	return k
}

// unreserve gives back n slots that reserve took and no job used.
func (rs *runState) unreserve(n int) {
	if n == 0 {
		return
	}
	rs.mu.Lock()
	rs.busy -= n
	rs.mu.Unlock()
	rs.handlers.Add(-n)
}

// startClaimed starts the jobs a claim took, in order, each in a free
// slot; those that find none wait for one (runState.waiting).
func (e *Engine) startClaimed(rs *runState, jobs []*JobRow) {
	if len(jobs) == 0 {
		return
	}
	rs.mu.Lock()
	n := 0
	for n < len(jobs) && !rs.stopping && rs.busy < e.cfg.MaxWorkers {
		rs.busy++
		n++
	}
	rs.handlers.Add(n)
	rs.waiting = append(rs.waiting, jobs[n:]...)
	rs.mu.Unlock()
	for _, j := range jobs[:n] {
		e.startReserved(rs, j)
	}
}

// giveBackWaiting hands the claimed jobs still waiting for a slot back to
// the queue, their attempt not used (Stop).
func (e *Engine) giveBackWaiting(rs *runState) {
	rs.mu.Lock()
	waiting := rs.waiting
	rs.waiting = nil
	rs.mu.Unlock()
	now := time.Now()
	for _, j := range waiting {
		rs.pending.Add(1)
		e.outcomes <- outcome{job: j, state: StateAvailable, runAt: j.RunAt, released: true, started: now, finished: now, run: rs}
	}
}

// startReserved starts the handler of j (claimed, or inserted running) in
// a slot already counted in busy and handlers.
func (e *Engine) startReserved(rs *runState, j *JobRow) {
	if rs.crashed.Load() {
		// A killed process starts nothing: a job claimed by a writer turn
		// that was under way when the run crashed stays running under the
		// dead instance until it is rescued, as it would after a real kill.
		rs.unreserve(1)
		return
	}
	k := e.cfg.Registry.kinds[j.Kind]
	timeout := e.cfg.DefaultTimeout
	if k != nil && k.opts.Timeout > 0 {
		timeout = k.opts.Timeout
	}
	ctx, cancel := context.WithCancelCause(rs.jobsCtx)
	rs.mu.Lock()
	rs.running[j.ID] = cancel
	rs.mu.Unlock()
	if !j.AttemptedAt.IsZero() {
		e.metrics.queueWait.WithLabelValues(j.Kind).Observe(j.AttemptedAt.Sub(j.RunAt).Seconds())
	}
	go func() {
		defer rs.handlers.Done()
		started := time.Now()
		tctx, tcancel := context.WithTimeout(ctx, timeout)
		err := e.call(tctx, k, j)
		tcancel()
		cause := context.Cause(ctx)
		cancel(nil)
		o := e.decide(k, j, err, cause)
		o.started, o.finished = started, time.Now()
		e.metrics.runTime.WithLabelValues(j.Kind).Observe(o.finished.Sub(started).Seconds())
		o.run = rs
		rs.mu.Lock()
		delete(rs.running, j.ID)
		var next *JobRow
		if len(rs.waiting) > 0 && !rs.stopping {
			// The slot goes to the first claimed job waiting for one.
			next, rs.waiting = rs.waiting[0], rs.waiting[1:]
			rs.handlers.Add(1)
		} else {
			rs.busy--
		}
		rs.mu.Unlock()
		if next != nil {
			e.startReserved(rs, next)
		}
		if rs.crashed.Load() {
			return
		}
		rs.pending.Add(1)
		e.outcomes <- o
	}()
}

// call runs the handler, turning a panic into an error.
func (e *Engine) call(ctx context.Context, k *kind, j *JobRow) (err error) {
	if k == nil {
		// Another instance, of a newer version, may know this kind.
		return fmt.Errorf("no handler registered for kind %q on instance %s", j.Kind, e.cfg.InstanceID)
	}
	defer func() {
		if r := recover(); r != nil {
			e.log.Error("job handler panicked", "job_id", j.ID, "kind", j.Kind, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return k.run(ctx, j)
}

func (e *Engine) decide(k *kind, j *JobRow, err, cause error) outcome {
	now := e.now()
	o := outcome{job: j}
	var snooze *snoozeError
	var terminal *terminalError
	switch {
	case errors.Is(cause, errCancelRequested):
		o.state, o.err = StateCancelled, "cancelled while running"
		if err != nil {
			o.err += ": " + err.Error()
		}
	case err == nil:
		o.state = StateCompleted
	case errors.As(err, &snooze):
		o.state, o.runAt, o.snoozed = StateRetryable, now.Add(snooze.after), true
	case errors.Is(cause, errShutdown):
		o.state, o.runAt, o.released = StateAvailable, now, true
		o.err = "released at shutdown: " + err.Error()
	case errors.As(err, &terminal):
		o.state, o.err = StateFailed, err.Error()
	case j.Attempt >= j.MaxAttempts:
		o.state, o.err = StateFailed, err.Error()
	default:
		backoff := e.cfg.Backoff
		if k != nil && k.opts.Backoff != nil {
			backoff = k.opts.Backoff
		}
		o.state, o.runAt, o.err = StateRetryable, now.Add(backoff(j.Attempt)), err.Error()
	}
	if o.runAt.IsZero() {
		o.runAt = j.RunAt
	}
	return o
}

func (e *Engine) cancelLocal(id int64) bool {
	rs := e.running()
	if rs == nil {
		return false
	}
	rs.mu.Lock()
	cancel, ok := rs.running[id]
	rs.mu.Unlock()
	if ok {
		cancel(errCancelRequested)
	}
	return ok
}

// listen wakes the producer on other instances' inserts and completions and
// cancels local jobs on request, through PostgreSQL LISTEN/NOTIFY.
func (e *Engine) listen(ctx context.Context, rs *runState, pool *pgxpool.Pool) {
	defer rs.loops.Done()
	for ctx.Err() == nil {
		err := e.listenOnce(ctx, pool)
		if ctx.Err() != nil {
			return
		}
		e.log.Warn("job notifications lost; reconnecting (polling meanwhile)", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (e *Engine) listenOnce(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var channel string
	if err := conn.QueryRow(ctx, `SELECT `+notifyChannelSQL).Scan(&channel); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	defer func() {
		// The connection goes back to the pool: stop listening on it.
		uctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, "UNLISTEN *"); err != nil {
			conn.Conn().Close(uctx) //nolint:errcheck // the pool drops a closed connection
		}
	}()
	e.wake() // catch up on anything missed while not listening
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Payload == e.cfg.InstanceID {
			continue // our own write: the writer loop already knows
		}
		if id, ok := strings.CutPrefix(n.Payload, "cancel:"); ok {
			if v, err := strconv.ParseInt(id, 10, 64); err == nil {
				e.cancelLocal(v)
			}
			continue
		}
		e.wake()
	}
}
