package paytv

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

// TestRequestStore_EveryListReadsThroughAnIndex checks the plans of the
// lists a CRM client may ask for (by type, by state, by reference number)
// over a table where most requests have ended. On SQLite each list seeks on
// its filter's column: a list by reference number once read all of the
// organisation's requests, through an index seeking only on the
// organisation. On PostgreSQL no list reads the table whole, and a list by
// reference number seeks on it; the generic plan (the one cached statements
// run with) of a list by type or state walks the requests in number order,
// filtering, which its estimates favour while one organisation holds every
// request.
func TestRequestStore_EveryListReadsThroughAnIndex(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		orgID, userID, northID := organisation(t, db)
		storetest.InTx(t, db, func(tx *store.Tx) error {
			for i := range 2000 {
				r := newRequest{ID: fmt.Sprintf("R%d", i), OrganisationID: orgID, Provider: ConaxWebServices, Type: TypeAddSubscriptions,
					Priority: Regular, SmartcardCAID: fmt.Sprintf("01%08d", i), Command: `{}`, Parameters: `[]`, ClientIdentifiers: `[]`,
					UserID: userID, UnitID: northID, ScheduledAt: int64(i), CreatedAt: int64(i)}
				if i%3 == 0 {
					r.Type = TypeCancelSubscriptions
				}
				if _, err := insertRequestTx(ctx, tx, r); err != nil {
					return err
				}
			}
			return nil
		})
		// As a working hub's table is: most requests ended long ago.
		if _, err := db.Writer().ExecContext(ctx, `UPDATE paytv_requests SET life_cycle_state = 'COMPLETED' WHERE number % 20 <> 0`); err != nil {
			t.Fatal(err)
		}
		if db.Dialect() == store.Postgres {
			if _, err := db.Writer().ExecContext(ctx, `ANALYZE paytv_requests`); err != nil {
				t.Fatal(err)
			}
		}
		// Each filter and a column its index must seek on: an index used
		// on the organisation alone would read all its requests.
		for _, c := range []struct {
			filter ListFilter
			seeks  string
		}{
			{ListFilter{Type: TypeAddSubscriptions}, "type"},
			{ListFilter{LifeCycleState: Pending}, "life_cycle_state"},
			{ListFilter{ReferenceNumber: "REF-1"}, "reference_number"},
			{ListFilter{Type: TypeCancelSubscriptions, LifeCycleState: Completed}, "(type|life_cycle_state)"},
		} {
			f := c.filter
			f.Limit = 50
			query, args := listRequestsSQL(orgID, ConaxWebServices, f)
			if db.Dialect() == store.SQLite {
				plan := storetest.SQLitePlan(t, db, query, args...)
				if !regexp.MustCompile(`SEARCH r USING INDEX paytv_requests_\w+ \([^)]*\b` + c.seeks + `=\?`).MatchString(plan) {
					t.Errorf("list %+v does not seek on %s:\n%s", f, c.seeks, plan)
				}
				continue
			}
			literals := make([]string, len(args))
			for i, a := range args {
				switch v := a.(type) {
				case string:
					literals[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
				default:
					literals[i] = fmt.Sprint(v)
				}
			}
			plan := storetest.GenericPlan(t, db, query, literals...)
			if slices.Contains(storetest.SeqScans(t, plan), "paytv_requests") {
				t.Errorf("list %+v reads every request (generic plan):\n%s", f, plan)
			}
			if f.ReferenceNumber != "" && !regexp.MustCompile(`"Index Cond": "[^"]*\breference_number = `).MatchString(plan) {
				t.Errorf("list %+v does not seek on the reference number (generic plan):\n%s", f, plan)
			}
		}
	})
}

// seedEndedRequests stores n requests of one organisation made through
// ConaxWebServices, a third of them CANCEL_SUBSCRIPTIONS and the rest
// ADD_SUBSCRIPTIONS, every one COMPLETED with the CAS's reference number
// REF<number> but one in every 2,500, which stays PENDING: a hub's table
// after months of work.
func seedEndedRequests(tb testing.TB, db *store.DB, orgID, userID, unitID string, n int) {
	tb.Helper()
	if _, err := db.Writer().ExecContext(context.Background(), `WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < $4)
		INSERT INTO paytv_requests (id, number, organisation_id, provider, type, life_cycle_state, reference_number, priority, process_immediately,
			scheduled_at, smartcard_ca_id, command, parameters, created_at, updated_at, created_by_user_id, created_by_unit_id)
		SELECT 'B' || i, i, $1, 'conax_web_services',
			CASE WHEN i % 3 = 0 THEN 'CANCEL_SUBSCRIPTIONS' ELSE 'ADD_SUBSCRIPTIONS' END,
			CASE WHEN i % 2500 = 0 THEN 'PENDING' ELSE 'COMPLETED' END,
			CASE WHEN i % 2500 = 0 THEN NULL ELSE 'REF' || i END,
			'REGULAR', FALSE, i, '01' || i, '{}', '[]', i, i, $2, $3 FROM g`, orgID, userID, unitID, n); err != nil {
		tb.Fatal(err)
	}
	if db.Dialect() == store.Postgres {
		if _, err := db.Writer().ExecContext(context.Background(), `ANALYZE paytv_requests`); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkListRequests lists a page of an organisation's requests as a
// CRM client does, from 100,000 requests of which 40 are PENDING: the
// pending ones (rare), those of the common type, and the one with a given
// reference number.
func BenchmarkListRequests(b *testing.B) {
	for _, d := range storetest.Backends {
		db := storetest.Open(b, d)
		orgID, userID, unitID := organisation(b, db)
		seedEndedRequests(b, db, orgID, userID, unitID, 100_000)
		for _, c := range []struct {
			name   string
			filter ListFilter
			want   int
		}{
			{"pending", ListFilter{LifeCycleState: Pending, Limit: 50}, 40},
			{"type", ListFilter{Type: TypeAddSubscriptions, Limit: 50}, 50},
			{"reference", ListFilter{ReferenceNumber: "REF77777", Limit: 50}, 1},
		} {
			b.Run(fmt.Sprintf("%s/%s", d, c.name), func(b *testing.B) {
				for b.Loop() {
					rs, err := listRequests(context.Background(), db, orgID, ConaxWebServices, c.filter)
					if err != nil || len(rs) != c.want {
						b.Fatalf("%d requests (%v), want %d", len(rs), err, c.want)
					}
				}
			})
		}
	}
}
