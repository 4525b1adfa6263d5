package engine

import (
	"context"
	"fmt"

	"github.com/provhub/provhub/internal/store"
)

// The releaser: a safety net under the release of a subject's next job,
// which the transaction finishing the subject's job makes. On PostgreSQL a
// job inserted held while its subject's running job finishes in another
// transaction misses that release; every ReleaseInterval the releaser lets
// in the first held job of each subject nothing holds.

func (e *Engine) releasePass(ctx context.Context, _ *runState) {
	if n, err := releaseStuck(ctx, e.db); err != nil && ctx.Err() == nil {
		e.log.Error("release held jobs", "err", err)
	} else if n > 0 {
		e.wake()
	}
}

// releaseStuck lets in the first held job of every subject that has no job
// running and no unheld job waiting before it: a safety net for a release
// that a lost transaction or a race between transactions did not make.
//
// An unheld job waiting after it does not stop the release. On PostgreSQL a
// job inserted while its subject's job runs is held; when that job ends and
// a later job of the subject is inserted before the held one commits,
// neither the release (which cannot see the uncommitted job) nor the later
// insert (which finds nothing busy) holds the later job back, and it waits
// behind the held one in the subject's order. Letting in the held job is
// then the only way the subject goes on: before, the releaser waited for
// the subject to have no unheld job at all, and the secure element's
// tasks stalled for good (seen with two instances).
//
// On PostgreSQL it skips a job whose row another transaction holds (a
// writer turn or a handler releasing or completing it): that transaction
// is deciding the job's fate, and the next pass sees what it did. Waiting
// instead made the releaser one side of deadlocks with the turns of other
// instances, which lock the held jobs of several subjects in their own
// order (PostgreSQL broke them, and the releaser's pass was lost).
func releaseStuck(ctx context.Context, db *store.DB) (int64, error) {
	q := releaseStuckSQL
	if db.Dialect() == store.Postgres {
		q = releaseStuckPG
	}
	res, err := db.Writer().ExecContext(ctx, q)
	if err != nil {
		return 0, fmt.Errorf("release stuck subjects: %w", err)
	}
	return res.RowsAffected()
}

// stuckHeld picks the first held job of every subject with no job running
// and no unheld job waiting before it. (The state list is repeated so that
// both databases use the subject queue's partial index for the probe.)
const stuckHeld = `SELECT j.id FROM jobs j WHERE j.id IN (
		SELECT min(h.id) FROM jobs h WHERE h.held AND h.state IN ('scheduled', 'available', 'retryable') GROUP BY h.subject)
	AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.subject = j.subject AND NOT o.held
		AND o.state IN ('available', 'running', 'retryable') AND (o.state = 'running' OR o.id < j.id))`

var (
	releaseStuckSQL = `UPDATE jobs SET held = FALSE WHERE id IN (` + stuckHeld + `)`
	releaseStuckPG  = `UPDATE jobs SET held = FALSE WHERE id IN (` + stuckHeld + ` FOR UPDATE OF j SKIP LOCKED)`
)
