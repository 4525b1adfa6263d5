package paytv

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/provhub/provhub/internal/store"
)

// The SQL of the CRM's users, units, sessions (crm_tokens, by the SHA-256
// of the token) and Web API keys, a named function a use; found is false
// where nothing matched. Times are Unix microseconds.

// scanOne scans a row into dest, telling a missing row from an error.
func scanOne(row *sql.Row, what string, dest ...any) (found bool, err error) {
	err = row.Scan(dest...)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("find %s: %w", what, err)
	}
	return true, nil
}

// firstUnitTx returns the id of an organisation's first unit by name.
func firstUnitTx(ctx context.Context, tx *store.Tx, orgID string) (unitID string, found bool, err error) {
	found, err = scanOne(tx.QueryRowContext(ctx, `SELECT id FROM crm_units WHERE organisation_id = $1 ORDER BY name, id LIMIT 1`, orgID), "unit", &unitID)
	return unitID, found, err
}

// unitByIDOrNameTx returns the id of the organisation's unit that has
// unit as its id or its name.
func unitByIDOrNameTx(ctx context.Context, tx *store.Tx, orgID, unit string) (unitID string, found bool, err error) {
	found, err = scanOne(tx.QueryRowContext(ctx, `SELECT id FROM crm_units WHERE organisation_id = $1 AND (id = $2 OR name = $2) ORDER BY id LIMIT 1`,
		orgID, unit), "unit", &unitID)
	return unitID, found, err
}

// unitOfOrganisation tells whether unitID is a unit of the organisation.
func unitOfOrganisation(ctx context.Context, db *store.DB, orgID, unitID string) (bool, error) {
	var id string
	return scanOne(db.ReadRow(ctx, `SELECT id FROM crm_units WHERE organisation_id = $1 AND id = $2`, orgID, unitID), "unit", &id)
}

// userRecord is a CRM user as AddUser writes it.
type userRecord struct {
	ID, OrganisationID, Username, PasswordHash string
	PersonName, Email, DefaultUnitID           string
}

// saveUserTx creates a user, or sets the password, details and default
// unit of the organisation's user of that name (whose id stays).
func saveUserTx(ctx context.Context, tx *store.Tx, u userRecord) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO crm_users (id, organisation_id, username, password_hash, person_name, email, default_unit_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (organisation_id, username) DO UPDATE SET password_hash = excluded.password_hash,
			person_name = excluded.person_name, email = excluded.email, default_unit_id = excluded.default_unit_id`,
		u.ID, u.OrganisationID, u.Username, u.PasswordHash, null(u.PersonName), null(u.Email), u.DefaultUnitID); err != nil {
		return fmt.Errorf("save user %q: %w", u.Username, err)
	}
	return nil
}

// loginUser is what a password login needs of a user.
type loginUser struct {
	ID, PasswordHash, DefaultUnitID string
}

// findLoginUser reads the user named username in the organisation named
// organisation.
func findLoginUser(ctx context.Context, db *store.DB, organisation, username string) (u loginUser, found bool, err error) {
	found, err = scanOne(db.ReadRow(ctx, `SELECT u.id, u.password_hash, u.default_unit_id FROM crm_users u
		JOIN crm_organisations o ON o.id = u.organisation_id WHERE o.name = $1 AND u.username = $2`, organisation, username),
		"user", &u.ID, &u.PasswordHash, &u.DefaultUnitID)
	return u, found, err
}

// unitOfUsersOrganisation tells whether unitID is a unit of the user's
// organisation.
func unitOfUsersOrganisation(ctx context.Context, db *store.DB, userID, unitID string) (bool, error) {
	var id string
	return scanOne(db.ReadRow(ctx, `SELECT n.id FROM crm_units n JOIN crm_users u ON u.organisation_id = n.organisation_id
		WHERE u.id = $1 AND n.id = $2`, userID, unitID), "unit", &id)
}

// openSessionTx stores a password login's session, after deleting the
// sessions idle since before idleCutoff and those expired by now (a pace
// set by logins).
func openSessionTx(ctx context.Context, tx *store.Tx, tokenHash, userID, unitID string, now, idleCutoff int64) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM crm_tokens WHERE (expires_at IS NULL AND last_used_at < $1) OR expires_at <= $2`,
		idleCutoff, now); err != nil {
		return fmt.Errorf("delete expired sessions: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO crm_tokens (token_hash, user_id, unit_id, created_at, last_used_at) VALUES ($1, $2, $3, $4, $4)`,
		tokenHash, userID, unitID, now); err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	return nil
}

// openKeySession stores a Web API key login's session, which lapses at
// expires, used or not.
func openKeySession(ctx context.Context, db *store.DB, tokenHash, userID, unitID string, now, expires int64) error {
	if _, err := db.Writer().ExecContext(ctx, `INSERT INTO crm_tokens (token_hash, user_id, unit_id, created_at, last_used_at, expires_at) VALUES ($1, $2, $3, $4, $4, $5)`,
		tokenHash, userID, unitID, now, expires); err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	return nil
}

// storedSession is a session as stored: when it was last used and, for a
// Web API key's, when it lapses (0: it lapses when idle).
type storedSession struct {
	Session
	lastUsed, expires int64
}

