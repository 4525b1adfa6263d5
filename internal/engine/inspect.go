package engine

import (
	"context"
	"fmt"
	"time"
)

// ListFilter selects jobs to list; zero fields select everything.
type ListFilter struct {
	State State
	Kind  string
	// Limit bounds the answer [50, at most 500].
	Limit int
}

// List returns jobs, newest first.
func (e *Engine) List(ctx context.Context, f ListFilter) ([]*JobRow, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	f.Limit = min(f.Limit, 500)
	q := `SELECT ` + jobColumns + ` FROM jobs WHERE ($1 = '' OR state = $1) AND ($2 = '' OR kind = $2) ORDER BY id DESC LIMIT $3`
	rows, err := e.db.Reader().QueryContext(ctx, q, string(f.State), f.Kind, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	var out []*JobRow
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// KindCount is how many jobs of a kind are in a state.
type KindCount struct {
	Kind  string
	State State
	Count int
}

// Counts returns the number of jobs per kind and state.
func (e *Engine) Counts(ctx context.Context) ([]KindCount, error) {
	rows, err := e.db.Reader().QueryContext(ctx, `SELECT kind, state, count(*) FROM jobs GROUP BY kind, state ORDER BY kind, state`)
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	defer rows.Close()
	var out []KindCount
	for rows.Next() {
		var c KindCount
		if err := rows.Scan(&c.Kind, &c.State, &c.Count); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Bucket is what finished in one interval.
type Bucket struct {
	Start     time.Time
	Completed int
	Failed    int
	// Retried counts the jobs finished in the interval that needed more
	// than one attempt.
	Retried int
}

// Throughput returns n buckets of width each, the last ending now: jobs
// completed and failed (or cancelled) in each.
func (e *Engine) Throughput(ctx context.Context, n int, width time.Duration) ([]Bucket, error) {
	now := e.now()
	start := now.Add(-time.Duration(n) * width)
	out := make([]Bucket, n)
	for i := range out {
		out[i].Start = start.Add(time.Duration(i) * width)
	}
	rows, err := e.db.Reader().QueryContext(ctx, `SELECT finalized_at, state, attempt FROM jobs
		WHERE finalized_at IS NOT NULL AND finalized_at >= $1 AND state IN ('completed', 'failed', 'cancelled')`, micros(start))
	if err != nil {
		return nil, fmt.Errorf("job throughput: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var at int64
		var state string
		var attempt int
		if err := rows.Scan(&at, &state, &attempt); err != nil {
			return nil, err
		}
		i := int(fromMicros(at).Sub(start) / width)
		if i < 0 || i >= n {
			continue
		}
		if state == string(StateCompleted) {
			out[i].Completed++
		} else {
			out[i].Failed++
		}
		if attempt > 1 {
			out[i].Retried++
		}
	}
	return out, rows.Err()
}

// KindHealth sums up the jobs of a kind that finished since a time.
type KindHealth struct {
	Kind string
	// Finished jobs, of which Failed ended failed or cancelled.
	Finished, Failed int
	// Attempts is every run of those jobs; each beyond the first was a
	// failed call that was retried.
	Attempts int
	// MeanTime is the mean time from insert to the end.
	MeanTime time.Duration
}

// Health returns KindHealth per kind for the jobs finished since since.
func (e *Engine) Health(ctx context.Context, since time.Time) ([]KindHealth, error) {
	rows, err := e.db.Reader().QueryContext(ctx, `SELECT kind, count(*), sum(CASE WHEN state = 'completed' THEN 0 ELSE 1 END), sum(attempt),
			sum(finalized_at - created_at) FROM jobs WHERE finalized_at IS NOT NULL AND finalized_at >= $1 GROUP BY kind ORDER BY kind`, micros(since))
	if err != nil {
		return nil, fmt.Errorf("job health: %w", err)
	}
	defer rows.Close()
	var out []KindHealth
	for rows.Next() {
		var h KindHealth
		var total int64
		if err := rows.Scan(&h.Kind, &h.Finished, &h.Failed, &h.Attempts, &total); err != nil {
			return nil, err
		}
		if h.Finished > 0 {
			h.MeanTime = time.Duration(total/int64(h.Finished)) * time.Microsecond
		}
		out = append(out, h)
	}
	return out, rows.Err()
}
