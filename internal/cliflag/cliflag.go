// Package cliflag holds what every provhub command's flags share: a flag
// set whose help goes to the command's stderr, every flag settable as a
// PROVHUB_* environment variable (the command line wins), the usage error
// and the --db flag. cmd/provhub's commands and the benchmarks use it.
package cliflag

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrUsage is a command line that was not understood; the command exits 2.
var ErrUsage = errors.New("usage error")

// NewFlagSet returns a flag set whose errors and help go to stderr.
func NewFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("provhub "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// EnvName is the environment variable that sets a flag.
func EnvName(flagName string) string {
	return "PROVHUB_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse reads args, then fills every flag not given on the command line
// from its PROVHUB_* variable.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return ErrUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %v\n", fs.Args())
		return ErrUsage
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(EnvName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, e)
			}
		}
	})
	return err
}

// DB adds --db, the database of a command.
func DB(fs *flag.FlagSet, def string) *string {
	return fs.String("db", def, "database: sqlite:PATH (embedded) or postgres://USER@HOST:PORT/DB (shared by many instances)")
}
