package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// maxGroup bounds the functions committed together by InGroupTx.
const maxGroup = 256

// pgGroupLoops is how many shared transactions run at once on PostgreSQL
// (SQLite has one writer, so one): each holds a connection of the pool.
const pgGroupLoops = 4

// The savepoint of each function of a shared SQLite transaction. One name
// serves them all (each is released before the next begins), so the three
// statements are compiled once, as the database opens (openSQLite), rather
// than for every call (7% of the group commit's time in the wallet
// benchmark's CPU profile went to compiling them).
const (
	savepointSQL           = "SAVEPOINT grouped"
	rollbackToSavepointSQL = "ROLLBACK TO SAVEPOINT grouped"
	releaseSavepointSQL    = "RELEASE SAVEPOINT grouped"
)

// groupRequest is one InGroupTx call waiting for its turn.
type groupRequest struct {
	ctx  context.Context
	fn   func(context.Context, *Tx) error
	done chan error
}

// grouper runs InGroupTx functions in shared transactions, one batch at a
// time; while a batch commits, the next one gathers.
type grouper struct {
	start sync.Once
	reqs  chan groupRequest
	stop  chan struct{}
	wg    sync.WaitGroup
}

// InGroupTx runs fn in a write transaction shared with other concurrent
// callers, each in a savepoint of its own: fn's writes commit when fn
// returns nil and are undone when it returns an error, without touching
// the others'. Sharing one durable commit between many small transactions
// is what keeps SQLite's single writer, and PostgreSQL's commit latency,
// from capping request rates (group commit).
//
// fn must only act through its transaction (it may run a second time, alone,
// if the shared transaction fails) and must not keep the transaction. Its
// statements run under a context that keeps ctx's values but not its
// cancellation (fn receives it), because interrupting a statement can abort
// the whole shared transaction; a ctx already done when fn's turn comes
// skips fn. fn must not commit or roll back its transaction.
//
// On SQLite one loop commits the batches, each function in a savepoint. On
// PostgreSQL pgGroupLoops loops do, without savepoints (each would cost two
// round trips): when any function of a batch fails, the batch is rolled
// back and every function runs again alone, so each still gets its own
// outcome.
func (db *DB) InGroupTx(ctx context.Context, fn func(ctx context.Context, tx *Tx) error) error {
	g := &db.group
	g.start.Do(func() {
		g.reqs = make(chan groupRequest, maxGroup)
		g.stop = make(chan struct{})
		loops := 1
		if db.dialect == Postgres {
			loops = pgGroupLoops
		}
		for range loops {
			g.wg.Add(1)
			go db.groupLoop()
		}
	})
	if g.stop == nil {
		return errors.New("group transaction: database is closed")
	}
	req := groupRequest{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case g.reqs <- req:
	case <-g.stop:
		return errors.New("group transaction: database is closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued, the outcome is awaited even if ctx ends: the caller must
	// learn whether its writes committed.
	return <-req.done
}

func (db *DB) stopGroup() {
	g := &db.group
	g.start.Do(func() {}) // never start after Close
	if g.stop != nil {
		close(g.stop)
		g.wg.Wait()
	}
}

func (db *DB) groupLoop() {
	g := &db.group
	defer g.wg.Done()
	for {
		var batch []groupRequest
		select {
		case r := <-g.reqs:
			batch = append(batch, r)
		case <-g.stop:
			for {
				select {
				case r := <-g.reqs:
					r.done <- errors.New("group transaction: database is closed")
				default:
					return
				}
			}
		}
	gather:
		for len(batch) < maxGroup {
			select {
			case r := <-g.reqs:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		db.runGroup(batch)
	}
}

// runGroup commits a batch; if the shared transaction fails as a whole,
// each function whose own outcome was not an error runs again alone.
func (db *DB) runGroup(batch []groupRequest) {
	results := make([]error, len(batch))
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	if len(live) == 1 {
		r := live[0]
		r.done <- db.alone(r)
		return
	}
	results = results[:len(live)]
	var err error
	if db.dialect == Postgres {
		retry := false
		if retry, err = db.sharedTxWhole(live); err != nil && !retry {
			// The commit itself failed: it may have happened (an answer
			// lost on the way back), so nothing runs again.
			for _, r := range live {
				r.done <- err
			}
			return
		}
	} else {
		err = db.sharedTx(live, results)
	}
	for i, r := range live {
		switch {
		case err == nil || results[i] != nil:
			r.done <- results[i]
		default:
			r.done <- db.alone(r)
		}
	}
}

// alone runs one function in a transaction of its own.
func (db *DB) alone(r groupRequest) error {
	ctx := context.WithoutCancel(r.ctx)
	return db.InTx(ctx, func(tx *Tx) error {
		sub := &Tx{Tx: tx.Tx, db: db, nested: true}
		if err := r.fn(ctx, sub); err != nil {
			return err
		}
		tx.after = append(tx.after, sub.after...)
		return nil
	})
}

// sharedTxWhole runs every function in one transaction, without
// savepoints, and commits. When the transaction could not begin or a
// function failed (the transaction is then rolled back), it reports retry:
// nothing was written, and each function runs again alone to get its own
// outcome. A failed commit is not retried: it may have taken effect.
func (db *DB) sharedTxWhole(batch []groupRequest) (retry bool, err error) {
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		return true, err
	}
	defer tx.Rollback()
	for _, r := range batch {
		sub := &Tx{Tx: tx.Tx, db: db, nested: true}
		if err := r.fn(context.WithoutCancel(r.ctx), sub); err != nil {
			return true, fmt.Errorf("a function of the batch failed: %w", err)
		}
		tx.after = append(tx.after, sub.after...)
	}
	return false, tx.Commit()
}

// sharedTx runs every function in its own savepoint of one transaction and
// commits; results[i] is function i's own error.
func (db *DB) sharedTx(batch []groupRequest, results []error) error {
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for i, r := range batch {
		if _, err := tx.ExecCached(ctx, savepointSQL); err != nil {
			return fmt.Errorf("savepoint: %w", err)
		}
		sub := &Tx{Tx: tx.Tx, db: db, nested: true}
		if fnErr := r.fn(context.WithoutCancel(r.ctx), sub); fnErr != nil {
			results[i] = fnErr
			if _, err := tx.ExecCached(ctx, rollbackToSavepointSQL); err != nil {
				return fmt.Errorf("roll back to savepoint: %w", err)
			}
		} else {
			tx.after = append(tx.after, sub.after...)
		}
		if _, err := tx.ExecCached(ctx, releaseSavepointSQL); err != nil {
			return fmt.Errorf("release savepoint: %w", err)
		}
	}
	return tx.Commit()
}
