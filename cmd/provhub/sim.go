package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/provhub/provhub/internal/httpapi"
	cassim "github.com/provhub/provhub/internal/sim/cas"
)

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "cas" {
		fmt.Fprintln(stderr, "usage: provhub sim cas [flags]  (see --help)")
		return errUsage
	}
	return simCAS(ctx, args[1:], stdout, stderr)
}

func simCAS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sim cas", stderr)
	listen := fs.String("listen", "127.0.0.1:9300", "HTTP listen address")
	devices := fs.String("devices", "", "JSON file in the `provhub crm import` format whose smartcards and STBs the CAS knows")
	var f cassim.Faults
	latency := fs.Duration("latency", 0, "delay of every answer")
	hang := fs.Duration("hang", 30*time.Second, "how long an injected timeout holds the answer")
	fs.Float64Var(&f.ErrorRate, "error-rate", 0, "chance of answering HTTP 500 (0..1)")
	fs.Float64Var(&f.BusyRate, "busy-rate", 0, "chance of answering busy (0..1)")
	fs.Float64Var(&f.TimeoutRate, "timeout-rate", 0, "chance of carrying a command out and then not answering (0..1)")
	logf := addLogFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := logf.logger(stderr)
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
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	srv := httpapi.NewServer(httpapi.ServerConfig{Handler: httpapi.NewMiddleware(httpapi.Options{Logger: log}).Wrap(sim), Logger: log})
	// An injected timeout holds an answer for --hang; let it.
	srv.WriteTimeout = *hang + 10*time.Second
	fmt.Fprintf(stdout, "CAS simulator on http://%s (admin: /cas/v1/admin/faults, /cas/v1/admin/devices)\n", l.Addr())
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
