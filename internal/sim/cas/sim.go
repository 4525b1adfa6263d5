package cas

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/provhub/provhub/internal/cas"
	"github.com/provhub/provhub/internal/sim/fault"
)

// Stats count what the simulator was asked.
type Stats struct {
	// Commands is every command received.
	Commands int `json:"commands"`
	// Executed took effect; Rejected were refused; Replayed repeated an
	// earlier request id and were answered from memory.
	Executed int `json:"executed"`
	Rejected int `json:"rejected"`
	Replayed int `json:"replayed"`
	// Faulted were answered with an injected fault.
	Faulted int `json:"faulted"`
}

// Config sets up a Simulator.
type Config struct {
	Logger *slog.Logger
	Clock  func() time.Time
	Faults Faults
	// Seed makes the fault draws repeatable; 0 picks one at random.
	Seed uint64
}

// Simulator is an in-memory CAS. It is an http.Handler.
type Simulator struct {
	log   *slog.Logger
	now   func() time.Time
	mux   *http.ServeMux
	mu    sync.Mutex
	st    *state
	seen  map[string]answered
	fault Faults
	rng   *mrand.Rand
	stats Stats
	// journal is every command that took effect or was refused, in the
	// order the CAS decided them (replays of a request id are not in it).
	journal []Applied
}

// Applied is one command the CAS decided: carried out (result OK) or
// refused. A request id is decided once; its replays are answered from
// memory and not journalled again.
type Applied struct {
	RequestID     string   `json:"request_id"`
	Command       string   `json:"command"`
	SmartcardCAID string   `json:"smartcard_ca_id,omitempty"`
	ServiceCAIDs  []string `json:"service_ca_ids,omitempty"`
	Result        string   `json:"result"`
}

// answered remembers a request id's command and the reply it got.
type answered struct {
	command string
	reply   cas.Reply
}

// New returns a simulator with no devices.
func New(cfg Config) (*Simulator, error) {
	if err := cfg.Faults.validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = mrand.Uint64()
	}
	s := &Simulator{
		log: cfg.Logger.With("component", "cas_sim"), now: cfg.Clock, st: newState(),
		seen: map[string]answered{}, fault: cfg.Faults, rng: mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /cas/v1/commands", s.handleCommand)
	s.mountAdmin()
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fault.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return s, nil
}

func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// AddDevices makes smartcards and STBs known to the CAS.
func (s *Simulator) AddDevices(smartcards, stbs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range smartcards {
		s.st.addCard(id)
	}
	for _, id := range stbs {
		s.st.addSTB(id)
	}
}

// Card returns what the CAS knows of a smartcard.
func (s *Simulator) Card(caID string) (CardState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.cardState(caID)
}

// PINMatches tells whether a card's PIN is pin, without revealing it.
func (s *Simulator) PINMatches(caID, pin string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.st.cards[caID]
	return ok && c.pin == pin
}

// Applied returns the journal of decided commands, oldest first: what an
// audit reads to tell that nothing was carried out twice or out of order.
func (s *Simulator) Applied() []Applied {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.journal)
}

