// Package reqsign signs partners' HTTP requests to provhub and computes the
// signature provhub checks: HMAC-SHA256 over a version, the partner id, a
// Unix timestamp, a random nonce, the method, the path with its query and
// the SHA-256 of the body, in the spirit of Standard Webhooks. It is its own
// package so that clients (the simulators, a partner's own code) sign
// without importing the hub's registry and storage.
package reqsign

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
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

// Signature is the value of HeaderSignature for a request.
func Signature(secret []byte, id, ts, nonce, method, requestURI string, body []byte) string {
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
	req.Header.Set(HeaderSignature, Signature([]byte(secret), id, ts, nonce, req.Method, req.URL.RequestURI(), body))
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
