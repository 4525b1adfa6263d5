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

// releaseStuck lets in the first held job of every subject that has no
// unheld job waiting or running: a safety net for a release that a lost
// transaction or a race between instances did not make.
func releaseStuck(ctx context.Context, db *store.DB) (int64, error) {
	res, err := db.Writer().ExecContext(ctx, `UPDATE jobs SET held = FALSE WHERE id IN (
			SELECT min(h.id) FROM jobs h WHERE h.held AND h.state IN ('scheduled', 'available', 'retryable') GROUP BY h.subject)
		AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.subject = jobs.subject AND NOT o.held
			AND o.state IN ('available', 'running', 'retryable'))`)
	if err != nil {
		return 0, fmt.Errorf("release stuck subjects: %w", err)
	}
	return res.RowsAffected()
}
