package transitapi

import (
	"context"
	"testing"

	"github.com/provhub/provhub/internal/wire"
)

// The device API's decoders never panic; what they refuse is a 111 or 112
// with a message, and what they accept keeps the published bounds.

func decode(t *testing.T, raw string) (body, bool) {
	b, err := wire.Decode([]byte(raw))
	return b, err == nil
}

func mustFailure(t *testing.T, err error) {
	t.Helper()
	code, msg := (&API{}).classify(context.Background(), err)
	if (code != codeMissing && code != codeBadFormat) || msg == "" {
		t.Fatalf("refusal %v is not a 111 or 112 with a message", err)
	}
}

func FuzzParseDeviceCall(f *testing.F) {
	for _, s := range []string{
		`{"seId":"0A0B","walletCardId":"wc-1","step":0}`,
		`{"seId":"0A0B","operationId":"dop-1","step":2,"responses":[{"id":"read","data":"1D07"}],"responseTimeMs":12.5,"statusCode":0}`,
		`{"seId":"0A0B","step":-1}`, `{"seId":"XYZ","step":1}`, `{"seId":"0A0B","step":1,"responses":[{"id":"","data":"00"}]}`,
		`{"seId":"0A0B","step":1.5}`, `{"seId":"0A0B","step":1,"statusCode":231}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		b, ok := decode(t, raw)
		if !ok {
			return
		}
		call, err := parseDeviceCall(b)
		if err != nil {
			mustFailure(t, err)
			return
		}
		if !seIDPattern.MatchString(call.SEID) || call.Step < 0 || call.Step > 1000 || len(call.Responses) > 64 {
			t.Fatalf("accepted %+v", call)
		}
		for _, r := range call.Responses {
			if r.ID == "" || len(r.Data) > 512 || len(r.Data)%2 != 0 {
				t.Fatalf("accepted response %+v", r)
			}
		}
		if call.StatusCode != nil && *call.StatusCode != 0 && *call.StatusCode != 231 && *call.StatusCode != 232 {
			t.Fatalf("accepted device status %d", *call.StatusCode)
		}
	})
}

func FuzzParseReaderModeStart(f *testing.F) {
	for _, s := range []string{
		`{"seId":"0A0B","deviceId":"p1","issuerId":"TRANSIT1","cardContents":{"systemCode":"0003","idm":"0102030405060708","areaCodeList":[{"areaCode":"1000","keyVersion":"0001"}]}}`,
		`{"seId":"0A0B","deviceId":"p1","issuerId":"TRANSIT1","cardContents":{"systemCode":"03","idm":"01"}}`,
		`{"seId":"0A0B","deviceId":"p1","issuerId":"TRANSIT1","cardContents":[]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		b, ok := decode(t, raw)
		if !ok {
			return
		}
		r, err := parseReaderModeStart(b)
		if err != nil {
			mustFailure(t, err)
			return
		}
		if !codePattern.MatchString(r.contents.SystemCode) || !idmPattern.MatchString(r.contents.IDm) || r.issuerID == "" || len(r.issuerID) > 16 {
			t.Fatalf("accepted %+v", r)
		}
	})
}

// FuzzParseProvision: provisionCard's body (and through it checkCardAccount's
// issuerId, cardSource and cardAccountDescriptor) is refused with 111 or 112,
// or accepted within the bounds api/transit.yaml states.
func FuzzParseProvision(f *testing.F) {
	for _, s := range []string{
		`{"issuerId":"BANK000001","cardAccountDescriptor":{"opaqueCardAccountData":"sealed:v1:abc"},"cardSource":"USER-INPUT","cardLastDigits":"4711","seId":"0A0B"}`,
		`{"issuerId":"BANK000001","cardAccountDescriptor":{"walletCardAccountId":"wca-1"},"cardSource":"ON-FILE","cardLastDigits":"34711","issuerOtp":"123456","seId":"0A0B","walletAccountId":"w"}`,
		`{"issuerId":"BANK000001","cardAccountDescriptor":{"walletCardAccountId":"a","opaqueCardAccountData":"b"},"cardLastDigits":"4711","seId":"0A0B"}`,
		`{"issuerId":"BANK000001","cardAccountDescriptor":{},"cardLastDigits":"4711","seId":"0A0B"}`,
		`{"issuerId":"BANK000001","cardAccountDescriptor":{"pan":"4111"},"cardLastDigits":"4711","seId":"0A0B"}`,
		`{"issuerId":"BANK000001","cardAccountDescriptor":[],"cardSource":"NFC","cardLastDigits":"47","seId":"0A0B"}`,
		`{"issuerId":"BANK000001","cardAccountDescriptor":"x","cardLastDigits":"4711","issuerOtp":"12345a","seId":"0A0B"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		b, ok := decode(t, raw)
		if !ok {
			return
		}
		in, err := parseProvision(b)
		if err != nil {
			mustFailure(t, err)
			return
		}
		d := in.descriptor
		switch {
		case in.issuerID == "" || len(in.issuerID) > 16:
			t.Fatalf("issuerId %q", in.issuerID)
		case d.WalletCardAccountID == "" && d.OpaqueCardAccountData == "":
			t.Fatal("accepted an empty descriptor")
		case len(d.WalletCardAccountID) > 64 || len(d.OpaqueCardAccountData) > 512:
			t.Fatalf("descriptor %+v", d)
		case !digitsPattern.MatchString(in.lastDigits) || len(in.lastDigits) < 4 || len(in.lastDigits) > 5:
			t.Fatalf("cardLastDigits %q", in.lastDigits)
		case in.otp != "" && (len(in.otp) != 6 || !digitsPattern.MatchString(in.otp)):
			t.Fatalf("issuerOtp %q", in.otp)
		case !seIDPattern.MatchString(in.seID):
			t.Fatalf("seId %q", in.seID)
		}
		switch in.source {
		case "", "ON-FILE", "USER-INPUT", "CLIENT-SDK", "READER-MODE":
		default:
			t.Fatalf("cardSource %q", in.source)
		}
	})
}
