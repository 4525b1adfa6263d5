package auth

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// ErrWrongPassword is returned by CheckPassword when the password does not
// match the hash.
var ErrWrongPassword = errors.New("wrong password")

// MinPasswordLength is the shortest password provhub accepts for a new
// account (CRM users and console operators alike); MaxPasswordLength is
// bcrypt's limit, and bounds what a login reads at all.
const (
	MinPasswordLength = 8
	MaxPasswordLength = 72
	// MaxUsernameLength bounds user names, before any lookup or log line.
	MaxUsernameLength = 64
)

// DefaultPasswordCost is bcrypt's work factor for new hashes (about 0.1 s
// a check on one core).
const DefaultPasswordCost = 11

// HashPassword returns a bcrypt hash of password made with cost (bcrypt's
// minimum when lower). bcrypt reads at most 72 bytes, so longer passwords
// are refused rather than silently cut.
func HashPassword(password string, cost int) (string, error) {
	if password == "" {
		return "", errors.New("hash password: password is empty")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), max(cost, bcrypt.MinCost))
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// CheckPassword compares password with a hash made by HashPassword.
func CheckPassword(hash, password string) error {
	err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword), errors.Is(err, bcrypt.ErrPasswordTooLong):
		return ErrWrongPassword
	default:
		return fmt.Errorf("check password: %w", err)
	}
}

// WasteTime spends the time of one check of a password hashed with cost,
// so that a login for an unknown name takes as long as one with a wrong
// password.
func WasteTime(password string, cost int) {
	_ = bcrypt.CompareHashAndPassword(dummyHash(max(cost, bcrypt.MinCost)), []byte(password))
}

var dummyHashes sync.Map // cost -> []byte

func dummyHash(cost int) []byte {
	if h, ok := dummyHashes.Load(cost); ok {
		return h.([]byte)
	}
	h, _ := bcrypt.GenerateFromPassword([]byte("provhub-no-such-user"), cost)
	dummyHashes.Store(cost, h)
	return h
}
