package hub

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"sort"
	"sync"
	"time"
)

// downstream probes the systems the hub calls by default (the CAS, the
// wallet server, the TES of the flags) and keeps what it found for
// /readyz. A system is reachable when a TCP connection to its address
// opens within 2 seconds: enough to tell a system that is not there from
// one that is; what it answers is the jobs' business. Readiness stays
// about the database: a hub whose CAS is away still takes and keeps
// requests, which is what it is for.
type downstream struct {
	targets map[string]string // name -> host:port
	mu      sync.Mutex
	found   map[string]string
}

func newDownstream(urls map[string]string) *downstream {
	d := &downstream{targets: map[string]string{}, found: map[string]string{}}
	for name, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			continue
		}
		host := u.Host
		if u.Port() == "" {
			port := "80"
			if u.Scheme == "https" {
				port = "443"
			}
			host = net.JoinHostPort(u.Hostname(), port)
		}
		d.targets[name] = host
	}
	return d
}

// probe dials every target once, logs each that cannot be reached (and
// each that comes back) and records the outcome.
func (d *downstream) probe(ctx context.Context, log *slog.Logger) {
	names := make([]string, 0, len(d.targets))
	for n := range d.targets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		addr := d.targets[name]
		dialer := net.Dialer{Timeout: 2 * time.Second}
		conn, err := dialer.DialContext(ctx, "tcp", addr)
		// /readyz is anonymous: it says reachable or not, never where
		// (the address and the error go to the log).
		found := "reachable"
		if err != nil {
			found = "unreachable"
		} else {
			conn.Close()
		}
		d.mu.Lock()
		before := d.found[name]
		d.found[name] = found
		d.mu.Unlock()
		switch {
		case err != nil && before != found:
			log.WarnContext(ctx, "a downstream system cannot be reached; requests for it wait and are retried", "system", name, "addr", addr, "err", err)
		case err == nil && before != "" && before != found:
			log.InfoContext(ctx, "a downstream system is reachable again", "system", name, "addr", addr)
		}
	}
}

// loop probes now, then every interval until ctx ends.
func (d *downstream) loop(ctx context.Context, log *slog.Logger, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		d.probe(ctx, log)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// report is what the last probe found, per system.
func (d *downstream) report() map[string]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]string, len(d.found))
	for k, v := range d.found {
		out[k] = v
	}
	return out
}
