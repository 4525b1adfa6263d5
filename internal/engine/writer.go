package engine

import (
	"context"
	"time"

	"github.com/provhub/provhub/internal/store"
)

// The writer loop does every routine write of the engine: inserts made
// outside a caller's transaction (group commit), the outcomes of finished
// attempts (batch completion) and claims of new work (batch claiming). Each
// turn takes whatever is pending and writes it in one transaction, in that
// order, so a turn's claim already sees the jobs it inserted and the
// subjects its completions freed. A durable commit costs an fsync; sharing
// one between all three keeps throughput high on SQLite, whose single
// writer connection would otherwise run them one after the other, and saves
// round trips and commits on PostgreSQL. While a turn commits, the next
// turn's work gathers, so batches grow with load without added waiting.

type insertRequest struct {
	ctx  context.Context //nolint:containedctx // the caller's, checked before its rows are written
	rows []insertRow
	done chan insertResult
}

type insertResult struct {
	res []Inserted
	err error
}

func (e *Engine) groupInsert(ctx context.Context, rows []insertRow) ([]Inserted, error) {
	req := insertRequest{ctx: ctx, rows: rows, done: make(chan insertResult, 1)}
	select {
	case e.inserts <- req:
	case <-e.stopWriter:
		return nil, ErrStopped
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// Once queued, the insert may commit even if ctx ends: wait for the
	// answer so the caller is never told "failed" about a stored job.
	r := <-req.done
	return r.res, r.err
}

// turn is the work of one writer transaction.
type turn struct {
	inserts  []insertRequest
	rows     int
	outcomes []outcome
	claim    bool
}

func (e *Engine) writeLoop() {
	defer e.writerWG.Done()
	if e.db.Dialect() == store.SQLite {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := e.db.Prepare(ctx, sqliteHotQueries...); err != nil {
			e.log.Warn("statements stay unprepared", "err", err)
		}
		cancel()
	}
	timer := time.NewTimer(e.cfg.FetchPollInterval)
	defer timer.Stop()
	var (
		t                    turn
		lastClaim            time.Time
		lastPromote, nextDue time.Time
		// Outcomes whose write failed, set aside so that they hold up
		// neither the claims nor the outcomes after them (see writeAside).
		aside      []outcome
		asideNext  time.Time
		asideDelay time.Duration
	)
	for {
		if len(aside) > 0 && !time.Now().Before(asideNext) {
			if aside = e.writeAside(aside); len(aside) > 0 {
				asideDelay = min(2*asideDelay, maxAsideDelay)
				asideNext = time.Now().Add(asideDelay)
			}
		}
		if len(t.outcomes) == 0 && len(t.inserts) == 0 {
			select {
			case r := <-e.inserts:
				t.inserts, t.rows = append(t.inserts, r), t.rows+len(r.rows)
			case o := <-e.outcomes:
				t.outcomes = append(t.outcomes, o)
			case <-e.wakeCh:
				t.claim = true
			case <-timer.C:
				t.claim = true
			case <-e.stopWriter:
				e.failQueued()
				return
			}
		}
		e.gather(&t)

		rs := e.running()
		free := 0
		if rs != nil {
			free = rs.freeSlots(e.cfg.MaxWorkers)
		}
		wantClaim := rs != nil && free > 0 && (t.claim || len(t.outcomes) > 0 || t.rows > 0)
		if wantClaim && len(t.outcomes) == 0 && t.rows == 0 {
			// A claim alone waits out the cooldown so freed slots fill in batches.
			if wait := e.cfg.FetchCooldown - time.Since(lastClaim); wait > 0 {
				time.Sleep(wait)
				e.gather(&t)
			}
		}
		now := e.now()
		promote := rs != nil && (time.Since(lastPromote) >= e.cfg.FetchPollInterval || (!nextDue.IsZero() && !now.Before(nextDue)))
		limit := 0
		if wantClaim {
			// Held until the claimed jobs have started, so that Stop never
			// sees a handler start after it began waiting for them.
			rs.claimMu.Lock()
			limit = min(rs.freeSlots(e.cfg.MaxWorkers), e.cfg.FetchBatch)
			lastClaim = time.Now()
		}
		jobs, due, busy, err := e.writeTurn(&t, rs, limit, promote, now)
		if err != nil {
			if wantClaim {
				rs.claimMu.Unlock()
			}
			e.log.Error("engine write", "err", err)
			if len(t.outcomes) > 0 {
				// The next turn claims without them: one outcome that cannot
				// be written (a value the database refuses, a discard hook
				// that fails) must not stop this instance's work, nor the
				// outcomes written beside it.
				aside = append(aside, e.writeAside(t.outcomes)...)
				t.outcomes = nil
				asideDelay = minAsideDelay
				asideNext = time.Now().Add(asideDelay)
			}
			time.Sleep(100 * time.Millisecond)
		} else {
			if promote && !busy {
				lastPromote, nextDue = time.Now(), due
				e.signals.promoted.fire()
			}
			if h := e.takeDueHint(); !h.IsZero() && (nextDue.IsZero() || h.Before(nextDue)) {
				nextDue = h
			}
			// A full claim: more may wait. A claim another instance held
			// the lock for: ask again soon.
			t = turn{claim: (limit > 0 && len(jobs) == limit) || (busy && limit > 0)}
			e.startClaimed(rs, jobs)
			if wantClaim {
				rs.claimMu.Unlock()
			}
		}
		sleep := e.cfg.FetchPollInterval
		if t.claim {
			sleep = min(sleep, max(e.cfg.FetchCooldown, time.Millisecond))
		}
		if !nextDue.IsZero() {
			if d := nextDue.Sub(e.now()); d < sleep {
				sleep = max(d, time.Millisecond)
			}
		}
		if len(aside) > 0 {
			sleep = max(min(sleep, time.Until(asideNext)), time.Millisecond)
		}
		timer.Reset(sleep)
	}
}

// gather adds to t whatever inserts and outcomes are already queued, up to
// the batch bounds; with GroupCommitMaxWait it waits that long for inserts.
func (e *Engine) gather(t *turn) {
	var deadline <-chan time.Time
	if e.cfg.GroupCommitMaxWait > 0 && t.rows > 0 {
		tm := time.NewTimer(e.cfg.GroupCommitMaxWait)
		defer tm.Stop()
		deadline = tm.C
	}
	for {
		if t.rows >= e.cfg.GroupCommitMaxBatch && len(t.outcomes) >= e.cfg.CompleteMaxBatch {
			return
		}
		inserts := e.inserts
		if t.rows >= e.cfg.GroupCommitMaxBatch {
			inserts = nil
		}
		outcomes := e.outcomes
		if len(t.outcomes) >= e.cfg.CompleteMaxBatch {
			outcomes = nil
		}
		if deadline == nil {
			select {
			case r := <-inserts:
				t.inserts, t.rows = append(t.inserts, r), t.rows+len(r.rows)
			case o := <-outcomes:
				t.outcomes = append(t.outcomes, o)
			default:
				return
			}
			continue
		}
		select {
		case r := <-inserts:
			t.inserts, t.rows = append(t.inserts, r), t.rows+len(r.rows)
		case o := <-outcomes:
			t.outcomes = append(t.outcomes, o)
		case <-deadline:
			deadline = nil
		}
	}
}

// writeTurn writes t in one transaction and claims up to limit jobs. On
// failure it answers the inserts one by one (so one bad request does not
// fail its neighbours) and leaves the outcomes in t, for the writer loop to
// set aside (writeAside).
func (e *Engine) writeTurn(t *turn, rs *runState, limit int, promote bool, now time.Time) ([]*JobRow, time.Time, bool, error) {
	// Drop outcomes of a run that crashed (tests) and inserts whose caller
	// gave up before anything was written.
	outs := t.outcomes[:0]
	for _, o := range t.outcomes {
		if o.run.crashed.Load() {
			o.run.pending.Done()
			continue
		}
		outs = append(outs, o)
	}
	t.outcomes = outs
	live := t.inserts[:0]
	var rows []insertRow
	for _, r := range t.inserts {
		if err := r.ctx.Err(); err != nil {
			r.done <- insertResult{err: err}
			continue
		}
		live = append(live, r)
		rows = append(rows, r.rows...)
	}
	t.inserts = live

	var (
		jobs []*JobRow
		due  time.Time
		res  []Inserted
		busy bool
	)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		lockWait time.Duration
		locked   time.Time
	)
	began := time.Now()
	write := func(ctx context.Context, tx *store.Tx) error {
		var err error
		notify := false
		locked = time.Time{}
		if len(rows) > 0 {
			if res, err = insertRows(ctx, tx, rows); err != nil {
				return err
			}
			notify = true
		}
		if len(t.outcomes) > 0 {
			freed, err := finishTx(ctx, tx, e.cfg.Registry, now, t.outcomes)
			if err != nil {
				return err
			}
			notify = notify || freed
		}
		if limit > 0 || promote {
			if jobs, due, busy, err = claimTx(ctx, tx, limit, e.cfg.InstanceID, now, e.cfg.LeaseDuration, promote, &lockWait, &locked); err != nil {
				return err
			}
		}
		if notify || e.peersDue.Swap(false) {
			return notifyTx(ctx, tx, e.cfg.InstanceID)
		}
		return nil
	}
	// On SQLite the turn rides in the group commit's shared transaction
	// (store.DB.InGroupTx), as one more caller in a savepoint of its own:
	// the one writer connection then commits the turn and the requests that
	// gathered meanwhile once, where a transaction each alternated on it and
	// each paid its own fsync. PostgreSQL runs transactions side by side.
	var err error
	if e.db.Dialect() == store.SQLite {
		err = e.db.InGroupTx(ctx, write)
	} else {
		err = e.db.InTx(ctx, func(tx *store.Tx) error { return write(ctx, tx) })
	}
	ended := time.Now()
	e.metrics.turnTime.Add(ended.Sub(began).Seconds())
	e.metrics.lockWait.Add(lockWait.Seconds())
	if !locked.IsZero() {
		e.metrics.lockHeld.Add(ended.Sub(locked).Seconds())
		e.metrics.lockTurns.Inc()
	}
	if busy && err == nil {
		e.metrics.lockBusy.Inc()
	}
	if err != nil {
		if len(t.inserts) > 0 {
			for _, r := range t.inserts {
				e.insertAlone(r)
			}
			t.inserts, t.rows = nil, 0
		}
		return nil, time.Time{}, false, err
	}
	if len(rows) > 0 {
		e.groups.Add(1)
		e.inserted(rows, res)
		off := 0
		for _, r := range t.inserts {
			r.done <- insertResult{res: res[off : off+len(r.rows)]}
			off += len(r.rows)
		}
	}
	if len(t.outcomes) > 0 {
		e.written(t.outcomes)
	}
	return jobs, due, busy, nil
}

