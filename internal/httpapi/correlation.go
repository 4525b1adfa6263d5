package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"regexp"
)

// CorrelationHeader carries the id that ties the calls of one use case
// together across provhub and the systems it calls.
const CorrelationHeader = "x-correlation-id"

// validCorrelation is the issuer API's published pattern, anchored; the
// other APIs accept the same.
var validCorrelation = regexp.MustCompile(`^[a-zA-Z0-9_\-\. ]{1,64}$`)

// ValidCorrelationID reports whether a caller-supplied id may be used as is.
func ValidCorrelationID(id string) bool { return validCorrelation.MatchString(id) }

type correlationKey struct{}

// WithCorrelationID returns ctx carrying id.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey{}, id)
}

// CorrelationID returns the id carried by ctx, or "".
func CorrelationID(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey{}).(string)
	return id
}

// NewID returns a random 128-bit id in hex.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// LogHandler adds the context's correlation id to every record logged with
// a context, so a request can be followed through every log line.
func LogHandler(h slog.Handler) slog.Handler { return correlationHandler{h} }

type correlationHandler struct{ slog.Handler }

func (c correlationHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := CorrelationID(ctx); id != "" {
		r.AddAttrs(slog.String("correlation_id", id))
	}
	return c.Handler.Handle(ctx, r)
}

func (c correlationHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return correlationHandler{c.Handler.WithAttrs(attrs)}
}

func (c correlationHandler) WithGroup(name string) slog.Handler {
	return correlationHandler{c.Handler.WithGroup(name)}
}
