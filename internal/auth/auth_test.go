package auth

import (
	"errors"
	"testing"
	"time"
)

func TestPassword_HashChecksOnlyTheSamePassword(t *testing.T) {
	h, err := HashPassword("s3cret", 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckPassword(h, "s3cret"); err != nil {
		t.Fatalf("right password: %v", err)
	}
	for _, wrong := range []string{"", "s3cret ", "S3CRET", string(make([]byte, 100))} {
		if err := CheckPassword(h, wrong); !errors.Is(err, ErrWrongPassword) {
			t.Errorf("CheckPassword(%q) = %v, want ErrWrongPassword", wrong, err)
		}
	}
	if _, err := HashPassword("", 4); err == nil {
		t.Error("an empty password was hashed")
	}
}

func TestToken_IsRandomHexAndHashesStably(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		tok := NewToken()
		if len(tok) != 32 {
			t.Fatalf("token %q has %d characters, want 32", tok, len(tok))
		}
		if seen[tok] {
			t.Fatalf("token %q repeated", tok)
		}
		seen[tok] = true
	}
	if a, again := HashToken("A"), HashToken("A"); a != again || a == HashToken("B") {
		t.Error("HashToken is not a stable function of its input")
	}
	if HashToken("A") == "A" {
		t.Error("HashToken returned its input")
	}
}

func TestLimiter_BlocksAfterMaxFailuresUntilTheWindowEnds(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLimiter(3, time.Minute, func() time.Time { return now })
	for i := range 3 {
		if blocked, _ := l.Blocked("alice"); blocked {
			t.Fatalf("blocked after %d failures", i)
		}
		l.Fail("alice")
	}
	blocked, left := l.Blocked("alice")
	if !blocked || left != time.Minute {
		t.Fatalf("after 3 failures: blocked=%v left=%v, want true 1m", blocked, left)
	}
	if blocked, _ := l.Blocked("bob"); blocked {
		t.Fatal("another key is blocked")
	}
	now = now.Add(time.Minute)
	if blocked, _ := l.Blocked("alice"); blocked {
		t.Fatal("still blocked after the window")
	}
	l.Fail("alice")
	l.Fail("alice")
	l.Reset("alice")
	l.Fail("alice")
	l.Fail("alice")
	if blocked, _ := l.Blocked("alice"); blocked {
		t.Fatal("Reset did not forget earlier failures")
	}
}
