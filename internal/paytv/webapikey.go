package paytv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
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
		var userID, unitID, orgID string
		err := tx.QueryRowContext(ctx, `SELECT u.id, u.default_unit_id, o.id FROM crm_users u JOIN crm_organisations o ON o.id = u.organisation_id
			WHERE o.name = $1 AND u.username = $2`, k.Organisation, k.Username).Scan(&userID, &unitID, &orgID)
		if errors.Is(err, sql.ErrNoRows) {
			return errorf(KindNotFound, "no user %q in organisation %q", k.Username, k.Organisation)
		}
		if err != nil {
			return fmt.Errorf("find user: %w", err)
		}
		if k.Unit != "" {
			err := tx.QueryRowContext(ctx, `SELECT id FROM crm_units WHERE organisation_id = $1 AND (id = $2 OR name = $2) ORDER BY id LIMIT 1`,
				orgID, k.Unit).Scan(&unitID)
			if errors.Is(err, sql.ErrNoRows) {
				return errorf(KindNotFound, "unit %q not found in organisation %q", k.Unit, k.Organisation)
			}
			if err != nil {
				return fmt.Errorf("find unit: %w", err)
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO crm_web_api_keys (key_id, key_hash, user_id, unit_id, name, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			id, auth.HashToken(key), userID, unitID, k.Name, micros(s.now()))
		return err
	})
	if err != nil {
		return "", "", err
	}
	s.log.InfoContext(ctx, "web api key added", "key_id", id, "username", k.Username, "organisation", k.Organisation)
	return key, id, nil
}

// WebAPIKeys lists an organisation's keys, revoked ones included.
func (s *Service) WebAPIKeys(ctx context.Context, organisation string) ([]WebAPIKey, error) {
	rows, err := s.db.ReadQuery(ctx, `SELECT k.key_id, k.name, u.username, k.unit_id, k.created_at, k.revoked_at FROM crm_web_api_keys k
		JOIN crm_users u ON u.id = k.user_id JOIN crm_organisations o ON o.id = u.organisation_id
		WHERE o.name = $1 ORDER BY k.created_at, k.key_id`, organisation)
	if err != nil {
		return nil, fmt.Errorf("list web api keys: %w", err)
	}
	return store.Collect(rows, func(s store.Scanner) (WebAPIKey, error) {
		var k WebAPIKey
		var created int64
		var revoked sql.NullInt64
		if err := s.Scan(&k.ID, &k.Name, &k.Username, &k.UnitID, &created, &revoked); err != nil {
			return k, err
		}
		k.CreatedAt = fromMicros(created)
		if revoked.Valid {
			t := fromMicros(revoked.Int64)
			k.RevokedAt = &t
		}
		return k, nil
	})
}

// RevokeWebAPIKey stops a key from logging in, and ends the sessions it
// opened.
func (s *Service) RevokeWebAPIKey(ctx context.Context, organisation, keyID string) error {
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		var userID string
		err := tx.QueryRowContext(ctx, `SELECT k.user_id FROM crm_web_api_keys k JOIN crm_users u ON u.id = k.user_id
			JOIN crm_organisations o ON o.id = u.organisation_id WHERE o.name = $1 AND k.key_id = $2 AND k.revoked_at IS NULL`,
			organisation, keyID).Scan(&userID)
		if errors.Is(err, sql.ErrNoRows) {
			return errorf(KindNotFound, "no active key %s in organisation %q", keyID, organisation)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE crm_web_api_keys SET revoked_at = $2 WHERE key_id = $1`, keyID, micros(s.now())); err != nil {
			return err
		}
		// Its sessions are the user's sessions with a fixed expiry.
		_, err = tx.ExecContext(ctx, `DELETE FROM crm_tokens WHERE user_id = $1 AND expires_at IS NOT NULL`, userID)
		return err
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
	var userID, unitID, orgID, keyID string
	err := s.db.ReadRow(ctx, `SELECT k.key_id, k.user_id, k.unit_id, u.organisation_id FROM crm_web_api_keys k JOIN crm_users u ON u.id = k.user_id
		WHERE k.key_hash = $1 AND k.revoked_at IS NULL`, keyHash).Scan(&keyID, &userID, &unitID, &orgID)
	if errors.Is(err, sql.ErrNoRows) {
		s.users.Fail("key:" + keyHash)
		s.addrs.Fail(c.ClientAddress)
		prefix := c.Key
		if len(prefix) > len(webAPIKeyPrefix)+8 || !strings.HasPrefix(prefix, webAPIKeyPrefix) {
			prefix = "(not one of ours)"
		}
		s.log.WarnContext(ctx, "web api key login failed", "key_id", prefix, "client", c.ClientAddress)
		return "", errorf(KindLoginFailed, "the Web API key is not valid")
	}
	if err != nil {
		return "", fmt.Errorf("find web api key: %w", err)
	}
	if c.Unit != "" {
		err := s.db.ReadRow(ctx, `SELECT id FROM crm_units WHERE organisation_id = $1 AND id = $2`, orgID, c.Unit).Scan(&unitID)
		if errors.Is(err, sql.ErrNoRows) {
			return "", errorf(KindNotFound, "unit %q not found in the key's organisation", c.Unit)
		}
		if err != nil {
			return "", fmt.Errorf("find unit: %w", err)
		}
	}
	s.users.Reset("key:" + keyHash)
	token := auth.NewToken()
	now := s.now()
	if _, err := s.db.Writer().ExecContext(ctx, `INSERT INTO crm_tokens (token_hash, user_id, unit_id, created_at, last_used_at, expires_at) VALUES ($1, $2, $3, $4, $4, $5)`,
		auth.HashToken(token), userID, unitID, micros(now), micros(now.Add(WebAPIKeyLifetime))); err != nil {
		return "", fmt.Errorf("open session: %w", err)
	}
	s.log.InfoContext(ctx, "web api key login", "key_id", keyID)
	return token, nil
}
