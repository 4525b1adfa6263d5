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
