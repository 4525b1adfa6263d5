package store

import (
	"context"
	"fmt"
)

// CountOutcomes runs a query whose rows are (state, code, count) and
// returns the counts keyed "STATE" or "STATE code": how the domains report
// their outcomes to the operator console.
func (db *DB) CountOutcomes(ctx context.Context, query string, args ...any) (map[string]int, error) {
	rows, err := db.ReadQuery(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("count outcomes: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var state, code string
		var n int
		if err := rows.Scan(&state, &code, &n); err != nil {
			return nil, fmt.Errorf("count outcomes: %w", err)
		}
		key := state
		if code != "" {
			key += " " + code
		}
		out[key] += n
	}
	return out, rows.Err()
}
