package cas_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/provhub/provhub/internal/cas"
	cassim "github.com/provhub/provhub/internal/sim/cas"
)

// FuzzCommand feeds arbitrary bodies to the simulator: it must answer
// every one with a CAS reply, HTTP 200 or 400, and never panic.
func FuzzCommand(f *testing.F) {
	for _, s := range []string{
		`{"request_id":"1","command":"ADD_SUBSCRIPTIONS","smartcard_ca_id":"C1","service_ca_ids":["S"]}`,
		`{"request_id":"2","command":"CREATE_PAIRING","smartcard_ca_ids":["C1","C1"],"stb_ca_ids":["B1"]}`,
		`{"request_id":"3","command":"ADD_TO_PAIRING","smartcard_ca_id":"C2","stb_ca_ids":["B1"]}`,
		`{"request_id":"4","command":"RESET_PIN","smartcard_ca_id":"C1","pin":"99999"}`,
		`{"request_id":"5","command":"DISPLAY_FINGERPRINT","smartcard_ca_id":"C1"}`,
		`{}`, `[]`, `nul`,
	} {
		f.Add([]byte(s))
	}
	sim, err := cassim.New(cassim.Config{Seed: 3})
	if err != nil {
		f.Fatal(err)
	}
	sim.AddDevices([]string{"C1", "C2"}, []string{"B1", "B2"})
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/cas/v1/commands", bytes.NewReader(body)))
		if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest {
			t.Fatalf("HTTP %d for %q", rec.Code, body)
		}
		var reply cas.Reply
		if err := json.Unmarshal(rec.Body.Bytes(), &reply); err != nil || reply.Result == "" {
			t.Fatalf("answer %q is no CAS reply", rec.Body.String())
		}
	})
}
