package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCLI_IssuerKeygenAddTokenAndRotate goes the way a new issuer does:
// make a key pair, register the public key, get an access token from a
// running hub and use it; then rotate the hub's signing key.
func TestCLI_IssuerKeygenAddTokenAndRotate(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "hub.db")
	prefix := filepath.Join(dir, "issuer")
	if code, out, errs := runCLI(t, nil, "issuer", "keygen", "--out", prefix); code != 0 || !strings.Contains(out, "issuer.key") {
		t.Fatalf("keygen: %d %s %s", code, out, errs)
	}
	if st, err := os.Stat(prefix + ".key"); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v %v", st, err)
	}
	if code, _, errs := runCLI(t, nil, "issuer", "keygen", "--out", prefix); code == 0 {
		t.Error("keygen overwrote an existing key")
	} else if !strings.Contains(errs, "exists") {
		t.Errorf("keygen over an existing key: %s", errs)
	}
	if code, _, errs := runCLI(t, nil, "issuer", "add", "--db", db, "--id", "BANK000001", "--kid", "k1", "--public-key", prefix+".pub"); code != 0 {
		t.Fatalf("add: %d %s", code, errs)
	}
	if code, _, errs := runCLI(t, nil, "issuer", "add", "--db", db, "--id", "SHORT", "--kid", "k1", "--public-key", prefix+".pub"); code == 0 {
		t.Error("an issuerId of 5 characters was accepted")
	} else if !strings.Contains(errs, "10") {
		t.Errorf("short issuerId: %s", errs)
	}
	if code, _, errs := runCLI(t, nil, "issuer", "add", "--db", db, "--id", "BANK000001", "--kid", "k2", "--public-key", prefix+".key"); code == 0 {
		t.Error("a private key was accepted as a public key")
	} else if strings.Contains(errs, "PRIVATE") {
		t.Error("the refusal echoes the key")
	}

	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--listen", addr, "--db", db, "--log-level", "error"}, strings.NewReader(""), io.Discard, io.Discard)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d", code)
		}
	}()
	url := "http://" + addr
	waitHealthy(t, url)

	code, out, errs := runCLI(t, nil, "issuer", "token", "--url", url, "--id", "BANK000001", "--kid", "k1", "--key", prefix+".key")
	if code != 0 {
		t.Fatalf("token: %d %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	token := lines[len(lines)-1]
	if strings.Count(token, ".") != 2 {
		t.Fatalf("the last line is not a JWT: %q", token)
	}
	get := func(tok string) int {
		req, _ := http.NewRequest("GET", url+"/banking/v1/issuers/BANK000001/consumers/nobody/operations", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Authorised: an unknown consumer's operations are an empty list, as published.
	if st := get(token); st != http.StatusOK {
		t.Errorf("a call with the token: HTTP %d, want 200", st)
	}
	if st := get(token + "x"); st != http.StatusUnauthorized {
		t.Errorf("a call with a broken token: HTTP %d, want 401", st)
	}
	if code, _, errs := runCLI(t, nil, "issuer", "token", "--url", url, "--id", "BANK000001", "--kid", "nope", "--key", prefix+".key"); code == 0 {
		t.Error("a token was issued for an unknown kid")
	} else if !strings.Contains(errs, "invalid_grant") {
		t.Errorf("unknown kid: %s", errs)
	}
	if code, out, errs := runCLI(t, nil, "issuer", "rotate-signing-key", "--db", db); code != 0 || !strings.Contains(out, "pvh-") {
		t.Fatalf("rotate: %d %s %s", code, out, errs)
	}
	if st := get(token); st != http.StatusOK {
		t.Errorf("a token signed before the rotation: HTTP %d", st)
	}
	if code, _, errs := runCLI(t, nil, "issuer", "revoke-key", "--db", db, "--id", "BANK000001", "--kid", "k1"); code != 0 {
		t.Fatalf("revoke: %s", errs)
	}
	if code, _, _ := runCLI(t, nil, "issuer", "token", "--url", url, "--id", "BANK000001", "--kid", "k1", "--key", prefix+".key"); code == 0 {
		t.Error("a revoked key still gets tokens")
	}
	if code, _, _ := runCLI(t, nil, "issuer"); code != 2 {
		t.Errorf("bare issuer command: exit %d, want 2", code)
	}
}

func waitHealthy(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not become healthy", url)
}
