package cas

// Command names, one per kind of provisioning request.
const (
	CmdAddSubscriptions    = "ADD_SUBSCRIPTIONS"
	CmdCancelSubscriptions = "CANCEL_SUBSCRIPTIONS"
	CmdCreatePairing       = "CREATE_PAIRING"
	CmdAddToPairing        = "ADD_TO_PAIRING"
	CmdResetPIN            = "RESET_PIN"
	CmdSendMail            = "SEND_MAIL"
	CmdSendBark            = "SEND_BARK"
	CmdDisplayFingerprint  = "DISPLAY_FINGERPRINT"
)

// Result codes. OK means the CAS carried the command out; the others are
// final rejections, except Busy, which asks the sender to retry later.
const (
	ResultOK                   = "OK"
	ResultBadRequest           = "BAD_REQUEST"
	ResultUnknownSmartcard     = "UNKNOWN_SMARTCARD"
	ResultUnknownSTB           = "UNKNOWN_STB"
	ResultServiceAlreadyActive = "SERVICE_ALREADY_ACTIVE"
	ResultServiceNotActive     = "SERVICE_NOT_ACTIVE"
	ResultAlreadyPaired        = "ALREADY_PAIRED"
	ResultNotPaired            = "NOT_PAIRED"
	ResultInvalidPIN           = "INVALID_PIN"
	ResultRequestIDReused      = "REQUEST_ID_REUSED"
	ResultBusy                 = "BUSY"
)

// Command is one instruction to the CAS. RequestID makes it idempotent: the
// CAS answers a repeated RequestID with the first answer and does nothing
// again.
type Command struct {
	RequestID string `json:"request_id"`
	Command   string `json:"command"`
	// SmartcardCAID is the card the command is about (for ADD_TO_PAIRING:
	// a card already in the pairing).
	SmartcardCAID string `json:"smartcard_ca_id,omitempty"`
	// ServiceCAIDs are the services to add or cancel.
	ServiceCAIDs []string `json:"service_ca_ids,omitempty"`
	// SmartcardCAIDs and STBCAIDs are the members of a pairing.
	SmartcardCAIDs []string `json:"smartcard_ca_ids,omitempty"`
	STBCAIDs       []string `json:"stb_ca_ids,omitempty"`
	// PIN is the new PIN of RESET_PIN; absent resets to the default PIN.
	PIN string `json:"pin,omitempty"`
	// Text is the body of a mail or bark message.
	Text string `json:"text,omitempty"`
	// Fingerprint places a fingerprint on screen.
	Fingerprint *Fingerprint `json:"fingerprint,omitempty"`
}

// Fingerprint says where and when a fingerprint shows.
type Fingerprint struct {
	DisplayAt       string `json:"display_at,omitempty"`
	DurationSeconds int    `json:"duration_seconds,omitempty"`
	PositionX       int    `json:"position_x"`
	PositionY       int    `json:"position_y"`
	Height          int    `json:"height,omitempty"`
}

// Redacted is c without its secret (the PIN), for storing and logging.
func (c Command) Redacted() Command {
	if c.PIN != "" {
		c.PIN = "****"
	}
	return c
}

// Reply is the CAS's answer to a Command.
type Reply struct {
	RequestID       string `json:"request_id"`
	Result          string `json:"result"`
	ReferenceNumber string `json:"reference_number,omitempty"`
	Message         string `json:"message,omitempty"`
}

// ValidPIN tells whether pin has the protocol's form: four digits.
func ValidPIN(pin string) bool {
	if len(pin) != 4 {
		return false
	}
	for _, r := range pin {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