// readSession reads the session of a token's hash with its user and unit.
func readSession(ctx context.Context, db *store.DB, tokenHash string) (*storedSession, error) {
	var (
		s       storedSession
		expires sql.NullInt64
	)
	found, err := scanOne(db.ReadRow(ctx, `SELECT t.last_used_at, t.expires_at, u.id, u.username, u.person_name, u.email, u.organisation_id,
			n.id, n.name, n.description, n.alternative_code, n.group_name, n.community_name
		FROM crm_tokens t JOIN crm_users u ON u.id = t.user_id JOIN crm_units n ON n.id = t.unit_id
		WHERE t.token_hash = $1`, tokenHash), "session", &s.lastUsed, &expires, &s.User.ID, &s.User.Username, &s.User.PersonName,
		&s.User.Email, &s.OrganisationID, &s.Unit.ID, &s.Unit.Name, &s.Unit.Description,
		&s.Unit.AlternativeCode, &s.Unit.GroupName, &s.Unit.CommunityName)
	if !found {
		return nil, err
	}
	s.expires = expires.Int64
	return &s, nil
}

// deleteSession ends a session.
func deleteSession(ctx context.Context, db *store.DB, tokenHash string) error {
	if _, err := db.Writer().ExecContext(ctx, `DELETE FROM crm_tokens WHERE token_hash = $1`, tokenHash); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// touchSession records a session's use, unless its last use is no longer
// the one the caller read (seen): of the requests that find a session due
// for a touch at the same moment (a CRM client sends many at once on one
// token), one writes it and the rest change nothing, rather than each
// committing the same write in turn. recorded tells which.
func touchSession(ctx context.Context, db *store.DB, tokenHash string, seen, now int64) (recorded bool, err error) {
	res, err := db.Writer().ExecContext(ctx, `UPDATE crm_tokens SET last_used_at = $1 WHERE token_hash = $2 AND last_used_at = $3`, now, tokenHash, seen)
	if err != nil {
		return false, fmt.Errorf("record session use: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("record session use: %w", err)
	}
	return n == 1, nil
}

// keyOwnerTx reads the user a new Web API key is for: the user's id and
// default unit, and the organisation's id.
func keyOwnerTx(ctx context.Context, tx *store.Tx, organisation, username string) (userID, unitID, orgID string, found bool, err error) {
	found, err = scanOne(tx.QueryRowContext(ctx, `SELECT u.id, u.default_unit_id, o.id FROM crm_users u JOIN crm_organisations o ON o.id = u.organisation_id
		WHERE o.name = $1 AND u.username = $2`, organisation, username), "user", &userID, &unitID, &orgID)
	return userID, unitID, orgID, found, err
}

// insertWebAPIKeyTx stores a key by its SHA-256.
func insertWebAPIKeyTx(ctx context.Context, tx *store.Tx, keyID, keyHash, userID, unitID, name string, now int64) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO crm_web_api_keys (key_id, key_hash, user_id, unit_id, name, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		keyID, keyHash, userID, unitID, name, now); err != nil {
		return fmt.Errorf("store web api key: %w", err)
	}
	return nil
}

// webAPIKeysOf lists an organisation's keys, revoked ones included, oldest
// first.
func webAPIKeysOf(ctx context.Context, db *store.DB, organisation string) ([]WebAPIKey, error) {
	rows, err := db.ReadQuery(ctx, `SELECT k.key_id, k.name, u.username, k.unit_id, k.created_at, k.revoked_at FROM crm_web_api_keys k
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
			return k, fmt.Errorf("list web api keys: %w", err)
		}
		k.CreatedAt = fromMicros(created)
		if revoked.Valid {
			t := fromMicros(revoked.Int64)
			k.RevokedAt = &t
		}
		return k, nil
	})
}

// activeKeyUserTx returns the user of an organisation's key not revoked.
func activeKeyUserTx(ctx context.Context, tx *store.Tx, organisation, keyID string) (userID string, found bool, err error) {
	found, err = scanOne(tx.QueryRowContext(ctx, `SELECT k.user_id FROM crm_web_api_keys k JOIN crm_users u ON u.id = k.user_id
		JOIN crm_organisations o ON o.id = u.organisation_id WHERE o.name = $1 AND k.key_id = $2 AND k.revoked_at IS NULL`,
		organisation, keyID), "web api key", &userID)
	return userID, found, err
}

// revokeWebAPIKeyTx revokes a key and ends the sessions of its user that
// keys opened (those with a fixed expiry).
func revokeWebAPIKeyTx(ctx context.Context, tx *store.Tx, keyID, userID string, now int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE crm_web_api_keys SET revoked_at = $2 WHERE key_id = $1`, keyID, now); err != nil {
		return fmt.Errorf("revoke web api key %s: %w", keyID, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM crm_tokens WHERE user_id = $1 AND expires_at IS NOT NULL`, userID); err != nil {
		return fmt.Errorf("end the sessions of web api key %s: %w", keyID, err)
	}
	return nil
}

// activeKey is what a key login needs of a key not revoked.
type activeKey struct {
	KeyID, UserID, UnitID, OrganisationID string
}

// findActiveKey reads the key not revoked whose SHA-256 is keyHash.
func findActiveKey(ctx context.Context, db *store.DB, keyHash string) (k activeKey, found bool, err error) {
	found, err = scanOne(db.ReadRow(ctx, `SELECT k.key_id, k.user_id, k.unit_id, u.organisation_id FROM crm_web_api_keys k JOIN crm_users u ON u.id = k.user_id
		WHERE k.key_hash = $1 AND k.revoked_at IS NULL`, keyHash), "web api key", &k.KeyID, &k.UserID, &k.UnitID, &k.OrganisationID)
	return k, found, err
}
