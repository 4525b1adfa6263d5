package console

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/provhub/provhub/internal/auth"
	"github.com/provhub/provhub/internal/store"
)

// Operator is a console account.
type Operator struct {
	Username string
}

// session is a logged-in operator.
type session struct {
	Operator
	tokenHash string
	csrf      string
}

// Action is one thing an operator did: to a job (target job:<id>) or a
// wallet task (task:<taskId>).
type Action struct {
	Username, Action, Outcome, Target string
	At                                time.Time
}

var errBadLogin = errors.New("unknown operator or wrong password")

// AddOperator creates an operator, or sets the password of one that
// exists.
func (c *Console) AddOperator(ctx context.Context, username, password string) error {
	if username == "" || len(username) > auth.MaxUsernameLength || len(password) < auth.MinPasswordLength || len(password) > auth.MaxPasswordLength {
		return errors.New("an operator needs a username of 1 to 64 characters and a password of at least 8")
	}
	hash, err := auth.HashPassword(password, c.cfg.PasswordCost)
	if err != nil {
		return err
	}
	now := c.now().UnixMicro()
	res, err := c.db.Writer().ExecContext(ctx, `UPDATE console_operators SET password_hash = $2 WHERE username = $1`, username, hash)
	if err != nil {
		return fmt.Errorf("set operator password: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		_, err = c.db.Writer().ExecContext(ctx, `DELETE FROM console_sessions WHERE username = $1`, username)
		return err
	}
	if _, err := c.db.Writer().ExecContext(ctx, `INSERT INTO console_operators (username, password_hash, created_at) VALUES ($1, $2, $3)`,
		username, hash, now); err != nil {
		return fmt.Errorf("add operator: %w", err)
	}
	return nil
}

// login checks a password and opens a session; it returns the cookie's
// token.
func (c *Console) login(ctx context.Context, username, password string) (string, error) {
	var hash string
	err := c.db.ReadRow(ctx, `SELECT password_hash FROM console_operators WHERE username = $1`, username).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		auth.WasteTime(password, c.cfg.PasswordCost) // same time as a wrong password
		return "", errBadLogin
	}
	if err != nil {
		return "", fmt.Errorf("read operator: %w", err)
	}
	if auth.CheckPassword(hash, password) != nil {
		return "", errBadLogin
	}
	token, csrf := auth.NewToken(), auth.NewToken()
	now := c.now().UnixMicro()
	// Sessions that lapsed are removed here, so the table never grows
	// beyond the sessions of the last idle period.
	if _, err := c.db.Writer().ExecContext(ctx, `DELETE FROM console_sessions WHERE last_seen < $1`,
		c.now().Add(-c.cfg.SessionIdle).UnixMicro()); err != nil {
		return "", fmt.Errorf("remove lapsed sessions: %w", err)
	}
	if _, err := c.db.Writer().ExecContext(ctx, `INSERT INTO console_sessions (token_hash, username, csrf, created_at, last_seen) VALUES ($1, $2, $3, $4, $4)`,
		auth.HashToken(token), username, csrf, now); err != nil {
		return "", fmt.Errorf("open session: %w", err)
	}
	return token, nil
}

// session finds the live session of a cookie token and marks it used.
func (c *Console) session(ctx context.Context, token string) (*session, error) {
	if token == "" {
		return nil, nil
	}
	h := auth.HashToken(token)
	var s session
	var lastSeen int64
	err := c.db.ReadRow(ctx, `SELECT username, csrf, last_seen FROM console_sessions WHERE token_hash = $1`, h).Scan(&s.Username, &s.csrf, &lastSeen)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read session: %w", err)
	}
	now := c.now()
	if now.Sub(time.UnixMicro(lastSeen)) > c.cfg.SessionIdle {
		_, _ = c.db.Writer().ExecContext(ctx, `DELETE FROM console_sessions WHERE token_hash = $1`, h)
		return nil, nil
	}
	// Mark it used at most once a minute: reads stay reads.
	if now.Sub(time.UnixMicro(lastSeen)) > time.Minute {
		_, _ = c.db.Writer().ExecContext(ctx, `UPDATE console_sessions SET last_seen = $2 WHERE token_hash = $1`, h, now.UnixMicro())
	}
	s.tokenHash = h
	return &s, nil
}

func (c *Console) logout(ctx context.Context, s *session) error {
	_, err := c.db.Writer().ExecContext(ctx, `DELETE FROM console_sessions WHERE token_hash = $1`, s.tokenHash)
	return err
}

// validCSRF compares a form's token with the session's in constant time.
func (s *session) validCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.csrf)) == 1
}

func (c *Console) recordAction(ctx context.Context, username, action, target, outcome string) error {
	_, err := c.db.Writer().ExecContext(ctx, `INSERT INTO console_actions (id, username, action, target, outcome, at) VALUES ($1, $2, $3, $4, $5, $6)`,
		auth.NewToken(), username, action, target, outcome, c.now().UnixMicro())
	if err != nil {
		return fmt.Errorf("record action: %w", err)
	}
	return nil
}

func (c *Console) actions(ctx context.Context, target string) ([]Action, error) {
	rows, err := c.db.ReadQuery(ctx, `SELECT username, action, outcome, target, at FROM console_actions WHERE target = $1 ORDER BY at`, target)
	if err != nil {
		return nil, fmt.Errorf("read actions: %w", err)
	}
	defer rows.Close()
	var out []Action
	for rows.Next() {
		var a Action
		var at int64
		if err := rows.Scan(&a.Username, &a.Action, &a.Outcome, &a.Target, &at); err != nil {
			return nil, err
		}
		a.At = time.UnixMicro(at).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// PurgeActions removes the operators' recorded actions older than cutoff
// (the retention job calls it).
func (c *Console) PurgeActions(ctx context.Context, tx *store.Tx, cutoff time.Time) (int64, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM console_actions WHERE at < $1`, cutoff.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("purge console actions: %w", err)
	}
	return res.RowsAffected()
}
