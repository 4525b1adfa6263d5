package partner_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/partner"
	"github.com/provhub/provhub/internal/reqsign"
	"github.com/provhub/provhub/internal/sealed"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func newRegistry(t *testing.T, db *store.DB) (*partner.Registry, *clock) {
	t.Helper()
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	r, err := partner.New(partner.Config{DB: db, SecretKey: sealed.NewKey(), Clock: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return r, c
}

func request(body string) *http.Request {
	return httptest.NewRequest(http.MethodPost, "/tsh/transitapi/1/0/topupCard", strings.NewReader(body))
}

func authError(t *testing.T, err error) *partner.AuthError {
	t.Helper()
	var ae *partner.AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want an AuthError", err)
	}
	return ae
}

func TestPartner_SignedRequestsVerifyOnceAndNothingElseDoes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r, c := newRegistry(t, db)
		ctx := context.Background()
		secret, err := r.Add(ctx, partner.NewPartner{ID: "tes-a", Role: partner.RoleTES, Issuers: []string{"ISSUERA", "ISSUERB"}, Signing: true})
		if err != nil || !strings.HasPrefix(secret, "phs_") {
			t.Fatalf("add: %q %v", secret, err)
		}
		var stored string
		if err := db.Writer().QueryRowContext(ctx, `SELECT signing_secret FROM partners WHERE partner_id = 'tes-a'`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(stored, secret) || !sealed.IsSealed(stored) {
			t.Fatal("the signing secret is readable in the database")
		}
		body := `{"issuerId":"ISSUERA"}`
		signed := request(body)
		reqsign.Sign(signed, []byte(body), "tes-a", secret, c.Now())
		p, err := r.Authenticate(signed, []byte(body))
		if err != nil || p.ID != "tes-a" || p.Role != partner.RoleTES || !p.Serves("ISSUERB") || p.Serves("ISSUERC") {
			t.Fatalf("authenticate: %+v %v", p, err)
		}
		if _, err := r.Authenticate(signed, []byte(body)); !strings.Contains(authError(t, err).Msg, "replay") {
			t.Fatalf("replayed: %v", err)
		}
		refusals := map[string]func() (*http.Request, []byte){
			"no credential": func() (*http.Request, []byte) { return request(body), []byte(body) },
			"another body": func() (*http.Request, []byte) {
				q := request(body)
				reqsign.Sign(q, []byte(body), "tes-a", secret, c.Now())
				return q, []byte(`{"issuerId":"ISSUERC"}`)
			},
			"another path": func() (*http.Request, []byte) {
				q := request(body)
				reqsign.Sign(q, []byte(body), "tes-a", secret, c.Now())
				q.URL.Path = "/tsh/transitapi/1/0/parkCard"
				return q, []byte(body)
			},
			"wrong secret": func() (*http.Request, []byte) {
				q := request(body)
				reqsign.Sign(q, []byte(body), "tes-a", "phs_guessed", c.Now())
				return q, []byte(body)
			},
			"unknown partner": func() (*http.Request, []byte) {
				q := request(body)
				reqsign.Sign(q, []byte(body), "tes-z", secret, c.Now())
				return q, []byte(body)
			},
			"ten minutes old": func() (*http.Request, []byte) {
				q := request(body)
				reqsign.Sign(q, []byte(body), "tes-a", secret, c.Now().Add(-10*time.Minute))
				return q, []byte(body)
			},
			"a header missing": func() (*http.Request, []byte) {
				q := request(body)
				reqsign.Sign(q, []byte(body), "tes-a", secret, c.Now())
				q.Header.Del(reqsign.HeaderNonce)
				return q, []byte(body)
			},
			"a client-certificate header": func() (*http.Request, []byte) {
				q := request(body)
				q.Header.Set("X-Client-Cert", "-----BEGIN CERTIFICATE-----")
				q.Header.Set("X-SSL-Client-Verify", "SUCCESS")
				return q, []byte(body)
			},
		}
		for name, mk := range refusals {
			t.Run(name, func(t *testing.T) {
				q, b := mk()
				if p, err := r.Authenticate(q, b); p != nil || err == nil {
					t.Fatalf("accepted as %+v", p)
				} else {
					authError(t, err)
				}
			})
		}
		if err := r.Revoke(ctx, "tes-a"); err != nil {
			t.Fatal(err)
		}
		q := request(body)
		reqsign.Sign(q, []byte(body), "tes-a", secret, c.Now())
		if _, err := r.Authenticate(q, []byte(body)); err == nil {
			t.Fatal("a revoked partner was accepted")
		}
		list, err := r.List(ctx)
		if err != nil || len(list) != 1 || list[0].RevokedAt == nil || !list[0].Signs {
			t.Fatalf("list: %+v %v", list, err)
		}
	})
}

