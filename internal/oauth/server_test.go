package oauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/provhub/provhub/internal/oauth"
	"github.com/provhub/provhub/internal/sealed"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

const issuerID = "ISSUER0001"

type fixture struct {
	srv    *oauth.Server
	key    *ecdsa.PrivateKey
	pubPEM []byte
	clock  *clock
	secret *sealed.Key
}

func testSecretKey(t *testing.T) *sealed.Key {
	t.Helper()
	k, err := sealed.ParseKey(sealed.NewKeyText())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	secret := testSecretKey(t)
	srv, err := oauth.New(oauth.Config{DB: db, Clock: c.Now, Audiences: []string{"https://hub.example"}, SecretKey: secret})
	if err != nil {
		t.Fatal(err)
	}
	privPEM, pubPEM, err := oauth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := oauth.ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.AddClientKey(ctx, issuerID, "k1", pubPEM); err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, key: key, pubPEM: pubPEM, clock: c, secret: secret}
}

func (f *fixture) assertion(t *testing.T, mod func(*oauth.Assertion)) string {
	t.Helper()
	a := oauth.Assertion{IssuerID: issuerID, Kid: "k1", Expires: f.clock.Now().Add(10 * time.Minute), IssuedAt: f.clock.Now()}
	if mod != nil {
		mod(&a)
	}
	s, err := oauth.SignAssertion(f.key, a)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// b64 is the unpadded base64url of v's JSON.
func b64(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

func TestExchange_AcceptsAWellFormedAssertionAndTheTokenVerifies(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		for name, mod := range map[string]func(*oauth.Assertion){
			"without aud":          nil,
			"with our aud":         func(a *oauth.Assertion) { a.Audience = "https://hub.example" },
			"exp exactly 15m":      func(a *oauth.Assertion) { a.Expires = f.clock.Now().Add(15 * time.Minute) },
			"iat now":              func(a *oauth.Assertion) { a.IssuedAt = f.clock.Now() },
			"issuer clock 30s off": func(a *oauth.Assertion) { a.Expires = f.clock.Now().Add(15*time.Minute + 30*time.Second) },
		} {
			t.Run(name, func(t *testing.T) {
				tok, err := f.srv.Exchange(ctx, oauth.GrantType, f.assertion(t, mod))
				if err != nil {
					t.Fatalf("exchange: %v", err)
				}
				if tok.TokenType != "Bearer" || tok.ExpiresIn != 900 || tok.Scope == "" {
					t.Errorf("token = %+v", tok)
				}
				p, err := f.srv.Verify(ctx, tok.AccessToken)
				if err != nil {
					t.Fatalf("verify: %v", err)
				}
				if p.ClientID != issuerID || !p.ExpiresAt.Equal(f.clock.Now().Add(15*time.Minute)) {
					t.Errorf("principal = %+v", p)
				}
			})
		}
	})
}

func TestExchange_RefusesEveryBadAssertion(t *testing.T) {
	storetest.Each(t, refusesEveryBadAssertion)
}

