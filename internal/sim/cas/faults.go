package cas

import (
	"github.com/provhub/provhub/internal/sim/fault"
)

// Faults make the simulator misbehave on purpose, with the knobs' meaning
// of internal/sim/fault: the Next counters fail that many coming commands
// for certain (used first, in the order below); otherwise one draw per
// command across the rates, which add up to at most 1.
type Faults struct {
	// LatencyMS delays every command answer.
	LatencyMS int `json:"latency_ms"`
	// ErrorRate answers HTTP 500 without doing anything.
	ErrorRate float64 `json:"error_rate"`
	ErrorNext int     `json:"error_next"`
	// BusyRate answers HTTP 503 with result BUSY without doing anything.
	BusyRate float64 `json:"busy_rate"`
	BusyNext int     `json:"busy_next"`
	// TimeoutRate carries the command out and then holds the answer for
	// HangMS (or until the caller gives up) before answering HTTP 504: the
	// sender cannot know the command took effect.
	TimeoutRate float64 `json:"timeout_rate"`
	TimeoutNext int     `json:"timeout_next"`
	HangMS      int     `json:"hang_ms"`
}

// The kinds of fault, in the order they are drawn (internal/sim/fault).
const (
	faultError   = "error"
	faultBusy    = "busy"
	faultTimeout = "timeout"
)

func (f *Faults) knobs() []fault.Knob {
	return []fault.Knob{
		{Kind: faultError, Rate: f.ErrorRate, Next: &f.ErrorNext},
		{Kind: faultBusy, Rate: f.BusyRate, Next: &f.BusyNext},
		{Kind: faultTimeout, Rate: f.TimeoutRate, Next: &f.TimeoutNext},
	}
}

func (f Faults) validate() error {
	return fault.Validate(f.knobs(), map[string]int{"latency_ms": f.LatencyMS, "hang_ms": f.HangMS})
}

// SetFaults replaces the fault knobs.
func (s *Simulator) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
	return nil
}

// Faults returns the fault knobs as they are now.
func (s *Simulator) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fault
}
