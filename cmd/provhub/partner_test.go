package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

// TestCLI_PartnerAddListRevoke registers a signing TES, a CAS with a URL,
// lists and revokes them; the secret file is the owner's alone and the
// secret is printed nowhere else.
func TestCLI_PartnerAddListRevoke(t *testing.T) {
	db := storetest.NewURL(t, store.SQLite)
	dir := t.TempDir()
	secretOut := filepath.Join(dir, "tes.secret")
	code, out, stderr := runCLI(t, nil, "partner", "add", "--db", db, "--id", "tes-one", "--role", "tes", "--issuer", "TRANSIT1,TRANSIT2",
		"--signing", "--secret-out", secretOut)
	if code != 0 || !strings.Contains(out, "serves TRANSIT1, TRANSIT2") {
		t.Fatalf("add tes: %d %q %q", code, out, stderr)
	}
	raw, err := os.ReadFile(secretOut)
	st, _ := os.Stat(secretOut)
	if err != nil || !strings.HasPrefix(string(raw), "phs_") || st.Mode().Perm() != 0o600 || strings.Contains(out, strings.TrimSpace(string(raw))) {
		t.Fatalf("secret file %q mode %v (%v); output %q", raw, st.Mode(), err, out)
	}
	if code, _, stderr := runCLI(t, nil, "partner", "add", "--db", db, "--id", "cas-one", "--role", "cas", "--organisation", "CRMDEMO",
		"--url", "http://127.0.0.1:9300", "--timeout", "3s"); code != 0 {
		t.Fatalf("add cas: %s", stderr)
	}
	if code, _, _ := runCLI(t, nil, "partner", "add", "--db", db, "--id", "bad", "--role", "tes", "--issuer", "TRANSIT1"); code == 0 {
		t.Error("a partner without any credential was added")
	}
	code, out, _ = runCLI(t, nil, "partner", "list", "--db", db)
	if code != 0 || !strings.Contains(out, "tes-one") || !strings.Contains(out, "http://127.0.0.1:9300") || !strings.Contains(out, "active") {
		t.Fatalf("list: %q", out)
	}
	if code, _, _ := runCLI(t, nil, "partner", "revoke", "--db", db, "--id", "tes-one"); code != 0 {
		t.Fatal("revoke")
	}
	if _, out, _ := runCLI(t, nil, "partner", "list", "--db", db); !strings.Contains(out, "revoked") {
		t.Fatalf("list after revoke: %q", out)
	}
}
