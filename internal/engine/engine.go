package engine

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/provhub/provhub/internal/store"
)

// Config sets up an Engine. Zero values take the defaults in brackets.
type Config struct {
	DB       *store.DB
	Registry *Registry
	Logger   *slog.Logger
	// Metrics receives the engine's Prometheus collectors (none when nil).
	Metrics prometheus.Registerer
	// Clock tells the time [time.Now]; tests move it to run scheduled jobs.
	Clock func() time.Time

	// MaxWorkers bounds the jobs this instance runs at once [100].
	MaxWorkers int
	// FetchBatch bounds the jobs taken by one claim [MaxWorkers, at most 1000].
	FetchBatch int
	// FetchCooldown is the least time between two claims, so that freed
	// worker slots are filled in batches [2ms].
	FetchCooldown time.Duration
	// FetchPollInterval is how often the engine looks for work when nothing
	// woke it (another instance's insert on SQLite, a missed notification) [1s].
	FetchPollInterval time.Duration

	// LeaseDuration is how long a claimed job is owned without a heartbeat
	// before another instance may rescue it [30s].
	LeaseDuration time.Duration
	// HeartbeatInterval is how often leases are extended [LeaseDuration/3].
	HeartbeatInterval time.Duration
	// RescueInterval is how often expired leases are looked for [LeaseDuration/2].
	RescueInterval time.Duration
	// ReleaseInterval is how often held jobs whose subject nothing holds
	// any more are let in [2s]: on PostgreSQL a job inserted held while its
	// subject's running job finishes in another transaction misses that
	// job's release, and waits for this safety net.
	ReleaseInterval time.Duration
	// LivenessInterval is how often, on PostgreSQL, an instance checks its
	// own instance lock and looks for instances that lost theirs (dead:
	// their running jobs are taken back at once) [2s].
	LivenessInterval time.Duration

	// DefaultMaxAttempts applies to kinds that set none [25].
	DefaultMaxAttempts int
	// DefaultTimeout bounds one attempt of kinds that set none [1m].
	DefaultTimeout time.Duration
	// Backoff gives the wait before retry n [1s·2^(n-1), at most 1h, with jitter].
	Backoff func(attempt int) time.Duration

	// GroupCommitMaxBatch bounds the inserts written by one group commit [500].
	GroupCommitMaxBatch int
	// GroupCommitMaxWait is how long a group commit waits for more inserts
	// once it has one [0: it takes what is queued and commits at once; under
	// load the batch grows by itself while the previous commit runs].
	GroupCommitMaxWait time.Duration
	// CompleteMaxBatch bounds the outcomes written by one completion [1000].
	CompleteMaxBatch int

	// CompletedRetention keeps completed jobs this long [24h];
	// FinishedRetention keeps failed and cancelled jobs [7 days].
	CompletedRetention time.Duration
	FinishedRetention  time.Duration
	// CleanupInterval is how often old jobs are deleted [1m].
	CleanupInterval time.Duration

	// ShutdownGrace is how long Stop waits for handlers to return after
	// cancelling them, once its own deadline has passed [2s].
	ShutdownGrace time.Duration
	// InstanceID names this instance in leases [host-pid-random].
	InstanceID string
}

func (c *Config) setDefaults() error {
	if c.DB == nil {
		return errors.New("engine: Config.DB is required")
	}
	if c.Registry == nil {
		c.Registry = NewRegistry()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxWorkers, 100)
	def(&c.FetchBatch, min(c.MaxWorkers, 1000))
	defD(&c.FetchCooldown, 2*time.Millisecond)
	defD(&c.FetchPollInterval, time.Second)
	defD(&c.LeaseDuration, 30*time.Second)
	defD(&c.HeartbeatInterval, c.LeaseDuration/3)
	defD(&c.RescueInterval, c.LeaseDuration/2)
	defD(&c.ReleaseInterval, 2*time.Second)
	defD(&c.LivenessInterval, 2*time.Second)
	def(&c.DefaultMaxAttempts, 25)
	defD(&c.DefaultTimeout, time.Minute)
	if c.Backoff == nil {
		c.Backoff = DefaultBackoff
	}
	def(&c.GroupCommitMaxBatch, 500)
	def(&c.CompleteMaxBatch, 1000)
	defD(&c.CompletedRetention, 24*time.Hour)
	defD(&c.FinishedRetention, 7*24*time.Hour)
	defD(&c.CleanupInterval, time.Minute)
	defD(&c.ShutdownGrace, 2*time.Second)
	if c.InstanceID == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		c.InstanceID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	return nil
}

