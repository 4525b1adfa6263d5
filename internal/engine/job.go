package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// State is where a job is in its life cycle (see docs/engine.md).
type State string

const (
	// StateScheduled: inserted to run at a later time; never run yet.
	StateScheduled State = "scheduled"
	// StateAvailable: due and waiting for a worker.
	StateAvailable State = "available"
	// StateRunning: claimed by a worker under a lease.
	StateRunning State = "running"
	// StateRetryable: ran at least once and waits for its next run (after an
	// error or a snooze); it keeps its place in its subject's queue.
	StateRetryable State = "retryable"
	// StateCompleted: the handler succeeded. Terminal.
	StateCompleted State = "completed"
	// StateFailed: out of attempts or failed with a terminal error. Terminal.
	StateFailed State = "failed"
	// StateCancelled: cancelled before or while running. Terminal.
	StateCancelled State = "cancelled"
)

// States lists every state in life-cycle order.
var States = []State{StateScheduled, StateAvailable, StateRunning, StateRetryable, StateCompleted, StateFailed, StateCancelled}

// Terminal reports whether a job in this state will never run again.
func (s State) Terminal() bool {
	return s == StateCompleted || s == StateFailed || s == StateCancelled
}

// JobArgs are a job kind's arguments. They are stored as JSON.
type JobArgs interface {
	// Kind names the job kind; it is stored with the job and selects its
	// handler, so it must never change once jobs of it exist.
	Kind() string
}

// AttemptError records why one attempt did not complete.
type AttemptError struct {
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	Error   string    `json:"error"`
}

// FailingSince is when the first failed attempt of the job's current run
// of failures was recorded (zero when none failed): what a retry budget in
// time counts from.
func (j *JobRow) FailingSince() time.Time {
	if len(j.Errors) == 0 {
		return time.Time{}
	}
	return j.Errors[0].At
}

// JobRow is a stored job.
type JobRow struct {
	ID              int64
	Kind            string
	Args            json.RawMessage
	State           State
	Priority        int
	Subject         string
	UniqueKey       string
	Attempt         int
	MaxAttempts     int
	Errors          []AttemptError
	CreatedAt       time.Time
	RunAt           time.Time
	AttemptedAt     time.Time
	FinalizedAt     time.Time
	LeaseOwner      string
	CancelRequested bool
	Snoozes         int
	// completedInTx is set once the transaction in which CompleteTx
	// completed the job (and released its subject) has committed: the
	// outcome written after the handler returns then writes nothing for the
	// job. A transaction that rolled back leaves it unset, and the outcome
	// completes the job and releases its subject as for any other job.
	completedInTx bool
}

// Job is a JobRow with its decoded arguments, as handed to a handler.
type Job[T JobArgs] struct {
	*JobRow
	Args T
}

// InsertOpts tune one insert. The zero value inserts a job of priority 0 that
// is due now, with the kind's MaxAttempts, no subject and no unique key.
type InsertOpts struct {
	// Priority: higher runs first among due jobs (subjects aside).
	Priority int
	// RunAt: not before this time. Zero means now.
	RunAt time.Time
	// Subject serializes jobs: of all jobs with the same subject, at most one
	// runs at a time, in insertion order.
	Subject string
	// UniqueKey makes the insert idempotent: a second insert with the same
	// key returns the existing job instead of adding one.
	UniqueKey string
	// MaxAttempts overrides the kind's maximum number of attempts.
	MaxAttempts int
}

// InsertParams is one job of an InsertMany.
type InsertParams struct {
	Args JobArgs
	Opts *InsertOpts
}

// Inserted is the outcome of an insert.
type Inserted struct {
	ID int64
	// Existing is true when the unique key matched a job already stored.
	Existing bool
}

// Errors callers branch on.
var (
	ErrNotFound      = errors.New("job not found")
	ErrUnknownKind   = errors.New("unknown job kind")
	ErrJobLost       = errors.New("job is no longer running under this attempt")
	ErrStopped       = errors.New("engine is stopped")
	ErrNotCancelable = errors.New("job is already finished")
	ErrNotRetryable  = errors.New("only failed or cancelled jobs can be retried")
)

type terminalError struct{ err error }

func (e *terminalError) Error() string { return "terminal: " + e.err.Error() }
func (e *terminalError) Unwrap() error { return e.err }

// Terminal marks err as final: the job fails at once, whatever attempts are
// left. Use it for errors a retry cannot fix (bad arguments, a downstream
// "unknown card").
func Terminal(err error) error {
	if err == nil {
		err = errors.New("terminal error")
	}
	return &terminalError{err: err}
}

type snoozeError struct{ after time.Duration }

func (e *snoozeError) Error() string { return fmt.Sprintf("snooze %s", e.after) }

// Snooze asks for the job to run again after d without using an attempt
// (for polling a downstream task). No worker is held while it waits, and it
// keeps its place in its subject's queue.
func Snooze(d time.Duration) error {
	if d < 0 {
		d = 0
	}
	return &snoozeError{after: d}
}
