package engine

import (
	"context"
	"time"

	"github.com/provhub/provhub/internal/store"
)

// Group commit: inserts made outside a caller's transaction queue here and
// one goroutine writes whatever has queued in a single transaction. While
// that transaction commits (an fsync), the next group gathers, so a busy
// API pays one commit per group instead of one per request.

type insertRequest struct {
	ctx  context.Context
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
	case <-e.stopInserts:
		return nil, ErrStopped
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// Once queued, the insert may commit even if ctx ends: wait for the
	// answer so the caller is never told "failed" about a stored job.
	r := <-req.done
	return r.res, r.err
}

func (e *Engine) commitLoop() {
	defer e.committerWG.Done()
	var timer *time.Timer
	for {
		var first insertRequest
		select {
		case first = <-e.inserts:
		case <-e.stopInserts:
			e.failQueued()
			return
		}
		group := []insertRequest{first}
		n := len(first.rows)
		if e.cfg.GroupCommitMaxWait > 0 {
			if timer == nil {
				timer = time.NewTimer(e.cfg.GroupCommitMaxWait)
			} else {
				timer.Reset(e.cfg.GroupCommitMaxWait)
			}
		gather:
			for n < e.cfg.GroupCommitMaxBatch {
				select {
				case r := <-e.inserts:
					group, n = append(group, r), n+len(r.rows)
				case <-timer.C:
					break gather
				}
			}
			timer.Stop()
		} else {
		drain:
			for n < e.cfg.GroupCommitMaxBatch {
				select {
				case r := <-e.inserts:
					group, n = append(group, r), n+len(r.rows)
				default:
					break drain
				}
			}
		}
		e.commitGroup(group)
	}
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

func (e *Engine) commitGroup(group []insertRequest) {
	// Requests whose caller gave up before the write began are dropped, so
	// nothing is stored that its caller was told had failed.
	live := group[:0]
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.done <- insertResult{err: err}
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	var all []insertRow
	for _, r := range live {
		all = append(all, r.rows...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var res []Inserted
	err := e.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		res, err = insertRows(ctx, tx, all)
		return err
	})
	if err == nil {
		e.groups.Add(1)
		e.inserted(all, res)
		off := 0
		for _, r := range live {
			r.done <- insertResult{res: res[off : off+len(r.rows)]}
			off += len(r.rows)
		}
		return
	}
	if len(live) == 1 {
		live[0].done <- insertResult{err: err}
		return
	}
	// One bad request must not fail its neighbours: write each alone.
	e.log.Warn("group insert failed; retrying requests one by one", "requests", len(live), "err", err)
	for _, r := range live {
		e.commitGroup([]insertRequest{r})
	}
}
