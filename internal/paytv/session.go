package paytv

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/provhub/provhub/internal/auth"
	"github.com/provhub/provhub/internal/store"
)

// touchEvery is how stale a session's last use may be before a request
// records it again: it saves a write per call, and makes idle expiry
// accurate to this much.
const touchEvery = 30 * time.Second

// NewUser is the input of AddUser.
type NewUser struct {
	Organisation string
	Username     string
	Password     string
	// Unit is the user's default unit, by id or name; the organisation's
	// first unit when empty.
	Unit       string
	PersonName string
	Email      string
}

// AddUser creates a CRM user, or sets the password and details of an
// existing one. The organisation is created when it does not exist.
func (s *Service) AddUser(ctx context.Context, u NewUser) error {
	if u.Organisation == "" || u.Username == "" || u.Password == "" {
		return errorf(KindMissing, "organisation, username and password are required")
	}
	if len(u.Username) > auth.MaxUsernameLength || len(u.Password) < auth.MinPasswordLength || len(u.Password) > auth.MaxPasswordLength {
		return errorf(KindInvalid, "a user name has at most %d characters and a password %d to %d", auth.MaxUsernameLength, auth.MinPasswordLength, auth.MaxPasswordLength)
	}
	hash, err := auth.HashPassword(u.Password, s.cfg.PasswordCost)
	if err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		orgID, err := ensureOrganisation(ctx, tx, u.Organisation)
		if err != nil {
			return err
		}
		var unitID string
		q := `SELECT id FROM crm_units WHERE organisation_id = $1 ORDER BY name, id LIMIT 1`
		args := []any{orgID}
		if u.Unit != "" {
			q = `SELECT id FROM crm_units WHERE organisation_id = $1 AND (id = $2 OR name = $2) ORDER BY id LIMIT 1`
			args = append(args, u.Unit)
		}
		if err := tx.QueryRowContext(ctx, q, args...).Scan(&unitID); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return errorf(KindNotFound, "unit %q not found in organisation %q", u.Unit, u.Organisation)
			}
			return fmt.Errorf("find unit: %w", err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO crm_users (id, organisation_id, username, password_hash, person_name, email, default_unit_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (organisation_id, username) DO UPDATE SET password_hash = excluded.password_hash,
				person_name = excluded.person_name, email = excluded.email, default_unit_id = excluded.default_unit_id`,
			auth.NewID(), orgID, u.Username, hash, null(u.PersonName), null(u.Email), unitID)
		if err != nil {
			return fmt.Errorf("save user: %w", err)
		}
		return nil
	})
}

// Credentials are the input of Login.
type Credentials struct {
	Username     string
	Password     string
	Organisation string
	// Unit is a unit id of the organisation; the user's default unit when
	// empty.
	Unit string
	// ClientAddress is the caller's network address, for rate limiting.
	ClientAddress string
}

// Login checks credentials and opens a session, returning its token. Only
// the token's hash is stored. Failed logins are limited per user name and
// per client address.
func (s *Service) Login(ctx context.Context, c Credentials) (string, error) {
	if c.Username == "" || c.Password == "" || c.Organisation == "" {
		return "", errorf(KindMissing, "username, password and organisation are required")
	}
	// Cut before any limiter lookup or log line: a megabyte of name costs
	// nothing to refuse.
	if len(c.Username) > auth.MaxUsernameLength || len(c.Password) > auth.MaxPasswordLength || len(c.Organisation) > 128 || len(c.Unit) > 128 {
		return "", errorf(KindInvalid, "username has at most %d characters, password %d, organisation and unit 128", auth.MaxUsernameLength, auth.MaxPasswordLength)
	}
	userKey := strings.ToLower(c.Organisation) + "\x00" + c.Username
	for _, l := range []struct {
		lim *auth.Limiter
		key string
	}{{s.users, userKey}, {s.addrs, c.ClientAddress}} {
		if blocked, left := l.lim.Blocked(l.key); blocked {
			return "", errorf(KindTooManyAttempts, "too many failed logins; try again in %d seconds", int(left.Seconds())+1)
		}
	}
	fail := func() (string, error) {
		s.users.Fail(userKey)
		s.addrs.Fail(c.ClientAddress)
		s.log.WarnContext(ctx, "login failed", "username", c.Username, "organisation", c.Organisation, "client", c.ClientAddress)
		return "", errorf(KindLoginFailed, "wrong username, password or organisation")
	}

	var (
		userID, hash, unitID string
	)
	err := s.db.Reader().QueryRowContext(ctx, `SELECT u.id, u.password_hash, u.default_unit_id FROM crm_users u
		JOIN crm_organisations o ON o.id = u.organisation_id WHERE o.name = $1 AND u.username = $2`,
		c.Organisation, c.Username).Scan(&userID, &hash, &unitID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		auth.WasteTime(c.Password, s.cfg.PasswordCost)
		return fail()
	case err != nil:
		return "", fmt.Errorf("find user: %w", err)
	}
	if err := auth.CheckPassword(hash, c.Password); err != nil {
		if errors.Is(err, auth.ErrWrongPassword) {
			return fail()
		}
		return "", err
	}
	if c.Unit != "" {
		err := s.db.Reader().QueryRowContext(ctx, `SELECT n.id FROM crm_units n JOIN crm_users u ON u.organisation_id = n.organisation_id
			WHERE u.id = $1 AND n.id = $2`, userID, c.Unit).Scan(&unitID)
		if errors.Is(err, sql.ErrNoRows) {
			return "", errorf(KindNotFound, "unit %q not found in organisation %q", c.Unit, c.Organisation)
		}
		if err != nil {
			return "", fmt.Errorf("find unit: %w", err)
		}
	}
	s.users.Reset(userKey)
	token := auth.NewToken()
	now := micros(s.now())
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		// Sessions idle past their life are deleted here, at a pace set by logins.
		if _, err := tx.ExecContext(ctx, `DELETE FROM crm_tokens WHERE (expires_at IS NULL AND last_used_at < $1) OR expires_at <= $2`,
			now-s.cfg.TokenIdle.Microseconds(), now); err != nil {
			return fmt.Errorf("delete expired sessions: %w", err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO crm_tokens (token_hash, user_id, unit_id, created_at, last_used_at) VALUES ($1, $2, $3, $4, $4)`,
			auth.HashToken(token), userID, unitID, now)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("open session: %w", err)
	}
	s.log.InfoContext(ctx, "login", "username", c.Username, "organisation", c.Organisation)
	return token, nil
}

