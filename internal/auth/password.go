package auth

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// ErrWrongPassword is returned by CheckPassword when the password does not
// match the hash.
var ErrWrongPassword = errors.New("wrong password")

// PasswordCost is bcrypt's work factor for new hashes.
const PasswordCost = 11

// HashPassword returns a bcrypt hash of password. bcrypt reads at most 72
// bytes, so longer passwords are refused rather than silently cut.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", errors.New("hash password: password is empty")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), PasswordCost)
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

// dummyHash is compared against when a user does not exist, so that a
// login for an unknown name takes as long as one with a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("provhub-no-such-user"), PasswordCost)

// WasteTime spends the time of one password check.
func WasteTime(password string) {
	_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
}