// Stats returns the counters.
func (s *Simulator) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *Simulator) handleCommand(w http.ResponseWriter, r *http.Request) {
	var cmd cas.Command
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err == nil {
		// api/cas.yaml: a command has no members but its own.
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		err = dec.Decode(&cmd)
	}
	if err != nil {
		fault.WriteJSON(w, http.StatusBadRequest, cas.Reply{RequestID: requestIDOf(body), Result: cas.ResultBadRequest, Message: "body is not a CAS command: " + err.Error()})
		return
	}
	if msg := malformed(cmd); msg != "" {
		fault.WriteJSON(w, http.StatusBadRequest, cas.Reply{RequestID: cmd.RequestID, Result: cas.ResultBadRequest, Message: msg})
		return
	}

	s.mu.Lock()
	s.stats.Commands++
	latency := time.Duration(s.fault.LatencyMS) * time.Millisecond
	hang := time.Duration(s.fault.HangMS) * time.Millisecond
	drawn := fault.Draw(s.rng, cmd.Command, s.fault.knobs())
	if drawn == faultError || drawn == faultBusy {
		s.stats.Faulted++
		s.mu.Unlock()
		fault.Sleep(r.Context(), latency)
		if drawn == faultError {
			fault.WriteJSON(w, http.StatusInternalServerError, cas.Reply{RequestID: cmd.RequestID, Result: "INTERNAL_ERROR", Message: "injected server error"})
		} else {
			fault.WriteJSON(w, http.StatusServiceUnavailable, cas.Reply{RequestID: cmd.RequestID, Result: cas.ResultBusy, Message: "injected busy"})
		}
		return
	}
	reply, status := s.execute(cmd)
	if drawn == faultTimeout {
		s.stats.Faulted++
	}
	s.mu.Unlock()

	fault.Sleep(r.Context(), latency)
	if drawn == faultTimeout {
		if hang <= 0 {
			hang = 30 * time.Second
		}
		fault.Sleep(r.Context(), hang)
		fault.WriteJSON(w, http.StatusGatewayTimeout, cas.Reply{RequestID: cmd.RequestID, Result: "TIMEOUT", Message: "injected timeout"})
		return
	}
	fault.WriteJSON(w, status, reply)
}

// execute runs cmd once per request id; the caller holds mu. The PIN is
// never logged.
func (s *Simulator) execute(cmd cas.Command) (cas.Reply, int) {
	key := commandKey(cmd)
	if prev, ok := s.seen[cmd.RequestID]; ok {
		if prev.command != key {
			s.stats.Rejected++
			return cas.Reply{RequestID: cmd.RequestID, Result: cas.ResultRequestIDReused,
				Message: "request id was used for a different command"}, http.StatusOK
		}
		s.stats.Replayed++
		return prev.reply, http.StatusOK
	}
	reply := cas.Reply{RequestID: cmd.RequestID, Result: cas.ResultOK}
	if rej := s.st.apply(cmd, s.now()); rej != nil {
		reply.Result, reply.Message = rej.result, rej.message
		s.stats.Rejected++
	} else {
		reply.ReferenceNumber = newReference()
		s.stats.Executed++
	}
	s.seen[cmd.RequestID] = answered{command: key, reply: reply}
	s.journal = append(s.journal, Applied{RequestID: cmd.RequestID, Command: cmd.Command, SmartcardCAID: cmd.SmartcardCAID,
		ServiceCAIDs: slices.Clone(cmd.ServiceCAIDs), Result: reply.Result})
	s.log.Info("cas command", "request_id", cmd.RequestID, "command", cmd.Command,
		"smartcard_ca_id", cmd.SmartcardCAID, "result", reply.Result)
	return reply, http.StatusOK
}

// commandKey identifies a command's content, to tell a retry from a reuse
// of its request id.
func commandKey(cmd cas.Command) string {
	b, _ := json.Marshal(cmd)
	return string(b)
}

func newReference() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// malformed says what makes cmd no command of api/cas.yaml ("" when it is
// one): the required members and the command's enum. (A PIN that is not
// four digits is a command the CAS refuses: INVALID_PIN.)
func malformed(cmd cas.Command) string {
	switch {
	case cmd.RequestID == "" || cmd.Command == "":
		return "request_id and command are required"
	case !slices.Contains(commands, cmd.Command):
		return "unknown command " + cmd.Command
	}
	return ""
}

var (
	commands = []string{cas.CmdAddSubscriptions, cas.CmdCancelSubscriptions, cas.CmdCreatePairing, cas.CmdAddToPairing,
		cas.CmdResetPIN, cas.CmdSendMail, cas.CmdSendBark, cas.CmdDisplayFingerprint}
)

// requestIDOf reads the request_id of a body that is not a command, to
// echo it.
func requestIDOf(body []byte) string {
	var v struct {
		RequestID string `json:"request_id"`
	}
	_ = json.Unmarshal(body, &v)
	return v.RequestID
}
