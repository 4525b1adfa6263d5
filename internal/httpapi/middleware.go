package httpapi

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure Wrap.
type Options struct {
	Logger *slog.Logger
	// Metrics receives the request counters (none when nil).
	Metrics prometheus.Registerer
	// MaxBodyBytes bounds request bodies [1 MiB].
	MaxBodyBytes int64
}

// Middleware is the shared chain, built once per server.
type Middleware struct {
	log      *slog.Logger
	maxBody  int64
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMiddleware builds the chain's state (metrics are registered here).
func NewMiddleware(o Options) *Middleware {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	m := &Middleware{
		log:     o.Logger,
		maxBody: o.MaxBodyBytes,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "provhub_http_requests_total", Help: "HTTP requests served, by route and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "provhub_http_request_duration_seconds", Help: "Time to serve an HTTP request, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
	}
	if o.Metrics != nil {
		o.Metrics.MustRegister(m.requests, m.duration)
	}
	return m
}

// Wrap applies, outermost first: correlation id, access log and metrics,
// panic recovery, body limit.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(CorrelationHeader)
		if !ValidCorrelationID(id) {
			id = NewID()
		}
		ctx := WithCorrelationID(r.Context(), id)
		r = r.WithContext(ctx)
		w.Header().Set(CorrelationHeader, id)
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		r.Body = http.MaxBytesReader(rec, r.Body, m.maxBody)

		func() {
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler { //nolint:errorlint // sentinel panic value
						panic(p)
					}
					m.log.ErrorContext(ctx, "handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()),
						"method", r.Method, "path", r.URL.Path)
					if !rec.wrote {
						WriteError(rec, http.StatusInternalServerError, "internal error")
					}
				}
			}()
			next.ServeHTTP(rec, r)
		}()

		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		elapsed := time.Since(start)
		m.requests.WithLabelValues(route, r.Method, strconv.Itoa(rec.status)).Inc()
		m.duration.WithLabelValues(route, r.Method).Observe(elapsed.Seconds())
		level := slog.LevelInfo
		if rec.status >= 500 {
			level = slog.LevelError
		}
		m.log.Log(ctx, level, "http request", "method", r.Method, "path", r.URL.Path, "route", route,
			"status", rec.status, "bytes", rec.bytes, "duration_ms", float64(elapsed.Microseconds())/1000,
			"remote", r.RemoteAddr)
	})
}

type recorder struct {
	http.ResponseWriter
	status int
	bytes  int
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

// Flush lets server-sent events through the recorder.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		r.wrote = true
		f.Flush()
	}
}

// Hijack keeps connection upgrades possible.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("hijack not supported")
	}
	return h.Hijack()
}

// Unwrap gives http.ResponseController the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// ServerConfig sets the timeouts of an HTTP server.
type ServerConfig struct {
	Addr              string
	Handler           http.Handler
	ReadHeaderTimeout time.Duration // [5s]
	ReadTimeout       time.Duration // [30s]
	WriteTimeout      time.Duration // [60s]
	IdleTimeout       time.Duration // [120s]
	Logger            *slog.Logger
	// TLS makes the server speak HTTPS (serve it with ServeTLS).
	TLS *tls.Config
}

// NewServer returns an http.Server with every timeout set, so a slow or
// idle client cannot hold a connection forever.
func NewServer(c ServerConfig) *http.Server {
	def := func(v, d time.Duration) time.Duration {
		if v <= 0 {
			return d
		}
		return v
	}
	s := &http.Server{
		Addr:              c.Addr,
		Handler:           c.Handler,
		ReadHeaderTimeout: def(c.ReadHeaderTimeout, 5*time.Second),
		ReadTimeout:       def(c.ReadTimeout, 30*time.Second),
		WriteTimeout:      def(c.WriteTimeout, 60*time.Second),
		IdleTimeout:       def(c.IdleTimeout, 120*time.Second),
		TLSConfig:         c.TLS,
	}
	if c.Logger != nil {
		s.ErrorLog = slog.NewLogLogger(c.Logger.Handler(), slog.LevelWarn)
	}
	return s
}
