package issuer

import (
	"slices"
	"time"

	"github.com/provhub/provhub/internal/refusal"
)

// ConsumerState is where an end user stands.
type ConsumerState string

const (
	ConsumerActive   ConsumerState = "ACTIVE"
	ConsumerDeleting ConsumerState = "DELETING"
	// ConsumerDeleted is a tombstone: the consumerId can never be used again.
	ConsumerDeleted ConsumerState = "DELETED"
)

// CardState is a card's state.
type CardState string

const (
	CardActive    CardState = "ACTIVE"
	CardInactive  CardState = "INACTIVE"
	CardSuspended CardState = "SUSPENDED"
	CardDeleted   CardState = "DELETED"
)

// OperationType is what an operation did.
type OperationType string

const (
	OpRegister OperationType = "REGISTER"
	OpSuspend  OperationType = "SUSPEND"
	OpResume   OperationType = "RESUME"
	OpDelete   OperationType = "DELETE"
)

// OperationStatus is where an operation stands.
type OperationStatus string

const (
	StatusPending    OperationStatus = "PENDING"
	StatusSuccessful OperationStatus = "SUCCESSFUL"
	StatusFailed     OperationStatus = "FAILED"
)

// Requestor types.
const (
	RequestorIssuer = "ISSUER"
)

// Reason codes.
const (
	ReasonUserDecision   = "USER_DECISION"
	ReasonIssuerDecision = "ISSUER_DECISION"
	ReasonCardLost       = "CARD_LOST"
	ReasonCardStolen     = "CARD_STOLEN"
	ReasonCardBroken     = "CARD_BROKEN"
	ReasonFraud          = "FRAUD"
	ReasonCardFound      = "CARD_FOUND"
	ReasonClosedAccount  = "CLOSED_ACCOUNT"
	ReasonClosedCard     = "CLOSED_CARD"
)

// Reason codes accepted per call; the first is the default.
var (
	ConsumerDeleteReasons = []string{ReasonIssuerDecision, ReasonUserDecision}
	CardSuspendReasons    = []string{ReasonIssuerDecision, ReasonUserDecision, ReasonCardLost, ReasonCardStolen, ReasonCardBroken, ReasonFraud}
	CardResumeReasons     = []string{ReasonIssuerDecision, ReasonUserDecision, ReasonCardFound}
	CardDeleteReasons     = []string{ReasonIssuerDecision, ReasonUserDecision, ReasonClosedAccount, ReasonClosedCard, ReasonCardLost, ReasonCardStolen}
)

// resumeAllowed tells whether a card suspended for suspendedFor may be
// resumed for reason.
func resumeAllowed(suspendedFor, reason string) bool {
	switch suspendedFor {
	case ReasonCardLost:
		return reason == ReasonCardFound
	case ReasonUserDecision:
		return reason == ReasonUserDecision || reason == ReasonIssuerDecision
	case ReasonIssuerDecision, "":
		return reason == ReasonIssuerDecision
	}
	return false // stolen, broken, fraud: replaced, never resumed
}

// Requestor is who asked for an operation.
type Requestor struct {
	Type, ID string
	// CorrelationID is the caller's x-correlation-id, kept on the operation.
	CorrelationID string
}

// Reason is why an action was taken.
type Reason struct {
	Text string
	Code string
}

// Consumer is an end user.
type Consumer struct {
	IssuerID, ConsumerID string
	State                ConsumerState
	CreatedAt            time.Time
}

// CardInput registers a card.
type CardInput struct {
	ConsumerID, AccountID, CardProductID string
	// State is ACTIVE or INACTIVE, for a new card [ACTIVE].
	State CardState
	// LastDigits are the last 4 or 5 digits of the card number, which
	// provisionCard checks ("" keeps what is registered).
	LastDigits string
	// TermsID and CardArt are the card's terms and art (asset GUIDs of the
	// issuer), shown by checkCardAccount; nil keeps what is registered, an
	// empty value clears it.
	TermsID *string
	CardArt []string
	// SetCardArt tells that CardArt is given (an empty list clears it).
	SetCardArt bool
}

// Card is a card with its digital cards.
type Card struct {
	IssuerID, CardID, ConsumerID, AccountID, CardProductID string
	State                                                  CardState
	StateReason                                            string
	OngoingOperation                                       string
	LastDigits, TermsID                                    string
	CardArt                                                []string
	CreatedAt, UpdatedAt                                   time.Time
	DigitalCards                                           []DigitalCard
}

// DigitalCardState is a digital card's state as the issuer API shows it.
type DigitalCardState string

const (
	DigitalInactive  DigitalCardState = "INACTIVE"
	DigitalActive    DigitalCardState = "ACTIVE"
	DigitalSuspended DigitalCardState = "SUSPENDED"
	DigitalDeleted   DigitalCardState = "DELETED"
)

// DigitalCard is a card in a wallet: the transit domain's card, named by
// its walletCardId.
type DigitalCard struct {
	DigitalCardID string
	CardID        string
	State         DigitalCardState
}

// Operation is an operation recorded for a consumer.
type Operation struct {
	OperationID, IssuerID, ConsumerID string
	Type                              OperationType
	Status                            OperationStatus
	RequestorType, RequestorID        string
	Reason, ReasonCode                string
	CardID, DigitalCardID             string
	// AccountID names the account of an account deletion.
	AccountID        string
	ErrorCode, Error string
	CorrelationID    string
	StartTime        time.Time
	EndTime          *time.Time
}

// Page is one page of a consumer's operations, newest first.
type Page struct {
	Operations []Operation
	// Remaining is how many older operations follow this page.
	Remaining int
}

// ErrorKind classifies refusals; the API maps them to HTTP statuses.
type ErrorKind int

const (
	// KindBadInput: the request itself is wrong (400).
	KindBadInput ErrorKind = iota + 1
	// KindNotFound: no such consumer, card or digital card for this issuer (404).
	KindNotFound
	// KindForbidden: the state of the consumer, card or digital card
	// forbids the action (403).
	KindForbidden
	// KindConflict: the id is already used by another consumer (409).
	KindConflict
)

// Error is a refusal the caller can act on; Message is safe to show.
type Error = refusal.Error[ErrorKind]

func errorf(kind ErrorKind, format string, args ...any) error {
	return refusal.New(kind, format, args...)
}

// KindOf returns the kind of a refusal of this domain, or 0 for any other
// error.
func KindOf(err error) ErrorKind { return refusal.KindOf[ErrorKind](err) }

// reasonCode applies the default of a call's reason codes and checks the
// code is one of them.
func reasonCode(code string, allowed []string) (string, error) {
	if code == "" {
		return allowed[0], nil
	}
	if !slices.Contains(allowed, code) {
		return "", errorf(KindBadInput, "reasonCode must be one of %v", allowed)
	}
	return code, nil
}
