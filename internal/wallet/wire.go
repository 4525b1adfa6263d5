package wallet

import (
	"github.com/provhub/provhub/internal/southbound"
)

// Status codes of responseHeader.statusCode.
const (
	StatusOK              = 0
	StatusMissing         = southbound.StatusMissing
	StatusBadFormat       = southbound.StatusBadFormat
	StatusUnknownCard     = 119
	StatusUnknownTask     = 121
	StatusDeviceBusy      = 321
	StatusNotAllowed      = 432
	StatusOperationFailed = 911
	StatusServerError     = 921
)

// StatusText is the meaning of a status code.
func StatusText(code int) string {
	switch code {
	case StatusOK:
		return "OK"
	case StatusMissing:
		return "missing mandatory parameter"
	case StatusBadFormat:
		return "bad parameter format"
	case StatusUnknownCard:
		return "unknown virtual card"
	case StatusUnknownTask:
		return "unknown task"
	case StatusDeviceBusy:
		return "operation already on-going for this device"
	case StatusNotAllowed:
		return "operation is not allowed with current card state"
	case StatusOperationFailed:
		return "operation failed"
	case StatusServerError:
		return "unexpected server error"
	}
	return "unknown status code"
}

// Operations of updateCard.
const (
	OpSuspend        = "SUSPEND"
	OpResume         = "RESUME"
	OpDelete         = "DELETE"
	OpMetadataUpdate = "METADATA_UPDATE"
	OpRedirect       = "REDIRECT"
	OpErase          = "ERASE"
)

// Task states of getTaskStatus.
const (
	TaskProcessing = "PROCESSING"
	TaskCompleted  = "COMPLETED"
	TaskFailed     = "FAILED"
)

// RequestHeader and ResponseHeader are the TSH family's headers, which
// the wallet server and the TES share (SessionID names a TES loop).
type (
	RequestHeader  = southbound.RequestHeader
	ResponseHeader = southbound.ResponseHeader
)

// APDUCommand is one command APDU of a script, in hex.
type APDUCommand struct {
	Data        string `json:"data"`
	MessageID   string `json:"messageId"`
	MessageName string `json:"messageName,omitempty"`
}

// SendScriptRequest is the body of sendScript.
type SendScriptRequest struct {
	RequestHeader RequestHeader `json:"requestHeader"`
	TaskID        string        `json:"taskId"`
	WalletCardID  string        `json:"walletCardId"`
	SEID          string        `json:"seId"`
	APDUCommands  []APDUCommand `json:"apduCommands"`
}

// CardDescriptor is a card's metadata, sent with METADATA_UPDATE.
type CardDescriptor struct {
	AppletCurrencyCode    string       `json:"appletCurrencyCode,omitempty"`
	DisplayCardNumber     string       `json:"displayCardNumber,omitempty"`
	CardholderName        string       `json:"cardholderName,omitempty"`
	CardArtManifest       []string     `json:"cardArtManifest,omitempty"`
	LabelColor            string       `json:"labelColor,omitempty"`
	ShortDescription      string       `json:"shortDescription,omitempty"`
	LongDescription       string       `json:"longDescription,omitempty"`
	PrivacyPolicyURL      string       `json:"privacyPolicyURL,omitempty"`
	TermsAndConditionsURL string       `json:"termsAndConditionsURL,omitempty"`
	ContactWebsite        string       `json:"contactWebsite,omitempty"`
	ContactEmail          string       `json:"contactEmail,omitempty"`
	ContactNumber         string       `json:"contactNumber,omitempty"`
	ContactName           string       `json:"contactName,omitempty"`
	CardActions           *CardActions `json:"cardActions,omitempty"`
	MobileApp             *MobileApp   `json:"mobileApp,omitempty"`
}

// CardActions are the top-up limits of a card.
type CardActions struct {
	MinLoadedBalance *float64 `json:"minLoadedBalance,omitempty"`
	MaxLoadedBalance float64  `json:"maxLoadedBalance"`
	MinLoadAmount    float64  `json:"minLoadAmount"`
	MaxLoadAmount    *float64 `json:"maxLoadAmount,omitempty"`
}

