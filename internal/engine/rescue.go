package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/provhub/provhub/internal/store"
)

// The rescuer: every RescueInterval, jobs whose lease expired (their worker
// was lost without its process dying, or its instance could not be proven
// dead) go back to the queue, or fail when their attempts are used up.

func (e *Engine) rescuePass(ctx context.Context, _ *runState) {
	n, err := rescue(ctx, e.db, e.cfg.Registry, e.now())
	switch {
	case err != nil && ctx.Err() == nil:
		e.log.Error("rescue jobs", "err", err)
	case n > 0:
		e.metrics.rescued.Add(float64(n))
		e.log.Warn("rescued jobs whose worker was lost", "jobs", n)
		e.wake()
	}
}

// rescue returns jobs whose lease expired (their worker died) to the queue,
// or fails them when their attempts are used up. The lost attempt counts.
func rescue(ctx context.Context, db *store.DB, reg *Registry, now time.Time) (int64, error) {
	return rescueWhere(ctx, db, reg, now, "lease expired: the worker running this attempt was lost", `lease_expires_at < $1`)
}

// rescueWhere takes back the running jobs that cond (over $1 = now and
// args from $4 on) selects, recording why as the attempt's error: retried
// while attempts remain, else failed (cancelled when a cancel was asked).
func rescueWhere(ctx context.Context, db *store.DB, reg *Registry, now time.Time, why, cond string, args ...any) (int64, error) {
	msg := rescueMessage(why)
	at, _ := json.Marshal(now.UTC())
	var obj string
	if db.Dialect() == store.Postgres {
		obj = `jsonb_build_object('attempt', attempt, 'at', $2::jsonb, 'error', $3::jsonb)`
		obj = `errors || jsonb_build_array(` + obj + `)`
	} else {
		obj = `json_insert(errors, '$[#]', json_object('attempt', attempt, 'at', json($2), 'error', json($3)))`
	}
	var n int64
	err := db.InTx(ctx, func(tx *store.Tx) error {
		n = 0
		rs, err := tx.QueryContext(ctx, `UPDATE jobs SET
				state = CASE WHEN cancel_requested THEN 'cancelled' WHEN attempt >= max_attempts THEN 'failed' ELSE 'retryable' END,
				finalized_at = CASE WHEN cancel_requested OR attempt >= max_attempts THEN CAST($1 AS BIGINT) ELSE NULL END,
				run_at = CAST($1 AS BIGINT), errors = `+obj+`, lease_owner = NULL, lease_expires_at = NULL
			WHERE state = 'running' AND `+cond+` RETURNING `+jobColumns, append([]any{micros(now), string(at), msg}, args...)...)
		if err != nil {
			return err
		}
		var ended []*JobRow
		for rs.Next() {
			j, err := scanJob(rs)
			if err != nil {
				rs.Close()
				return err
			}
			n++
			if j.State == StateFailed || j.State == StateCancelled {
				ended = append(ended, j)
			}
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return err
		}
		for _, j := range ended {
			if err := reg.discarded(ctx, tx, j, j.State); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("rescue expired leases: %w", err)
	}
	return n, nil
}
