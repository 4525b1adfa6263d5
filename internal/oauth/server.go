package oauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/provhub/provhub/internal/sealed"
	"github.com/provhub/provhub/internal/store"
)

// GrantType is the only grant the token endpoint accepts.
const GrantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// TokenLifetime is how long an access token is valid; it is also the
// furthest in the future an assertion's exp may be.
const TokenLifetime = 15 * time.Minute

// Scope is granted with every access token; the issuer API does not gate
// calls by scope (the path's issuerId must be the token's).
const Scope = "issuer:consumers issuer:cards issuer:digital-cards"

// accessAudience is the aud of the access tokens provhub signs; no other
// JWT is accepted as an access token.
const accessAudience = "provhub:issuer-api"

// accessType is the typ header of access tokens (RFC 9068).
const accessType = "at+jwt"

// maxJWT bounds what is parsed at all.
const maxJWT = 8192

// Config sets up a Server.
type Config struct {
	DB     *store.DB
	Logger *slog.Logger
	Clock  func() time.Time
	// Issuer names provhub in the iss of the access tokens it signs
	// ["provhub"].
	Issuer string
	// Audiences are the aud values an assertion may name; an assertion
	// without aud is accepted ["provhub"].
	Audiences []string
	// Skew is the clock difference tolerated on an assertion's exp, iat and
	// nbf [30s].
	Skew time.Duration
	// KeyRefresh is how often signing keys are re-read, so that a rotation
	// made by another instance is seen [1m].
	KeyRefresh time.Duration
	// SecretKey seals provhub's signing keys in the database (required): a
	// copy of the database without it mints no token.
	SecretKey *sealed.Key
}

// Server issues and verifies access tokens.
type Server struct {
	cfg Config
	db  *store.DB
	log *slog.Logger
	now func() time.Time

	// usedPurgedAt is when expired used-assertion records were last removed.
	usedPurgedAt time.Time

	mu       sync.Mutex
	keys     map[string]*signingKey
	active   *signingKey
	loadedAt time.Time
	// missLoadedAt is when an unknown kid last made the keys be re-read
	// (wall time: it only bounds the database reads forged kids cause).
	missLoadedAt time.Time
}

type signingKey struct {
	kid     string
	private *ecdsa.PrivateKey
}

// New returns a Server; keys are read on first use.
func New(cfg Config) (*Server, error) {
	if cfg.DB == nil {
		return nil, errors.New("oauth: Config.DB is required")
	}
	if cfg.SecretKey == nil {
		return nil, errors.New("oauth: Config.SecretKey is required (it seals the signing keys)")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "provhub"
	}
	if len(cfg.Audiences) == 0 {
		cfg.Audiences = []string{"provhub"}
	}
	if cfg.Skew <= 0 {
		cfg.Skew = 30 * time.Second
	}
	if cfg.KeyRefresh <= 0 {
		cfg.KeyRefresh = time.Minute
	}
	return &Server{cfg: cfg, db: cfg.DB, log: cfg.Logger.With("component", "oauth"), now: cfg.Clock}, nil
}

// Error is a refusal in the terms of RFC 6749 section 5.2 (Code) with a
// description that helps the caller and reveals no secret.
type Error struct {
	Code        string
	Description string
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

// Codes of Error.
const (
	CodeInvalidRequest       = "invalid_request"
	CodeUnsupportedGrantType = "unsupported_grant_type"
	CodeInvalidGrant         = "invalid_grant"
	CodeInvalidToken         = "invalid_token"
)

func refuse(code, format string, args ...any) error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...)}
}

// Token is an issued access token.
type Token struct {
	AccessToken string
	TokenType   string
	ExpiresIn   int
	Scope       string
	ClientID    string
}

// Principal is who an access token was issued to.
type Principal struct {
	ClientID  string
	ExpiresAt time.Time
}

// clientIDPattern is the issuerId rule of the issuer API: exactly 10
// characters; provhub also keeps them printable ASCII without spaces.
var clientIDPattern = regexp.MustCompile(`^[\x21-\x7e]{10}$`)

// kidPattern bounds a key id.
var kidPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// ValidClientID tells whether id can name an issuer.
func ValidClientID(id string) bool { return clientIDPattern.MatchString(id) }

// ErrKeyExists is returned by AddClientKey for a (client, kid) pair
// already registered.
var ErrKeyExists = errors.New("this issuer already has a key with that kid")

