// Package enginetest lets the tests of packages that queue jobs assert what
// they queued through the engine's own API, never through SQL on its table:
// a test then keeps passing when the table's layout changes, and reads as
// what it checks.
package enginetest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/provhub/provhub/internal/engine"
)

// Jobs returns every job of T's kind that match keeps (nil keeps all),
// newest first, with its arguments decoded.
func Jobs[T engine.JobArgs](t testing.TB, e *engine.Engine, match func(*engine.Job[T]) bool) []*engine.Job[T] {
	t.Helper()
	var zero T
	var out []*engine.Job[T]
	for before := int64(0); ; {
		rows, err := e.List(context.Background(), engine.ListFilter{Kind: zero.Kind(), Before: before, Limit: 500})
		if err != nil {
			t.Fatalf("list %s jobs: %v", zero.Kind(), err)
		}
		for _, r := range rows {
			j := &engine.Job[T]{JobRow: r}
			if err := json.Unmarshal(r.Args, &j.Args); err != nil {
				t.Fatalf("job %d: arguments of %s: %v", r.ID, zero.Kind(), err)
			}
			if match == nil || match(j) {
				out = append(out, j)
			}
		}
		if len(rows) < 500 {
			return out
		}
		before = rows[len(rows)-1].ID
	}
}

// RequireInserted returns the newest job of T's kind that match keeps,
// failing t when there is none.
func RequireInserted[T engine.JobArgs](t testing.TB, e *engine.Engine, match func(*engine.Job[T]) bool) *engine.Job[T] {
	t.Helper()
	jobs := Jobs(t, e, match)
	if len(jobs) == 0 {
		var zero T
		t.Fatalf("no %s job inserted that matches", zero.Kind())
	}
	return jobs[0]
}

// RequireUnique returns the job inserted with unique key, with its
// arguments decoded, failing t when there is none or it is of another kind.
func RequireUnique[T engine.JobArgs](t testing.TB, e *engine.Engine, key string) *engine.Job[T] {
	t.Helper()
	var zero T
	r, err := e.GetByUniqueKey(context.Background(), key)
	if err != nil {
		t.Fatalf("job with unique key %q: %v", key, err)
	}
	if r.Kind != zero.Kind() {
		t.Fatalf("job with unique key %q is a %s job, not %s", key, r.Kind, zero.Kind())
	}
	j := &engine.Job[T]{JobRow: r}
	if err := json.Unmarshal(r.Args, &j.Args); err != nil {
		t.Fatalf("job %d: arguments of %s: %v", r.ID, zero.Kind(), err)
	}
	return j
}
