package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/provhub/provhub/internal/cliflag"
	"github.com/provhub/provhub/internal/conform"
)

const conformUsage = `usage: provhub conform wallet|tes|cas --url URL [--fixture FILE] [--junit FILE] [--json FILE] [--pod P] [--actor A] [--timeout D]

  wallet  a wallet server (api/wallet.yaml): URL is where sendScript, updateCard and getTaskStatus are
  tes     a TES device gateway (api/tes.yaml): URL is its base, e.g. http://host/tes/devicegtwapi/1/0
  cas     a CAS behind provhub's CAS protocol (api/cas.yaml): URL is its base, e.g. http://host/cas/v1

Exit status 0 only when no rule fails; rules that need fixture state you did not give are skipped and listed.`

// errRulesFailed makes the exit status 1 once the report is printed.
var errRulesFailed = errors.New("some rules failed")

// runConform runs the conformance kit against someone else's server.
func runConform(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "wallet" && args[0] != "tes" && args[0] != "cas") {
		fmt.Fprintln(stderr, conformUsage)
		return errUsage
	}
	api := args[0]
	fs := cliflag.NewFlagSet("conform "+api, stderr)
	url := fs.String("url", "", "the server's base URL")
	fixture := fs.String("fixture", "", "a JSON file naming the state the server holds (docs/conform.md)")
	junit := fs.String("junit", "", "also write the report as JUnit XML to this file")
	jsonOut := fs.String("json", "", "also write the report as JSON to this file")
	pod := fs.String("pod", "conform", "wallet: the x-pod to send")
	actor := fs.String("actor", "provhub-conform", "tes: the x-actor-id to send")
	timeout := fs.Duration("timeout", 30*time.Second, "bound on one call")
	if err := cliflag.Parse(fs, args[1:]); err != nil {
		return err
	}
	if *url == "" {
		fmt.Fprintf(stderr, "provhub conform %s: --url is required\n", api)
		return errUsage
	}
	var f *conform.Fixture
	if *fixture != "" {
		var err error
		if f, err = conform.LoadFixture(*fixture); err != nil {
			return err
		}
	}
	t := &conform.Target{URL: *url, HTTP: &http.Client{Timeout: *timeout}, Pod: *pod, Actor: *actor}
	report := map[string]func(context.Context, *conform.Target, *conform.Fixture) *conform.Report{
		"wallet": conform.Wallet, "tes": conform.TES, "cas": conform.CAS}[api](ctx, t, f)
	if err := report.WriteText(stdout); err != nil {
		return err
	}
	for _, out := range []struct {
		path  string
		write func(io.Writer) error
	}{{*junit, report.WriteJUnit}, {*jsonOut, report.WriteJSON}} {
		if out.path == "" {
			continue
		}
		fh, err := os.Create(out.path)
		if err != nil {
			return err
		}
		werr := out.write(fh)
		if cerr := fh.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return werr
		}
	}
	if !report.Passed() {
		return errRulesFailed
	}
	return nil
}
