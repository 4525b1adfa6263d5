package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Batcher writes values that concurrent callers hand it a batch at a time,
// through a write function that takes the whole batch: a batch of n values
// costs the statements of one (multi-row statements), where n callers of
// InGroupTx each send their own (on PostgreSQL a round trip each). Each
// batch is one caller of the store's group commit, so on SQLite it shares
// the single writer's commit with everything else gathered meanwhile, and
// on PostgreSQL it commits in a shared transaction of its own.
//
// A value is answered once its batch has committed. When a batch fails as
// a whole, each of its values is written again alone, so one bad value
// fails only its own caller. write must return one result per value, in
// order; it runs under a context without cancellation (one caller's ended
// context must not abort the others' writes) and may run again for some of
// the values, alone, as InGroupTx functions may.
type Batcher[In, Out any] struct {
	db    *DB
	write func(ctx context.Context, tx *Tx, in []In) ([]Out, error)
	start sync.Once
	calls chan batchCall[In, Out]
	wg    sync.WaitGroup
	taken atomic.Int64 // values the loops have taken, for tests

	// closeMu orders Close after every send under way, so that the loops,
	// told to stop, answer every value queued.
	closeMu sync.RWMutex
	closed  bool
	stop    chan struct{}
}

type batchCall[In, Out any] struct {
	ctx  context.Context //nolint:containedctx // the caller's, checked before its value is written
	in   In
	done chan batchResult[Out]
}

type batchResult[Out any] struct {
	out Out
	err error
}

// Loops writing batches at once: on SQLite two, so that one batch gathers
// while the other waits for the single writer's commit; on PostgreSQL as
// many as the group commit's shared transactions.
const (
	sqliteBatchLoops = 2
	pgBatchLoops     = pgGroupLoops
)

// NewBatcher returns a Batcher writing through write. Its loops start with
// the first value and stop when Close is called or the database closes.
func NewBatcher[In, Out any](db *DB, write func(ctx context.Context, tx *Tx, in []In) ([]Out, error)) *Batcher[In, Out] {
	b := &Batcher[In, Out]{db: db, write: write, calls: make(chan batchCall[In, Out], maxGroup), stop: make(chan struct{})}
	db.onClose(b.Close)
	return b
}

// Write hands v to the next batch and returns its result once the batch
// has committed (or v's own error). Once v is queued its outcome is awaited
// even if ctx ends: the caller must learn whether v was stored.
func (b *Batcher[In, Out]) Write(ctx context.Context, v In) (Out, error) {
	var zero Out
	c := batchCall[In, Out]{ctx: ctx, in: v, done: make(chan batchResult[Out], 1)}
	b.closeMu.RLock()
	if b.closed {
		b.closeMu.RUnlock()
		return zero, errors.New("batch write: closed")
	}
	b.start.Do(b.startLoops)
	select {
	case b.calls <- c:
	case <-ctx.Done():
		b.closeMu.RUnlock()
		return zero, ctx.Err()
	}
	b.closeMu.RUnlock()
	r := <-c.done
	return r.out, r.err
}

// Close stops the loops once the batches under way are written; values
// queued and not yet taken are answered with an error.
func (b *Batcher[In, Out]) Close() {
	b.closeMu.Lock()
	if !b.closed {
		b.closed = true
		close(b.stop)
	}
	b.closeMu.Unlock()
	b.wg.Wait()
}

func (b *Batcher[In, Out]) startLoops() {
	loops := sqliteBatchLoops
	if b.db.dialect == Postgres {
		loops = pgBatchLoops
	}
	for range loops {
		b.wg.Add(1)
		go b.loop()
	}
}

func (b *Batcher[In, Out]) loop() {
	defer b.wg.Done()
	for {
		var batch []batchCall[In, Out]
		select {
		case c := <-b.calls:
			batch = append(batch, c)
		case <-b.stop:
			for {
				select {
				case c := <-b.calls:
					c.done <- batchResult[Out]{err: errors.New("batch write: closed")}
				default:
					return
				}
			}
		}
	gather:
		for len(batch) < maxGroup {
			select {
			case c := <-b.calls:
				batch = append(batch, c)
			default:
				break gather
			}
		}
		b.taken.Add(int64(len(batch)))
		b.writeBatch(batch)
	}
}

// writeBatch writes the live calls of batch together and, if that fails,
// each alone.
func (b *Batcher[In, Out]) writeBatch(batch []batchCall[In, Out]) {
	live := batch[:0:0]
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.done <- batchResult[Out]{err: err}
			continue
		}
		live = append(live, c)
	}
	if len(live) == 0 {
		return
	}
	outs, retry, err := b.writeTogether(live)
	if err == nil {
		for i, c := range live {
			c.done <- batchResult[Out]{out: outs[i]}
		}
		return
	}
	if !retry || len(live) == 1 {
		// A failed commit may have taken effect: nothing is written again.
		for _, c := range live {
			c.done <- batchResult[Out]{err: err}
		}
		return
	}
	for _, c := range live {
		outs, _, err := b.writeTogether([]batchCall[In, Out]{c})
		var out Out
		if err == nil {
			out = outs[0]
		}
		c.done <- batchResult[Out]{out: out, err: err}
	}
}

// writeTogether writes calls in one function of the group commit. retry
// reports that nothing of them was written: the write function failed (its
// transaction was rolled back) or never ran.
func (b *Batcher[In, Out]) writeTogether(calls []batchCall[In, Out]) (outs []Out, retry bool, err error) {
	in := make([]In, len(calls))
	for i, c := range calls {
		in[i] = c.in
	}
	// The function may run twice (alone, after a shared transaction
	// failed); what counts is its last run.
	wrote := false
	err = b.db.InGroupTx(context.Background(), func(ctx context.Context, tx *Tx) error {
		wrote = false
		var err error
		if outs, err = b.write(ctx, tx, in); err != nil {
			return err
		}
		if len(outs) != len(in) {
			return fmt.Errorf("batch write: %d results for %d values", len(outs), len(in))
		}
		wrote = true
		return nil
	})
	return outs, !wrote, err
}
