package transitapi

import (
	"encoding/json"
	"errors"
	"testing"
)

// The device API's decoders never panic; what they refuse is a 111 or 112
// with a message, and what they accept keeps the published bounds.

func decode(t *testing.T, raw string) (body, bool) {
	var b body
	if err := json.Unmarshal([]byte(raw), &b); err != nil || b == nil {
		return nil, false
	}
	return b, true
}

func mustFailure(t *testing.T, err error) {
	t.Helper()
	var f *failure
	if !errors.As(err, &f) || (f.code != codeMissing && f.code != codeBadFormat) || f.msg == "" {
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
