package oauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// GenerateKey makes a new EC P-256 key pair and returns the private key as
// PKCS #8 PEM and the public key as SubjectPublicKeyInfo PEM.
func GenerateKey() (private, public []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	return encodeKey(key)
}

func encodeKey(key *ecdsa.PrivateKey) (private, public []byte, err error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode private key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), nil
}

// ParsePrivateKey reads an EC P-256 private key from PEM (PKCS #8 or SEC 1).
func ParsePrivateKey(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block in the private key")
	}
	var key any
	var err error
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("the private key is not an EC P-256 key")
	}
	return ec, nil
}

// ParsePublicKey reads an EC P-256 public key from PEM
// (SubjectPublicKeyInfo, or a certificate).
func ParsePublicKey(data []byte) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block in the public key")
	}
	var key any
	switch block.Type {
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		key = cert.PublicKey
	default:
		var err error
		if key, err = x509.ParsePKIXPublicKey(block.Bytes); err != nil {
			return nil, fmt.Errorf("parse public key: %w", err)
		}
	}
	ec, ok := key.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("the public key is not an EC P-256 key")
	}
	return ec, nil
}

// Assertion is what an issuer puts in the JWT it exchanges for a token.
type Assertion struct {
	IssuerID string
	Kid      string
	// Audience is sent as aud when not empty.
	Audience string
	// Expires is the exp claim.
	Expires time.Time
	// IssuedAt is sent as iat [now].
	IssuedAt time.Time
	// ID is sent as jti [16 random bytes in hex]; the token endpoint takes
	// an assertion once.
	ID string
}

// SignAssertion returns the compact ES256 JWT of a: iss = sub = IssuerID,
// kid in the header.
func SignAssertion(key *ecdsa.PrivateKey, a Assertion) (string, error) {
	claims := jwt.RegisteredClaims{
		Issuer:    a.IssuerID,
		Subject:   a.IssuerID,
		ExpiresAt: jwt.NewNumericDate(a.Expires),
	}
	if a.Audience != "" {
		claims.Audience = jwt.ClaimStrings{a.Audience}
	}
	if a.IssuedAt.IsZero() {
		a.IssuedAt = time.Now()
	}
	claims.IssuedAt = jwt.NewNumericDate(a.IssuedAt)
	if a.ID == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		a.ID = hex.EncodeToString(b[:])
	}
	claims.ID = a.ID
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = a.Kid
	s, err := tok.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("sign assertion: %w", err)
	}
	return s, nil
}
