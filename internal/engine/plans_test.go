package engine

import (
	"context"
	"testing"

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
