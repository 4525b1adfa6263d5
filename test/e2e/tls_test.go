package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/hub"
	"github.com/provhub/provhub/internal/partner"
	"github.com/provhub/provhub/internal/sealed"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

// testCA issues certificates for the TLS test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a certificate for name (a server one for 127.0.0.1 when
// server is set) and its PEM.
func (ca *testCA) issue(t *testing.T, name string, server bool) (tls.Certificate, []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestTLS_APartnerIsKnownByItsClientCertificateOnThePartnerListener runs
// the hub as provhub serve does with --tls-cert, --client-ca,
// --partner-listen and --metrics-listen.
func TestTLS_APartnerIsKnownByItsClientCertificateOnThePartnerListener(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "partners CA")
	serverCert, _ := ca.issue(t, "hub", true)
	tesCert, tesPEM := ca.issue(t, "tes-mtls", false)
	strangerCert, _ := ca.issue(t, "not registered", false)
	rogueCert, _ := newTestCA(t, "rogue CA").issue(t, "tes-mtls", false)

	h, err := hub.New(context.Background(), hub.Config{SecretKey: sealed.NewKey(), DatabaseURL: storetest.NewURL(t, store.SQLite), Migrate: true,
		Listen: "127.0.0.1:0", PartnerListen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0",
		TLS: &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: ca.pool}, ShutdownTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mainAddr, err := h.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	if _, err := h.Partners().Add(context.Background(), partner.NewPartner{ID: "tes-mtls", Role: partner.RoleTES, Issuers: []string{"TRANSIT1"}, Certificate: tesPEM}); err != nil {
		t.Fatal(err)
	}
	client := func(cert *tls.Certificate) *http.Client {
		c := &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS12}
		if cert != nil {
			c.Certificates = []tls.Certificate{*cert}
		}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: c}}
	}
	status := func(c *http.Client, addr string) (int, int, error) {
		body := `{"requestHeader":{"requestId":"r","sessionId":"s"},"issuerId":"TRANSIT1","operationId":"dop-none"}`
		resp, err := c.Post("https://"+addr+"/tsh/transitapi/1/0/getOperationStatus", "application/json", strings.NewReader(body))
		if err != nil {
			return 0, 0, err
		}
		defer resp.Body.Close()
		var a rawAnswer
		_ = json.NewDecoder(resp.Body).Decode(&a)
		return resp.StatusCode, a.ResponseHeader.StatusCode, nil
	}
	partnerAddr := h.PartnerAddr()
	for name, c := range map[string]struct {
		cert       *tls.Certificate
		http, code int
	}{
		"the registered certificate":    {&tesCert, http.StatusOK, 118}, // authenticated: the operation is unknown
		"no certificate":                {nil, http.StatusUnauthorized, 111},
		"a CA-issued, unregistered one": {&strangerCert, http.StatusUnauthorized, 112},
	} {
		got, code, err := status(client(c.cert), partnerAddr)
		if err != nil || got != c.http || code != c.code {
			t.Errorf("%s: HTTP %d statusCode %d (%v), want %d %d", name, got, code, err, c.http, c.code)
		}
	}
	// A certificate of another CA: the client sends it even though the
	// hub names only its CA, and the handshake fails.
	pushy := client(nil)
	pushy.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &rogueCert, nil }
	if got, code, err := status(pushy, partnerAddr); err == nil {
		t.Errorf("a certificate of another CA passed the TLS handshake: HTTP %d %d", got, code)
	}
	// The main listener serves no partner route, the partner listener no
	// console or northbound API, and /metrics is on its own address.
	for _, c := range []struct {
		addr, path string
		want       int
		scheme     string
	}{
		{mainAddr, "/tsh/transitapi/1/0/getOperationStatus", http.StatusNotFound, "https"},
		{partnerAddr, "/console/login", http.StatusNotFound, "https"},
		{partnerAddr, "/healthz", http.StatusOK, "https"},
		{mainAddr, "/metrics", http.StatusNotFound, "https"},
		{h.MetricsAddr(), "/metrics", http.StatusOK, "http"},
	} {
		method := http.MethodGet
		if strings.HasPrefix(c.path, "/tsh/") {
			method = http.MethodPost
		}
		req, _ := http.NewRequest(method, c.scheme+"://"+c.addr+c.path, strings.NewReader("{}"))
		resp, err := client(&tesCert).Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", c.addr, c.path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s %s: HTTP %d, want %d", c.addr, c.path, resp.StatusCode, c.want)
		}
	}
}