// selfSigned makes a certificate and the TLS state of a connection that
// presented it (as if verified against the client CA).
func selfSigned(t *testing.T) ([]byte, *tls.ConnectionState) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tes-a"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		&tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert}}, PeerCertificates: []*x509.Certificate{cert}}
}

func TestPartner_ARegisteredClientCertificateIdentifiesItsPartnerOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r, _ := newRegistry(t, db)
		ctx := context.Background()
		certPEM, state := selfSigned(t)
		if _, err := r.Add(ctx, partner.NewPartner{ID: "ws-a", Role: partner.RoleWallet, Issuers: []string{"ISSUERA"}, Certificate: certPEM}); err != nil {
			t.Fatal(err)
		}
		q := request("{}")
		q.TLS = state
		if p, err := r.Authenticate(q, []byte("{}")); err != nil || p.ID != "ws-a" {
			t.Fatalf("%+v %v", p, err)
		}
		// Presented but not verified by the TLS layer: not a credential.
		q = request("{}")
		q.TLS = &tls.ConnectionState{PeerCertificates: state.PeerCertificates}
		if _, err := r.Authenticate(q, []byte("{}")); !authError(t, err).Missing {
			t.Fatalf("an unverified certificate: %v", err)
		}
		other, otherState := selfSigned(t)
		_ = other
		q = request("{}")
		q.TLS = otherState
		if _, err := r.Authenticate(q, []byte("{}")); !strings.Contains(authError(t, err).Msg, "not registered") {
			t.Fatalf("an unregistered certificate: %v", err)
		}
	})
}

func TestPartner_AddRefusesWhatCouldNotAuthenticateOrIsMalformed(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	r, _ := newRegistry(t, db)
	ctx := context.Background()
	for name, np := range map[string]partner.NewPartner{
		"no credential": {ID: "p1", Role: partner.RoleTES, Issuers: []string{"A"}},
		"no issuer":     {ID: "p1", Role: partner.RoleTES, Signing: true},
		"bad role":      {ID: "p1", Role: "cas", Issuers: []string{"A"}, Signing: true},
		"bad id":        {ID: "p 1", Role: partner.RoleTES, Issuers: []string{"A"}, Signing: true},
		"bad issuer":    {ID: "p1", Role: partner.RoleTES, Issuers: []string{"A;DROP"}, Signing: true},
		"bad cert":      {ID: "p1", Role: partner.RoleTES, Issuers: []string{"A"}, Certificate: []byte("nope")},
	} {
		if _, err := r.Add(ctx, np); err == nil {
			t.Errorf("%s: added", name)
		}
	}
	if _, err := r.Add(ctx, partner.NewPartner{ID: "p1", Role: partner.RoleTES, Issuers: []string{"A"}, Signing: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add(ctx, partner.NewPartner{ID: "p1", Role: partner.RoleTES, Issuers: []string{"A"}, Signing: true}); err == nil {
		t.Fatal("a partner id was registered twice")
	}
}

// TestPartner_SignerSignsWhatItSends round-trips a request through the
// client transport and a server that authenticates it.
func TestPartner_SignerSignsWhatItSends(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	r, c := newRegistry(t, db)
	secret, err := r.Add(context.Background(), partner.NewPartner{ID: "tes-a", Role: partner.RoleTES, Issuers: []string{"A"}, Signing: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(req.Body)
		if p, err := r.Authenticate(req, buf.Bytes()); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
		} else {
			_, _ = w.Write([]byte(p.ID))
		}
	}))
	defer srv.Close()
	client := &http.Client{Transport: &reqsign.Signer{ID: "tes-a", Secret: secret, Clock: c.Now}}
	resp, err := client.Post(srv.URL+"/tsh/transitapi/1/0/parkCard?x=1", "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	if resp.StatusCode != 200 || buf.String() != "tes-a" {
		t.Fatalf("%d %s", resp.StatusCode, buf.String())
	}
}

func FuzzAuthenticateHeaders(f *testing.F) {
	f.Add("tes-a", "1764583200", "abcdefghijklmnopqr", "v1=AAAA", "{}")
	f.Add("", "", "", "", "")
	f.Add("x", "-99999999999999999999", "!!", "v1=", "null")
	db := storetest.Open(f, store.SQLite)
	if _, err := db.Migrate(context.Background()); err != nil {
		f.Fatal(err)
	}
	r, err := partner.New(partner.Config{DB: db, SecretKey: sealed.NewKey()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, id, ts, nonce, sig, body string) {
		q := request(body)
		q.Header.Set(reqsign.HeaderPartner, id)
		q.Header.Set(reqsign.HeaderTimestamp, ts)
		q.Header.Set(reqsign.HeaderNonce, nonce)
		q.Header.Set(reqsign.HeaderSignature, sig)
		if p, err := r.Authenticate(q, []byte(body)); err == nil || p != nil {
			t.Fatalf("forged headers authenticated as %+v", p)
		}
	})
}
