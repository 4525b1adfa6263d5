package e2e

import (
	"encoding/hex"
	"net/http/httptest"
	"testing"

	simwallet "github.com/provhub/provhub/internal/sim/wallet"
	"github.com/provhub/provhub/internal/wallet"
)

// newDirect returns a wallet client talking straight to the simulator, as
// an actor other than the hub would.
func newDirect(t *testing.T, sim *simwallet.Simulator) *wallet.Client {
	t.Helper()
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c, err := wallet.NewClient(wallet.ClientConfig{BaseURL: srv.URL, Pod: "other-actor"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
