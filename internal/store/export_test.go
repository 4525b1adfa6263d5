package store

import "context"

// RunGroup runs fns as one batch of InGroupTx callers, as the group loop
// would once it had gathered them, and returns each one's outcome.
func (db *DB) RunGroup(fns ...func(context.Context, *Tx) error) []error {
	batch := make([]groupRequest, len(fns))
	for i, fn := range fns {
		batch[i] = groupRequest{ctx: context.Background(), fn: fn, done: make(chan error, 1)}
	}
	db.runGroup(batch)
	errs := make([]error, len(fns))
	for i, r := range batch {
		errs[i] = <-r.done
	}
	return errs
}

// MigrationLockNamespace is the first key of a schema's migration lock.
const MigrationLockNamespace = migrationLockNamespace

// Handed counts the values handed to b: queued, or taken by a loop.
func (b *Batcher[In, Out]) Handed() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue) + b.taken
}
