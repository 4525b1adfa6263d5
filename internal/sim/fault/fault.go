// Package fault is the fault-injection kit the simulators (CAS, TES,
// wallet server) share: one meaning of the knobs and one admin layout.
//
// A simulator's faults are knobs: for each kind of fault, a rate (a chance
// per call in [0,1]) and a Next counter (that many coming calls, for
// certain). For each call the first kind, in the simulator's order, whose
// counter is above zero (and that applies to the call's operation) is
// taken and counted down; otherwise one number is drawn and compared with
// the rates added up in the same order. The rates of a simulator therefore
// add up to at most 1, a call gets at most one fault, and a seed makes the
// draws repeatable.
//
// Every simulator serves its set-up and inspection endpoints under
// AdminPrefix, its faults as GET and PUT AdminPrefix+"faults", and answers
// every refused admin call with an Error body.
//
// Written here rather than taken from a library: fault injection in the
// simulators is a handful of counters and one draw, shaped by what each
// published API can answer; no library models that.
package fault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"
)

// AdminPrefix is where every simulator serves its admin endpoints (not part
// of any published API).
const AdminPrefix = "/admin/"

// Knob is one kind of fault of a simulator.
type Knob struct {
	// Kind names the fault, as Draw returns it.
	Kind string
	// Rate is the chance per call; Next, when not nil, is the counter of
	// coming calls that get it for certain (Draw counts it down).
	Rate float64
	Next *int
	// Only, when set, keeps the counter for calls of that operation.
	Only string
}

// Draw picks the fault of one call of operation op: a counter first, else
// one draw across the rates. It returns "" for none. The caller holds the
// lock that guards the knobs and rng.
func Draw(rng *rand.Rand, op string, knobs []Knob) string {
	for _, k := range knobs {
		if k.Next != nil && *k.Next > 0 && (k.Only == "" || k.Only == op) {
			*k.Next--
			return k.Kind
		}
	}
	x, sum := rng.Float64(), 0.0
	for _, k := range knobs {
		if k.Rate <= 0 {
			continue
		}
		if sum += k.Rate; x < sum {
			return k.Kind
		}
	}
	return ""
}

// Validate checks knobs: every rate within [0,1], the rates adding up to
// at most 1, no counter below zero; and the named durations and counts of
// nonNegative (latency_ms, hang_ms…) not below zero either.
func Validate(knobs []Knob, nonNegative map[string]int) error {
	sum := 0.0
	for _, k := range knobs {
		if k.Rate < 0 || k.Rate > 1 {
			return fmt.Errorf("%s_rate must be between 0 and 1", k.Kind)
		}
		sum += k.Rate
		if k.Next != nil && *k.Next < 0 {
			return fmt.Errorf("%s_next must not be negative", k.Kind)
		}
	}
	if sum > 1+1e-9 {
		return errors.New("the rates add up to more than 1: a call gets one fault at most")
	}
	for name, v := range nonNegative {
		if v < 0 {
			return fmt.Errorf("%s must not be negative", name)
		}
	}
	return nil
}

// Sleep waits d, or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Error is the body of every refused admin call.
type Error struct {
	Error string `json:"error"`
}

// WriteJSON answers v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Post is an admin handler that decodes its body, strictly, into T, hands
// it to apply and answers it back; a body that does not decode or that
// apply refuses is answered 400 with an Error.
func Post[T any](apply func(T) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var v T
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			Refuse(w, http.StatusBadRequest, "body: "+err.Error())
			return
		}
		if err := apply(v); err != nil {
			Refuse(w, http.StatusBadRequest, err.Error())
			return
		}
		WriteJSON(w, http.StatusOK, v)
	}
}

// Mount serves a simulator's faults: GET AdminPrefix+"faults" answers them
// as they are now, PUT replaces them (set validates).
func Mount[F any](mux *http.ServeMux, get func() F, set func(F) error) {
	mux.HandleFunc("GET "+AdminPrefix+"faults", func(w http.ResponseWriter, _ *http.Request) { WriteJSON(w, http.StatusOK, get()) })
	mux.HandleFunc("PUT "+AdminPrefix+"faults", Post(set))
}

// Refuse answers an admin call with status and an Error saying why.
func Refuse(w http.ResponseWriter, status int, why string) {
	WriteJSON(w, status, Error{Error: why})
}