// DefaultBackoff waits about 2^(attempt-1) seconds, at most an hour, with
// the upper half randomised so that jobs failing together spread out.
func DefaultBackoff(attempt int) time.Duration {
	d := time.Duration(math.Min(float64(time.Hour), float64(time.Second)*math.Pow(2, float64(max(attempt, 1)-1))))
	return d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
}

// CappedBackoff is DefaultBackoff with its waits at most limit: a retry
// budget measured in time then buys a steady rate of attempts.
func CappedBackoff(limit time.Duration) func(attempt int) time.Duration {
	return func(attempt int) time.Duration {
		d := DefaultBackoff(attempt)
		if d > limit {
			return limit/2 + time.Duration(mrand.Int64N(int64(limit/2)+1))
		}
		return d
	}
}

// Engine inserts and runs jobs. New gives an engine that can insert; Start
// makes it run jobs too.
type Engine struct {
	cfg     Config
	db      *store.DB
	log     *slog.Logger
	metrics *metrics

	inserts chan insertRequest
	// batched writes inserts without a transaction or a subject on
	// PostgreSQL in transactions of their own, batch by batch (nil on
	// SQLite); see insertBatched.
	batched  *store.Batcher[*batchedInsert, []Inserted]
	outcomes chan outcome
	wakeCh   chan struct{}
	// peersDue: jobs were inserted in callers' transactions since the
	// writer last notified the other instances.
	peersDue atomic.Bool
	// dueHint is the earliest run_at (Unix micros) of jobs made due later
	// since the writer last looked; 0 when none.
	dueHint    atomic.Int64
	stopWriter chan struct{}
	writerWG   sync.WaitGroup
	groups     atomic.Int64 // group commits written, for tests
	closeOnce  sync.Once

	mu  sync.Mutex
	run *runState // nil unless started

	signals testSignals // off unless a test switched them on
}

// New builds an engine and starts its writer (inserts work from then on).
func New(cfg Config) (*Engine, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:        cfg,
		db:         cfg.DB,
		log:        cfg.Logger.With("component", "engine"),
		inserts:    make(chan insertRequest, 4*cfg.GroupCommitMaxBatch),
		outcomes:   make(chan outcome, cfg.MaxWorkers),
		wakeCh:     make(chan struct{}, 1),
		stopWriter: make(chan struct{}),
	}
	e.metrics = newMetrics(cfg.Metrics, cfg.DB, e.log)
	if cfg.DB.Dialect() == store.Postgres {
		// One batch at a time: once jobs start at their insert, 32
		// inserting callers keep PostgreSQL's CPU busy, and a statement
		// and a commit cost about as much for 20 rows as for 10. In
		// alternate runs, 11,275-11,402 jobs a second with one batch at a
		// time against 9,744-9,959 with two (and two had beaten four);
		// with four callers the latency is the same (bench/README.md).
		e.batched = store.NewBatcher(cfg.DB, e.writeBatched, store.BatchesAtOnce(1))
	}
	e.writerWG.Add(1)
	go e.writeLoop()
	return e, nil
}

// Close stops the writer; Insert without a transaction fails after it.
// Stop the workers first.
func (e *Engine) Close() {
	e.closeOnce.Do(func() {
		close(e.stopWriter)
		e.writerWG.Wait()
	})
}

// InstanceID is the name this instance writes into the leases it holds.
func (e *Engine) InstanceID() string { return e.cfg.InstanceID }

func (e *Engine) wake() {
	select {
	case e.wakeCh <- struct{}{}:
	default:
	}
}

func (e *Engine) now() time.Time { return e.cfg.Clock().UTC() }

