package partner

import (
	"context"
	"crypto/hmac"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/provhub/provhub/internal/reqsign"
	"github.com/provhub/provhub/internal/store"
)

// AuthError is a refused credential. Missing is set when the request
// carried none at all. Its text names the reason without any secret.
type AuthError struct {
	Missing bool
	Msg     string
}

func (e *AuthError) Error() string { return e.Msg }

var noncePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{16,64}$`)

// Authenticate finds the partner that made req, whose body was read into
// body: by the client certificate the TLS layer verified against the hub's
// client CA (a registered fingerprint), else by the request's signature.
// A certificate named in a header is never looked at: only the TLS
// connection's own verified chain counts.
func (r *Registry) Authenticate(req *http.Request, body []byte) (*Partner, error) {
	ctx := req.Context()
	if req.TLS != nil && len(req.TLS.VerifiedChains) > 0 && len(req.TLS.VerifiedChains[0]) > 0 {
		p, err := r.byCertificate(ctx, fingerprint(req.TLS.VerifiedChains[0][0].Raw))
		if err != nil {
			return nil, err
		}
		if p != nil {
			return p, nil
		}
		if req.Header.Get(reqsign.HeaderSignature) == "" {
			return nil, &AuthError{Msg: "the client certificate is not registered for a partner"}
		}
	}
	if req.Header.Get(reqsign.HeaderSignature) == "" && req.Header.Get(reqsign.HeaderPartner) == "" {
		return nil, &AuthError{Missing: true, Msg: "a partner call needs a registered client certificate or a signed request (" + reqsign.HeaderPartner + ", " +
			reqsign.HeaderTimestamp + ", " + reqsign.HeaderNonce + ", " + reqsign.HeaderSignature + ")"}
	}
	return r.verifySignature(ctx, req, body)
}

func (r *Registry) verifySignature(ctx context.Context, req *http.Request, body []byte) (*Partner, error) {
	id, ts, nonce, sig := req.Header.Get(reqsign.HeaderPartner), req.Header.Get(reqsign.HeaderTimestamp), req.Header.Get(reqsign.HeaderNonce), req.Header.Get(reqsign.HeaderSignature)
	if id == "" || ts == "" || nonce == "" || sig == "" {
		return nil, &AuthError{Missing: true, Msg: "a signed request needs all four headers: " + reqsign.HeaderPartner + ", " + reqsign.HeaderTimestamp + ", " + reqsign.HeaderNonce + ", " + reqsign.HeaderSignature}
	}
	if len(id) > 64 || !noncePattern.MatchString(nonce) {
		return nil, &AuthError{Msg: "the partner id has at most 64 characters and the nonce 16 to 64 of A-Z a-z 0-9 _ -"}
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, &AuthError{Msg: reqsign.HeaderTimestamp + " must be Unix seconds"}
	}
	now := r.now()
	if d := now.Sub(time.Unix(secs, 0)); d > r.cfg.Window || d < -r.cfg.Window {
		return nil, &AuthError{Msg: fmt.Sprintf("the request's timestamp is more than %s from the hub's clock", r.cfg.Window)}
	}
	p, err := r.byID(ctx, id)
	if err != nil {
		return nil, err
	}
	// One answer for an unknown partner, a revoked one, one without a
	// secret and a wrong signature: the caller learns nothing of which.
	refused := &AuthError{Msg: "the request's signature does not verify for that partner"}
	if p == nil || !p.Signs {
		return nil, refused
	}
	want := reqsign.Signature(p.secret, id, ts, nonce, req.Method, req.URL.RequestURI(), body)
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return nil, refused
	}
	if err := r.useNonce(ctx, id, nonce, time.Unix(secs, 0).Add(r.cfg.Window)); err != nil {
		return nil, err
	}
	return p, nil
}

// insertNonceSQL records a nonce, or nothing when it was seen before.
const insertNonceSQL = `INSERT INTO partner_nonces (partner_id, nonce, expires_at) VALUES ($1, $2, $3)
	ON CONFLICT (partner_id, nonce) DO NOTHING`

// useNonce records a signed request's nonce until its timestamp leaves the
// window; a nonce seen before, by any instance, is a replay.
func (r *Registry) useNonce(ctx context.Context, id, nonce string, until time.Time) error {
	now := r.now()
	r.mu.Lock()
	purge := now.Sub(r.purgedAt) >= time.Minute
	if purge {
		r.purgedAt = now
	}
	r.mu.Unlock()
	if purge {
		if _, err := r.db.Writer().ExecContext(ctx, `DELETE FROM partner_nonces WHERE expires_at < $1`, now.UnixMicro()); err != nil {
			return fmt.Errorf("purge partner nonces: %w", err)
		}
	}
	// Concurrent calls share one durable commit on SQLite.
	var fresh bool
	err := r.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		res, err := tx.ExecCached(ctx, insertNonceSQL, id, nonce, until.UnixMicro())
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		fresh = n == 1
		return nil
	})
	if err != nil {
		return fmt.Errorf("record partner nonce: %w", err)
	}
	if !fresh {
		return &AuthError{Msg: "the request's nonce was already used: a replay"}
	}
	return nil
}

type ctxKey struct{}

// WithPartner returns ctx carrying p.
func WithPartner(ctx context.Context, p *Partner) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the partner WithPartner put in ctx, or nil.
func FromContext(ctx context.Context) *Partner {
	p, _ := ctx.Value(ctxKey{}).(*Partner)
	return p
}
