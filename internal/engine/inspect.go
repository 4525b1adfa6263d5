package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/provhub/provhub/internal/store"
)

// ListFilter selects jobs to list; zero fields select everything.
type ListFilter struct {
	State State
	Kind  string
	// Search, when set, keeps the job of that id, the jobs of that subject
	// (whole, or its part after the colon: a smartcard or secure-element
	// id finds "smartcard:..." or "se:..."), and the job of that unique key.
	Search string
	// Before keeps the jobs older than this id (the next page; 0: the
	// newest).
	Before int64
	// Limit bounds the answer [50, at most 500].
	Limit int
}

// List returns jobs, newest first.
func (e *Engine) List(ctx context.Context, f ListFilter) ([]*JobRow, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	f.Limit = min(f.Limit, 500)
	var id int64
	if n, err := strconv.ParseInt(f.Search, 10, 64); err == nil {
		id = n
	}
	q := `SELECT ` + jobColumns + ` FROM jobs WHERE ($1 = '' OR state = $1) AND ($2 = '' OR kind = $2)
		AND ($3 = '' OR id = $4 OR subject = $3 OR subject LIKE $5 ESCAPE '\' OR unique_key = $3)
		AND ($6 = 0 OR id < $6) ORDER BY id DESC LIMIT $7`
	rows, err := e.db.Reader().QueryContext(ctx, q, string(f.State), f.Kind, f.Search, id, "%:"+store.EscapeLike(f.Search), f.Before, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return store.Collect(rows, func(s store.Scanner) (*JobRow, error) { return scanJob(s) })
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
	return store.Collect(rows, func(s store.Scanner) (KindCount, error) {
		var c KindCount
		err := s.Scan(&c.Kind, &c.State, &c.Count)
		return c, err
	})
}

// Bucket is what finished in one interval.
type Bucket struct {
	Start     time.Time
	Completed int
	Failed    int
	// Retried counts the jobs finished in the interval that needed more
	// than one attempt.
	Retried int
	// ByKind splits Completed and Failed by job kind.
	ByKind map[string]Finished
}

// Finished counts the jobs of a kind that ended in an interval.
type Finished struct {
	Completed, Failed int
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
	rows, err := e.db.Reader().QueryContext(ctx, `SELECT finalized_at, state, attempt, kind FROM jobs
		WHERE finalized_at IS NOT NULL AND finalized_at >= $1 AND state IN ('completed', 'failed', 'cancelled')`, micros(start))
	if err != nil {
		return nil, fmt.Errorf("job throughput: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var at int64
		var state string
		var attempt int
		var kind string
		if err := rows.Scan(&at, &state, &attempt, &kind); err != nil {
			return nil, err
		}
		i := int(fromMicros(at).Sub(start) / width)
		if i < 0 || i >= n {
			continue
		}
		if out[i].ByKind == nil {
			out[i].ByKind = map[string]Finished{}
		}
		f := out[i].ByKind[kind]
		if state == string(StateCompleted) {
			out[i].Completed++
			f.Completed++
		} else {
			out[i].Failed++
			f.Failed++
		}
		out[i].ByKind[kind] = f
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

// KindRetrying is what the unfinished jobs of a kind that failed at least
// once say: how many there are, and the latest error among them.
type KindRetrying struct {
	Kind      string
	Count     int
	LastError string
	LastAt    time.Time
}

// Retrying returns, per kind, the jobs not finished yet that have failed
// an attempt (retrying now, or waiting for their next attempt), with the
// latest error, reading at most the newest 2000 of them.
func (e *Engine) Retrying(ctx context.Context) ([]KindRetrying, error) {
	rows, err := e.db.Reader().QueryContext(ctx, `SELECT kind, errors FROM jobs WHERE finalized_at IS NULL AND errors <> '[]'
		ORDER BY id DESC LIMIT 2000`)
	if err != nil {
		return nil, fmt.Errorf("retrying jobs: %w", err)
	}
	defer rows.Close()
	byKind := map[string]*KindRetrying{}
	var kinds []string
	for rows.Next() {
		var kind, raw string
		if err := rows.Scan(&kind, &raw); err != nil {
			return nil, err
		}
		var errs []AttemptError
		if json.Unmarshal([]byte(raw), &errs) != nil || len(errs) == 0 {
			continue
		}
		k := byKind[kind]
		if k == nil {
			k = &KindRetrying{Kind: kind}
			byKind[kind] = k
			kinds = append(kinds, kind)
		}
		k.Count++
		if last := errs[len(errs)-1]; last.At.After(k.LastAt) {
			k.LastError, k.LastAt = last.Error, last.At
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.Strings(kinds)
	out := make([]KindRetrying, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, *byKind[k])
	}
	return out, nil
}
