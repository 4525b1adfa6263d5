package paytv

import (
	"time"

	"github.com/provhub/provhub/internal/refusal"
)

// Provider is the CRM interface a request came through; requests are
// stored once and tagged with it.
type Provider string

const (
	ConaxWebServices Provider = "conax_web_services"
	ConaxSMSSAS      Provider = "conax_sms_sas"
)

// RequestType is what a provisioning request asks of the CAS.
type RequestType string

const (
	TypeAddSubscriptions      RequestType = "ADD_SUBSCRIPTIONS"
	TypeCancelSubscriptions   RequestType = "CANCEL_SUBSCRIPTIONS"
	TypeCreatePairing         RequestType = "CREATE_PAIRING"
	TypeAddToExistingPairing  RequestType = "ADD_TO_EXISTING_PAIRING"
	TypeResetPINToDefault     RequestType = "UPDATE_CA_PIN_TO_DEFAULT_VALUE"
	TypeResetPINToGivenValue  RequestType = "UPDATE_CA_PIN_TO_GIVEN_VALUE"
	TypeGetActiveSubscription RequestType = "GET_ACTIVE_SUBSCRIPTIONS"
)

// AllRequestTypes are the types a list may filter on (the CRM's full set;
// provhub creates the first six through its API).
var AllRequestTypes = []RequestType{
	TypeAddSubscriptions, TypeCancelSubscriptions, TypeGetActiveSubscription,
	TypeCreatePairing, TypeAddToExistingPairing,
	"GET_PAIRING_STATUS_FOR_CARD", "GET_PAIRING_STATUS_FOR_PAIRING_MODULE", "DISPLAY_FINGERPRINT",
	TypeResetPINToDefault, TypeResetPINToGivenValue,
	"SEND_MAIL_MESSAGE_TO_CLIENT", "SEND_BARK_MESSAGE_TO_CLIENT", "SEND_REPEATING_BARK_MESSAGE_TO_CLIENT",
}

// LifeCycleState of a provisioning request.
type LifeCycleState string

const (
	Pending   LifeCycleState = "PENDING"
	Completed LifeCycleState = "COMPLETED"
	Rejected  LifeCycleState = "REJECTED"
)

// Priority of a provisioning request: EXPRESS requests are sent before
// REGULAR ones that are due at the same time.
type Priority string

const (
	Regular Priority = "REGULAR"
	Express Priority = "EXPRESS"
)

// Error codes stored on REJECTED requests (provider_error_code holds the
// CAS's own result code).
const (
	ErrorCodeCASRejected    = "CAS_REJECTED"
	ErrorCodeCASUnavailable = "CAS_UNAVAILABLE"
	// ErrorCodeCancelled: an operator cancelled the request's send job.
	ErrorCodeCancelled = "CANCELLED"
	// ErrorCodeSendFailed: the send job ended for good without an outcome
	// (its worker lost on the last attempt, or a fault of the hub).
	ErrorCodeSendFailed = "SEND_FAILED"
)

// Identifier names a record by exactly one of its identifying fields.
type Identifier struct {
	Field string
	Value string
}

func (i Identifier) String() string { return i.Field + "=" + i.Value }

// Parameter is one entry of a request's parameters_set. Value is nil for a
// parameter that is withheld (the PIN) or unknown.
type Parameter struct {
	ID    string  `json:"id"`
	Name  string  `json:"name"`
	Value *string `json:"value"`
}

// User is a CRM user as shown in log_information.
type User struct {
	ID         string
	Username   string
	PersonName *string
	Email      *string
}

// Unit is a CRM unit as shown in log_information.
type Unit struct {
	ID              string
	Name            string
	Description     *string
	AlternativeCode *string
	GroupName       *string
	CommunityName   *string
}

// Session is an authenticated CRM caller.
type Session struct {
	User           User
	Unit           Unit
	OrganisationID string
}

// Request is a stored provisioning request.
type Request struct {
	organisationID     string
	ID                 string
	Number             int64
	Provider           Provider
	Type               RequestType
	LifeCycleState     LifeCycleState
	Priority           Priority
	ProcessImmediately bool
	// ProcessImmediatelyGiven tells that the call named process_immediately.
	ProcessImmediatelyGiven bool
	SequenceNumber          *int64
	ScheduledAt             time.Time
	ExecutedAt              *time.Time
	SmartcardCAID           string
	Parameters              []Parameter
	// ClientIdentifiers are the identifiers the client sent, as it sent
	// them ("subscription number=S60058"); nil for older requests.
	ClientIdentifiers        []string
	Request                  *string
	Response                 *string
	ReferenceNumber          *string
	ErrorCode                *string
	ErrorDescription         *string
	ProviderErrorCode        *string
	ProviderErrorDescription *string
	CreatedAt                time.Time
	UpdatedAt                time.Time
	CreatedBy                User
	CreatedUnit              Unit
}

// ErrorKind classifies the domain's refusals; each API maps them to its
// own codes.
type ErrorKind int

const (
	KindInvalid ErrorKind = iota + 1
	KindMissing
	KindNotFound
	KindNotAllowed
	KindInvalidToken
	KindLoginFailed
	KindTooManyAttempts
)

// Error is a refusal the caller can act on; Message is safe to show.
type Error = refusal.Error[ErrorKind]

func errorf(kind ErrorKind, format string, args ...any) error {
	return refusal.New(kind, format, args...)
}

// KindOf returns the kind of a refusal of this domain, or 0 for any other
// error.
func KindOf(err error) ErrorKind { return refusal.KindOf[ErrorKind](err) }
