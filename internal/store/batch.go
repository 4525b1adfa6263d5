package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Batcher writes values that concurrent callers hand it a batch at a time,
// through a write function that takes the whole batch: a batch of n values
// costs the statements of one (multi-row statements), where n callers of
// InGroupTx each send their own (on PostgreSQL a round trip each). Each
// batch is one caller of the store's group commit. On SQLite, where that
// commit is already shared and statements cost no round trip, values are
// batched only beyond maxGroup callers at once (see sqliteBatchWriters).
//
// Batches are written by the callers themselves, with no goroutine of the
// Batcher's own: a caller that finds fewer than the dialect's number of
// batches under way writes the next batch, every value queued so far, and
// then hands the queue to the first value still waiting. Under light load a
// value is thus written by its own caller, with no hand-over between
// goroutines on its way (each costs a wake-up, which a loaded machine
// delays), and under heavy load the values queue and leave in batches.
//
// A value is answered once its batch has committed. When a batch fails as
// a whole, each of its values is written again alone, so one bad value
// fails only its own caller; a commit that failed is not written again,
// since it may have taken effect. write must return one result per value,
// in order; it runs under a context without cancellation (one caller's
// ended context must not abort the others' writes) and may run again for
// some of the values, alone, as InGroupTx functions may.
type Batcher[In, Out any] struct {
	db      *DB
	write   func(ctx context.Context, tx *Tx, in []In) ([]Out, error)
	writers int // the most batches written at once

	mu      sync.Mutex
	idle    sync.Cond // signalled when writing drops to zero
	queue   []*batchCall[In, Out]
	writing int // batches being written, and leads handed on
	taken   int // values taken into batches, for tests
	closed  bool
}

type batchCall[In, Out any] struct {
	ctx  context.Context //nolint:containedctx // the caller's, checked before its value is written
	in   In
	done chan batchResult[Out]
	lead bool // told to write the next batch
}

// batchResult answers a value, or (lead) tells its caller to write the
// next batch.
type batchResult[Out any] struct {
	out  Out
	err  error
	lead bool
}

// Batches written at once. On PostgreSQL as many as the group commit's
// shared transactions, so that values queue while those are busy and leave
// in batches. On SQLite the group commit already shares one commit among
// its callers, and their statements cost no round trip: every caller
// writes its own value (up to maxGroup at once), since a value queued
// behind the batches under way would wait for one more commit of the
// single writer (at 1,000 CRM calls a second, p50 9.1-12.4 ms with two
// batches at once against 7.6-9.3 ms, for the same throughput).
const (
	sqliteBatchWriters = maxGroup
	pgBatchWriters     = pgGroupLoops
)

// BatcherOption changes a Batcher's settings.
type BatcherOption func(pgWriters *int)

// BatchesAtOnce sets how many batches are written at once on PostgreSQL
// (between 1 and the group commit's shared transactions). Fewer make
// larger batches, and fewer commits for the same values: a write whose
// statements cost little against its commit gains by it (the engine's
// inserts). SQLite is unaffected.
func BatchesAtOnce(n int) BatcherOption {
	return func(w *int) { *w = min(max(n, 1), pgGroupLoops) }
}

var errBatcherClosed = errors.New("batch write: closed")

// NewBatcher returns a Batcher writing through write. It is closed when the
// database closes.
func NewBatcher[In, Out any](db *DB, write func(ctx context.Context, tx *Tx, in []In) ([]Out, error), opts ...BatcherOption) *Batcher[In, Out] {
	b := &Batcher[In, Out]{db: db, write: write, writers: sqliteBatchWriters}
	if db.dialect == Postgres {
		b.writers = pgBatchWriters
		for _, o := range opts {
			o(&b.writers)
		}
	}
	b.idle.L = &b.mu
	db.onClose(b.Close)
	return b
}

// Write hands v to the next batch and returns its result once the batch
// has committed (or v's own error). Once v is queued its outcome is awaited
// even if ctx ends: the caller must learn whether v was stored.
func (b *Batcher[In, Out]) Write(ctx context.Context, v In) (Out, error) {
	if err := ctx.Err(); err != nil {
		var zero Out
		return zero, err
	}
	// Room for a lead and a result: a batch under way may answer a value
	// whose caller has not yet read the lead it was handed.
	c := &batchCall[In, Out]{ctx: ctx, in: v, done: make(chan batchResult[Out], 2)}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		var zero Out
		return zero, errBatcherClosed
	}
	b.queue = append(b.queue, c)
	lead := b.writing < b.writers
	if lead {
		b.writing++
	}
	b.mu.Unlock()
	for {
		if lead {
			b.writeNext()
		}
		r := <-c.done
		if !r.lead {
			return r.out, r.err
		}
		lead = true
	}
}

// Close waits for the batches under way; later values are refused.
func (b *Batcher[In, Out]) Close() {
	b.mu.Lock()
	b.closed = true
	for b.writing > 0 {
		b.idle.Wait()
	}
	b.mu.Unlock()
}

// writeNext writes the queued values (up to maxGroup) as one batch, then
// hands the lead to the first value still queued, or stops.
func (b *Batcher[In, Out]) writeNext() {
	b.mu.Lock()
	n := min(len(b.queue), maxGroup)
	batch := b.queue[:n:n]
	b.queue = append([]*batchCall[In, Out](nil), b.queue[n:]...)
	b.taken += n
	b.mu.Unlock()

	if len(batch) > 0 {
		b.writeBatch(batch)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) > 0 && !b.queue[0].lead {
		b.queue[0].lead = true
		b.queue[0].done <- batchResult[Out]{lead: true}
		return
	}
	b.writing--
	if b.writing == 0 {
		b.idle.Broadcast()
	}
}

// writeBatch writes the live calls of batch together and, if that fails
// before its commit, each alone.
func (b *Batcher[In, Out]) writeBatch(batch []*batchCall[In, Out]) {
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
		for _, c := range live {
			c.done <- batchResult[Out]{err: err}
		}
		return
	}
	for _, c := range live {
		outs, _, err := b.writeTogether([]*batchCall[In, Out]{c})
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
func (b *Batcher[In, Out]) writeTogether(calls []*batchCall[In, Out]) (outs []Out, retry bool, err error) {
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
