package main

import (
	"context"
	"fmt"
	"io"

	"github.com/provhub/provhub/internal/benchmark"
	"github.com/provhub/provhub/internal/cliflag"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	switch {
	case len(args) > 0 && args[0] == "engine":
		return benchmark.Engine(ctx, args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "crm":
		return benchmark.CRM(ctx, args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "wallet-sim":
		return benchmark.WalletSim(ctx, args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "wallet":
		return benchmark.Wallet(ctx, args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "topup":
		return benchmark.TopUp(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintln(stderr, "usage: provhub bench engine|crm|wallet|wallet-sim|topup [flags]  (see --help)")
	return cliflag.ErrUsage
}
