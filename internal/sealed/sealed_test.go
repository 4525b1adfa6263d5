package sealed_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/provhub/provhub/internal/sealed"
)

func TestSealed_OpensOnlyWithTheSameKeyAndOwner(t *testing.T) {
	k, err := sealed.ParseKey(sealed.NewKeyText())
	if err != nil {
		t.Fatal(err)
	}
	other, _ := sealed.ParseKey(sealed.NewKeyText())
	s := k.Seal([]byte("-----BEGIN PRIVATE KEY-----"), "kid-1")
	if !sealed.IsSealed(s) || strings.Contains(s, "PRIVATE") {
		t.Fatalf("sealed value %q", s)
	}
	if got, err := k.Open(s, "kid-1"); err != nil || string(got) != "-----BEGIN PRIVATE KEY-----" {
		t.Fatalf("open: %q %v", got, err)
	}
	if s2 := k.Seal([]byte("-----BEGIN PRIVATE KEY-----"), "kid-1"); s2 == s {
		t.Error("two seals of one value are equal: the nonce is not fresh")
	}
	flipped := []byte(s)
	flipped[len(flipped)-3] ^= 1
	for name, tc := range map[string]struct {
		k     *sealed.Key
		value string
		owner string
	}{
		"another key":   {other, s, "kid-1"},
		"another owner": {k, s, "kid-2"},
		"altered":       {k, string(flipped), "kid-1"},
		"truncated":     {k, s[:20], "kid-1"},
	} {
		if _, err := tc.k.Open(tc.value, tc.owner); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
	if _, err := k.Open("-----BEGIN PRIVATE KEY-----", "kid-1"); !errors.Is(err, sealed.ErrNotSealed) {
		t.Errorf("a value in clear: %v", err)
	}
}

func TestSealed_ParseKeyRefusesWrongLengthsAndText(t *testing.T) {
	for _, text := range []string{"", "not base64 !", "c2hvcnQ=", strings.Repeat("A", 64)} {
		if _, err := sealed.ParseKey(text); err == nil {
			t.Errorf("ParseKey(%q) accepted", text)
		}
	}
}

func TestSealed_KeyFileIsCreatedOwnerOnlyAndAWorldReadableOneIsRefused(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "secret.key")
	k1, created, err := sealed.EnsureKeyFile(path)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o", st.Mode().Perm())
	}
	k2, created, err := sealed.EnsureKeyFile(path)
	if err != nil || created {
		t.Fatalf("reuse: %v %v", created, err)
	}
	if _, err := k2.Open(k1.Seal([]byte("x"), "o"), "o"); err != nil {
		t.Fatalf("the reused file holds another key: %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := sealed.LoadKeyFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable key file: %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	k, _ := sealed.ParseKey(sealed.NewKeyText())
	f.Add(k.Seal([]byte("secret"), "o"), "o")
	f.Add("sealed:v1:", "")
	f.Add("sealed:v1:!!!", "o")
	f.Fuzz(func(t *testing.T, value, owner string) {
		_, _ = k.Open(value, owner) // never panics
	})
}

func TestSealed_DerivedKeysDependOnPurposeAndKey(t *testing.T) {
	k, _ := sealed.ParseKey(sealed.NewKeyText())
	a, b := k.Derive("device-token"), k.Derive("device-token")
	if len(a) != sealed.KeySize || string(a) != string(b) {
		t.Fatal("a derived key is not stable")
	}
	if string(k.Derive("other")) == string(a) || string(sealed.NewKey().Derive("device-token")) == string(a) {
		t.Fatal("derived keys do not depend on purpose and key")
	}
}