func refusesEveryBadAssertion(t *testing.T, db *store.DB) {
	f := newFixture(t, db)
	ctx := context.Background()
	now := f.clock.Now()
	header := func(alg string) string { return b64(t, map[string]string{"alg": alg, "typ": "JWT", "kid": "k1"}) }
	claims := b64(t, map[string]any{"iss": issuerID, "sub": issuerID, "exp": now.Add(10 * time.Minute).Unix()})
	mac := hmac.New(sha256.New, f.pubPEM)
	mac.Write([]byte(header("HS256") + "." + claims))
	hs256 := header("HS256") + "." + claims + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	otherPriv, _, err := oauth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := oauth.ParsePrivateKey(otherPriv)
	signedByOther, _ := oauth.SignAssertion(other, oauth.Assertion{IssuerID: issuerID, Kid: "k1", Expires: now.Add(time.Minute)})

	good := f.assertion(t, nil)
	parts := strings.Split(good, ".")
	tamperedClaims := b64(t, map[string]any{"iss": issuerID, "sub": issuerID, "exp": now.Add(14 * time.Minute).Unix()})
	noExp := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": issuerID, "sub": issuerID})
	noExp.Header["kid"] = "k1"
	noExpSigned, _ := noExp.SignedString(f.key)
	noKid := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": issuerID, "sub": issuerID, "exp": now.Add(time.Minute).Unix()})
	noKidSigned, _ := noKid.SignedString(f.key)

	cases := []struct {
		name, grant, assertion, code string
	}{
		{"no grant type", "", good, oauth.CodeInvalidRequest},
		{"other grant type", "client_credentials", good, oauth.CodeUnsupportedGrantType},
		{"no assertion", oauth.GrantType, "", oauth.CodeInvalidRequest},
		{"not a JWT", oauth.GrantType, "hello", oauth.CodeInvalidGrant},
		{"alg none", oauth.GrantType, header("none") + "." + claims + ".", oauth.CodeInvalidGrant},
		{"HS256 with the public key as secret", oauth.GrantType, hs256, oauth.CodeInvalidGrant},
		{"no kid", oauth.GrantType, noKidSigned, oauth.CodeInvalidGrant},
		{"unknown kid", oauth.GrantType, f.assertion(t, func(a *oauth.Assertion) { a.Kid = "k9" }), oauth.CodeInvalidGrant},
		{"unknown issuer", oauth.GrantType, f.assertion(t, func(a *oauth.Assertion) { a.IssuerID = "ISSUER0002" }), oauth.CodeInvalidGrant},
		{"a NUL in iss", oauth.GrantType, f.assertion(t, func(a *oauth.Assertion) { a.IssuerID = "ISSUER\x00001" }), oauth.CodeInvalidGrant},
		{"a NUL in kid", oauth.GrantType, f.assertion(t, func(a *oauth.Assertion) { a.Kid = "k\x001" }), oauth.CodeInvalidGrant},
		{"expired", oauth.GrantType, f.assertion(t, func(a *oauth.Assertion) { a.Expires = now.Add(-2 * time.Minute) }), oauth.CodeInvalidGrant},
		{"no exp", oauth.GrantType, noExpSigned, oauth.CodeInvalidGrant},
		{"exp 16 minutes ahead", oauth.GrantType, f.assertion(t, func(a *oauth.Assertion) { a.Expires = now.Add(16 * time.Minute) }), oauth.CodeInvalidGrant},
		{"issued in the future", oauth.GrantType, f.assertion(t, func(a *oauth.Assertion) { a.IssuedAt = now.Add(5 * time.Minute) }), oauth.CodeInvalidGrant},
		{"wrong aud", oauth.GrantType, f.assertion(t, func(a *oauth.Assertion) { a.Audience = "https://elsewhere.example" }), oauth.CodeInvalidGrant},
		{"tampered claims", oauth.GrantType, parts[0] + "." + tamperedClaims + "." + parts[2], oauth.CodeInvalidGrant},
		{"tampered signature", oauth.GrantType, parts[0] + "." + parts[1] + "." + flip(parts[2]), oauth.CodeInvalidGrant},
		{"signed by another key", oauth.GrantType, signedByOther, oauth.CodeInvalidGrant},
		{"too long", oauth.GrantType, strings.Repeat("a", 9000), oauth.CodeInvalidRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, err := f.srv.Exchange(ctx, c.grant, c.assertion)
			var oe *oauth.Error
			if !errors.As(err, &oe) {
				t.Fatalf("want a refusal, got token %v, err %v", tok, err)
			}
			if oe.Code != c.code {
				t.Errorf("code = %s (%s), want %s", oe.Code, oe.Description, c.code)
			}
		})
	}

	// Wrong sub needs its own signature.
	wrongSub := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": issuerID, "sub": "ISSUER0002", "exp": now.Add(time.Minute).Unix()})
	wrongSub.Header["kid"] = "k1"
	s, _ := wrongSub.SignedString(f.key)
	if _, err := f.srv.Exchange(ctx, oauth.GrantType, s); err == nil {
		t.Error("an assertion whose sub differs from its iss was accepted")
	}

	// A revoked key signs nothing more.
	if err := f.srv.RevokeClientKey(ctx, issuerID, "k1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.Exchange(ctx, oauth.GrantType, good); err == nil {
		t.Error("an assertion signed with a revoked key was accepted")
	}
}

// flip changes the first character of a base64url string.
func flip(s string) string {
	c := byte('A')
	if s[0] == 'A' {
		c = 'B'
	}
	return string(c) + s[1:]
}

