package cliflag

import (
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/provhub/provhub/internal/httpapi"
)

// LogFlags are --log-level and --log-format.
type LogFlags struct {
	Level, Format string
}

// Log adds --log-level and --log-format.
func Log(fs *flag.FlagSet) *LogFlags {
	l := &LogFlags{}
	fs.StringVar(&l.Level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&l.Format, "log-format", "json", "log format: json or text")
	return l
}

// Logger is the logger the flags ask for, writing to w, with secrets
// redacted (httpapi.LogHandler).
func (l *LogFlags) Logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.Level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", l.Level)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch l.Format {
	case "json":
		h = slog.NewJSONHandler(w, opts)
	case "text":
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, fmt.Errorf("--log-format %q: want json or text", l.Format)
	}
	return slog.New(httpapi.LogHandler(h)), nil
}
