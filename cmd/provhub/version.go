package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/provhub/provhub/internal/cliflag"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version (or "devel") is shown.
var version = ""

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("version", stderr)
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "provhub %s (%s %s/%s)\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// versionString is the build's version: the -ldflags one, else the
// module's, else "devel".
func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
