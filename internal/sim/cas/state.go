package cas

import (
	"slices"
	"time"

	"github.com/provhub/provhub/internal/cas"
)

// DefaultPIN is the PIN a card has until it is set, and after RESET_PIN
// without a PIN.
const DefaultPIN = "0000"

type smartcard struct {
	entitlements map[string]time.Time // service CA id -> since
	pairing      int                  // 0: not paired
	pin          string
	messages     []Message
	fingerprints []cas.Fingerprint
}

type stb struct {
	pairing int
}

type pairing struct {
	smartcards []string
	stbs       []string
}

// Message is a mail or bark message shown on a card's screen.
type Message struct {
	Kind string    `json:"kind"` // MAIL or BARK
	Text string    `json:"text"`
	At   time.Time `json:"at"`
}

// CardState is what the simulator knows of one smartcard.
type CardState struct {
	CAID         string            `json:"smartcard_ca_id"`
	Entitlements []string          `json:"entitlements"`
	PairedSTBs   []string          `json:"paired_stb_ca_ids"`
	PairedCards  []string          `json:"paired_smartcard_ca_ids"`
	PINIsDefault bool              `json:"pin_is_default"`
	Messages     []Message         `json:"messages"`
	Fingerprints []cas.Fingerprint `json:"fingerprints"`
}

// state is the CAS's data; the Simulator's mutex guards it.
type state struct {
	cards    map[string]*smartcard
	stbs     map[string]*stb
	pairings map[int]*pairing
	nextPair int
}

func newState() *state {
	return &state{cards: map[string]*smartcard{}, stbs: map[string]*stb{}, pairings: map[int]*pairing{}}
}

func (s *state) addCard(id string) {
	if _, ok := s.cards[id]; !ok {
		s.cards[id] = &smartcard{entitlements: map[string]time.Time{}, pin: DefaultPIN}
	}
}

func (s *state) addSTB(id string) {
	if _, ok := s.stbs[id]; !ok {
		s.stbs[id] = &stb{}
	}
}

func (s *state) cardState(id string) (CardState, bool) {
	c, ok := s.cards[id]
	if !ok {
		return CardState{}, false
	}
	cs := CardState{CAID: id, PINIsDefault: c.pin == DefaultPIN,
		Entitlements: []string{}, PairedSTBs: []string{}, PairedCards: []string{},
		Messages: append([]Message{}, c.messages...), Fingerprints: append([]cas.Fingerprint{}, c.fingerprints...)}
	for svc := range c.entitlements {
		cs.Entitlements = append(cs.Entitlements, svc)
	}
	slices.Sort(cs.Entitlements)
	if p, ok := s.pairings[c.pairing]; ok {
		cs.PairedSTBs = append(cs.PairedSTBs, p.stbs...)
		cs.PairedCards = append(cs.PairedCards, p.smartcards...)
	}
	return cs, true
}

// reject is a final refusal.
type reject struct{ result, message string }

