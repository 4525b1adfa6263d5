package store

import "database/sql"

// Scanner is a row: *sql.Row and *sql.Rows both are.
type Scanner interface{ Scan(dest ...any) error }

// Collect reads every row of rows with scan, closes rows and reports the
// first error (of a scan or of the iteration): the loop every list query
// needs, written once.
func Collect[T any](rows *sql.Rows, scan func(Scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// Strings reads a one-column result of text.
func Strings(rows *sql.Rows) ([]string, error) {
	return Collect(rows, func(s Scanner) (string, error) {
		var v string
		err := s.Scan(&v)
		return v, err
	})
}
