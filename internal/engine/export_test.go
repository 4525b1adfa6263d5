package engine

import (
	"context"
	"database/sql"
	"strings"

	"github.com/provhub/provhub/internal/store"
)

// Crash stops the engine the way a killed process stops: no more claims,
// heartbeats or writes; running handlers are abandoned and their leases
// left to expire.
func (e *Engine) Crash() {
	e.mu.Lock()
	rs := e.run
	e.run = nil
	e.mu.Unlock()
	if rs == nil {
		return
	}
	rs.crashed.Store(true)
	rs.mu.Lock()
	rs.stopping = true
	rs.mu.Unlock()
	rs.stopLoops()
	rs.stopJobs(errShutdown)
	rs.loops.Wait()   // its loops stop using the lock's connection first
	rs.live.release() // a dead process holds no lock
}

// Stall stops the engine as a hung process would: like Crash, but it keeps
// its instance lock, so it still looks alive and only the expiry of its
// leases frees its jobs. The returned function releases the lock (call it
// before the database is closed).
func (e *Engine) Stall() func() {
	e.mu.Lock()
	rs := e.run
	e.run = nil
	e.mu.Unlock()
	if rs == nil {
		return func() {}
	}
	rs.crashed.Store(true)
	rs.mu.Lock()
	rs.stopping = true
	rs.mu.Unlock()
	rs.stopLoops()
	rs.stopJobs(errShutdown)
	rs.loops.Wait()
	return rs.live.release
}

// InsertGroups counts the group commits written so far.
func (e *Engine) InsertGroups() int64 { return e.groups.Load() }

// ClaimLockNamespace is the first key of the advisory lock PostgreSQL
// claims take; the second is hashtext(current_schema()).
const ClaimLockNamespace = claimLockNamespace

// NotifyChannelSQL names the channel of the current schema's instances.
const NotifyChannelSQL = notifyChannelSQL

// TakeClaimLock waits for and takes, in tx, the claim lock an engine on
// tx's schema takes (the engine's own statement, waiting rather than
// trying).
func TakeClaimLock(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, strings.Replace(claimLockSQL, "pg_try_advisory_xact_lock", "pg_advisory_xact_lock", 1), int32(claimLockNamespace))
	return err
}

// Signals are the engine's test signals, switched on by EnableSignals.
type Signals struct {
	// Promoted fires after each writer turn that looked for due jobs.
	Promoted <-chan struct{}
	// Beat, Released, Rescued, LivenessChecked and Cleaned fire after each
	// pass of the maintenance service of that name.
	Beat, Released, Rescued, LivenessChecked, Cleaned <-chan struct{}
}

// EnableSignals switches the test signals on; call it before Start.
func (e *Engine) EnableSignals() Signals {
	e.signals = testSignals{
		promoted: make(signal, 64), beat: make(signal, 64), released: make(signal, 64), rescued: make(signal, 64),
		livenessChecked: make(signal, 64), cleaned: make(signal, 64),
	}
	return Signals{Promoted: e.signals.promoted, Beat: e.signals.beat, Released: e.signals.released, Rescued: e.signals.rescued,
		LivenessChecked: e.signals.livenessChecked, Cleaned: e.signals.cleaned}
}

// InstanceLockPID is the PostgreSQL backend that holds e's instance lock
// (0 when none does).
func InstanceLockPID(ctx context.Context, db *sql.DB, e *Engine) (int, error) {
	var pid int
	err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(pid), 0) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2
		AND classid = $1::bigint::oid AND objid = ($2::bigint & 4294967295)::oid`, int64(livenessNamespace), int64(instanceKey(e.cfg.InstanceID))).Scan(&pid)
	return pid, err
}

// ReleaseStuck makes one pass of the releaser (the safety net that lets in
// the first held job of a subject nothing holds) and counts the jobs it let
// in.
func ReleaseStuck(ctx context.Context, db *store.DB) (int64, error) { return releaseStuck(ctx, db) }

// ClaimAndStart claims the given available jobs for e, as the writer's
// claim would (state running, attempt counted, leased to e), and starts
// them as the writer starts a claim's jobs: in free slots, or waiting for
// one. e must be running.
func (e *Engine) ClaimAndStart(ctx context.Context, ids ...int64) error {
	rs := e.running()
	now := e.now()
	var jobs []*JobRow
	for _, id := range ids {
		if _, err := e.db.Writer().ExecContext(ctx, `UPDATE jobs SET state = 'running', attempt = attempt + 1, attempted_at = $2,
			lease_owner = $3, lease_expires_at = $4 WHERE id = $1 AND state = 'available'`,
			id, micros(now), e.cfg.InstanceID, micros(now.Add(e.cfg.LeaseDuration))); err != nil {
			return err
		}
		j, err := getJob(ctx, e.db.Writer(), id)
		if err != nil {
			return err
		}
		jobs = append(jobs, j)
	}
	rs.claimMu.Lock()
	defer rs.claimMu.Unlock()
	e.startClaimed(rs, jobs)
	return nil
}

// WaitingForSlot counts the claimed jobs waiting for a free slot.
func (e *Engine) WaitingForSlot() int {
	rs := e.running()
	if rs == nil {
		return 0
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return len(rs.waiting)
}
