package wallet

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/apdu"
)

// BenchmarkSendScript measures the simulator's own cost of a sendScript
// call (no network), spread over 1,000 secure elements.
func BenchmarkSendScript(b *testing.B) {
	sim, err := New(Config{TaskDelay: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	const ses = 1000
	for i := range ses {
		se := fmt.Sprintf("%08X", i)
		_ = sim.AddDevice(se, "d")
		_ = sim.AddCard(fmt.Sprintf("wc-%d", i), se, apdu.AID{0xA0, 0, 0, 1, 0x51, 0x53, 0x50, 0x01})
	}
	bodies := make([][]byte, b.N)
	for i := range b.N {
		bodies[i] = fmt.Appendf(nil, `{"requestHeader":{"requestId":"r%d","sessionId":"s","generationDateTime":"2026-01-01T00:00:00Z"},"taskId":"t%d","walletCardId":"wc-%d","seId":"%08X","apduCommands":[{"data":"00A4040008A00000015153500100","messageId":"1"}]}`, i, i, i%ses, i%ses)
	}
	b.ResetTimer()
	for i := range b.N {
		req := httptest.NewRequest(http.MethodPost, "/sendScript", bytes.NewReader(bodies[i]))
		req.Header.Set("x-pod", "p")
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
	b.StopTimer()
	sim.Wait()
}