// How long outcomes set aside wait before they are written again: from
// minAsideDelay, doubling up to maxAsideDelay while they still fail.
const (
	minAsideDelay = time.Second
	maxAsideDelay = 10 * time.Second
)

// writeAside writes outcomes that a turn could not, outside the turns:
// all in one transaction (the failure was the database's, now back), else
// each in its own, so that one that cannot be written fails alone. It
// returns those still not written, to try again later; their jobs stay
// running under this instance, which keeps extending their leases, so no
// other instance starts them again meanwhile. A job whose outcome is never
// written (a broken discard hook) thus holds its subject, and says why in
// the log, without stopping anything else.
func (e *Engine) writeAside(outs []outcome) []outcome {
	live := outs[:0:0]
	for _, o := range outs {
		if o.run.crashed.Load() {
			o.run.pending.Done()
			continue
		}
		live = append(live, o)
	}
	if len(live) == 0 {
		return nil
	}
	err := e.finishAlone(live, 30*time.Second)
	if err == nil {
		return nil
	}
	failed := live
	if len(live) > 1 {
		// Each alone, for at most 30 s in all: the rest wait for the next try.
		failed = nil
		end := time.Now().Add(30 * time.Second)
		for i, o := range live {
			left := time.Until(end)
			if left <= 0 {
				failed = append(failed, live[i:]...)
				break
			}
			if oneErr := e.finishAlone([]outcome{o}, min(left, 10*time.Second)); oneErr != nil {
				failed, err = append(failed, o), oneErr
			}
		}
	}
	if len(failed) > 0 {
		// One line a try, whatever the number of outcomes (a database
		// that is down fails them all).
		ids := make([]int64, 0, min(len(failed), 10))
		for _, o := range failed[:min(len(failed), 10)] {
			ids = append(ids, o.job.ID)
		}
		e.log.Error("outcomes of job attempts not written; tried again later", "count", len(failed), "job_ids", ids, "err", err)
	}
	return failed
}