func (e *Engine) row(args JobArgs, opts *InsertOpts, now time.Time) (insertRow, error) {
	if args == nil {
		return insertRow{}, errors.New("insert job: nil args")
	}
	name := args.Kind()
	k, ok := e.cfg.Registry.kinds[name]
	if !ok {
		return insertRow{}, fmt.Errorf("insert job: %w %q", ErrUnknownKind, name)
	}
	if opts == nil {
		opts = &InsertOpts{}
	}
	payload, err := json.Marshal(args)
	if err != nil {
		return insertRow{}, fmt.Errorf("encode %s args: %w", name, err)
	}
	r := insertRow{
		kind:        name,
		args:        payload,
		state:       StateAvailable,
		priority:    opts.Priority,
		subject:     opts.Subject,
		uniqueKey:   opts.UniqueKey,
		maxAttempts: opts.MaxAttempts,
		createdAt:   micros(now),
		runAt:       micros(now),
	}
	if r.maxAttempts <= 0 {
		r.maxAttempts = k.opts.MaxAttempts
	}
	if r.maxAttempts <= 0 {
		r.maxAttempts = e.cfg.DefaultMaxAttempts
	}
	if !opts.RunAt.IsZero() && opts.RunAt.After(now) {
		r.state = StateScheduled
		r.runAt = micros(opts.RunAt)
	}
	return r, nil
}

// Insert adds one job. With a transaction the job commits (and becomes
// visible to workers) with the caller's other writes; without one it joins a
// group commit and is durable when Insert returns.
func (e *Engine) Insert(ctx context.Context, tx *store.Tx, args JobArgs, opts *InsertOpts) (Inserted, error) {
	res, err := e.InsertMany(ctx, tx, []InsertParams{{Args: args, Opts: opts}})
	if err != nil {
		return Inserted{}, err
	}
	return res[0], nil
}

// InsertMany adds several jobs at once, in order; see Insert.
func (e *Engine) InsertMany(ctx context.Context, tx *store.Tx, params []InsertParams) ([]Inserted, error) {
	if len(params) == 0 {
		return nil, nil
	}
	now := e.now()
	rows := make([]insertRow, len(params))
	for i, p := range params {
		r, err := e.row(p.Args, p.Opts, now)
		if err != nil {
			return nil, err
		}
		rows[i] = r
	}
	if tx != nil {
		res, err := insertRows(ctx, tx, rows)
		if err != nil {
			return nil, err
		}
		// Other instances hear of these jobs through the writer's next turn,
		// not through a NOTIFY in the caller's transaction: PostgreSQL
		// serializes the commits of transactions that notify.
		tx.AfterCommit(func() {
			e.peersDue.Store(true)
			e.inserted(rows, res)
		})
		return res, nil
	}
	if len(rows) > e.cfg.GroupCommitMaxBatch {
		// A large batch is its own group.
		var res []Inserted
		err := e.db.InTx(ctx, func(tx *store.Tx) error {
			var err error
			if res, err = insertRows(ctx, tx, rows); err != nil {
				return err
			}
			return notifyTx(ctx, tx, e.cfg.InstanceID)
		})
		if err != nil {
			return nil, err
		}
		e.inserted(rows, res)
		return res, nil
	}
	if e.batched != nil && !hasSubject(rows) {
		return e.insertBatched(ctx, rows)
	}
	return e.groupInsert(ctx, rows)
}

// hasSubject reports whether any row has a subject.
func hasSubject(rows []insertRow) bool {
	return slices.ContainsFunc(rows, func(r insertRow) bool { return r.subject != "" })
}

// batchedInsert is one InsertMany call that e.batched writes.
type batchedInsert struct {
	rows     []insertRow
	rs       *runState // the run whose slots hold the rows written running
	reserved int       // slots reserved for them
	started  int       // rows started at commit, each in a reserved slot
}

