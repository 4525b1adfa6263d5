// Package refusal is the error the domains return for a request they turn
// down: a kind, which each API maps to its own status code, and a message
// that is safe to show the caller. Each domain declares its own kinds, so
// a refusal of one domain is never mistaken for one of another.
package refusal

import (
	"errors"
	"fmt"
)

// Error is a refusal of kind K.
type Error[K comparable] struct {
	Kind    K
	Message string
}

func (e *Error[K]) Error() string { return e.Message }

// New returns a refusal of kind with a formatted message.
func New[K comparable](kind K, format string, args ...any) error {
	return &Error[K]{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of a refusal of type K in err's chain, or K's
// zero value when there is none.
func KindOf[K comparable](err error) K {
	var e *Error[K]
	if errors.As(err, &e) {
		return e.Kind
	}
	var zero K
	return zero
}
