package main

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provhub/provhub/internal/hub"
	"github.com/provhub/provhub/internal/sealed"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

func TestCLI_AssetsAreAddedCheckedListedAndRemoved(t *testing.T) {
	db := storetest.NewURL(t, store.SQLite)
	dir := t.TempDir()
	var b bytes.Buffer
	_ = png.Encode(&b, image.NewRGBA(image.Rect(0, 0, 20, 10)))
	art := filepath.Join(dir, "art.png")
	fake := filepath.Join(dir, "fake.png")
	if err := os.WriteFile(art, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fake, []byte("not a picture"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, nil, "asset", "add", "--db", db, "--issuer", "BANK000001", "--file", art, "--description", "blue card")
	if code != 0 || !strings.Contains(out, "CARD_ART image/png") {
		t.Fatalf("add: %d %q %q", code, out, stderr)
	}
	guid := strings.TrimSuffix(strings.Fields(out)[1], ":")
	if code, _, stderr := runCLI(t, nil, "asset", "add", "--db", db, "--issuer", "BANK000001", "--file", fake); code != 1 || !strings.Contains(stderr, "not a image/png") {
		t.Fatalf("a text file named .png: %d %q", code, stderr)
	}
	if _, out, _ := runCLI(t, nil, "asset", "list", "--db", db, "--issuer", "BANK000001"); !strings.Contains(out, guid) || !strings.Contains(out, "blue card") {
		t.Fatalf("list: %q", out)
	}
	if _, out, _ := runCLI(t, nil, "asset", "list", "--db", db, "--issuer", "BANK000002"); strings.Contains(out, guid) {
		t.Fatalf("another issuer lists the asset: %q", out)
	}
	if code, _, _ := runCLI(t, nil, "asset", "remove", "--db", db, "--issuer", "BANK000002", "--guid", guid); code != 1 {
		t.Fatal("another issuer removed the asset")
	}
	if code, _, stderr := runCLI(t, nil, "asset", "remove", "--db", db, "--issuer", "BANK000001", "--guid", guid); code != 0 {
		t.Fatalf("remove: %q", stderr)
	}
	if _, out, _ := runCLI(t, nil, "asset", "list", "--db", db, "--issuer", "BANK000001"); strings.Contains(out, guid) {
		t.Fatalf("listed after removal: %q", out)
	}
}

// The OTP the issuer computes with `provhub issuer otp` from the key file
// `provhub issuer otp-key` wrote is the one the hub accepts, once.
func TestCLI_IssuerOTPKeyAndOTP(t *testing.T) {
	db := storetest.NewURL(t, store.SQLite)
	keyFile := filepath.Join(t.TempDir(), "otp.key")
	if code, out, stderr := runCLI(t, nil, "issuer", "otp-key", "--db", db, "--id", "BANK000001", "--out", keyFile); code != 0 || strings.Contains(out+stderr, readFile(t, keyFile)) {
		t.Fatalf("otp-key: %d %q %q", code, out, stderr)
	}
	if st, _ := os.Stat(keyFile); st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %o", st.Mode().Perm())
	}
	if code, _, _ := runCLI(t, nil, "issuer", "otp-key", "--db", db, "--id", "BANK000001", "--out", keyFile); code == 0 {
		t.Fatal("otp-key overwrote a key file")
	}
	code, out, stderr := runCLI(t, nil, "issuer", "otp", "--id", "BANK000001", "--card", "CARD-1", "--key-file", keyFile)
	otp := strings.TrimSpace(out)
	if code != 0 || len(otp) != 6 {
		t.Fatalf("otp: %d %q %q", code, out, stderr)
	}
	ctx := context.Background()
	key, err := sealed.LoadKeyFile(strings.TrimPrefix(db, "sqlite:") + ".secret")
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(ctx, hub.Config{DatabaseURL: db, SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Accounts().VerifyOTP(ctx, "BANK000001", "CARD-1", otp); err != nil {
		t.Fatalf("the hub refused the issuer's OTP: %v", err)
	}
	if err := h.Accounts().VerifyOTP(ctx, "BANK000001", "CARD-1", otp); err == nil {
		t.Fatal("the hub took the OTP twice")
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
