package paytv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"

	"github.com/provhub/provhub/internal/auth"
	"github.com/provhub/provhub/internal/store"
)

// WebAPIKeyLifetime is how long a token obtained with a Web API key lives,
// whether it is used or not (as the CRM's web_api_key login documents).
const WebAPIKeyLifetime = 2 * time.Hour

// webAPIKeyPrefix starts every key provhub makes; the key_id is the prefix
// and the first 8 hex digits after it.
const webAPIKeyPrefix = "pwak_"

// NewWebAPIKey is what AddWebAPIKey creates: a key owned by a CRM user of
// an organisation, with a default unit (the user's when empty).
type NewWebAPIKey struct {
	Organisation, Username, Unit, Name string
}

// WebAPIKey is a key as listed (never the key itself).
type WebAPIKey struct {
	ID, Name, Username, UnitID string
	CreatedAt                  time.Time
	RevokedAt                  *time.Time
}

// AddWebAPIKey creates a key and returns it: the only time it is shown;
// only its SHA-256 is stored.
func (s *Service) AddWebAPIKey(ctx context.Context, k NewWebAPIKey) (key, id string, err error) {
	if k.Organisation == "" || k.Username == "" {
		return "", "", errorf(KindMissing, "organisation and username are required")
	}
	if len(k.Name) > 128 {
		return "", "", errorf(KindInvalid, "a key's name has at most 128 characters")
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	key = webAPIKeyPrefix + hex.EncodeToString(raw[:])
	id = key[:len(webAPIKeyPrefix)+8]
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		userID, unitID, orgID, found, err := keyOwnerTx(ctx, tx, k.Organisation, k.Username)
		if err != nil {
			return err
		}
		if !found {
			return errorf(KindNotFound, "no user %q in organisation %q", k.Username, k.Organisation)
		}
		if k.Unit != "" {
			if unitID, found, err = unitByIDOrNameTx(ctx, tx, orgID, k.Unit); err != nil {
				return err
			}
			if !found {
				return errorf(KindNotFound, "unit %q not found in organisation %q", k.Unit, k.Organisation)
			}
		}
		return insertWebAPIKeyTx(ctx, tx, id, auth.HashToken(key), userID, unitID, k.Name, micros(s.now()))
	})
	if err != nil {
		return "", "", err
	}
	s.log.InfoContext(ctx, "web api key added", "key_id", id, "username", k.Username, "organisation", k.Organisation)
	return key, id, nil
}

// WebAPIKeys lists an organisation's keys, revoked ones included.
func (s *Service) WebAPIKeys(ctx context.Context, organisation string) ([]WebAPIKey, error) {
	return webAPIKeysOf(ctx, s.db, organisation)
}

// RevokeWebAPIKey stops a key from logging in, and ends the sessions it
// opened.
func (s *Service) RevokeWebAPIKey(ctx context.Context, organisation, keyID string) error {
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		userID, found, err := activeKeyUserTx(ctx, tx, organisation, keyID)
		if err != nil {
			return err
		}
		if !found {
			return errorf(KindNotFound, "no active key %s in organisation %q", keyID, organisation)
		}
		return revokeWebAPIKeyTx(ctx, tx, keyID, userID, micros(s.now()))
	})
}

// KeyCredentials is a Web API key login.
type KeyCredentials struct {
	Key string
	// Unit is the session's unit; the key's default unit when empty.
	Unit          string
	ClientAddress string
}

// LoginWithKey checks a Web API key and opens a session that lapses
// WebAPIKeyLifetime after now, used or not. Failed logins are limited per
// key and per client address, as password logins are.
func (s *Service) LoginWithKey(ctx context.Context, c KeyCredentials) (string, error) {
	if c.Key == "" {
		return "", errorf(KindMissing, "a Web API key is required (the HTTP Basic user name)")
	}
	if len(c.Key) > 128 || len(c.Unit) > 128 {
		return "", errorf(KindInvalid, "a Web API key has at most 128 characters, and so has unit")
	}
	keyHash := auth.HashToken(c.Key)
	for _, l := range []struct {
		lim *auth.Limiter
		key string
	}{{s.users, "key:" + keyHash}, {s.addrs, c.ClientAddress}} {
		if blocked, left := l.lim.Blocked(l.key); blocked {
			return "", errorf(KindTooManyAttempts, "too many failed logins; try again in %d seconds", int(left.Seconds())+1)
		}
	}
	k, found, err := findActiveKey(ctx, s.db, keyHash)
	if err != nil {
		return "", err
	}
	if !found {
		s.users.Fail("key:" + keyHash)
		s.addrs.Fail(c.ClientAddress)
		prefix := c.Key
		if len(prefix) > len(webAPIKeyPrefix)+8 || !strings.HasPrefix(prefix, webAPIKeyPrefix) {
			prefix = "(not one of ours)"
		}
		s.log.WarnContext(ctx, "web api key login failed", "key_id", prefix, "client", c.ClientAddress)
		return "", errorf(KindLoginFailed, "the Web API key is not valid")
	}
	unitID := k.UnitID
	if c.Unit != "" {
		found, err := unitOfOrganisation(ctx, s.db, k.OrganisationID, c.Unit)
		if err != nil {
			return "", err
		}
		if !found {
			return "", errorf(KindNotFound, "unit %q not found in the key's organisation", c.Unit)
		}
		unitID = c.Unit
	}
	s.users.Reset("key:" + keyHash)
	token := auth.NewToken()
	now := s.now()
	if err := openKeySession(ctx, s.db, auth.HashToken(token), k.UserID, unitID, micros(now), micros(now.Add(WebAPIKeyLifetime))); err != nil {
		return "", err
	}
	s.log.InfoContext(ctx, "web api key login", "key_id", k.KeyID)
	return token, nil
}
