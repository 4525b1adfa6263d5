package wallet_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	simwallet "github.com/provhub/provhub/internal/sim/wallet"
	ws "github.com/provhub/provhub/internal/wallet"
)

// A device sent to a hub that is restarting keeps calling it (as a phone
// would) until the hub answers, and gives the loop up only after
// DeviceRetryFor.
func TestSimulator_ADeviceRetriesAHubThatIsDownForAWhile(t *testing.T) {
	for _, c := range []struct {
		name     string
		downFor  int64 // calls answered 503 before the hub is back
		retryFor time.Duration
		done     bool
	}{
		{"the hub comes back", 8, 10 * time.Second, true},
		{"the hub stays down", 1 << 30, 300 * time.Millisecond, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var calls atomic.Int64
			hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) <= c.downFor {
					http.Error(w, "restarting", http.StatusServiceUnavailable)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"responseHeader":{"statusCode":0},"done":true,"step":1}`))
			}))
			defer hub.Close()
			r := newRigWith(t, simwallet.Config{TaskDelay: time.Millisecond, DeviceRetryFor: c.retryFor})
			sim := r.sim
			sim.SetPodURL("pod-a", hub.URL)
			if err := r.update("redirect-1", ws.OpRedirect, nil); err != nil {
				t.Fatal(err)
			}
			r.finish(t, "redirect-1")
			sim.Wait()
			runs := sim.Runs(seID)
			if len(runs) != 1 {
				t.Fatalf("runs %+v", runs)
			}
			if got := runs[0]; got.Done != c.done || (!c.done && got.StatusMessage != "the hub did not answer") {
				t.Errorf("run %+v after %d calls, want done=%v", got, calls.Load(), c.done)
			}
			if c.done && calls.Load() != c.downFor+1 {
				t.Errorf("%d calls, want %d", calls.Load(), c.downFor+1)
			}
		})
	}
}
