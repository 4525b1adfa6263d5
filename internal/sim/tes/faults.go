package tes

import (
	"fmt"
	"time"

	"github.com/provhub/provhub/internal/sim/fault"
)

// Faults are the simulator's fault knobs, with the meaning every
// simulator gives them (internal/sim/fault): counters first, then one draw
// per call across the rates.
type Faults struct {
	// LatencyMS delays every answer.
	LatencyMS int `json:"latency_ms"`
	// ErrorRate/ErrorNext answer HTTP 500 without doing anything.
	ErrorRate float64 `json:"error_rate"`
	ErrorNext int     `json:"error_next"`
	// LoseRate/LoseNext do the call, then answer HTTP 500 (the answer is
	// lost on the way back).
	LoseRate float64 `json:"lose_rate"`
	LoseNext int     `json:"lose_next"`
	// CodeNext answers the next calls with statusCode Code, without doing
	// anything: one of the documented codes a real TES may answer (163
	// product not eligible, 178 in-station status, 221 device or wallet
	// server not reachable, 231 / 232 device error / out of memory, 911,
	// 921 unexpected server error).
	Code     int `json:"code"`
	CodeNext int `json:"code_next"`
}

// knobCodes are the codes CodeNext may answer.
var knobCodes = map[int]bool{163: true, 178: true, 221: true, 231: true, 232: true, 323: true, 911: true, 921: true}

// knobs are the faults in the order they are drawn (internal/sim/fault):
// the forced code first, then the lost request and the lost answer.
func (f *Faults) knobs() []fault.Knob {
	return []fault.Knob{
		{Kind: "code", Next: &f.CodeNext},
		{Kind: "error", Rate: f.ErrorRate, Next: &f.ErrorNext},
		{Kind: "lose", Rate: f.LoseRate, Next: &f.LoseNext},
	}
}

func (f Faults) validate() error {
	if err := fault.Validate(f.knobs(), map[string]int{"latency_ms": f.LatencyMS}); err != nil {
		return err
	}
	if f.CodeNext > 0 && !knobCodes[f.Code] {
		return fmt.Errorf("code must be one of 163, 178, 221, 231, 232, 323, 911, 921")
	}
	return nil
}

// SetFaults replaces the fault knobs.
func (s *Simulator) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	return nil
}

// Faults returns the fault knobs.
func (s *Simulator) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// fault draws the fault of one call: "error", "lose", "code" or "", and
// the latency to add.
func (s *Simulator) fault(op string) (string, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fault.Draw(s.rng, op, s.faults.knobs()), time.Duration(s.faults.LatencyMS) * time.Millisecond
}