// Release ends the session of token. Releasing an unknown or expired
// token is refused like any use of it.
func (s *Service) Release(ctx context.Context, token string) error {
	if _, err := s.Authenticate(ctx, token); err != nil {
		return err
	}
	if _, err := s.db.Writer().ExecContext(ctx, `DELETE FROM crm_tokens WHERE token_hash = $1`, auth.HashToken(token)); err != nil {
		return fmt.Errorf("release session: %w", err)
	}
	return nil
}

// Authenticate returns the session of a live token and records its use.
func (s *Service) Authenticate(ctx context.Context, token string) (*Session, error) {
	if token == "" {
		return nil, errorf(KindMissing, "token is required")
	}
	hash := auth.HashToken(token)
	var (
		sess     Session
		lastUsed int64
		expires  sql.NullInt64
	)
	err := s.db.ReadRow(ctx, `SELECT t.last_used_at, t.expires_at, u.id, u.username, u.person_name, u.email, u.organisation_id,
			n.id, n.name, n.description, n.alternative_code, n.group_name, n.community_name
		FROM crm_tokens t JOIN crm_users u ON u.id = t.user_id JOIN crm_units n ON n.id = t.unit_id
		WHERE t.token_hash = $1`, hash).Scan(&lastUsed, &expires, &sess.User.ID, &sess.User.Username, &sess.User.PersonName,
		&sess.User.Email, &sess.OrganisationID, &sess.Unit.ID, &sess.Unit.Name, &sess.Unit.Description,
		&sess.Unit.AlternativeCode, &sess.Unit.GroupName, &sess.Unit.CommunityName)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errorf(KindInvalidToken, "the token is not valid or has expired")
	}
	if err != nil {
		return nil, fmt.Errorf("find session: %w", err)
	}
	now := s.now()
	if expires.Valid {
		// A Web API key's token: a fixed life, whatever its use.
		if !now.Before(fromMicros(expires.Int64)) {
			if _, err := s.db.Writer().ExecContext(ctx, `DELETE FROM crm_tokens WHERE token_hash = $1`, hash); err != nil {
				return nil, fmt.Errorf("delete expired session: %w", err)
			}
			return nil, errorf(KindInvalidToken, "the token is not valid or has expired")
		}
		return &sess, nil
	}
	idle := now.Sub(fromMicros(lastUsed))
	if idle >= s.cfg.TokenIdle {
		if _, err := s.db.Writer().ExecContext(ctx, `DELETE FROM crm_tokens WHERE token_hash = $1`, hash); err != nil {
			return nil, fmt.Errorf("delete expired session: %w", err)
		}
		return nil, errorf(KindInvalidToken, "the token is not valid or has expired")
	}
	if idle >= touchEvery {
		if _, err := s.db.Writer().ExecContext(ctx, `UPDATE crm_tokens SET last_used_at = $1 WHERE token_hash = $2`, micros(now), hash); err != nil {
			return nil, fmt.Errorf("record session use: %w", err)
		}
	}
	return &sess, nil
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