// insertBatched writes rows (none with a subject) through e.batched, on
// PostgreSQL.
//
// A writer turn carries the claims and completions of every busy worker,
// so an insert that waited for one waited for all of that: 32 inserting
// callers beside 1,000 busy workers stored about 7,000 jobs a second, each
// waiting about 4 ms. Written in transactions of their own instead (one
// batch at a time, each one multi-row statement), they no longer wait for
// the turn. Rows with a subject still go through the writer: there the
// insert and the completion that frees the subject share one transaction,
// so whether the new job waits behind its subject (held) is decided
// exactly, where a transaction of its own could race a completion and wait
// for the releaser's next pass.
//
// While this engine runs and has free worker slots, a job that is due now
// and has no unique key is written already running, its first attempt
// leased to this engine, and starts when its transaction commits: one
// write fewer than an insert and a claim, and no wait for a claiming turn.
// The slots are reserved before the write (Stop waits for them as for
// running handlers) and given back for the rows that did not start. Such a
// job does not wait behind jobs of higher priority that other callers
// inserted and no claim has taken yet: priority orders the jobs that wait
// for a slot, and this one found a slot free.
func (e *Engine) insertBatched(ctx context.Context, rows []insertRow) ([]Inserted, error) {
	select {
	case <-e.stopWriter:
		return nil, ErrStopped
	default:
	}
	in := &batchedInsert{rows: rows}
	if rs := e.running(); rs != nil {
		now := e.now()
		eligible := 0
		for _, r := range rows {
			if startsAtInsert(r, now) {
				eligible++
			}
		}
		if eligible > 0 {
			in.rs, in.reserved = rs, rs.reserve(e.cfg.MaxWorkers, eligible)
			until := micros(now.Add(e.cfg.LeaseDuration))
			marked := 0
			for i := range rows {
				if marked < in.reserved && startsAtInsert(rows[i], now) {
					rows[i].state, rows[i].leaseOwner, rows[i].leaseUntil = StateRunning, e.cfg.InstanceID, until
					marked++
				}
			}
		}
	}
	res, err := e.batched.Write(ctx, in)
	if in.rs != nil {
		in.rs.unreserve(in.reserved - in.started)
	}
	return res, err
}

// startsAtInsert reports whether r may be written running by the insert:
// due now, with neither a subject nor a unique key (whose insert may find
// the job already stored).
func startsAtInsert(r insertRow, now time.Time) bool {
	return r.state == StateAvailable && r.subject == "" && r.uniqueKey == "" && r.runAt <= micros(now)
}

// writeBatched writes the rows of several InsertMany calls in one batch,
// each call's in order, and answers each call with its own results. At
// commit it starts the jobs written running and wakes the writer (and,
// through its next turn, the other instances) for the others.
func (e *Engine) writeBatched(ctx context.Context, tx *store.Tx, calls []*batchedInsert) ([][]Inserted, error) {
	var rows []insertRow
	for _, c := range calls {
		rows = append(rows, c.rows...)
	}
	res, err := insertRows(ctx, tx, rows)
	if err != nil {
		return nil, err
	}
	tx.AfterCommit(func() {
		e.groups.Add(1)
		e.countInserted(rows, res)
		waiting := false
		off := 0
		for _, c := range calls {
			for i, r := range c.rows {
				switch got := res[off+i]; {
				case got.Existing:
				case r.leaseOwner != "":
					c.started++
					e.startReserved(c.rs, startedRow(r, got.ID))
				default:
					waiting = true
				}
			}
			off += len(c.rows)
		}
		if waiting {
			e.peersDue.Store(true)
			e.wake()
		}
	})
	out := make([][]Inserted, len(calls))
	off := 0
	for i, c := range calls {
		out[i] = res[off : off+len(c.rows)]
		off += len(c.rows)
	}
	return out, nil
}

// startedRow is the job that r, written running, became.
func startedRow(r insertRow, id int64) *JobRow {
	return &JobRow{
		ID: id, Kind: r.kind, Args: json.RawMessage(r.args), State: StateRunning, Priority: r.priority,
		Attempt: 1, MaxAttempts: r.maxAttempts,
		CreatedAt: fromMicros(r.createdAt), RunAt: fromMicros(r.runAt), AttemptedAt: fromMicros(r.createdAt),
		LeaseOwner: r.leaseOwner,
	}
}

