// Package loopback runs the hub's peers and the hub itself inside one
// process, on free loopback ports: what the demo and the benchmarks use to
// put the whole system on one machine without starting processes.
package loopback

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/provhub/provhub/internal/hub"
	simtes "github.com/provhub/provhub/internal/sim/tes"
	simwallet "github.com/provhub/provhub/internal/sim/wallet"
)

// Serve serves h on a free loopback port and returns its URL and what
// stops it.
func Serve(h http.Handler) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l) //nolint:errcheck // ends with Close
	return "http://" + l.Addr().String(), func() { srv.Close() }, nil
}

// RunHub runs h in the background and returns what stops it and waits.
func RunHub(ctx context.Context, h *hub.Hub) func() {
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.Run(runCtx) }()
	return func() {
		stop()
		<-done
	}
}

// Sims are a wallet-server and a TES simulator served on loopback ports.
type Sims struct {
	Wallet    *simwallet.Simulator
	TES       *simtes.Simulator
	WalletURL string
	// TESURL is the TES's device gateway base.
	TESURL string
	// Stop stops both.
	Stop func()
}

// StartSims serves a wallet-server and a TES simulator made from w and t.
func StartSims(w simwallet.Config, t simtes.Config) (*Sims, error) {
	wsim, err := simwallet.New(w)
	if err != nil {
		return nil, err
	}
	tsim, err := simtes.New(t)
	if err != nil {
		return nil, err
	}
	walletURL, stopWallet, err := Serve(wsim)
	if err != nil {
		return nil, err
	}
	tesURL, stopTES, err := Serve(tsim)
	if err != nil {
		stopWallet()
		return nil, err
	}
	return &Sims{Wallet: wsim, TES: tsim, WalletURL: walletURL, TESURL: tesURL + "/tes/devicegtwapi/1/0",
		Stop: func() { stopTES(); stopWallet() }}, nil
}
