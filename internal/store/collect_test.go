package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

func TestCollect_ReadsEveryRowAndStopsAtTheFirstError(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		q := `SELECT v FROM (SELECT 'b' AS v UNION ALL SELECT 'a' UNION ALL SELECT 'c') AS t ORDER BY v`
		rows, err := db.ReadQuery(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := store.Strings(rows)
		if err != nil || len(got) != 3 || got[0] != "a" || got[2] != "c" {
			t.Fatalf("Strings = %v, %v", got, err)
		}
		rows, err = db.ReadQuery(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		n := 0
		_, err = store.Collect(rows, func(s store.Scanner) (string, error) {
			if n++; n == 2 {
				return "", boom
			}
			var v string
			return v, s.Scan(&v)
		})
		if !errors.Is(err, boom) || n != 2 {
			t.Fatalf("Collect kept going after a failed scan: n=%d err=%v", n, err)
		}
		rows, err = db.ReadQuery(ctx, `SELECT v FROM (SELECT 'x' AS v) AS t WHERE 1 = 0`)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := store.Strings(rows); err != nil || len(got) != 0 {
			t.Fatalf("no rows: %v, %v", got, err)
		}
	})
}
