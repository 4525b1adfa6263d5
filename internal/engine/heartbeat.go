package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/provhub/provhub/internal/store"
)

// The heartbeat: every HeartbeatInterval, the leases of the jobs this
// instance runs are extended, and the handlers of jobs whose cancellation
// another instance asked for are cancelled.

func (e *Engine) heartbeatPass(ctx context.Context, _ *runState) {
	ids, err := heartbeat(ctx, e.db, e.cfg.InstanceID, e.now().Add(e.cfg.LeaseDuration))
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("extend leases", "err", err)
		}
		return
	}
	for _, id := range ids {
		e.cancelLocal(id)
	}
}

// heartbeat extends the leases of owner's running jobs and returns the ids
// of those whose cancellation was requested.
func heartbeat(ctx context.Context, db *store.DB, owner string, expires time.Time) ([]int64, error) {
	q := `UPDATE jobs SET lease_expires_at = $1 WHERE state = 'running' AND lease_owner = $2 RETURNING id, cancel_requested`
	if db.Dialect() == store.Postgres {
		// Rows another transaction holds (a handler completing its job,
		// several in one group commit) are skipped rather than waited
		// for: waiting on rows locked in another order could deadlock;
		// the next beat extends a skipped lease whose job still runs.
		q = `UPDATE jobs SET lease_expires_at = $1 WHERE id IN (SELECT id FROM jobs
			WHERE state = 'running' AND lease_owner = $2 FOR UPDATE SKIP LOCKED) RETURNING id, cancel_requested`
	}
	rs, err := db.Writer().QueryContext(ctx, q, micros(expires), owner)
	if err != nil {
		return nil, fmt.Errorf("heartbeat: %w", err)
	}
	defer rs.Close()
	var cancel []int64
	for rs.Next() {
		var (
			id  int64
			req bool
		)
		if err := rs.Scan(&id, &req); err != nil {
			return nil, fmt.Errorf("heartbeat: %w", err)
		}
		if req {
			cancel = append(cancel, id)
		}
	}
	return cancel, rs.Err()
}
