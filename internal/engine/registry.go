package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/provhub/provhub/internal/store"
)

// Handler does the work of one job kind. Returning nil completes the job;
// an error retries it with backoff until its attempts are used up; Terminal
// fails it at once; Snooze runs it again later. Handlers must be idempotent:
// a job whose worker died after doing its work runs again.
type Handler[T JobArgs] func(ctx context.Context, job *Job[T]) error

// KindOptions tune a job kind. Zero values take the engine's defaults.
type KindOptions struct {
	// MaxAttempts is how many times a job may run before it fails.
	MaxAttempts int
	// Timeout bounds one attempt; the handler's context ends then.
	Timeout time.Duration
	// Backoff gives the wait before retry number attempt (1 after the first
	// failure). Nil uses the engine's backoff.
	Backoff func(attempt int) time.Duration
	// OnDiscard, when set, runs in the transaction that makes a job of the
	// kind failed or cancelled, whoever does it (the job's own last
	// attempt, Cancel, the rescuer), so that the domain record the job
	// serves ends in the same commit. An error rolls the change back (it
	// is then tried again: by the writer, alone and with a backoff, without
	// holding up other jobs; by the rescuer's next round; or by the caller
	// of Cancel).
	OnDiscard func(ctx context.Context, tx *store.Tx, job *JobRow, state State) error
}

type kind struct {
	name string
	opts KindOptions
	run  func(ctx context.Context, row *JobRow) error
}

// discarded runs the OnDiscard hook of j's kind, if it has one, for a job
// that has just become failed or cancelled in tx.
func (r *Registry) discarded(ctx context.Context, tx *store.Tx, j *JobRow, state State) error {
	k := r.kinds[j.Kind]
	if k == nil || k.opts.OnDiscard == nil || (state != StateFailed && state != StateCancelled) {
		return nil
	}
	j.State = state
	if err := k.opts.OnDiscard(ctx, tx, j, state); err != nil {
		return fmt.Errorf("job %d (%s) %s: %w", j.ID, j.Kind, state, err)
	}
	return nil
}

// Registry maps job kinds to their handlers. Fill it before the engine
// that runs it starts: the services of an application are made with the
// engine and its registry, and register their kinds as they are made.
type Registry struct {
	kinds map[string]*kind
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{kinds: map[string]*kind{}} }

// Register adds the handler of the kind named by T's Kind method. It panics
// if the kind is registered twice: that is a programming error found at start.
func Register[T JobArgs](r *Registry, h Handler[T], opts KindOptions) {
	var zero T
	name := zero.Kind()
	if name == "" {
		panic("engine: job kind with an empty name")
	}
	if _, dup := r.kinds[name]; dup {
		panic(fmt.Sprintf("engine: job kind %q registered twice", name))
	}
	r.kinds[name] = &kind{
		name: name,
		opts: opts,
		run: func(ctx context.Context, row *JobRow) error {
			var args T
			if err := json.Unmarshal(row.Args, &args); err != nil {
				return Terminal(fmt.Errorf("decode %s args: %w", name, err))
			}
			return h(ctx, &Job[T]{JobRow: row, Args: args})
		},
	}
}

// Kinds lists the registered kind names.
func (r *Registry) Kinds() []string {
	names := make([]string, 0, len(r.kinds))
	for n := range r.kinds {
		names = append(names, n)
	}
	return names
}
