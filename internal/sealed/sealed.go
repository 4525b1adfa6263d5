// Package sealed encrypts the small secrets provhub must keep in its
// database and use again (its token-signing keys, partners' request-signing
// secrets) with a key kept outside the database, so that a copy of the
// database alone yields none of them.
//
// It is AES-256-GCM from the standard library with a random nonce per value
// and the value's owner (a key id, a partner id) as additional data, so a
// sealed value moved to another row does not open. No library is needed for
// this little; the format is ours:
//
//	sealed:v1:<base64url(nonce || ciphertext || tag)>
package sealed

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// KeySize is the length of a secret key in bytes.
const KeySize = 32

const prefix = "sealed:v1:"

// Key seals and opens values. Its zero value is not usable; make one with
// ParseKey, LoadKeyFile or EnsureKeyFile.
type Key struct {
	aead cipher.AEAD
	raw  []byte
}

// ErrNotSealed is returned by Open for a value that was stored in clear
// (by a release before sealing).
var ErrNotSealed = errors.New("the value is not sealed")

// ParseKey reads a key written as base64 (standard or URL alphabet, padding
// optional) of 32 bytes, surrounding space ignored.
func ParseKey(text string) (*Key, error) {
	text = strings.TrimSpace(text)
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err = enc.DecodeString(text); err == nil {
			break
		}
	}
	if err != nil {
		return nil, errors.New("secret key: not base64")
	}
	if len(raw) != KeySize {
		return nil, fmt.Errorf("secret key: %d bytes, want %d", len(raw), KeySize)
	}
	return newKey(raw)
}

func newKey(raw []byte) (*Key, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return &Key{aead: aead, raw: raw}, nil
}

// Derive returns a 32-byte key for one purpose (HKDF-SHA256 of the secret
// key with the purpose as info): keys for other jobs (device tokens) that
// change when the secret key does, and reveal nothing of it.
func (k *Key) Derive(purpose string) []byte {
	out, err := hkdf.Key(sha256.New, k.raw, nil, "provhub "+purpose, KeySize)
	if err != nil {
		panic(err) // 32 bytes of SHA-256 output are always available
	}
	return out
}

// NewKeyText returns a fresh random key as the text ParseKey reads.
func NewKeyText() string {
	raw := make([]byte, KeySize)
	_, _ = rand.Read(raw)
	return base64.StdEncoding.EncodeToString(raw)
}

// NewKey returns a fresh random key held in memory only (scratch
// databases: benchmarks, tests).
func NewKey() *Key {
	k, err := ParseKey(NewKeyText())
	if err != nil {
		panic(err) // a fresh key of the right size always parses
	}
	return k
}

// LoadKeyFile reads a key file. It refuses a file that others may read.
func LoadKeyFile(path string) (*Key, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secret key file %s has mode %o: make it readable by its owner only (chmod 600)", path, st.Mode().Perm())
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	k, err := ParseKey(string(text))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// EnsureKeyFile loads the key file at path, creating it (mode 0600) with a
// fresh key when it does not exist. created tells which happened.
func EnsureKeyFile(path string) (k *Key, created bool, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case errors.Is(err, fs.ErrExist):
		k, err := LoadKeyFile(path)
		return k, false, err
	case err != nil:
		return nil, false, fmt.Errorf("secret key file: %w", err)
	}
	_, werr := f.WriteString(NewKeyText() + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return nil, false, fmt.Errorf("secret key file: %w", werr)
	}
	k, err = LoadKeyFile(path)
	return k, err == nil, err
}

// Seal encrypts plain, bound to owner.
func (k *Key) Seal(plain []byte, owner string) string {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	_, _ = rand.Read(nonce)
	out := k.aead.Seal(nonce, nonce, plain, []byte(owner))
	return prefix + base64.RawURLEncoding.EncodeToString(out)
}

// IsSealed reports whether s has the sealed format.
func IsSealed(s string) bool { return strings.HasPrefix(s, prefix) }

// Open decrypts a value sealed for owner. A value in clear gives
// ErrNotSealed; a value sealed with another key or for another owner, or
// altered, gives an error that says so without revealing anything.
func (k *Key) Open(s, owner string) ([]byte, error) {
	body, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return nil, ErrNotSealed
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || len(raw) < k.aead.NonceSize()+k.aead.Overhead() {
		return nil, errors.New("sealed value: malformed")
	}
	n := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, raw[:n], raw[n:], []byte(owner))
	if err != nil {
		return nil, errors.New("sealed value: does not open with this secret key (another key, another owner, or altered)")
	}
	return plain, nil
}