// AddClientKey registers an issuer's EC P-256 public key (PEM) under kid.
func (s *Server) AddClientKey(ctx context.Context, clientID, kid string, publicPEM []byte) error {
	if !ValidClientID(clientID) {
		return fmt.Errorf("issuer id %q must be exactly 10 printable characters", clientID)
	}
	if !kidPattern.MatchString(kid) {
		return fmt.Errorf("kid %q must be 1 to 64 of A-Z a-z 0-9 _ . -", kid)
	}
	if _, err := ParsePublicKey(publicPEM); err != nil {
		return err
	}
	var n int
	if err := s.db.Writer().QueryRowContext(ctx, `SELECT COUNT(*) FROM oauth_client_keys WHERE client_id = $1 AND kid = $2`, clientID, kid).Scan(&n); err != nil {
		return fmt.Errorf("look up key: %w", err)
	}
	if n > 0 {
		return ErrKeyExists
	}
	if _, err := s.db.Writer().ExecContext(ctx, `INSERT INTO oauth_client_keys (client_id, kid, public_key, created_at) VALUES ($1, $2, $3, $4)`,
		clientID, kid, string(publicPEM), s.now().UnixMicro()); err != nil {
		return fmt.Errorf("store key: %w", err)
	}
	return nil
}

// RevokeClientKey stops kid from signing assertions for clientID. Access
// tokens already issued stay valid until they expire.
func (s *Server) RevokeClientKey(ctx context.Context, clientID, kid string) error {
	res, err := s.db.Writer().ExecContext(ctx, `UPDATE oauth_client_keys SET revoked_at = $3 WHERE client_id = $1 AND kid = $2 AND revoked_at IS NULL`,
		clientID, kid, s.now().UnixMicro())
	if err != nil {
		return fmt.Errorf("revoke key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("issuer %s has no active key %s", clientID, kid)
	}
	return nil
}

// Clients lists the issuers that have at least one active key.
func (s *Server) Clients(ctx context.Context) ([]string, error) {
	rows, err := s.db.ReadQuery(ctx, `SELECT DISTINCT client_id FROM oauth_client_keys WHERE revoked_at IS NULL ORDER BY client_id`)
	if err != nil {
		return nil, fmt.Errorf("list issuers: %w", err)
	}
	return store.Strings(rows)
}

func (s *Server) clientKey(ctx context.Context, clientID, kid string) (*ecdsa.PublicKey, error) {
	var raw string
	err := s.db.ReadRow(ctx, `SELECT public_key FROM oauth_client_keys WHERE client_id = $1 AND kid = $2 AND revoked_at IS NULL`, clientID, kid).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, refuse(CodeInvalidGrant, "no active key %q for issuer %q", kid, clientID)
	}
	if err != nil {
		return nil, fmt.Errorf("read issuer key: %w", err)
	}
	return ParsePublicKey([]byte(raw))
}

// Exchange checks an assertion (grant type jwt-bearer, ES256, known kid,
// iss = sub = a registered issuer, exp present and at most TokenLifetime
// ahead, aud one of ours when present, valid signature) and returns an
// access token for its issuer.
func (s *Server) Exchange(ctx context.Context, grantType, assertion string) (*Token, error) {
	switch {
	case grantType == "":
		return nil, refuse(CodeInvalidRequest, "grant_type is required")
	case grantType != GrantType:
		return nil, refuse(CodeUnsupportedGrantType, "grant_type must be %s", GrantType)
	case assertion == "":
		return nil, refuse(CodeInvalidRequest, "assertion is required")
	case len(assertion) > maxJWT:
		return nil, refuse(CodeInvalidRequest, "assertion is longer than %d characters", maxJWT)
	}
	if err := checkAssertionShape(assertion); err != nil {
		return nil, err
	}
	now := s.now()
	claims := &jwt.RegisteredClaims{}
	var keyErr error
	parser := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}), jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), jwt.WithLeeway(s.cfg.Skew), jwt.WithTimeFunc(s.now))
	_, err := parser.ParseWithClaims(assertion, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			keyErr = refuse(CodeInvalidGrant, "the assertion's header has no kid")
			return nil, keyErr
		}
		if claims.Issuer == "" {
			keyErr = refuse(CodeInvalidGrant, "the assertion has no iss")
			return nil, keyErr
		}
		// No key is registered under any other form, and a value that no
		// key can have (a NUL, which PostgreSQL cannot compare) is not
		// looked up.
		if !ValidClientID(claims.Issuer) || !kidPattern.MatchString(kid) {
			keyErr = refuse(CodeInvalidGrant, "no active key %q for issuer %q", kid, claims.Issuer)
			return nil, keyErr
		}
		key, err := s.clientKey(ctx, claims.Issuer, kid)
		keyErr = err
		return key, err
	})
	if err != nil {
		return nil, s.assertionError(err, keyErr)
	}
	switch {
	case claims.IssuedAt == nil:
		return nil, refuse(CodeInvalidGrant, "the assertion has no iat")
	case claims.Subject != claims.Issuer:
		return nil, refuse(CodeInvalidGrant, "the assertion's sub must equal its iss (the issuerId)")
	case claims.ExpiresAt.Time.After(now.Add(TokenLifetime + s.cfg.Skew)):
		return nil, refuse(CodeInvalidGrant, "the assertion's exp is more than %s ahead", TokenLifetime)
	case len(claims.Audience) > 0 && !slices.ContainsFunc(claims.Audience, func(a string) bool { return slices.Contains(s.cfg.Audiences, a) }):
		return nil, refuse(CodeInvalidGrant, "the assertion's aud is not this server")
	}
	if err := s.useOnce(ctx, claims, assertion, now); err != nil {
		return nil, err
	}
	return s.issue(ctx, claims.Issuer, now)
}

