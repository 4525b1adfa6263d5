// Package loadgen measures a job queue with the same no-op workload whatever
// the queue is, so provhub's engine and River can be compared line by line.
//
// A Driver adapts one queue. Run inserts jobs in bulk and drains them, then
// inserts single jobs from many goroutines while workers run (the shape of an
// HTTP API under load), and reports throughput and insert-to-completion
// latency.
package loadgen

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Args are the arguments of one benchmark job.
type Args struct {
	Seq        int    `json:"seq"`
	Subject    string `json:"subject,omitempty"`
	InsertedAt int64  `json:"inserted_at"` // Unix nanoseconds, for latency
}

// Driver adapts a job queue to the workload.
type Driver interface {
	// InsertMany inserts jobs in as few statements as the queue allows.
	InsertMany(ctx context.Context, jobs []Args) error
	// Insert durably inserts one job, as an API handler would.
	Insert(ctx context.Context, job Args) error
	// Start runs workers whose handler calls done(job) and returns nil.
	Start(ctx context.Context, done func(Args)) error
	// Stop stops the workers.
	Stop(ctx context.Context) error
}

// Config is one run.
type Config struct {
	Jobs      int // jobs per phase
	Subjects  int // 0: no subjects; K: job i has subject i mod K
	Inserters int // goroutines inserting single jobs in the concurrent phase
}

// Result holds the figures of one run.
type Result struct {
	BulkInserted   float64 // jobs/s, InsertMany with workers stopped
	Drained        float64 // jobs/s, workers draining the bulk-inserted jobs
	SingleInserted float64 // jobs/s, concurrent single inserts with workers running
	SingleWorked   float64 // jobs/s, completions during the concurrent phase
	P50, P99       time.Duration
}

type tracker struct {
	mu        sync.Mutex
	latencies []time.Duration
	phase     atomic.Pointer[phase]
}

// phase counts the completions of one phase; a new phase gets a new one so
// that a late completion of the previous phase cannot touch it.
type phase struct {
	target   int64
	done     atomic.Int64
	finished chan struct{}
}

func (t *tracker) reset(target int) {
	t.mu.Lock()
	t.latencies = t.latencies[:0]
	t.mu.Unlock()
	t.phase.Store(&phase{target: int64(target), finished: make(chan struct{})})
}

func (t *tracker) record(a Args) {
	lat := time.Since(time.Unix(0, a.InsertedAt))
	t.mu.Lock()
	t.latencies = append(t.latencies, lat)
	t.mu.Unlock()
	p := t.phase.Load()
	if p.done.Add(1) == p.target {
		close(p.finished)
	}
}

func (t *tracker) percentiles() (p50, p99 time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.latencies) == 0 {
		return 0, 0
	}
	l := slices.Clone(t.latencies)
	slices.Sort(l)
	return l[len(l)*50/100], l[min(len(l)-1, len(l)*99/100)]
}

func subject(cfg Config, i int) string {
	if cfg.Subjects <= 0 {
		return ""
	}
	return fmt.Sprintf("subject-%d", i%cfg.Subjects)
}

// Run measures d with cfg.
func Run(ctx context.Context, d Driver, cfg Config) (Result, error) {
	var r Result
	tr := &tracker{}
	tr.reset(cfg.Jobs)

	// Phase 1: bulk insert, then drain.
	jobs := make([]Args, cfg.Jobs)
	start := time.Now()
	const batch = 1000
	for i := 0; i < cfg.Jobs; i += batch {
		chunk := jobs[i:min(i+batch, cfg.Jobs)]
		now := time.Now().UnixNano()
		for k := range chunk {
			chunk[k] = Args{Seq: i + k, Subject: subject(cfg, i+k), InsertedAt: now}
		}
		if err := d.InsertMany(ctx, chunk); err != nil {
			return r, fmt.Errorf("bulk insert: %w", err)
		}
	}
	r.BulkInserted = float64(cfg.Jobs) / time.Since(start).Seconds()

	start = time.Now()
	if err := d.Start(ctx, tr.record); err != nil {
		return r, fmt.Errorf("start workers: %w", err)
	}
	if err := wait(ctx, tr); err != nil {
		return r, fmt.Errorf("drain: %w", err)
	}
	r.Drained = float64(cfg.Jobs) / time.Since(start).Seconds()

	// Phase 2: concurrent single inserts while workers run.
	tr.reset(cfg.Jobs)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, cfg.Inserters)
	start = time.Now()
	for range max(cfg.Inserters, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= cfg.Jobs {
					return
				}
				if err := d.Insert(ctx, Args{Seq: i, Subject: subject(cfg, i), InsertedAt: time.Now().UnixNano()}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	r.SingleInserted = float64(cfg.Jobs) / time.Since(start).Seconds()
	select {
	case err := <-errs:
		return r, fmt.Errorf("single insert: %w", err)
	default:
	}
	if err := wait(ctx, tr); err != nil {
		return r, fmt.Errorf("work concurrent inserts: %w", err)
	}
	r.SingleWorked = float64(cfg.Jobs) / time.Since(start).Seconds()
	r.P50, r.P99 = tr.percentiles()
	if err := d.Stop(ctx); err != nil {
		return r, fmt.Errorf("stop workers: %w", err)
	}
	return r, nil
}

func wait(ctx context.Context, tr *tracker) error {
	p := tr.phase.Load()
	select {
	case <-p.finished:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%d of %d jobs done: %w", p.done.Load(), p.target, ctx.Err())
	}
}

// Print writes the figures in the layout both benchmark commands share.
func Print(w io.Writer, name, db string, cfg Config, workers int, r Result) {
	fmt.Fprintf(w, "queue=%s db=%s jobs=%d workers=%d subjects=%d inserters=%d\n", name, db, cfg.Jobs, workers, cfg.Subjects, cfg.Inserters)
	fmt.Fprintf(w, "  bulk insert (InsertMany, workers stopped):        %10.0f jobs/s\n", r.BulkInserted)
	fmt.Fprintf(w, "  drain (no-op jobs):                               %10.0f jobs/s\n", r.Drained)
	fmt.Fprintf(w, "  single inserts, %3d goroutines, workers running:  %10.0f inserted/s\n", cfg.Inserters, r.SingleInserted)
	fmt.Fprintf(w, "  completed during that phase:                      %10.0f worked/s\n", r.SingleWorked)
	fmt.Fprintf(w, "  insert-to-completion latency:                     p50 %s  p99 %s\n", r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond))
}
