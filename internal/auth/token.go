package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// NewToken returns a random session token: 128 bits written as 32
// upper-case hex digits, the form CRM clients already handle.
func NewToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// HashToken is the form a token is stored and looked up in. Tokens are
// random and long, so a fast hash suffices (no salt or stretching needed).
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewID returns a random identifier in the 32-hex-digit style of CRM ids.
func NewID() string { return NewToken() }