// checkAssertionShape refuses, before any signature work, an assertion
// whose header names critical extensions (none is understood here) or
// whose time claims are not JSON numbers (the JWT library would take a
// numeric string).
func checkAssertionShape(assertion string) error {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return refuse(CodeInvalidGrant, "the assertion is not a well-formed JWT")
	}
	var header map[string]json.RawMessage
	if raw, err := base64.RawURLEncoding.DecodeString(parts[0]); err != nil || json.Unmarshal(raw, &header) != nil {
		return refuse(CodeInvalidGrant, "the assertion is not a well-formed JWT")
	}
	if _, ok := header["crit"]; ok {
		return refuse(CodeInvalidGrant, "the assertion's header names critical extensions, which this server does not support")
	}
	var claims map[string]json.RawMessage
	if raw, err := base64.RawURLEncoding.DecodeString(parts[1]); err != nil || json.Unmarshal(raw, &claims) != nil {
		return refuse(CodeInvalidGrant, "the assertion is not a well-formed JWT")
	}
	for _, name := range []string{"exp", "iat", "nbf"} {
		raw, ok := claims[name]
		if !ok {
			continue
		}
		var n float64
		if len(raw) == 0 || raw[0] == '"' || json.Unmarshal(raw, &n) != nil {
			return refuse(CodeInvalidGrant, "the assertion's %s must be a number of seconds", name)
		}
	}
	return nil
}

