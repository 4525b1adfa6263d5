package partner

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"time"
)

// The headers of a signed request.
const (
	HeaderPartner   = "X-Provhub-Partner"
	HeaderTimestamp = "X-Provhub-Timestamp"
	HeaderNonce     = "X-Provhub-Nonce"
	HeaderSignature = "X-Provhub-Signature"
)

// signatureVersion prefixes the signed string and the signature header.
const signatureVersion = "v1"

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
		if req.Header.Get(HeaderSignature) == "" {
			return nil, &AuthError{Msg: "the client certificate is not registered for a partner"}
		}
	}
	if req.Header.Get(HeaderSignature) == "" && req.Header.Get(HeaderPartner) == "" {
		return nil, &AuthError{Missing: true, Msg: "a partner call needs a registered client certificate or a signed request (" + HeaderPartner + ", " +
			HeaderTimestamp + ", " + HeaderNonce + ", " + HeaderSignature + ")"}
	}
	return r.verifySignature(ctx, req, body)
}

func (r *Registry) verifySignature(ctx context.Context, req *http.Request, body []byte) (*Partner, error) {
	id, ts, nonce, sig := req.Header.Get(HeaderPartner), req.Header.Get(HeaderTimestamp), req.Header.Get(HeaderNonce), req.Header.Get(HeaderSignature)
	if id == "" || ts == "" || nonce == "" || sig == "" {
		return nil, &AuthError{Missing: true, Msg: "a signed request needs all four headers: " + HeaderPartner + ", " + HeaderTimestamp + ", " + HeaderNonce + ", " + HeaderSignature}
	}
	if len(id) > 64 || !noncePattern.MatchString(nonce) {
		return nil, &AuthError{Msg: "the partner id has at most 64 characters and the nonce 16 to 64 of A-Z a-z 0-9 _ -"}
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, &AuthError{Msg: HeaderTimestamp + " must be Unix seconds"}
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
	want := signature(p.secret, id, ts, nonce, req.Method, req.URL.RequestURI(), body)
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return nil, refused
	}
	if err := r.useNonce(ctx, id, nonce, time.Unix(secs, 0).Add(r.cfg.Window)); err != nil {
		return nil, err
	}
	return p, nil
}

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
	res, err := r.db.Writer().ExecContext(ctx, `INSERT INTO partner_nonces (partner_id, nonce, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (partner_id, nonce) DO NOTHING`, id, nonce, until.UnixMicro())
	if err != nil {
		return fmt.Errorf("record partner nonce: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return &AuthError{Msg: "the request's nonce was already used: a replay"}
	}
	return nil
}

// signature is the value of HeaderSignature for a request.
func signature(secret []byte, id, ts, nonce, method, requestURI string, body []byte) string {
	sum := sha256.Sum256(body)
	mac := hmac.New(sha256.New, secret)
	fmt.Fprintf(mac, "%s\n%s\n%s\n%s\n%s\n%s\n%s", signatureVersion, id, ts, nonce, method, requestURI, hex.EncodeToString(sum[:]))
	return signatureVersion + "=" + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Sign adds the signature headers to req, whose body is body, for the
// partner id with its secret, at now.
func Sign(req *http.Request, body []byte, id, secret string, now time.Time) {
	var b [18]byte
	_, _ = rand.Read(b[:])
	nonce := base64.RawURLEncoding.EncodeToString(b[:])
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set(HeaderPartner, id)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignature, signature([]byte(secret), id, ts, nonce, req.Method, req.URL.RequestURI(), body))
}

// Signer is an http.RoundTripper that signs every request as a partner.
type Signer struct {
	ID, Secret string
	// Base carries the signed request [http.DefaultTransport].
	Base http.RoundTripper
	// Clock tells the time put in the signature [time.Now].
	Clock func() time.Time
}

// RoundTrip signs a copy of req and sends it.
func (s *Signer) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("sign request: %w", err)
		}
	}
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	now := time.Now
	if s.Clock != nil {
		now = s.Clock
	}
	Sign(out, body, s.ID, s.Secret, now())
	base := s.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(out)
}

// ErrNotAuthenticated is what FromContext's callers report when no partner
// authenticated the request.
var ErrNotAuthenticated = errors.New("no authenticated partner")

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