// inserted runs once inserted jobs are committed: the writer may have
// jobs to claim.
func (e *Engine) inserted(rows []insertRow, res []Inserted) {
	e.countInserted(rows, res)
	e.wake()
}

// countInserted counts committed inserts and notes when scheduled ones are
// due.
func (e *Engine) countInserted(rows []insertRow, res []Inserted) {
	for i, r := range rows {
		if !res[i].Existing {
			e.metrics.inserted.WithLabelValues(r.kind).Inc()
			if r.state == StateScheduled {
				e.hintDue(r.runAt)
			}
		}
	}
}

// hintDue tells the writer that a job is due at micros (a scheduled
// insert, a snooze, a retry), so that it promotes the job on time rather
// than at its next periodic look.
func (e *Engine) hintDue(micros int64) {
	for {
		cur := e.dueHint.Load()
		if cur != 0 && cur <= micros {
			return
		}
		if e.dueHint.CompareAndSwap(cur, micros) {
			return
		}
	}
}

// takeDueHint returns and clears the earliest hinted due time.
func (e *Engine) takeDueHint() time.Time {
	if us := e.dueHint.Swap(0); us != 0 {
		return fromMicros(us)
	}
	return time.Time{}
}

// Get reads one job.
func (e *Engine) Get(ctx context.Context, id int64) (*JobRow, error) {
	return getJob(ctx, e.db.Reader(), id)
}

