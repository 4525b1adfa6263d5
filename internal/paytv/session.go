package paytv

import (
	"context"
	"errors"
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
		var found bool
		if u.Unit != "" {
			unitID, found, err = unitByIDOrNameTx(ctx, tx, orgID, u.Unit)
		} else {
			unitID, found, err = firstUnitTx(ctx, tx, orgID)
		}
		if err != nil {
			return err
		}
		if !found {
			return errorf(KindNotFound, "unit %q not found in organisation %q", u.Unit, u.Organisation)
		}
		return saveUserTx(ctx, tx, userRecord{ID: auth.NewID(), OrganisationID: orgID, Username: u.Username, PasswordHash: hash,
			PersonName: u.PersonName, Email: u.Email, DefaultUnitID: unitID})
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

	user, found, err := findLoginUser(ctx, s.db, c.Organisation, c.Username)
	switch {
	case err != nil:
		return "", err
	case !found:
		auth.WasteTime(c.Password, s.cfg.PasswordCost)
		return fail()
	}
	unitID := user.DefaultUnitID
	if err := auth.CheckPassword(user.PasswordHash, c.Password); err != nil {
		if errors.Is(err, auth.ErrWrongPassword) {
			return fail()
		}
		return "", err
	}
	if c.Unit != "" {
		found, err := unitOfUsersOrganisation(ctx, s.db, user.ID, c.Unit)
		if err != nil {
			return "", err
		}
		if !found {
			return "", errorf(KindNotFound, "unit %q not found in organisation %q", c.Unit, c.Organisation)
		}
		unitID = c.Unit
	}
	s.users.Reset(userKey)
	token := auth.NewToken()
	now := micros(s.now())
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		return openSessionTx(ctx, tx, auth.HashToken(token), user.ID, unitID, now, now-s.cfg.TokenIdle.Microseconds())
	})
	if err != nil {
		return "", err
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
	return deleteSession(ctx, s.db, auth.HashToken(token))
}

// Authenticate returns the session of a live token and records its use.
func (s *Service) Authenticate(ctx context.Context, token string) (*Session, error) {
	if token == "" {
		return nil, errorf(KindMissing, "token is required")
	}
	hash := auth.HashToken(token)
	sess, err := readSession(ctx, s.db, hash)
	if err != nil {
		return nil, err
	}
	if sess == nil {
		return nil, errorf(KindInvalidToken, "the token is not valid or has expired")
	}
	now := s.now()
	switch lapsed, touch := sessionLapsed(sess, now, s.cfg.TokenIdle); {
	case lapsed:
		if err := deleteSession(ctx, s.db, hash); err != nil {
			return nil, err
		}
		return nil, errorf(KindInvalidToken, "the token is not valid or has expired")
	case touch:
		if _, err := touchSession(ctx, s.db, hash, sess.lastUsed, micros(now)); err != nil {
			return nil, err
		}
	}
	return &sess.Session, nil
}

// sessionLapsed is the rule of a session's life: a Web API key's lapses at
// its fixed expiry, whatever its use; a password login's when idle for
// idleLimit. touch tells that its use is to be recorded (its last one is
// touchEvery old or more).
func sessionLapsed(s *storedSession, now time.Time, idleLimit time.Duration) (lapsed, touch bool) {
	if s.expires != 0 {
		return !now.Before(fromMicros(s.expires)), false
	}
	idle := now.Sub(fromMicros(s.lastUsed))
	if idle >= idleLimit {
		return true, false
	}
	return false, idle >= touchEvery
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
