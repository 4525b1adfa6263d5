package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/provhub/provhub/internal/cliflag"
	"github.com/provhub/provhub/internal/httpapi"
	cassim "github.com/provhub/provhub/internal/sim/cas"
	simtes "github.com/provhub/provhub/internal/sim/tes"
	simwallet "github.com/provhub/provhub/internal/sim/wallet"
)

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	switch {
	case len(args) > 0 && args[0] == "cas":
		return simCAS(ctx, args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "wallet":
		return simWallet(ctx, args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "tes":
		return simTES(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintln(stderr, "usage: provhub sim cas|wallet|tes [flags]  (see --help)")
	return errUsage
}

func simWallet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("sim wallet", stderr)
	listen := fs.String("listen", "127.0.0.1:9400", "HTTP listen address")
	delay := fs.Duration("task-delay", 20*time.Millisecond, "how long a task stays PROCESSING")
	hubURL := fs.String("hub-url", "http://127.0.0.1:8080", "the hub whose device API the simulated devices call after a REDIRECT")
	partnerID := fs.String("partner-id", "", "the simulator's id as a wallet-server partner of the hub (provhub partner add --role wallet --signing), for startReaderMode")
	partnerSecret := fs.String("partner-secret-file", "", "file holding that partner's signing secret")
	var f simwallet.Faults
	latency := fs.Duration("latency", 0, "delay of every answer")
	fs.Float64Var(&f.ErrorRate, "error-rate", 0, "chance of answering HTTP 500 (0..1)")
	fs.Float64Var(&f.BusyRate, "busy-rate", 0, "chance of answering 321, device busy (0..1)")
	fs.Float64Var(&f.TimeoutRate, "timeout-rate", 0, "chance of acting and then not answering (0..1)")
	fs.Float64Var(&f.MalformedRate, "malformed-rate", 0, "chance of acting and then answering with broken JSON (0..1)")
	hang := fs.Duration("hang", 30*time.Second, "how long an injected timeout holds the answer")
	deviceRetry := fs.Duration("device-retry-for", 2*time.Minute, "how long a simulated device keeps repeating a step the hub cannot answer (921, or no connection) before it gives the loop up; as long as the hub's --device-operation-ttl, so that a loop rides out a TES or hub outage")
	logf := cliflag.Log(fs)
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	log, err := logf.Logger(stderr)
	if err != nil {
		return err
	}
	f.LatencyMS, f.HangMS = int(latency.Milliseconds()), int(hang.Milliseconds())
	var secret string
	if (*partnerID == "") != (*partnerSecret == "") {
		return errors.New("--partner-id and --partner-secret-file go together")
	}
	if *partnerSecret != "" {
		raw, err := os.ReadFile(*partnerSecret)
		if err != nil {
			return err
		}
		secret = strings.TrimSpace(string(raw))
	}
	sim, err := simwallet.New(simwallet.Config{Logger: log, TaskDelay: *delay, Faults: f, HubURL: *hubURL, PartnerID: *partnerID, PartnerSecret: secret, DeviceRetryFor: *deviceRetry})
	if err != nil {
		return err
	}
	defer sim.Wait()
	return serveSim(ctx, *listen, sim, log, *hang+10*time.Second, stdout,
		"wallet-server simulator on http://%s (admin: /admin/provision, /admin/devices, /admin/cards, /admin/secure-elements/{seId}, /admin/assets, /admin/stats, /admin/faults)\n")
}

func simTES(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("sim tes", stderr)
	listen := fs.String("listen", "127.0.0.1:9500", "HTTP listen address")
	ttl := fs.Duration("session-ttl", 2*time.Minute, "a command loop not finished this long after it started ends with 322")
	var f simtes.Faults
	latency := fs.Duration("latency", 0, "delay of every answer")
	fs.Float64Var(&f.ErrorRate, "error-rate", 0, "chance of answering HTTP 500 without acting (0..1)")
	fs.Float64Var(&f.LoseRate, "lose-rate", 0, "chance of acting and then answering HTTP 500 (0..1)")
	logf := cliflag.Log(fs)
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	log, err := logf.Logger(stderr)
	if err != nil {
		return err
	}
	f.LatencyMS = int(latency.Milliseconds())
	sim, err := simtes.New(simtes.Config{Logger: log, SessionTTL: *ttl, Faults: f})
	if err != nil {
		return err
	}
	return serveSim(ctx, *listen, sim, log, 10*time.Second, stdout,
		"TES simulator on http://%s (device gateway: /tes/devicegtwapi/1/0/; admin: /admin/accounts, /admin/purchases, /admin/external-cards, /admin/faults)\n")
}

func simCAS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("sim cas", stderr)
	listen := fs.String("listen", "127.0.0.1:9300", "HTTP listen address")
	devices := fs.String("devices", "", "JSON file in the \"provhub crm import\" format whose smartcards and STBs the CAS knows")
	var f cassim.Faults
	latency := fs.Duration("latency", 0, "delay of every answer")
	hang := fs.Duration("hang", 30*time.Second, "how long an injected timeout holds the answer")
	fs.Float64Var(&f.ErrorRate, "error-rate", 0, "chance of answering HTTP 500 (0..1)")
	fs.Float64Var(&f.BusyRate, "busy-rate", 0, "chance of answering busy (0..1)")
	fs.Float64Var(&f.TimeoutRate, "timeout-rate", 0, "chance of carrying a command out and then not answering (0..1)")
	logf := cliflag.Log(fs)
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	log, err := logf.Logger(stderr)
	if err != nil {
		return err
	}
	f.LatencyMS, f.HangMS = int(latency.Milliseconds()), int(hang.Milliseconds())
	sim, err := cassim.New(cassim.Config{Logger: log, Faults: f})
	if err != nil {
		return err
	}
	if *devices != "" {
		ref, err := readReferenceData(*devices)
		if err != nil {
			return err
		}
		var cards, stbs []string
		for _, c := range ref.Smartcards {
			cards = append(cards, c.CAID)
		}
		for _, b := range ref.STBs {
			stbs = append(stbs, b.CAID)
		}
		sim.AddDevices(cards, stbs)
	}
	return serveSim(ctx, *listen, sim, log, *hang+10*time.Second, stdout,
		"CAS simulator on http://%s (admin: /admin/faults, /admin/devices)\n")
}

// serveSim serves a simulator until ctx ends. writeTimeout leaves room for
// answers held back on purpose.
func serveSim(ctx context.Context, listen string, h http.Handler, log *slog.Logger, writeTimeout time.Duration, stdout io.Writer, banner string) error {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	srv := httpapi.NewServer(httpapi.ServerConfig{Handler: httpapi.NewMiddleware(httpapi.Options{Logger: log}).Wrap(h), Logger: log})
	srv.WriteTimeout = writeTimeout
	fmt.Fprintf(stdout, banner, l.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
