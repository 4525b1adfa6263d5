package partner

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/provhub/provhub/internal/sealed"
	"github.com/provhub/provhub/internal/store"
)

// Role is what a partner is, and so which calls it may make.
type Role string

// Roles.
const (
	// RoleTES is a transit entity server: topupCard, parkCard,
	// getOperationStatus, submitCardPersoData, updateCardState,
	// updateCardMetadata.
	RoleTES Role = "tes"
	// RoleWallet is a wallet server: provisionCard, and startReaderMode on
	// behalf of its devices.
	RoleWallet Role = "wallet"
	// RoleCAS is a conditional-access system provhub calls for the CRM
	// organisations it serves; it calls nothing on provhub.
	RoleCAS Role = "cas"
)

// Partner is a registered caller.
type Partner struct {
	ID   string
	Role Role
	// Issuers are the issuerIds a tes or wallet partner acts for.
	Issuers []string
	// Organisations are the CRM organisations a cas partner serves.
	Organisations []string
	// URL, when set, is where provhub calls the partner (a TES's device
	// gateway, a CAS), with Timeout bounding one call.
	URL     string
	Timeout time.Duration
	// CertSHA256 is the fingerprint (hex, lower case) of the client
	// certificate that identifies the partner, if any.
	CertSHA256 string
	// Signs tells whether the partner has a request-signing secret.
	Signs     bool
	CreatedAt time.Time
	RevokedAt *time.Time
	secret    []byte
}

// Serves reports whether p may act for issuerID.
func (p *Partner) Serves(issuerID string) bool { return slices.Contains(p.Issuers, issuerID) }

// Secret is the partner's signing secret ("" when it has none), with which
// provhub signs its own calls to the partner.
func (p *Partner) Secret() string { return string(p.secret) }

// Config sets up a Registry.
type Config struct {
	DB *store.DB
	// SecretKey seals the partners' signing secrets in the database.
	SecretKey *sealed.Key
	Logger    *slog.Logger
	Clock     func() time.Time
	// Window is how far a signed request's timestamp may be from now [5m].
	Window time.Duration
	// CacheFor is how long a partner read from the database is reused,
	// which bounds how late another instance sees a revocation [10s].
	CacheFor time.Duration
}

// Registry stores partners and authenticates their requests.
type Registry struct {
	cfg Config
	db  *store.DB
	log *slog.Logger
	now func() time.Time

	mu       sync.Mutex
	cache    map[string]cached // by "id:" + id and "cert:" + fingerprint
	purgedAt time.Time
}

type cached struct {
	p  *Partner // nil: known not to exist
	at time.Time
}

