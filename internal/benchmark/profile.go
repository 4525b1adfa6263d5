package benchmark

import (
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
)

// profileFlag adds --cpuprofile to a benchmark's flags.
func profileFlag(fs *flag.FlagSet) *string {
	return fs.String("cpuprofile", "", "write a CPU profile of the run (hub, simulators and clients: one process) to this file")
}

// startProfile starts a CPU profile into path ("" profiles nothing) and
// returns what stops it.
func startProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
