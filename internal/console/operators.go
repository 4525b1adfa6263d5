package console

import (
	"context"
	"crypto/subtle"
	"errors"
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

// checkOperator is the rule for an operator's name and password.
func checkOperator(username, password string) error {
	if username == "" || len(username) > auth.MaxUsernameLength || len(password) < auth.MinPasswordLength || len(password) > auth.MaxPasswordLength {
		return errors.New("an operator needs a username of 1 to 64 characters and a password of at least 8")
	}
	return nil
}

// sessionUse is what a request does with a session last seen at lastSeen.
type sessionUse int

const (
	sessionFresh   sessionUse = iota // use it as it is
	sessionTouch                     // use it and record that it was used
	sessionExpired                   // it lapsed: end it
)

// useSession is the rule for a session's idle time: past idle it has
// lapsed; it is marked used at most once a minute, so reads stay reads.
func useSession(now, lastSeen time.Time, idle time.Duration) sessionUse {
	switch since := now.Sub(lastSeen); {
	case since > idle:
		return sessionExpired
	case since > time.Minute:
		return sessionTouch
	}
	return sessionFresh
}

// AddOperator creates an operator, or sets the password of one that
// exists (ending its sessions).
func (c *Console) AddOperator(ctx context.Context, username, password string) error {
	if err := checkOperator(username, password); err != nil {
		return err
	}
	hash, err := auth.HashPassword(password, c.cfg.PasswordCost)
	if err != nil {
		return err
	}
	existed, err := c.operators.setPassword(ctx, username, hash)
	if err != nil || existed {
		return err
	}
	return c.operators.addOperator(ctx, username, hash, c.now())
}

// login checks a password and opens a session; it returns the cookie's
// token.
func (c *Console) login(ctx context.Context, username, password string) (string, error) {
	hash, err := c.operators.passwordHash(ctx, username)
	if errors.Is(err, errNoRow) {
		auth.WasteTime(password, c.cfg.PasswordCost) // same time as a wrong password
		return "", errBadLogin
	}
	if err != nil {
		return "", err
	}
	if auth.CheckPassword(hash, password) != nil {
		return "", errBadLogin
	}
	token, csrf := auth.NewToken(), auth.NewToken()
	now := c.now()
	if err := c.operators.openSession(ctx, auth.HashToken(token), username, csrf, now, now.Add(-c.cfg.SessionIdle)); err != nil {
		return "", err
	}
	return token, nil
}

// session finds the live session of a cookie token and marks it used.
func (c *Console) session(ctx context.Context, token string) (*session, error) {
	if token == "" {
		return nil, nil
	}
	h := auth.HashToken(token)
	username, csrf, lastSeen, err := c.operators.session(ctx, h)
	if errors.Is(err, errNoRow) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	now := c.now()
	switch useSession(now, lastSeen, c.cfg.SessionIdle) {
	case sessionExpired:
		_ = c.operators.endSession(ctx, h)
		return nil, nil
	case sessionTouch:
		_ = c.operators.touchSession(ctx, h, lastSeen, now)
	}
	return &session{Operator: Operator{Username: username}, tokenHash: h, csrf: csrf}, nil
}

func (c *Console) logout(ctx context.Context, s *session) error {
	return c.operators.endSession(ctx, s.tokenHash)
}

// validCSRF compares a form's token with the session's in constant time.
func (s *session) validCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.csrf)) == 1
}

func (c *Console) recordAction(ctx context.Context, username, action, target, outcome string) error {
	return c.operators.recordAction(ctx, auth.NewToken(), Action{Username: username, Action: action, Target: target, Outcome: outcome, At: c.now()})
}

func (c *Console) actions(ctx context.Context, target string) ([]Action, error) {
	return c.operators.actions(ctx, target)
}

// PurgeActions removes the operators' recorded actions older than cutoff
// (the retention job calls it).
func (c *Console) PurgeActions(ctx context.Context, tx *store.Tx, cutoff time.Time) (int64, error) {
	return c.operators.purgeActions(ctx, tx, cutoff)
}
