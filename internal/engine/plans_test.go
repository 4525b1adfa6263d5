package engine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

// TestPostgresPlans_HotStatementsNeverReadTheWholeJobsTable checks the
// generic plans of the statements every job goes through. The driver caches
// statements, and after a few calls PostgreSQL may run one with a plan made
// without the call's values: a plan that reads every retained job then costs
// each completion a scan of the table (the release of a subject's next job
// once did, as a hash join).
func TestPostgresPlans_HotStatementsNeverReadTheWholeJobsTable(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.Postgres)
	ctx := context.Background()
	// A table as a running hub keeps it: many finished jobs, some queued
	// behind a running job of their subject.
	if _, err := db.Writer().ExecContext(ctx, `INSERT INTO jobs (kind, args, state, priority, subject, max_attempts, created_at, run_at, finalized_at)
		SELECT 'k', '{}', 'completed', 0, 'se-' || (g % 500), 25, g, g, g FROM generate_series(1, 20000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Writer().ExecContext(ctx, `INSERT INTO jobs (kind, args, state, priority, subject, max_attempts, created_at, run_at, held)
		SELECT 'k', '{}', 'available', 0, 'se-' || (g % 50), 25, g, g, g > 50 FROM generate_series(1, 200) g`); err != nil {
		t.Fatal(err)
	}
	statements := []struct {
		name, query string
		params      []string
	}{
		{"release next held", releasePG, []string{`'{se-1,se-2}'::text[]`}},
		{"claim", claimPG, []string{"100", "1", "'owner'", "2"}},
		{"complete many", completePG, []string{"1", "'{1,2}'::bigint[]", "'{1,1}'::int[]"}},
		{"complete one", completeOneSQL, []string{"1", "1", "1"}},
		{"complete one and release", completeOneReleasingPG, []string{"1", "1", "1", "'se-1'"}},
		{"insert one of a subject", insertOneOfSubjectPG, []string{"'k'", `'{}'`, "'available'", "0", "'se-1'", "NULL", "25", "1", "1"}},
		{"fence", fenceSQL, []string{"1", "1"}},
		{"busy subjects", busySubjectsPG, []string{`'{se-1,se-2}'::text[]`}},
		{"busy subject", busySubjectOne, []string{"'se-1'"}},
		{"promote", promoteSQL, []string{"1"}},
		{"next due", nextDueSQL, nil},
		{"release stuck subjects", releaseStuckPG, nil},
	}
	check := func(t *testing.T) {
		for _, c := range statements {
			t.Run(c.name, func(t *testing.T) {
				plan := storetest.GenericPlan(t, db, c.query, c.params...)
				for _, table := range storetest.SeqScans(t, plan) {
					if table == "jobs" {
						t.Errorf("the generic plan reads the whole jobs table:\n%s", plan)
					}
				}
			})
		}
	}
	// Before autovacuum first looks at the table, PostgreSQL plans with
	// guesses (the CRM benchmark's hash join came from there); after, with
	// statistics.
	t.Run("not yet analyzed", check)
	if _, err := db.Writer().ExecContext(ctx, `ANALYZE jobs`); err != nil {
		t.Fatal(err)
	}
	t.Run("analyzed", check)
}

// TestSQLitePlans_HotStatementsCompileOnce runs a writer turn's statements
// (an insert of a subject's job, a claim with promotion, outcomes that
// complete, retry and release) again and again with new values, as a
// running hub does, and counts how often SQLite compiles a statement: an
// authorizer is called for every table and column a statement touches
// while it is compiled, and never while it runs. SQLite compiles a prepared
// statement again on its next step when it let a bound value shape the plan
// and the value changed (the claim's LIMIT once did, on every turn).
func TestSQLitePlans_HotStatementsCompileOnce(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	ctx := context.Background()
	if err := db.Prepare(ctx, sqliteHotQueries...); err != nil {
		t.Fatal(err)
	}
	compiled := storetest.CountCompilations(t, db, func(a sqlite.AuthorizerActionCode) bool { return a != sqlite.AuthTransaction })
	reg := NewRegistry()
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	turn := func(i int) {
		t.Helper()
		now := base.Add(time.Duration(i) * time.Second)
		err := db.InTx(ctx, func(tx *store.Tx) error {
			for k := range 3 {
				row := insertRow{kind: "k", args: []byte(`{}`), state: StateAvailable, subject: fmt.Sprintf("se-%d", (i+k)%4),
					maxAttempts: 3, createdAt: micros(now), runAt: micros(now)}
				if k == 1 {
					row.uniqueKey = fmt.Sprintf("u-%d", i)
				}
				if _, err := insertRows(ctx, tx, []insertRow{row}); err != nil {
					return err
				}
			}
			var waited time.Duration
			var locked time.Time
			jobs, _, _, err := claimTx(ctx, tx, 1+i%5, "owner", now, time.Minute, true, &waited, &locked)
			if err != nil {
				return err
			}
			var batch []outcome
			for n, j := range jobs {
				o := outcome{job: j, state: StateCompleted, finished: now}
				if n%2 == 1 {
					o.state, o.runAt, o.err = StateRetryable, now.Add(time.Duration(n)*time.Millisecond), "try again"
				}
				batch = append(batch, o)
			}
			_, err = finishTx(ctx, tx, reg, now, batch)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Installing the authorizer expired every prepared statement: the first
	// turns compile each once more.
	for i := range 5 {
		turn(i)
	}
	compiled.Store(0)
	for i := 5; i < 25; i++ {
		turn(i)
	}
	if n := compiled.Load(); n != 0 {
		t.Errorf("20 turns with new values compiled statements again (%d authorizer calls); every statement of a turn should be compiled once", n)
	}
}