// useOnce records the assertion as used until it expires; a second use,
// on any instance sharing the database, is refused. The key is the jti, or
// the assertion's SHA-256 when it carries none.
func (s *Server) useOnce(ctx context.Context, claims *jwt.RegisteredClaims, assertion string, now time.Time) error {
	key := "jti:" + claims.ID
	if claims.ID == "" {
		sum := sha256.Sum256([]byte(assertion))
		key = "sha256:" + hex.EncodeToString(sum[:])
	}
	if len(key) > 200 {
		return refuse(CodeInvalidGrant, "the assertion's jti is longer than 190 characters")
	}
	expires := claims.ExpiresAt.Time.Add(s.cfg.Skew)
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		s.mu.Lock()
		purge := now.Sub(s.usedPurgedAt) >= time.Minute
		if purge {
			s.usedPurgedAt = now
		}
		s.mu.Unlock()
		if purge {
			if _, err := tx.ExecContext(ctx, `DELETE FROM oauth_used_assertions WHERE expires_at < $1`, now.UnixMicro()); err != nil {
				return fmt.Errorf("purge used assertions: %w", err)
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO oauth_used_assertions (issuer_id, used_key, expires_at) VALUES ($1, $2, $3)
			ON CONFLICT (issuer_id, used_key) DO NOTHING`, claims.Issuer, key, expires.UnixMicro())
		if err != nil {
			return fmt.Errorf("record used assertion: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return refuse(CodeInvalidGrant, "the assertion was already used; sign a new one (with a new jti)")
		}
		return nil
	})
	return err
}

// assertionError turns a parse failure into a refusal; internal errors
// (the database) stay errors.
func (s *Server) assertionError(err, keyErr error) error {
	var oe *Error
	if errors.As(keyErr, &oe) {
		return oe
	}
	if keyErr != nil {
		return keyErr
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return refuse(CodeInvalidGrant, "the assertion is not a well-formed JWT")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return refuse(CodeInvalidGrant, "the assertion's signature does not verify")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return refuse(CodeInvalidGrant, "the assertion has no exp")
	case errors.Is(err, jwt.ErrTokenExpired):
		return refuse(CodeInvalidGrant, "the assertion has expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return refuse(CodeInvalidGrant, "the assertion is not valid yet")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return refuse(CodeInvalidGrant, "the assertion must be signed with ES256")
	}
	return refuse(CodeInvalidGrant, "the assertion is not acceptable")
}

type accessClaims struct {
	jwt.RegisteredClaims
	Scope string `json:"scope"`
}

func (s *Server) issue(ctx context.Context, clientID string, now time.Time) (*Token, error) {
	key, err := s.signingKey(ctx)
	if err != nil {
		return nil, err
	}
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	claims := accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.cfg.Issuer,
			Subject:   clientID,
			Audience:  jwt.ClaimStrings{accessAudience},
			ExpiresAt: jwt.NewNumericDate(now.Add(TokenLifetime)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        hex.EncodeToString(jti[:]),
		},
		Scope: Scope,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = key.kid
	tok.Header["typ"] = accessType
	signed, err := tok.SignedString(key.private)
	if err != nil {
		return nil, fmt.Errorf("sign access token: %w", err)
	}
	s.log.InfoContext(ctx, "access token issued", "issuer_id", clientID, "signing_kid", key.kid)
	return &Token{AccessToken: signed, TokenType: "Bearer", ExpiresIn: int(TokenLifetime / time.Second), Scope: Scope, ClientID: clientID}, nil
}

// Verify checks an access token: one of provhub's signing keys, ES256, our
// iss and aud, typ at+jwt, not expired.
func (s *Server) Verify(ctx context.Context, token string) (*Principal, error) {
	if token == "" || len(token) > maxJWT {
		return nil, refuse(CodeInvalidToken, "no usable bearer token")
	}
	claims := &accessClaims{}
	var keyErr error
	parser := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}), jwt.WithExpirationRequired(),
		jwt.WithIssuer(s.cfg.Issuer), jwt.WithAudience(accessAudience), jwt.WithTimeFunc(s.now))
	_, err := parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != accessType {
			keyErr = refuse(CodeInvalidToken, "not an access token")
			return nil, keyErr
		}
		kid, _ := t.Header["kid"].(string)
		key, err := s.verifyingKey(ctx, kid)
		keyErr = err
		if err != nil {
			return nil, err
		}
		return &key.private.PublicKey, nil
	})
	if err != nil {
		var oe *Error
		switch {
		case errors.As(keyErr, &oe):
			return nil, oe
		case keyErr != nil:
			return nil, keyErr
		case errors.Is(err, jwt.ErrTokenExpired):
			return nil, refuse(CodeInvalidToken, "the access token has expired")
		}
		return nil, refuse(CodeInvalidToken, "the access token is not valid")
	}
	// A token provhub signed lives TokenLifetime; one that claims longer
	// was not made by this code, whatever its signature.
	if claims.IssuedAt == nil || claims.ExpiresAt.Time.Sub(claims.IssuedAt.Time) > TokenLifetime+s.cfg.Skew {
		return nil, refuse(CodeInvalidToken, "the access token's lifetime is not one this server gives")
	}
	if !ValidClientID(claims.Subject) {
		return nil, refuse(CodeInvalidToken, "the access token names no issuer")
	}
	return &Principal{ClientID: claims.Subject, ExpiresAt: claims.ExpiresAt.Time}, nil
}

// signingKey returns the key new tokens are signed with, creating the first
// one if there is none.
func (s *Server) signingKey(ctx context.Context) (*signingKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active == nil || s.now().Sub(s.loadedAt) >= s.cfg.KeyRefresh {
		if err := s.loadLocked(ctx); err != nil {
			return nil, err
		}
	}
	if s.active == nil {
		if _, err := s.rotateLocked(ctx); err != nil {
			return nil, err
		}
	}
	return s.active, nil
}

// verifyingKey returns the signing key kid, re-reading the keys when they
// are stale, and at most once a second when kid is unknown (a rotation by
// another instance, or a forged kid).
func (s *Server) verifyingKey(ctx context.Context, kid string) (*signingKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.keys[kid]; k != nil && s.now().Sub(s.loadedAt) < s.cfg.KeyRefresh {
		return k, nil
	}
	if s.keys == nil || s.keys[kid] != nil || time.Since(s.missLoadedAt) >= time.Second {
		if s.keys != nil && s.keys[kid] == nil {
			s.missLoadedAt = time.Now()
		}
		if err := s.loadLocked(ctx); err != nil {
			return nil, err
		}
	}
	if k := s.keys[kid]; k != nil {
		return k, nil
	}
	return nil, refuse(CodeInvalidToken, "the access token was not signed by this server")
}

// keyGrace is how long a retired key keeps verifying: the lifetime of the
// last token it may have signed, plus the time other instances may take to
// notice the rotation.
func (s *Server) keyGrace() time.Duration { return TokenLifetime + s.cfg.KeyRefresh + s.cfg.Skew }

func (s *Server) loadLocked(ctx context.Context) error {
	now := s.now()
	rows, err := s.db.Writer().QueryContext(ctx, `SELECT kid, private_key, retired_at FROM oauth_signing_keys
		WHERE retired_at IS NULL OR retired_at > $1 ORDER BY created_at, kid`, now.Add(-s.keyGrace()).UnixMicro())
	if err != nil {
		return fmt.Errorf("read signing keys: %w", err)
	}
	defer rows.Close()
	keys := map[string]*signingKey{}
	var active *signingKey
	var clear []string // kept in clear by a release before sealing
	for rows.Next() {
		var kid, raw string
		var retired sql.NullInt64
		if err := rows.Scan(&kid, &raw, &retired); err != nil {
			return fmt.Errorf("read signing keys: %w", err)
		}
		pemText, err := s.cfg.SecretKey.Open(raw, kid)
		switch {
		case errors.Is(err, sealed.ErrNotSealed):
			pemText = []byte(raw)
			clear = append(clear, kid)
		case err != nil:
			return fmt.Errorf("signing key %s: %w (is this the hub's secret key?)", kid, err)
		}
		priv, err := ParsePrivateKey(pemText)
		if err != nil {
			return fmt.Errorf("signing key %s: %w", kid, err)
		}
		k := &signingKey{kid: kid, private: priv}
		keys[kid] = k
		if !retired.Valid {
			active = k // the newest active key wins
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read signing keys: %w", err)
	}
	rows.Close()
	for _, kid := range clear {
		if err := s.sealInPlace(ctx, keys[kid]); err != nil {
			return err
		}
	}
	s.keys, s.active, s.loadedAt = keys, active, now
	return nil
}

// sealInPlace replaces a signing key kept in clear by its sealed form.
func (s *Server) sealInPlace(ctx context.Context, k *signingKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(k.private)
	if err != nil {
		return fmt.Errorf("signing key %s: %w", k.kid, err)
	}
	pemText := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if _, err := s.db.Writer().ExecContext(ctx, `UPDATE oauth_signing_keys SET private_key = $2 WHERE kid = $1`,
		k.kid, s.cfg.SecretKey.Seal(pemText, k.kid)); err != nil {
		return fmt.Errorf("seal signing key %s: %w", k.kid, err)
	}
	s.log.InfoContext(ctx, "signing key sealed with the secret key", "kid", k.kid)
	return nil
}

// RotateSigningKey makes a new signing key the active one and retires the
// others; tokens they signed stay valid until they expire. It returns the
// new key's kid.
func (s *Server) RotateSigningKey(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rotateLocked(ctx)
}

func (s *Server) rotateLocked(ctx context.Context) (string, error) {
	private, _, err := GenerateKey()
	if err != nil {
		return "", err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	kid := "pvh-" + hex.EncodeToString(b[:])
	now := s.now()
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE oauth_signing_keys SET retired_at = $1 WHERE retired_at IS NULL`, now.UnixMicro()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM oauth_signing_keys WHERE retired_at < $1`, now.Add(-s.keyGrace()).UnixMicro()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO oauth_signing_keys (kid, private_key, created_at) VALUES ($1, $2, $3)`,
			kid, s.cfg.SecretKey.Seal(private, kid), now.UnixMicro())
		return err
	})
	if err != nil {
		return "", fmt.Errorf("rotate signing key: %w", err)
	}
	if err := s.loadLocked(ctx); err != nil {
		return "", err
	}
	s.log.InfoContext(ctx, "signing key rotated", "kid", kid)
	return kid, nil
}
