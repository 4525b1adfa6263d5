package southbound

import (
	"errors"
	"fmt"
)

// A Family is the status codes of one API of the wallet-server family (the
// wallet server's, the TES device gateway's): its name in errors, the text
// of a code, and which codes say the same call may succeed later. Each
// client declares its own, so that a StatusError of one API is never taken
// for another's.
type Family interface {
	Name() string
	Text(code int) string
	Retryable(code int) bool
}

// StatusError is a non-zero statusCode in the responseHeader of an answer
// from a server of family F.
type StatusError[F Family] struct {
	Op      string
	Code    int
	Message string
}

func (e *StatusError[F]) Error() string {
	var f F
	msg := e.Message
	if msg == "" {
		msg = f.Text(e.Code)
	}
	return fmt.Sprintf("%s %s: status %d: %s", f.Name(), e.Op, e.Code, msg)
}

// Retryable reports whether the family flags the code as worth retrying.
func (e *StatusError[F]) Retryable() bool {
	var f F
	return f.Retryable(e.Code)
}

// Retryable reports whether err, returned by a client of family F, is
// worth retrying: a retryable status of F, or unavailable (a call whose
// outcome is unknown, which the client marks with its own sentinel).
func Retryable[F Family](err, unavailable error) bool {
	var se *StatusError[F]
	if errors.As(err, &se) {
		return se.Retryable()
	}
	return errors.Is(err, unavailable)
}