// New returns a Registry.
func New(cfg Config) (*Registry, error) {
	if cfg.DB == nil || cfg.SecretKey == nil {
		return nil, errors.New("partner: Config.DB and Config.SecretKey are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Window <= 0 {
		cfg.Window = 5 * time.Minute
	}
	if cfg.CacheFor <= 0 {
		cfg.CacheFor = 10 * time.Second
	}
	r := &Registry{cfg: cfg, db: cfg.DB, log: cfg.Logger.With("component", "partner"), now: cfg.Clock, cache: map[string]cached{}}
	if err := cfg.DB.PrepareHot(insertNonceSQL); err != nil {
		r.log.Warn("partner statements stay unprepared", "err", err)
	}
	return r, nil
}

var (
	idPattern     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	issuerPattern = regexp.MustCompile(`^[A-Za-z0-9]{1,16}$`)
)

// ErrExists is returned by Add for a partner id already registered (also
// one revoked: ids are never reused).
var ErrExists = errors.New("partner exists")

// NewPartner is what Add registers.
type NewPartner struct {
	ID   string
	Role Role
	// Issuers (tes, wallet) or Organisations (cas) the partner serves.
	Issuers       []string
	Organisations []string
	// URL and Timeout, when set, make provhub call the partner there for
	// its issuers or organisations (a TES's device gateway, a CAS) [10s].
	URL     string
	Timeout time.Duration
	// Certificate is the partner's client certificate, PEM; its SHA-256
	// fingerprint identifies the partner on a mutual-TLS connection.
	Certificate []byte
	// Signing makes a request-signing secret, returned once by Add.
	Signing bool
}

// Add registers a partner and returns its signing secret (empty unless
// np.Signing). The secret is shown this once; the database keeps it sealed.
func (r *Registry) Add(ctx context.Context, np NewPartner) (string, error) {
	scopes := np.Issuers
	switch {
	case !idPattern.MatchString(np.ID):
		return "", errors.New("partner id: 1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit")
	case np.Role != RoleTES && np.Role != RoleWallet && np.Role != RoleCAS:
		return "", fmt.Errorf("role %q: want tes, wallet or cas", np.Role)
	case np.Role == RoleCAS && (len(np.Organisations) == 0 || len(np.Issuers) > 0 || np.URL == "" || np.Certificate != nil):
		return "", errors.New("a cas partner serves at least one organisation (no issuer), has a url, and no client certificate (it never calls provhub)")
	case np.Role != RoleCAS && (len(np.Issuers) == 0 || len(np.Organisations) > 0):
		return "", errors.New("a tes or wallet partner acts for at least one issuer (and no organisation)")
	case np.Role == RoleWallet && np.URL != "":
		return "", errors.New("provhub calls one wallet server (--wallet-url): a wallet partner has no url")
	case np.Role != RoleCAS && np.Certificate == nil && !np.Signing:
		return "", errors.New("a partner needs a client certificate, a signing secret, or both")
	case np.Timeout < 0 || np.Timeout > 10*time.Minute:
		return "", errors.New("timeout: from 0 (the default, 10s) to 10m")
	}
	if np.Role == RoleCAS {
		scopes = np.Organisations
		for _, o := range scopes {
			if o == "" || len(o) > 128 {
				return "", fmt.Errorf("organisation %q: 1 to 128 characters", o)
			}
		}
	} else {
		for _, is := range scopes {
			if !issuerPattern.MatchString(is) {
				return "", fmt.Errorf("issuer id %q: 1 to 16 letters and digits", is)
			}
		}
	}
	if np.URL != "" {
		if err := checkURL(np.URL); err != nil {
			return "", err
		}
	}
	var fingerprint any
	if np.Certificate != nil {
		fp, err := CertificateFingerprint(np.Certificate)
		if err != nil {
			return "", err
		}
		fingerprint = fp
	}
	var secret string
	var sealedSecret any
	if np.Signing {
		raw := make([]byte, 32)
		_, _ = rand.Read(raw)
		secret = "phs_" + base64.RawURLEncoding.EncodeToString(raw)
		sealedSecret = r.cfg.SecretKey.Seal([]byte(secret), np.ID)
	}
	now := r.now().UnixMicro()
	err := r.db.InTx(ctx, func(tx *store.Tx) error {
		var exists int
		switch err := tx.QueryRowContext(ctx, `SELECT 1 FROM partners WHERE partner_id = $1`, np.ID).Scan(&exists); {
		case err == nil:
			return fmt.Errorf("partner %s: %w (ids are never reused: add it under another id)", np.ID, ErrExists)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		var callURL, timeout any
		if np.URL != "" {
			callURL = np.URL
			if np.Timeout > 0 {
				timeout = np.Timeout.Milliseconds()
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO partners (partner_id, role, cert_sha256, signing_secret, url, timeout_ms, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, np.ID, string(np.Role), fingerprint, sealedSecret, callURL, timeout, now); err != nil {
			return fmt.Errorf("store partner: %w", err)
		}
		for _, sc := range dedupe(scopes) {
			if np.URL != "" {
				// One system is called for a scope: a second would make the
				// choice a guess.
				var other string
				err := tx.QueryRowContext(ctx, `SELECT p.partner_id FROM partners p JOIN partner_scopes s ON s.partner_id = p.partner_id
					WHERE s.scope_id = $1 AND p.role = $2 AND p.url IS NOT NULL AND p.revoked_at IS NULL LIMIT 1`, sc, string(np.Role)).Scan(&other)
				switch {
				case err == nil:
					return fmt.Errorf("partner %s is already the %s called for %s: revoke it first", other, np.Role, sc)
				case !errors.Is(err, sql.ErrNoRows):
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO partner_scopes (partner_id, scope_id) VALUES ($1, $2)`, np.ID, sc); err != nil {
				return fmt.Errorf("store partner scopes: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	r.forget()
	r.log.InfoContext(ctx, "partner added", "partner_id", np.ID, "role", np.Role, "issuers", np.Issuers, "certificate", np.Certificate != nil, "signing", np.Signing)
	return secret, nil
}

func dedupe(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// Revoke stops a partner from calling at once on this instance, and within
// CacheFor on the others.
func (r *Registry) Revoke(ctx context.Context, id string) error {
	res, err := r.db.Writer().ExecContext(ctx, `UPDATE partners SET revoked_at = $2 WHERE partner_id = $1 AND revoked_at IS NULL`, id, r.now().UnixMicro())
	if err != nil {
		return fmt.Errorf("revoke partner: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("no active partner %s", id)
	}
	r.forget()
	r.log.InfoContext(ctx, "partner revoked", "partner_id", id)
	return nil
}

func (r *Registry) forget() {
	r.mu.Lock()
	r.cache = map[string]cached{}
	r.mu.Unlock()
}

// List returns every partner, revoked ones included, by id.
func (r *Registry) List(ctx context.Context) ([]Partner, error) {
	rows, err := r.db.ReadQuery(ctx, `SELECT partner_id FROM partners ORDER BY partner_id`)
	if err != nil {
		return nil, fmt.Errorf("list partners: %w", err)
	}
	ids, err := store.Strings(rows)
	if err != nil {
		return nil, err
	}
	out := make([]Partner, 0, len(ids))
	for _, id := range ids {
		p, err := r.read(ctx, `p.partner_id = $1`, id, true)
		if err != nil {
			return nil, err
		}
		q := *p
		q.secret = nil
		out = append(out, q)
	}
	return out, nil
}

// ErrRevoked is returned by Southbound when the only partners registered
// to be called for a scope are revoked: the scope's calls then fail rather
// than go to the default system, which serves others.
var ErrRevoked = errors.New("the partner called for this scope is revoked")

// Southbound returns the active partner of role with a URL that serves
// scope (an issuerId for tes, an organisation for cas), or nil when none
// was ever registered: the caller then uses its default.
func (r *Registry) Southbound(ctx context.Context, role Role, scope string) (*Partner, error) {
	return r.remember("south:"+string(role)+":"+scope, func() (*Partner, error) { return r.southbound(ctx, role, scope) })
}

func (r *Registry) southbound(ctx context.Context, role Role, scope string) (*Partner, error) {
	var id string
	var revoked bool
	err := r.db.ReadRow(ctx, `SELECT p.partner_id, p.revoked_at IS NOT NULL FROM partners p JOIN partner_scopes s ON s.partner_id = p.partner_id
		WHERE s.scope_id = $1 AND p.role = $2 AND p.url IS NOT NULL ORDER BY p.revoked_at IS NOT NULL, p.partner_id LIMIT 1`, scope, string(role)).Scan(&id, &revoked)
	var p *Partner
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("find the %s for %s: %w", role, scope, err)
	case revoked:
		return nil, fmt.Errorf("%s %s for %s: %w", role, id, scope, ErrRevoked)
	default:
		if p, err = r.read(ctx, `p.partner_id = $1`, id, false); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || len(raw) > 512 {
		return fmt.Errorf("url %q: an http or https URL with a host and no user information", raw)
	}
	return nil
}

// byID returns the active partner id (nil when unknown or revoked).
func (r *Registry) byID(ctx context.Context, id string) (*Partner, error) {
	return r.cached(ctx, "id:"+id, `p.partner_id = $1`, id)
}

// byCertificate returns the active partner whose certificate has the
// fingerprint (nil when none).
func (r *Registry) byCertificate(ctx context.Context, fingerprint string) (*Partner, error) {
	return r.cached(ctx, "cert:"+fingerprint, `p.cert_sha256 = $1`, fingerprint)
}

func (r *Registry) cached(ctx context.Context, key, where, arg string) (*Partner, error) {
	return r.remember(key, func() (*Partner, error) { return r.read(ctx, where, arg, false) })
}

// remember answers load's partner for key from the cache while it is
// younger than CacheFor, else loads and keeps it (errors are not kept).
func (r *Registry) remember(key string, load func() (*Partner, error)) (*Partner, error) {
	now := r.now()
	r.mu.Lock()
	c, ok := r.cache[key]
	r.mu.Unlock()
	if ok && now.Sub(c.at) < r.cfg.CacheFor {
		return c.p, nil
	}
	p, err := load()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if len(r.cache) > 10_000 { // forged ids must not grow it without bound
		r.cache = map[string]cached{}
	}
	r.cache[key] = cached{p: p, at: now}
	r.mu.Unlock()
	return p, nil
}

// read loads one partner with its issuers; nil when none matches (or, with
// revoked false, when it is revoked).
func (r *Registry) read(ctx context.Context, where, arg string, revoked bool) (*Partner, error) {
	var (
		p                     Partner
		cert, secret, callURL sql.NullString
		created               int64
		revokedAt, tmo        sql.NullInt64
	)
	err := r.db.ReadRow(ctx, `SELECT p.partner_id, p.role, p.cert_sha256, p.signing_secret, p.url, p.timeout_ms, p.created_at, p.revoked_at
		FROM partners p WHERE `+where, arg).
		Scan(&p.ID, &p.Role, &cert, &secret, &callURL, &tmo, &created, &revokedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read partner: %w", err)
	}
	if revokedAt.Valid {
		if !revoked {
			return nil, nil
		}
		t := time.UnixMicro(revokedAt.Int64).UTC()
		p.RevokedAt = &t
	}
	p.CertSHA256, p.CreatedAt, p.URL = cert.String, time.UnixMicro(created).UTC(), callURL.String
	if tmo.Valid {
		p.Timeout = time.Duration(tmo.Int64) * time.Millisecond
	}
	if secret.Valid {
		plain, err := r.cfg.SecretKey.Open(secret.String, p.ID)
		if err != nil {
			return nil, fmt.Errorf("partner %s: signing secret: %w (is this the hub's secret key?)", p.ID, err)
		}
		p.secret, p.Signs = plain, true
	}
	rows, err := r.db.ReadQuery(ctx, `SELECT scope_id FROM partner_scopes WHERE partner_id = $1 ORDER BY scope_id`, p.ID)
	if err != nil {
		return nil, fmt.Errorf("read partner scopes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var sc string
		if err := rows.Scan(&sc); err != nil {
			return nil, err
		}
		if p.Role == RoleCAS {
			p.Organisations = append(p.Organisations, sc)
		} else {
			p.Issuers = append(p.Issuers, sc)
		}
	}
	return &p, rows.Err()
}

// CertificateFingerprint is the SHA-256 (hex, lower case) of the first
// certificate in a PEM file.
func CertificateFingerprint(pemData []byte) (string, error) {
	block, _ := pem.Decode(pemData)
	if block == nil || block.Type != "CERTIFICATE" {
		return "", errors.New("the certificate file holds no PEM CERTIFICATE")
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return "", fmt.Errorf("parse certificate: %w", err)
	}
	return fingerprint(block.Bytes), nil
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
