package transitapi

import (
	"testing"

	"github.com/provhub/provhub/internal/southbound"
	"github.com/provhub/provhub/internal/wire"
)

// deviceCallBody is a device's call in the middle of a top-up: a step with
// the card's answers.
const deviceCallBody = `{"requestHeader":{"requestId":"r-1","sessionId":"s-1","generationDateTime":"2026-12-02T10:00:00Z"},
	"deviceToken":"dt-0123456789abcdef0123456789abcdef","seId":"0102A0B1","operationId":"dop-1","step":2,
	"responses":[{"id":"read","data":"1D0701020304050607080000"},{"id":"write","data":"0D0701020304050607080000"}],"responseTimeMs":12.5,"statusCode":0}`

// BenchmarkReadDeviceCall measures what reading a device call's body
// costs the API before the domain runs: decoding, the request header and
// every member's published form.
func BenchmarkReadDeviceCall(b *testing.B) {
	raw := []byte(deviceCallBody)
	b.ReportAllocs()
	for b.Loop() {
		body, err := wire.Decode(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := southbound.ReadRequestHeader(body, true); err != nil {
			b.Fatal(err)
		}
		if _, err := parseDeviceCall(body); err != nil {
			b.Fatal(err)
		}
	}
}