// apply carries cmd out or says why not. It changes nothing when it
// rejects.
func (s *state) apply(cmd cas.Command, now time.Time) *reject {
	card := func(id string) (*smartcard, *reject) {
		c, ok := s.cards[id]
		if !ok {
			return nil, &reject{cas.ResultUnknownSmartcard, "unknown smartcard " + id}
		}
		return c, nil
	}
	switch cmd.Command {
	case cas.CmdAddSubscriptions, cas.CmdCancelSubscriptions:
		if cmd.SmartcardCAID == "" || len(cmd.ServiceCAIDs) == 0 || slices.Contains(cmd.ServiceCAIDs, "") {
			return &reject{cas.ResultBadRequest, "smartcard_ca_id and service_ca_ids are required"}
		}
		c, r := card(cmd.SmartcardCAID)
		if r != nil {
			return r
		}
		adding := cmd.Command == cas.CmdAddSubscriptions
		for _, svc := range cmd.ServiceCAIDs {
			_, active := c.entitlements[svc]
			if adding && active {
				return &reject{cas.ResultServiceAlreadyActive, "service " + svc + " is already active on " + cmd.SmartcardCAID}
			}
			if !adding && !active {
				return &reject{cas.ResultServiceNotActive, "service " + svc + " is not active on " + cmd.SmartcardCAID}
			}
		}
		for _, svc := range cmd.ServiceCAIDs {
			if adding {
				c.entitlements[svc] = now
			} else {
				delete(c.entitlements, svc)
			}
		}
	case cas.CmdCreatePairing:
		if len(cmd.SmartcardCAIDs) == 0 || len(cmd.STBCAIDs) == 0 {
			return &reject{cas.ResultBadRequest, "smartcard_ca_ids and stb_ca_ids are required"}
		}
		if r := s.checkFree(cmd.SmartcardCAIDs, cmd.STBCAIDs); r != nil {
			return r
		}
		s.nextPair++
		s.pairings[s.nextPair] = &pairing{}
		s.join(s.nextPair, cmd.SmartcardCAIDs, cmd.STBCAIDs)
	case cas.CmdAddToPairing:
		if cmd.SmartcardCAID == "" || len(cmd.SmartcardCAIDs)+len(cmd.STBCAIDs) == 0 {
			return &reject{cas.ResultBadRequest, "smartcard_ca_id and at least one smartcard or STB to add are required"}
		}
		c, r := card(cmd.SmartcardCAID)
		if r != nil {
			return r
		}
		if c.pairing == 0 {
			return &reject{cas.ResultNotPaired, "smartcard " + cmd.SmartcardCAID + " is not paired"}
		}
		if r := s.checkFree(cmd.SmartcardCAIDs, cmd.STBCAIDs); r != nil {
			return r
		}
		s.join(c.pairing, cmd.SmartcardCAIDs, cmd.STBCAIDs)
	case cas.CmdResetPIN:
		c, r := card(cmd.SmartcardCAID)
		if r != nil {
			return r
		}
		if cmd.PIN == "" {
			c.pin = DefaultPIN
			break
		}
		if !cas.ValidPIN(cmd.PIN) {
			return &reject{cas.ResultInvalidPIN, "a PIN is four digits"}
		}
		c.pin = cmd.PIN
	case cas.CmdSendMail, cas.CmdSendBark:
		c, r := card(cmd.SmartcardCAID)
		if r != nil {
			return r
		}
		if cmd.Text == "" {
			return &reject{cas.ResultBadRequest, "text is required"}
		}
		kind := "MAIL"
		if cmd.Command == cas.CmdSendBark {
			kind = "BARK"
		}
		c.messages = append(c.messages, Message{Kind: kind, Text: cmd.Text, At: now})
	case cas.CmdDisplayFingerprint:
		c, r := card(cmd.SmartcardCAID)
		if r != nil {
			return r
		}
		if cmd.Fingerprint == nil {
			return &reject{cas.ResultBadRequest, "fingerprint is required"}
		}
		c.fingerprints = append(c.fingerprints, *cmd.Fingerprint)
	default:
		return &reject{cas.ResultBadRequest, "unknown command " + cmd.Command}
	}
	return nil
}

// checkFree rejects unknown or already paired cards and STBs.
func (s *state) checkFree(cards, stbs []string) *reject {
	for _, id := range cards {
		c, ok := s.cards[id]
		if !ok {
			return &reject{cas.ResultUnknownSmartcard, "unknown smartcard " + id}
		}
		if c.pairing != 0 {
			return &reject{cas.ResultAlreadyPaired, "smartcard " + id + " is already paired"}
		}
	}
	for _, id := range stbs {
		b, ok := s.stbs[id]
		if !ok {
			return &reject{cas.ResultUnknownSTB, "unknown STB " + id}
		}
		if b.pairing != 0 {
			return &reject{cas.ResultAlreadyPaired, "STB " + id + " is already paired"}
		}
	}
	if dup := firstDuplicate(cards); dup != "" {
		return &reject{cas.ResultBadRequest, "smartcard " + dup + " is named twice"}
	}
	if dup := firstDuplicate(stbs); dup != "" {
		return &reject{cas.ResultBadRequest, "STB " + dup + " is named twice"}
	}
	return nil
}

func (s *state) join(p int, cards, stbs []string) {
	pr := s.pairings[p]
	for _, id := range cards {
		s.cards[id].pairing = p
		pr.smartcards = append(pr.smartcards, id)
	}
	for _, id := range stbs {
		s.stbs[id].pairing = p
		pr.stbs = append(pr.stbs, id)
	}
}

func firstDuplicate(ids []string) string {
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			return id
		}
		seen[id] = true
	}
	return ""
}
