package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/provhub/provhub/internal/store"
)

// The cleaner: every CleanupInterval, finished jobs older than their
// retention (CompletedRetention, FinishedRetention) are deleted, a thousand
// at a time so that no statement holds the table long.

func (e *Engine) cleanupPass(ctx context.Context, _ *runState) {
	now := e.now()
	for {
		n, err := cleanup(ctx, e.db, now.Add(-e.cfg.CompletedRetention), now.Add(-e.cfg.FinishedRetention), 1000)
		if err != nil {
			if ctx.Err() == nil {
				e.log.Error("clean up jobs", "err", err)
			}
			return
		}
		if n < 1000 {
			return
		}
	}
}

// cleanup deletes finished jobs older than their retention, at most limit.
func cleanup(ctx context.Context, db *store.DB, completedBefore, otherBefore time.Time, limit int) (int64, error) {
	res, err := db.Writer().ExecContext(ctx, `DELETE FROM jobs WHERE id IN (
		SELECT id FROM jobs WHERE finalized_at IS NOT NULL AND (
			(state = 'completed' AND finalized_at < $1) OR (state IN ('failed', 'cancelled') AND finalized_at < $2))
		LIMIT $3)`, micros(completedBefore), micros(otherBefore), limit)
	if err != nil {
		return 0, fmt.Errorf("delete finished jobs: %w", err)
	}
	return res.RowsAffected()
}
