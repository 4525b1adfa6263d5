package transit

import (
	"encoding/json"
	"time"

	"github.com/provhub/provhub/internal/refusal"
)

// CardState is a digital card's life-cycle state.
type CardState string

const (
	PendingPerso CardState = "PENDING_PERSO"
	Active       CardState = "ACTIVE"
	Suspended    CardState = "SUSPENDED"
	Deleted      CardState = "DELETED"
	Erased       CardState = "ERASED"
)

// Operation is what a task does to a card.
type Operation string

const (
	OpPersonalize    Operation = "PERSONALIZE"
	OpSuspend        Operation = "SUSPEND"
	OpResume         Operation = "RESUME"
	OpDelete         Operation = "DELETE"
	OpErase          Operation = "ERASE"
	OpMetadataUpdate Operation = "METADATA_UPDATE"
	// OpRedirect sends the device to the hub for a command loop.
	OpRedirect Operation = "REDIRECT"
)

// TaskStatus is where a task stands.
type TaskStatus string

const (
	TaskQueued     TaskStatus = "QUEUED"
	TaskProcessing TaskStatus = "PROCESSING"
	TaskCompleted  TaskStatus = "COMPLETED"
	TaskFailed     TaskStatus = "FAILED"
)

// Card is a digital card as the hub keeps it.
type Card struct {
	CardID        string
	IssuerID      string
	CardAccountID string
	WalletCardID  string
	SEID          string
	DeviceID      string
	InstanceAID   string
	State         CardState
	Metadata      json.RawMessage
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Task is one wallet-server task of a card.
type Task struct {
	TaskID     string
	CardID     string
	SEID       string
	Operation  Operation
	Status     TaskStatus
	StatusCode *int
	Message    string
	JobID      int64
}

// ErrorKind classifies refusals; the API maps them to status codes.
type ErrorKind int

const (
	KindMissing ErrorKind = iota + 1
	KindBadFormat
	KindUnknownCard
	KindAlreadyProvisioned
	KindNotAllowed
	// KindBusy: another device operation runs on the secure element (321).
	KindBusy
	// KindNoOperation: no device operation waits for the secure element (117).
	KindNoOperation
	// KindUnknownOperation: no such device operation (118).
	KindUnknownOperation
	// KindBadStep: a device call out of order (112).
	KindBadStep
	// KindUnavailable: the TES did not answer now; repeat later (921).
	KindUnavailable
)

// Error is a refusal the caller can act on; Message is safe to show.
type Error = refusal.Error[ErrorKind]

func errorf(kind ErrorKind, format string, args ...any) error {
	return refusal.New(kind, format, args...)
}

// KindOf returns the kind of a refusal of this domain, or 0 for any other
// error.
func KindOf(err error) ErrorKind { return refusal.KindOf[ErrorKind](err) }

// target is the state a completed operation leaves the card in.
func target(op Operation, from CardState) CardState {
	switch op {
	case OpPersonalize, OpResume:
		return Active
	case OpSuspend:
		return Suspended
	case OpDelete:
		return Deleted
	case OpErase:
		return Erased
	}
	return from // METADATA_UPDATE, REDIRECT
}

// allowed tells whether op may be asked of a card in state s.
func allowed(op Operation, s CardState) bool {
	switch op {
	case OpPersonalize:
		return s == PendingPerso
	case OpSuspend:
		return s == Active
	case OpResume:
		return s == Suspended
	case OpDelete:
		// A card whose personalisation never happened can be deleted too.
		return s == PendingPerso || s == Active || s == Suspended
	case OpMetadataUpdate:
		return s == Active || s == Suspended || s == PendingPerso
	case OpErase:
		return s != Erased
	case OpRedirect:
		return s == Active
	}
	return false
}
