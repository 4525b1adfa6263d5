package cardaccount

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"time"
)

// OTPStep is the time step of an issuer OTP.
const OTPStep = 5 * time.Minute

// Step is the time step t falls in: Unix seconds divided by 300.
func Step(t time.Time) int64 { return t.Unix() / int64(OTPStep/time.Second) }

// OTP is the issuer OTP of a card account for one time step:
//
//	K    = HMAC-SHA256(issuer OTP key, "provhub-otp-v1" 0x00 issuerId 0x00 cardAccountId)
//	HOTP = RFC 4226 with HMAC-SHA256 over K and the step as 8 bytes big-endian,
//	       dynamic truncation, 6 digits
//
// The hub accepts the OTP of the current step and of the one before (so an
// OTP is good for 5 to 10 minutes), each once.
func OTP(key []byte, issuerID, cardID string, step int64) string {
	k := hmac.New(sha256.New, key)
	k.Write([]byte("provhub-otp-v1\x00" + issuerID + "\x00" + cardID))
	m := hmac.New(sha256.New, k.Sum(nil))
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], uint64(step))
	m.Write(c[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	code := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", code%1_000_000)
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