// MobileApp is the issuer's app, for deep links.
type MobileApp struct {
	Identifier      string `json:"identifier"`
	Action          string `json:"action,omitempty"`
	IntentExtraText string `json:"intentExtraText,omitempty"`
}

// UpdateCardRequest is the body of updateCard.
type UpdateCardRequest struct {
	RequestHeader  RequestHeader   `json:"requestHeader"`
	TaskID         string          `json:"taskId"`
	WalletCardID   string          `json:"walletCardId"`
	SEID           string          `json:"seId"`
	Operation      string          `json:"operation"`
	CardDescriptor *CardDescriptor `json:"cardDescriptor,omitempty"`
	// RedirectData goes with REDIRECT (assumed member): what the device
	// needs to call the hub.
	RedirectData *RedirectData `json:"redirectData,omitempty"`
}

// RedirectData tells a redirected device which operation to run and the
// secret that proves each of its calls (assumed member).
type RedirectData struct {
	OperationID string `json:"operationId"`
	DeviceToken string `json:"deviceToken"`
}

// PushNotificationRequest is the body of pushNotification: walletCardId
// and seId are published, the rest is ours (assumed members).
type PushNotificationRequest struct {
	RequestHeader RequestHeader `json:"requestHeader"`
	// NotificationID is the same on every retry: a wallet server shows a
	// notification once per id.
	NotificationID string       `json:"notificationId"`
	WalletCardID   string       `json:"walletCardId"`
	SEID           string       `json:"seId"`
	Notification   Notification `json:"notification"`
}

// Notification is what the user should see about a digital card (ours).
type Notification struct {
	// Kind is one of the Notify* values.
	Kind string `json:"kind"`
	// TextKey names the message the wallet app shows, in its own
	// language: provhub.<kind in lower case>.
	TextKey string `json:"textKey"`
	// OccurredAt is when the event happened (RFC 3339).
	OccurredAt string `json:"occurredAt"`
	// Balance is the card's balance after a top-up or park.
	Balance *int64 `json:"balance,omitempty"`
	// StatusCode is the TES's code of a failed top-up or park.
	StatusCode *int `json:"statusCode,omitempty"`
	// OperationID names the device operation the notification is about.
	OperationID string `json:"operationId,omitempty"`
}

// Notification kinds (assumed).
const (
	NotifyTopUpCompleted = "TOPUP_COMPLETED"
	NotifyTopUpFailed    = "TOPUP_FAILED"
	NotifyParkCompleted  = "PARK_COMPLETED"
	NotifyParkFailed     = "PARK_FAILED"
	NotifyCardSuspended  = "CARD_SUSPENDED"
	NotifyCardResumed    = "CARD_RESUMED"
	NotifyCardDeleted    = "CARD_DELETED"
	NotifyCardArtUpdated = "CARD_ART_UPDATED"
)

// NotificationKinds lists every kind, in a stable order.
var NotificationKinds = []string{NotifyTopUpCompleted, NotifyTopUpFailed, NotifyParkCompleted, NotifyParkFailed,
	NotifyCardSuspended, NotifyCardResumed, NotifyCardDeleted, NotifyCardArtUpdated}

// GetTaskStatusRequest is the body of getTaskStatus.
type GetTaskStatusRequest struct {
	RequestHeader RequestHeader `json:"requestHeader"`
	TaskID        string        `json:"taskId"`
	SEID          string        `json:"seId"`
}

// HeaderOnlyResponse answers sendScript and updateCard.
type HeaderOnlyResponse struct {
	ResponseHeader ResponseHeader `json:"responseHeader"`
}

// GetTaskStatusResponse answers getTaskStatus.
type GetTaskStatusResponse struct {
	ResponseHeader ResponseHeader `json:"responseHeader"`
	TaskStatus     string         `json:"taskStatus,omitempty"`
}
