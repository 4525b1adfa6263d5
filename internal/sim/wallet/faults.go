package wallet

import (
	"errors"

	"github.com/provhub/provhub/internal/sim/fault"
)

// Faults make the simulator misbehave on purpose, with the meaning every
// simulator gives its knobs (internal/sim/fault): the *Next counters fail
// that many coming calls for certain, in the order of knobs; otherwise one
// draw per call across the rates, which add up to at most 1.
type Faults struct {
	// LatencyMS delays every answer.
	LatencyMS int `json:"latency_ms"`
	// ErrorRate/ErrorNext answer HTTP 500 without doing anything.
	ErrorRate float64 `json:"error_rate"`
	ErrorNext int     `json:"error_next"`
	// BusyRate/BusyNext answer statusCode 321 without doing anything.
	BusyRate float64 `json:"busy_rate"`
	BusyNext int     `json:"busy_next"`
	// TimeoutRate/TimeoutNext hold the answer for HangMS, then drop it
	// (HTTP 504); the call takes effect all the same.
	TimeoutRate float64 `json:"timeout_rate"`
	TimeoutNext int     `json:"timeout_next"`
	HangMS      int     `json:"hang_ms"`
	// MalformedRate/MalformedNext answer with a body that is not JSON,
	// after acting.
	MalformedRate float64 `json:"malformed_rate"`
	MalformedNext int     `json:"malformed_next"`
	// DeviceRepeatNext: the next device calls to the hub are each sent
	// twice (a device that lost the first answer).
	DeviceRepeatNext int `json:"device_repeat_next"`
	// FailedRate/FailedNext answer statusCode 911 (operation failed)
	// without doing anything; ServerErrorRate/ServerErrorNext answer 921
	// (unexpected server error) the same way: the documented codes, as
	// answers rather than HTTP 500.
	FailedRate      float64 `json:"failed_rate"`
	FailedNext      int     `json:"failed_next"`
	ServerErrorRate float64 `json:"server_error_rate"`
	ServerErrorNext int     `json:"server_error_next"`
	// CodeNext answers the next calls with statusCode Code without doing
	// anything: any code api/wallet.yaml documents (111, 112, 119, 121,
	// 321, 432, 911, 921), to see what a hub makes of each.
	Code     int `json:"code"`
	CodeNext int `json:"code_next"`
	// CodeOp, when set, keeps the code for calls of that operation
	// (sendScript, updateCard, getTaskStatus, pushNotification): each
	// operation's published table has its own codes.
	CodeOp string `json:"code_op"`
	// FailedOp, when set, keeps FailedNext for calls of that operation:
	// with CodeNext 921 on the same operation, a call is first asked
	// again, then fails.
	FailedOp string `json:"failed_op"`
}

// knobOps are the operations CodeOp and FailedOp may name.
var knobOps = map[string]bool{"": true, "sendScript": true, "updateCard": true, "getTaskStatus": true, "pushNotification": true}

// knobCodes are the codes Faults.CodeNext may answer.
var knobCodes = map[int]bool{111: true, 112: true, 119: true, 121: true, 321: true, 432: true, 911: true, 921: true}

// knobs are the faults in the order they are drawn (internal/sim/fault):
// a forced code first (so that 921 then failed_next on one operation asks
// the caller to repeat, then fails), the documented failure codes, then
// the transport's faults.
func (f *Faults) knobs() []fault.Knob {
	return []fault.Knob{
		{Kind: "code", Next: &f.CodeNext, Only: f.CodeOp},
		{Kind: "failed", Rate: f.FailedRate, Next: &f.FailedNext, Only: f.FailedOp},
		{Kind: "server_error", Rate: f.ServerErrorRate, Next: &f.ServerErrorNext},
		{Kind: "error", Rate: f.ErrorRate, Next: &f.ErrorNext},
		{Kind: "busy", Rate: f.BusyRate, Next: &f.BusyNext},
		{Kind: "timeout", Rate: f.TimeoutRate, Next: &f.TimeoutNext},
		{Kind: "malformed", Rate: f.MalformedRate, Next: &f.MalformedNext},
	}
}

func (f Faults) validate() error {
	if err := fault.Validate(f.knobs(), map[string]int{"latency_ms": f.LatencyMS, "hang_ms": f.HangMS, "device_repeat_next": f.DeviceRepeatNext}); err != nil {
		return err
	}
	if !knobOps[f.CodeOp] || !knobOps[f.FailedOp] {
		return errors.New("code_op and failed_op must be sendScript, updateCard, getTaskStatus or pushNotification")
	}
	if f.CodeNext > 0 && !knobCodes[f.Code] {
		return errors.New("code must be one of 111, 112, 119, 121, 321, 432, 911, 921")
	}
	return nil
}

// SetFaults replaces the fault knobs.
func (s *Simulator) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
	return nil
}

// Faults returns the knobs as they are.
func (s *Simulator) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}