func TestVerify_RefusesTokensProvhubDidNotIssueOrThatExpired(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	f := newFixture(t, db)
	ctx := context.Background()
	tok, err := f.srv.Exchange(ctx, oauth.GrantType, f.assertion(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok.AccessToken, ".")
	forged, _ := json.Marshal(map[string]any{"iss": "provhub", "sub": "ISSUER0002", "aud": "provhub:issuer-api", "exp": f.clock.Now().Add(time.Hour).Unix()})
	// The issuer's own assertion is signed by a key that is not provhub's.
	assertion := f.assertion(t, nil)
	// A JWT signed by the issuer's key, shaped like an access token.
	lookalike := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": "provhub", "sub": issuerID, "aud": "provhub:issuer-api", "exp": f.clock.Now().Add(time.Minute).Unix()})
	lookalike.Header["typ"] = "at+jwt"
	lookalike.Header["kid"] = strings.Split(string(mustHeader(t, tok.AccessToken)), "\"kid\":\"")[1][:20]
	lookalikeSigned, _ := lookalike.SignedString(f.key)
	for name, bad := range map[string]string{
		"empty":                        "",
		"garbage":                      "abc.def.ghi",
		"another issuer's claims":      parts[0] + "." + base64.RawURLEncoding.EncodeToString(forged) + "." + parts[2],
		"an assertion":                 assertion,
		"signed with the issuer's key": lookalikeSigned,
	} {
		t.Run(name, func(t *testing.T) {
			if p, err := f.srv.Verify(ctx, bad); err == nil {
				t.Errorf("accepted, principal %+v", p)
			}
		})
	}
	f.clock.Advance(15*time.Minute + time.Second)
	if _, err := f.srv.Verify(ctx, tok.AccessToken); err == nil {
		t.Error("an expired access token was accepted")
	}
}

func mustHeader(t *testing.T, token string) []byte {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestRotateSigningKey_OldTokensVerifyUntilTheyExpire(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	f := newFixture(t, db)
	ctx := context.Background()
	before, err := f.srv.Exchange(ctx, oauth.GrantType, f.assertion(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	// A second instance over the same database rotates the key.
	other, err := oauth.New(oauth.Config{DB: db, Clock: f.clock.Now, SecretKey: f.secret})
	if err != nil {
		t.Fatal(err)
	}
	kid, err := other.RotateSigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after, err := other.Exchange(ctx, oauth.GrantType, f.assertion(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mustHeader(t, after.AccessToken)), kid) {
		t.Errorf("the new token is not signed with the new key %s", kid)
	}
	for _, s := range []*oauth.Server{f.srv, other} {
		for _, tok := range []*oauth.Token{before, after} {
			if _, err := s.Verify(ctx, tok.AccessToken); err != nil {
				t.Errorf("a valid token was refused after rotation: %v", err)
			}
		}
	}
	// The first instance learns of the new key within its refresh interval.
	f.clock.Advance(2 * time.Minute)
	next, err := f.srv.Exchange(ctx, oauth.GrantType, f.assertion(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mustHeader(t, next.AccessToken)), kid) {
		t.Error("the first instance still signs with the retired key")
	}
}

// rawJWT signs header and claims as given (ES256 with key), for assertions
// the library would not make.
func rawJWT(t *testing.T, key *ecdsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	input := b64(t, header) + "." + b64(t, claims)
	sig, err := jwt.SigningMethodES256.Sign(input, key)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestExchange_RefusesAnAssertionWithoutIatWithCritOrWithStringTimesAndAReplay(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		now := f.clock.Now().Unix()
		good := map[string]any{"iss": issuerID, "sub": issuerID, "exp": now + 600, "iat": now, "jti": "j-1"}
		with := func(k string, v any) map[string]any {
			c := map[string]any{}
			for n, x := range good {
				c[n] = x
			}
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
			return c
		}
		hdr := map[string]any{"alg": "ES256", "typ": "JWT", "kid": "k1"}
		for name, a := range map[string]string{
			"no iat":        rawJWT(t, f.key, hdr, with("iat", nil)),
			"exp a string":  rawJWT(t, f.key, hdr, with("exp", fmt.Sprint(now+600))),
			"iat a string":  rawJWT(t, f.key, hdr, with("iat", fmt.Sprint(now))),
			"crit header":   rawJWT(t, f.key, map[string]any{"alg": "ES256", "kid": "k1", "crit": []string{"exp"}}, good),
			"exp an object": rawJWT(t, f.key, hdr, with("exp", map[string]any{"n": 1})),
		} {
			t.Run(name, func(t *testing.T) {
				_, err := f.srv.Exchange(ctx, oauth.GrantType, a)
				var oe *oauth.Error
				if !errors.As(err, &oe) || oe.Code != oauth.CodeInvalidGrant {
					t.Fatalf("got %v, want invalid_grant", err)
				}
			})
		}
		// One assertion, two exchanges: the second is refused, with or
		// without a jti.
		for name, a := range map[string]string{
			"with jti":    rawJWT(t, f.key, hdr, good),
			"without jti": rawJWT(t, f.key, hdr, with("jti", nil)),
		} {
			t.Run("replay "+name, func(t *testing.T) {
				if _, err := f.srv.Exchange(ctx, oauth.GrantType, a); err != nil {
					t.Fatalf("first use: %v", err)
				}
				_, err := f.srv.Exchange(ctx, oauth.GrantType, a)
				var oe *oauth.Error
				if !errors.As(err, &oe) || !strings.Contains(oe.Description, "already used") {
					t.Fatalf("replay: %v", err)
				}
			})
		}
		// A new assertion reusing a jti is a replay too.
		_, err := f.srv.Exchange(ctx, oauth.GrantType, rawJWT(t, f.key, hdr, with("exp", now+700)))
		if err == nil {
			t.Fatal("an assertion reusing a jti was accepted")
		}
	})
}

// TestSigningKeys_AreSealedAndATokenMadeFromTheDatabaseAloneIsRefused plays
// an attacker with a copy of the database: the signing key column holds no
// PEM, and the key does not open without the secret key; and a token that
// claims a lifetime of ten years, signed with the real key, is refused.
func TestSigningKeys_AreSealedAndATokenMadeFromTheDatabaseAloneIsRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		tok, err := f.srv.Exchange(ctx, oauth.GrantType, f.assertion(t, nil))
		if err != nil {
			t.Fatal(err)
		}
		var kid, stored string
		if err := db.Writer().QueryRowContext(ctx, `SELECT kid, private_key FROM oauth_signing_keys`).Scan(&kid, &stored); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(stored, "PRIVATE KEY") || !sealed.IsSealed(stored) {
			t.Fatalf("the signing key is readable in the database: %.40s...", stored)
		}
		if _, err := oauth.ParsePrivateKey([]byte(stored)); err == nil {
			t.Fatal("the stored signing key parses as a private key")
		}
		if _, err := testSecretKey(t).Open(stored, kid); err == nil {
			t.Fatal("the stored signing key opens with another secret key")
		}
		// With the real key (as if stolen from memory), a ten-year token.
		plain, err := f.secret.Open(stored, kid)
		if err != nil {
			t.Fatal(err)
		}
		real, err := oauth.ParsePrivateKey(plain)
		if err != nil {
			t.Fatal(err)
		}
		now := f.clock.Now().Unix()
		for name, claims := range map[string]map[string]any{
			"ten years": {"iss": "provhub", "sub": issuerID, "aud": "provhub:issuer-api", "iat": now, "exp": now + 10*365*24*3600},
			"no iat":    {"iss": "provhub", "sub": issuerID, "aud": "provhub:issuer-api", "exp": now + 600},
		} {
			forged := rawJWT(t, real, map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": kid}, claims)
			if _, err := f.srv.Verify(ctx, forged); err == nil {
				t.Errorf("%s: a token with a lifetime this server never gives was accepted", name)
			}
		}
		if _, err := f.srv.Verify(ctx, tok.AccessToken); err != nil {
			t.Fatalf("the real token: %v", err)
		}
		// A hub started with another secret key refuses to use the keys.
		other, err := oauth.New(oauth.Config{DB: db, Clock: f.clock.Now, SecretKey: testSecretKey(t)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Verify(ctx, tok.AccessToken); err == nil || !strings.Contains(err.Error(), "secret key") {
			t.Fatalf("another secret key: %v", err)
		}
	})
}

// TestSigningKeys_KeptInClearByAnOlderReleaseAreSealedOnLoad upgrades a
// database whose signing key is PEM in clear.
func TestSigningKeys_KeptInClearByAnOlderReleaseAreSealedOnLoad(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		private, _, err := oauth.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Writer().ExecContext(ctx, `INSERT INTO oauth_signing_keys (kid, private_key, created_at) VALUES ('legacy', $1, 1)`, string(private)); err != nil {
			t.Fatal(err)
		}
		tok, err := f.srv.Exchange(ctx, oauth.GrantType, f.assertion(t, nil))
		if err != nil {
			t.Fatal(err)
		}
		var stored string
		if err := db.Writer().QueryRowContext(ctx, `SELECT private_key FROM oauth_signing_keys WHERE kid = 'legacy'`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if !sealed.IsSealed(stored) {
			t.Fatal("the key kept in clear was not sealed")
		}
		if _, err := f.srv.Verify(ctx, tok.AccessToken); err != nil {
			t.Fatal(err)
		}
	})
}
