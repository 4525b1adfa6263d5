package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provhub/provhub/internal/store"
)

func TestCLI_OperatorAddReadsThePasswordFromStdin(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "hub.db")
	add := func(stdin string, args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"operator", "add", "--db", db}, args...), strings.NewReader(stdin), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := add("correct horse\n", "--username", "olga"); code != 0 || !strings.Contains(out, "/console/") {
		t.Fatalf("add: %d %s", code, out)
	}
	if code, out := add("short\n", "--username", "olga"); code == 0 || !strings.Contains(out, "at least 8") {
		t.Errorf("a short password: %d %s", code, out)
	}
	if code, _ := add("correct horse\n"); code != 2 {
		t.Errorf("no username: exit %d, want 2", code)
	}
	s, err := store.Open(context.Background(), store.Config{URL: db})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var hash string
	if err := s.Reader().QueryRow(`SELECT password_hash FROM console_operators WHERE username = 'olga'`).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(hash, "correct horse") || !strings.HasPrefix(hash, "$2") {
		t.Errorf("the password is not stored as a bcrypt hash: %q", hash)
	}
}
