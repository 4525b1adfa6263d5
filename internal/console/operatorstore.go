package console

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/provhub/provhub/internal/store"
)

// operatorStore keeps the console's operators, their sessions and the
// actions they took: every statement of the console's own tables, each
// behind a method named for what it does.
type operatorStore struct {
	db *store.DB
}

// errNoRow is what a lookup of a missing operator or session returns.
var errNoRow = errors.New("no such row")

// setPassword replaces an existing operator's password hash and ends the
// operator's sessions, in one transaction; it reports whether the operator
// existed.
func (st operatorStore) setPassword(ctx context.Context, username, hash string) (bool, error) {
	existed := false
	err := st.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE console_operators SET password_hash = $2 WHERE username = $1`, username, hash)
		if err != nil {
			return fmt.Errorf("set operator password: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil
		}
		existed = true
		if _, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE username = $1`, username); err != nil {
			return fmt.Errorf("end the operator's sessions: %w", err)
		}
		return nil
	})
	return existed, err
}

func (st operatorStore) addOperator(ctx context.Context, username, hash string, now time.Time) error {
	if _, err := st.db.Writer().ExecContext(ctx, `INSERT INTO console_operators (username, password_hash, created_at) VALUES ($1, $2, $3)`,
		username, hash, now.UnixMicro()); err != nil {
		return fmt.Errorf("add operator: %w", err)
	}
	return nil
}

// passwordHash returns an operator's password hash, or errNoRow.
func (st operatorStore) passwordHash(ctx context.Context, username string) (string, error) {
	var hash string
	err := st.db.ReadRow(ctx, `SELECT password_hash FROM console_operators WHERE username = $1`, username).Scan(&hash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", errNoRow
	case err != nil:
		return "", fmt.Errorf("read operator: %w", err)
	}
	return hash, nil
}

// openSession removes the sessions unused since lapsedBefore (so the table
// never grows past one idle period's sessions) and stores a new one.
func (st operatorStore) openSession(ctx context.Context, tokenHash, username, csrf string, now, lapsedBefore time.Time) error {
	return st.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE last_seen < $1`, lapsedBefore.UnixMicro()); err != nil {
			return fmt.Errorf("remove lapsed sessions: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO console_sessions (token_hash, username, csrf, created_at, last_seen) VALUES ($1, $2, $3, $4, $4)`,
			tokenHash, username, csrf, now.UnixMicro()); err != nil {
			return fmt.Errorf("open session: %w", err)
		}
		return nil
	})
}

// session returns a session by its token's hash, or errNoRow.
func (st operatorStore) session(ctx context.Context, tokenHash string) (username, csrf string, lastSeen time.Time, err error) {
	var seen int64
	err = st.db.ReadRow(ctx, `SELECT username, csrf, last_seen FROM console_sessions WHERE token_hash = $1`, tokenHash).Scan(&username, &csrf, &seen)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", "", time.Time{}, errNoRow
	case err != nil:
		return "", "", time.Time{}, fmt.Errorf("read session: %w", err)
	}
	return username, csrf, time.UnixMicro(seen), nil
}

// touchSession records a session's use unless its last use is no longer
// the one the caller read (seen): of a page's requests that find it due at
// once, one writes.
func (st operatorStore) touchSession(ctx context.Context, tokenHash string, seen, now time.Time) error {
	_, err := st.db.Writer().ExecContext(ctx, `UPDATE console_sessions SET last_seen = $2 WHERE token_hash = $1 AND last_seen = $3`,
		tokenHash, now.UnixMicro(), seen.UnixMicro())
	return err
}

func (st operatorStore) endSession(ctx context.Context, tokenHash string) error {
	_, err := st.db.Writer().ExecContext(ctx, `DELETE FROM console_sessions WHERE token_hash = $1`, tokenHash)
	return err
}

func (st operatorStore) recordAction(ctx context.Context, id string, a Action) error {
	_, err := st.db.Writer().ExecContext(ctx, `INSERT INTO console_actions (id, username, action, target, outcome, at) VALUES ($1, $2, $3, $4, $5, $6)`,
		id, a.Username, a.Action, a.Target, a.Outcome, a.At.UnixMicro())
	if err != nil {
		return fmt.Errorf("record action: %w", err)
	}
	return nil
}

// actions lists the actions taken on target, oldest first.
func (st operatorStore) actions(ctx context.Context, target string) ([]Action, error) {
	rows, err := st.db.ReadQuery(ctx, `SELECT username, action, outcome, target, at FROM console_actions WHERE target = $1 ORDER BY at`, target)
	if err != nil {
		return nil, fmt.Errorf("read actions: %w", err)
	}
	defer rows.Close()
	var out []Action
	for rows.Next() {
		var a Action
		var at int64
		if err := rows.Scan(&a.Username, &a.Action, &a.Outcome, &a.Target, &at); err != nil {
			return nil, fmt.Errorf("read actions: %w", err)
		}
		a.At = time.UnixMicro(at).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// purgeActions removes the actions older than cutoff, in tx.
func (st operatorStore) purgeActions(ctx context.Context, tx *store.Tx, cutoff time.Time) (int64, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM console_actions WHERE at < $1`, cutoff.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("purge console actions: %w", err)
	}
	return res.RowsAffected()
}