// finishAlone writes outs in a transaction of their own, within timeout.
func (e *Engine) finishAlone(outs []outcome, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	now := e.now()
	err := e.db.InTx(ctx, func(tx *store.Tx) error {
		freed, err := finishTx(ctx, tx, e.cfg.Registry, now, outs)
		if err != nil || !freed {
			return err
		}
		return notifyTx(ctx, tx, e.cfg.InstanceID)
	})
	if err != nil {
		return err
	}
	e.written(outs)
	return nil
}

// written hints the writer at the retries just scheduled and counts the
// outcomes as written.
func (e *Engine) written(outs []outcome) {
	for _, o := range outs {
		if o.state == StateScheduled || o.state == StateRetryable {
			e.hintDue(micros(o.runAt))
		}
	}
	e.finished(outs)
}

// insertAlone writes one request in its own transaction.
func (e *Engine) insertAlone(r insertRequest) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var res []Inserted
	err := e.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if res, err = insertRows(ctx, tx, r.rows); err != nil {
			return err
		}
		return notifyTx(ctx, tx, e.cfg.InstanceID)
	})
	if err == nil {
		e.groups.Add(1)
		e.inserted(r.rows, res)
	}
	r.done <- insertResult{res: res, err: err}
}

func (e *Engine) failQueued() {
	for {
		select {
		case r := <-e.inserts:
			r.done <- insertResult{err: ErrStopped}
		default:
			return
		}
	}
}

// finished records written outcomes in metrics and logs.
func (e *Engine) finished(batch []outcome) {
	for _, o := range batch {
		name := string(o.state)
		switch {
		case o.snoozed:
			name = "snoozed"
		case o.released:
			name = "released"
		case o.state == StateRetryable:
			e.metrics.retries.WithLabelValues(o.job.Kind).Inc()
		}
		e.metrics.attempts.WithLabelValues(o.job.Kind, name).Inc()
		if o.err != "" && o.state != StateCompleted {
			e.log.Warn("job attempt did not complete", "job_id", o.job.ID, "kind", o.job.Kind, "attempt", o.job.Attempt,
				"state", o.state, "err", o.err)
		}
		o.run.pending.Done()
	}
}
