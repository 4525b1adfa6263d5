package cardaccount

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/issuer"
	"github.com/provhub/provhub/internal/sealed"
)

// The OTP an issuer computes from the documented algorithm is the one the
// hub checks: a fixed key, account and step give a fixed code, and any
// change of input changes it.
func TestOTP_FollowsTheDocumentedAlgorithm(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	got := OTP(key, "BANK000001", "CARD-1", 5_000_000)
	if len(got) != 6 || strings.Trim(got, "0123456789") != "" {
		t.Fatalf("OTP %q is not six digits", got)
	}
	if again := OTP(key, "BANK000001", "CARD-1", 5_000_000); again != got {
		t.Fatalf("OTP is not a function of its inputs: %s then %s", got, again)
	}
	for name, other := range map[string]string{
		"another step":    OTP(key, "BANK000001", "CARD-1", 5_000_001),
		"another card":    OTP(key, "BANK000001", "CARD-2", 5_000_000),
		"another issuer":  OTP(key, "BANK000002", "CARD-1", 5_000_000),
		"another key":     OTP([]byte("fedcba9876543210fedcba9876543210"), "BANK000001", "CARD-1", 5_000_000),
		"ambiguous split": OTP(key, "BANK000001C", "ARD-1", 5_000_000),
	} {
		if other == got {
			t.Errorf("%s gives the same OTP %s", name, got)
		}
	}
	if Step(time.Unix(600, 0)) != 2 || Step(time.Unix(599, 0)) != 1 {
		t.Fatal("steps are 300 s")
	}
}

// A known answer, computed once from the algorithm's definition in the
// package documentation, so that a change to the algorithm (which would
// break every issuer's OTPs) fails here.
func TestOTP_KnownAnswer(t *testing.T) {
	key, _ := base64.StdEncoding.DecodeString("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if got := OTP(key, "BANK000001", "CARD-1", 1); got != knownOTP {
		t.Fatalf("OTP = %s, want %s", got, knownOTP)
	}
}

func service(now time.Time) *Service {
	return &Service{key: sealed.NewKey(), now: func() time.Time { return now }, ttl: 15 * time.Minute}
}

func TestOpaqueData_OpensOnlyForItsIssuerUntilItExpires(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := service(now)
	raw, _ := json.Marshal(opaque{Card: "CARD-1", Expires: now.Add(15 * time.Minute).Unix(), Issued: now.Unix()})
	data := s.key.Seal(raw, dataOwner("BANK000001"))
	if card, err := s.openData("BANK000001", data); err != nil || card != "CARD-1" {
		t.Fatalf("open: %q %v", card, err)
	}
	if strings.Contains(data, "CARD-1") {
		t.Fatal("the card account id is readable in the opaque data")
	}
	cases := map[string]struct {
		issuer, data string
		kind         ErrorKind
	}{
		"another issuer": {"BANK000002", data, KindInvalidInfo},
		"altered":        {"BANK000001", data[:len(data)-2] + "AA", KindInvalidInfo},
		"another hub":    {"BANK000001", sealed.NewKey().Seal(raw, dataOwner("BANK000001")), KindInvalidInfo},
		"not sealed":     {"BANK000001", "CARD-1", KindBadFormat},
		"too long":       {"BANK000001", data + strings.Repeat("A", MaxDataLength), KindBadFormat},
	}
	for name, c := range cases {
		if _, err := s.openData(c.issuer, c.data); KindOf(err) != c.kind {
			t.Errorf("%s: %v, want kind %d", name, err, c.kind)
		}
	}
	later := &Service{key: s.key, now: func() time.Time { return now.Add(15 * time.Minute) }}
	if _, err := later.openData("BANK000001", data); KindOf(err) != KindInvalidInfo || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired data: %v", err)
	}
}

func TestCheckLastDigits(t *testing.T) {
	for _, c := range []struct {
		registered, given string
		kind              ErrorKind
	}{
		{"4711", "4711", 0}, {"34711", "4711", 0}, {"4711", "34711", 0}, {"34711", "34711", 0},
		{"4711", "4712", KindInvalidInfo}, {"34711", "24711", KindInvalidInfo}, {"", "1234", 0},
		{"4711", "471", KindBadFormat}, {"4711", "47a1", KindBadFormat}, {"4711", "123456", KindBadFormat},
	} {
		err := CheckLastDigits(&issuer.Profile{LastDigits: c.registered}, c.given)
		if KindOf(err) != c.kind || (c.kind == 0) != (err == nil) {
			t.Errorf("registered %q, given %q: %v, want kind %d", c.registered, c.given, err, c.kind)
		}
	}
}

func TestEligible(t *testing.T) {
	for _, c := range []struct {
		p    issuer.Profile
		kind ErrorKind
	}{
		{issuer.Profile{State: issuer.CardActive}, 0},
		{issuer.Profile{State: issuer.CardActive, ConsumerState: issuer.ConsumerActive}, 0},
		{issuer.Profile{State: issuer.CardSuspended}, KindBlocked},
		{issuer.Profile{State: issuer.CardInactive}, KindDeclined},
		{issuer.Profile{State: issuer.CardDeleted}, KindUnknownAccount},
		{issuer.Profile{State: issuer.CardActive, OngoingOperation: "DELETE"}, KindDeclined},
		{issuer.Profile{State: issuer.CardActive, ConsumerState: issuer.ConsumerDeleting}, KindDeclined},
	} {
		if err := eligible(&c.p); KindOf(err) != c.kind || (c.kind == 0) != (err == nil) {
			t.Errorf("%+v: %v, want kind %d", c.p, err, c.kind)
		}
	}
}

// knownOTP is OTP(key 00 01 .. 1f, "BANK000001", "CARD-1", step 1), worked
// out apart from this package with RFC 4226's byte-by-byte truncation.
const knownOTP = "081814"

// FuzzOpenData: whatever a wallet presents as opaqueCardAccountData, it
// opens only to a card when the hub made it for that issuer, and every
// refusal is a bad format or invalid information, never a panic.
func FuzzOpenData(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	s := service(now)
	raw, _ := json.Marshal(opaque{Card: "CARD-1", Expires: now.Add(time.Minute).Unix(), Issued: now.Unix()})
	good := s.key.Seal(raw, dataOwner("BANK000001"))
	f.Add("BANK000001", good)
	f.Add("BANK000002", good)
	f.Add("BANK000001", "sealed:v1:")
	f.Add("BANK000001", "sealed:v1:"+strings.Repeat("A", 40))
	f.Add("BANK000001", "CARD-1")
	f.Fuzz(func(t *testing.T, issuerID, data string) {
		card, err := s.openData(issuerID, data)
		if err != nil {
			if k := KindOf(err); k != KindBadFormat && k != KindInvalidInfo {
				t.Fatalf("refusal %v of kind %d", err, k)
			}
			return
		}
		if card != "CARD-1" || issuerID != "BANK000001" || data != good {
			t.Fatalf("%q opened for %q to card %q", data, issuerID, card)
		}
	})
}