// GetByUniqueKey reads the job inserted with a unique key; ErrNotFound
// when there is none (never inserted, or removed once finished).
func (e *Engine) GetByUniqueKey(ctx context.Context, key string) (*JobRow, error) {
	j, err := scanJob(e.db.Reader().QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE unique_key = $1`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("job with unique key %s: %w", key, err)
	}
	return j, nil
}

// GetTx reads one job inside a transaction.
func (e *Engine) GetTx(ctx context.Context, tx *store.Tx, id int64) (*JobRow, error) {
	return getJob(ctx, tx, id)
}

// Cancel cancels a job: a queued one at once, a running one by cancelling
// its handler's context (the job ends cancelled when the handler returns).
// It fails with ErrNotCancelable for a finished job.
func (e *Engine) Cancel(ctx context.Context, id int64) error {
	now := e.now()
	cancelled := false
	err := e.db.InTx(ctx, func(tx *store.Tx) error {
		j, err := scanJob(tx.QueryRowContext(ctx, `UPDATE jobs SET state = 'cancelled', held = FALSE, finalized_at = $2, errors = `+appendError(e.db.Dialect(), 3)+`
			WHERE id = $1 AND state IN ('scheduled', 'available', 'retryable') RETURNING `+jobColumns, id, micros(now), errorJSON(0, now, "cancelled")))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		cancelled = true
		if err := e.cfg.Registry.discarded(ctx, tx, j, StateCancelled); err != nil {
			return err
		}
		if j.Subject != "" {
			if err := releaseSubjects(ctx, tx, []string{j.Subject}); err != nil {
				return err
			}
			return notifyTx(ctx, tx, "cancel")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cancel job %d: %w", id, err)
	}
	if cancelled {
		e.wake() // its subject's next job may run now
		return nil
	}
	res, err := e.db.Writer().ExecContext(ctx, `UPDATE jobs SET cancel_requested = TRUE WHERE id = $1 AND state = 'running'`, id)
	if err != nil {
		return fmt.Errorf("cancel running job %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		if !e.cancelLocal(id) && e.db.Dialect() == store.Postgres {
			if _, err := e.db.Writer().ExecContext(ctx, `SELECT pg_notify(`+notifyChannelSQL+`, $1)`, fmt.Sprintf("cancel:%d", id)); err != nil {
				e.log.Warn("notify cancel", "job_id", id, "err", err)
			}
		}
		return nil
	}
	if _, err := e.Get(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("cancel job %d: %w", id, ErrNotCancelable)
}

// Retry puts a failed or cancelled job back in the queue, due now, with one
// more attempt if it had used them all.
func (e *Engine) Retry(ctx context.Context, id int64) error {
	res, err := e.db.Writer().ExecContext(ctx, `UPDATE jobs SET state = 'available', run_at = $2, finalized_at = NULL,
			cancel_requested = FALSE, max_attempts = CASE WHEN attempt >= max_attempts THEN attempt + 1 ELSE max_attempts END
		WHERE id = $1 AND state IN ('failed', 'cancelled')`, id, micros(e.now()))
	if err != nil {
		return fmt.Errorf("retry job %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		if e.db.Dialect() == store.Postgres {
			_, _ = e.db.Writer().ExecContext(ctx, `SELECT pg_notify(`+notifyChannelSQL+`, 'retry')`)
		}
		e.wake()
		return nil
	}
	if _, err := e.Get(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("retry job %d: %w", id, ErrNotRetryable)
}

// fenceSQL locks a running job's row for the rest of the caller's
// transaction, and finds nothing once the job was taken back or ended.
const fenceSQL = `UPDATE jobs SET attempt = attempt WHERE id = $1 AND attempt = $2 AND state = 'running'`

// FenceTx makes a handler's transaction count only while its attempt
// still owns the job. Call it first in a transaction that changes domain
// records without ending the job (one that queues more work and snoozes,
// say): it locks the job's row until the transaction ends, so an instance
// taking the job back (its owner looked dead) waits for the commit and its
// run sees what this one wrote; and once the job was taken back or ended
// it returns ErrJobLost, and the caller's transaction rolls back. A worker
// that lost its job can then never act beside the run that replaced it.
func (e *Engine) FenceTx(ctx context.Context, tx *store.Tx, job *JobRow) error {
	res, err := tx.ExecCached(ctx, fenceSQL, job.ID, job.Attempt)
	if err != nil {
		return fmt.Errorf("fence job %d: %w", job.ID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("job %d attempt %d: %w", job.ID, job.Attempt, ErrJobLost)
	}
	return nil
}

const completeOneSQL = `UPDATE jobs SET state = 'completed', finalized_at = $3, lease_owner = NULL, lease_expires_at = NULL
	WHERE id = $1 AND attempt = $2 AND state = 'running'`

// completeOneReleasingPG completes a job of subject $4 and lets its next
// held job in. The two rows differ (a running job is never held); when the
// completion finds nothing, the caller's transaction rolls back, release
// included.
const completeOneReleasingPG = `WITH released AS (
		UPDATE jobs SET held = FALSE WHERE id = (SELECT h.id FROM jobs h WHERE h.held AND h.subject = $4
			AND h.state IN ('scheduled', 'available', 'retryable') ORDER BY h.id LIMIT 1))
	UPDATE jobs SET state = 'completed', finalized_at = $3, lease_owner = NULL, lease_expires_at = NULL
	WHERE id = $1 AND attempt = $2 AND state = 'running'`

// CompleteTx marks a running job completed inside the handler's own
// transaction, so that the job's effect on domain records and its completion
// commit together. The handler then returns nil. The next held job of the
// job's subject is let in by the same transaction: a process killed after
// the commit leaves no subject waiting for the safety net.
func (e *Engine) CompleteTx(ctx context.Context, tx *store.Tx, job *JobRow) error {
	if job.Subject != "" && tx.Dialect() == store.Postgres {
		// One round trip: the completion and the release of the subject's
		// next job in one statement.
		res, err := tx.ExecCached(ctx, completeOneReleasingPG, job.ID, job.Attempt, micros(e.now()), job.Subject)
		if err != nil {
			return fmt.Errorf("complete job %d: %w", job.ID, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("complete job %d attempt %d: %w", job.ID, job.Attempt, ErrJobLost)
		}
		tx.AfterCommit(func() { job.completedInTx = true })
		return nil
	}
	res, err := tx.ExecCached(ctx, completeOneSQL, job.ID, job.Attempt, micros(e.now()))
	if err != nil {
		return fmt.Errorf("complete job %d: %w", job.ID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("complete job %d attempt %d: %w", job.ID, job.Attempt, ErrJobLost)
	}
	if job.Subject != "" {
		if err := releaseSubjects(ctx, tx, []string{job.Subject}); err != nil {
			return err
		}
	}
	tx.AfterCommit(func() { job.completedInTx = true })
	return nil
}
