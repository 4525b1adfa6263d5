package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ReadyCheck reports whether a dependency is ready; nil means ready.
type ReadyCheck func(ctx context.Context) error

// MountHealth adds /healthz (the process answers), /readyz (every check
// passes) and /metrics (the registry's collectors) to mux. details, when
// set, adds what it says to /readyz's answer without deciding readiness
// (what the hub knows of the systems it calls).
func MountHealth(mux *http.ServeMux, gatherer prometheus.Gatherer, checks map[string]ReadyCheck, details func() map[string]string) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		failed := map[string]string{}
		for name, check := range checks {
			if err := check(ctx); err != nil {
				failed[name] = err.Error()
			}
		}
		out := map[string]any{"status": "ready"}
		if details != nil {
			if d := details(); len(d) > 0 {
				out["downstream"] = d
			}
		}
		if len(failed) > 0 {
			out["status"], out["failed"] = "not ready", failed
			WriteJSON(w, http.StatusServiceUnavailable, out)
			return
		}
		WriteJSON(w, http.StatusOK, out)
	})
	if gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
}
