// Command provhub is the provisioning hub: it serves the issuer and CRM
// APIs, runs the durable job engine that drives wallet servers, transit
// entity servers and the CAS, and benchmarks itself.
//
// Usage:
//
//	provhub demo     [--listen ADDR] [--data DIR] [--scenario]
//	provhub serve    [--listen ADDR] [--db URL] [--migrate=true] ...
//	provhub migrate  [--db URL]
//	provhub crm import FILE [--db URL]
//	provhub crm user add --username U --organisation O [--unit UNIT] [--db URL]  (password on stdin)
//	provhub issuer keygen --out PREFIX
//	provhub issuer add --id ISSUERID10 --kid K --public-key FILE [--db URL]
//	provhub issuer token --url HUB --id ISSUERID10 --kid K --key PREFIX.key
//	provhub issuer revoke-key --id ISSUERID10 --kid K | issuer rotate-signing-key
//	provhub operator add --username U [--db URL]  (password on stdin)
//	provhub sim cas  [--listen ADDR] [--devices FILE] [--latency D] [--error-rate R] ...
//	provhub sim wallet [--listen ADDR] [--task-delay D] ...
//	provhub bench engine [--db URL] [--jobs N] [--workers W] [--subjects K]
//	provhub bench crm [--db URL] [--requests N] [--clients C]
//	provhub bench wallet-sim --url URL [--requests N] [--clients C]
//	provhub version
//
// Every flag can also be set by an environment variable: --log-level is
// PROVHUB_LOG_LEVEL, and so on. A flag on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/provhub/provhub/internal/cliflag"
	"github.com/provhub/provhub/internal/demo"
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands(stdin io.Reader) []command {
	return []command{
		{"demo", "run the hub with every simulator and sample data, and print a tour", func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return demo.Run(ctx, args, versionString(), stdout, stderr)
		}},
		{"serve", "run the hub: HTTP APIs and job workers", runServe},
		{"migrate", "apply pending database migrations and exit", runMigrate},
		{"crm", "CRM reference data and users: provhub crm import FILE | crm user add", func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return runCRM(ctx, args, stdin, stdout, stderr)
		}},
		{"issuer", "issuers' keys and tokens: provhub issuer keygen | add | token | revoke-key | rotate-signing-key", runIssuer},
		{"conform", "check a wallet server, a TES or a CAS against the published rules: provhub conform wallet|tes|cas --url URL", runConform},
		{"asset", "issuers' card art and terms: provhub asset add | list | remove", runAsset},
		{"operator", "console accounts: provhub operator add --username U (password on stdin)", func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return runOperator(ctx, args, stdin, stdout, stderr)
		}},
		{"partner", "TES and wallet-server partners: provhub partner add | list | revoke | call", runPartner},
		{"secret-key", "make the key that seals secrets in the database: provhub secret-key --out FILE", runSecretKey},
		{"sim", "run a simulator: provhub sim cas --help", runSim},
		{"bench", "measure the engine: provhub bench engine --help", runBench},
		{"version", "print the version", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands(stdin) {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				return 2
			default:
				fmt.Fprintf(stderr, "provhub %s: %v\n", c.name, err)
				return 1
			}
		}
	}
	fmt.Fprintf(stderr, "provhub: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

var errUsage = cliflag.ErrUsage

func usage(w io.Writer) {
	fmt.Fprintln(w, "provhub: a provisioning hub for secure elements and smartcards")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands(nil) {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'provhub COMMAND --help' for a command's flags; each flag NAME may also be set as PROVHUB_NAME.")
}
