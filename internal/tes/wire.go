package tes

import (
	"github.com/provhub/provhub/internal/southbound"
)

// Paths of the device gateway, below the TES base URL.
const (
	PathCardCommands       = "/getCardCommands"
	PathParkCardCommands   = "/getParkCardCommands"
	PathReaderModeCommands = "/getReaderModeCommands"
)

// Operation values (assumed; the published enum is not readable).
const (
	OpTopUp       = "TOPUP"
	OpReadBalance = "READ_BALANCE"
	OpPark        = "BLOCK_AND_READ_CARD"
	OpReaderMode  = "READER_MODE"
)

// Command kinds.
const (
	KindFeliCa = "FELICA"
	KindAPDU   = "APDU"
)

// Status codes of the device gateway.
const (
	StatusOK                 = 0
	StatusMissing            = southbound.StatusMissing
	StatusBadFormat          = southbound.StatusBadFormat
	StatusUnknownIssuer      = 113
	StatusUnknownDevice      = 117
	StatusUnknownSession     = 118
	StatusUnknownCard        = 119
	StatusBlacklisted        = 159
	StatusDeleted            = 160
	StatusInsufficient       = 162
	StatusNotEligible        = 163
	StatusAlreadyProvisioned = 167
	StatusBadSystemCode      = 172
	StatusBadService         = 173
	StatusBadAreaData        = 177
	StatusInStation          = 178
	StatusExpired            = 191
	StatusReaderModeExceeded = 192
	StatusDeviceUnreachable  = 221
	StatusDeviceError        = 231
	StatusDeviceOutOfMemory  = 232
	StatusBusy               = 321
	StatusTTLExpired         = 322
	StatusIncomplete         = 323
	StatusFailed             = 911
	StatusServerError        = 921
)

var statusText = map[int]string{
	StatusOK: "OK", StatusMissing: "missing mandatory parameter", StatusBadFormat: "bad parameter format",
	StatusUnknownIssuer: "unknown issuer", StatusUnknownDevice: "unknown device", StatusUnknownSession: "unknown session",
	StatusUnknownCard: "unknown virtual card", StatusBlacklisted: "card is blacklisted", StatusDeleted: "card is deleted",
	StatusInsufficient: "card has insufficient balance", StatusNotEligible: "card product not eligible",
	StatusAlreadyProvisioned: "card is already provisioned", StatusBadSystemCode: "invalid card, unsupported system code",
	StatusBadService: "invalid card, unsupported service", StatusBadAreaData: "invalid card, invalid area data",
	StatusInStation: "invalid card, card status is in-station", StatusExpired: "card is expired",
	StatusReaderModeExceeded: "reader mode attempt exceeded allowed threshold",
	StatusDeviceUnreachable:  "device or wallet server not accessible", StatusDeviceError: "device unexpected error",
	StatusDeviceOutOfMemory: "device out of memory error", StatusBusy: "operation already on-going for this device",
	StatusTTLExpired: "time to live of the operation expired", StatusIncomplete: "operation incomplete",
	StatusFailed: "operation failed", StatusServerError: "unexpected server error",
}

// StatusText names a status code.
func StatusText(code int) string {
	if t, ok := statusText[code]; ok {
		return t
	}
	return "unknown status"
}

// RequestHeader and ResponseHeader are the TSH family's headers, which
// the wallet server and the TES share (SessionID names a TES loop).
type (
	RequestHeader  = southbound.RequestHeader
	ResponseHeader = southbound.ResponseHeader
)

// Command is one command to run on the card.
type Command struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	Data string `json:"data"`
}

// Response is the result of one command of the previous batch.
type Response struct {
	ID   string `json:"id"`
	Data string `json:"data"`
}

// Loop is what every request carries about the previous batch.
type Loop struct {
	ResponseTimeMs *float64   `json:"responseTimeMs,omitempty"`
	StatusCode     *int       `json:"statusCode,omitempty"`
	StatusMessage  string     `json:"statusMessage,omitempty"`
	Responses      []Response `json:"responses,omitempty"`
}

// CardCommandsRequest is getCardCommands' body.
type CardCommandsRequest struct {
	RequestHeader RequestHeader `json:"requestHeader"`
	IssuerID      string        `json:"issuerId"`
	CardID        string        `json:"cardId"`
	PurchaseID    string        `json:"purchaseId,omitempty"`
	DeviceID      string        `json:"deviceId"`
	Operation     string        `json:"operation,omitempty"`
	Loop
}

// ParkCardCommandsRequest is getParkCardCommands' body.
type ParkCardCommandsRequest struct {
	RequestHeader RequestHeader `json:"requestHeader"`
	IssuerID      string        `json:"issuerId"`
	CardID        string        `json:"cardId"`
	DeviceID      string        `json:"deviceId"`
	Operation     string        `json:"operation,omitempty"`
	Loop
}

// Area is one area of an external card with its key version.
type Area struct {
	AreaCode   string `json:"areaCode"`
	KeyVersion string `json:"keyVersion"`
}

// CardContents describes an external FeliCa card.
type CardContents struct {
	CardServiceID string `json:"cardServiceId,omitempty"`
	SystemCode    string `json:"systemCode"`
	IDm           string `json:"idm"`
	PMm           string `json:"pmm,omitempty"`
	AreaCodeList  []Area `json:"areaCodeList,omitempty"`
}

// ReaderModeCommandsRequest is getReaderModeCommands' body.
type ReaderModeCommandsRequest struct {
	RequestHeader RequestHeader `json:"requestHeader"`
	IssuerID      string        `json:"issuerId"`
	DeviceID      string        `json:"deviceId"`
	Operation     string        `json:"operation,omitempty"`
	CardContents  *CardContents `json:"cardContents,omitempty"`
	Loop
}

// CommandsResponse is every operation's answer: the next batch, or the end
// of the loop with the balance (and, in reader mode, the new account).
type CommandsResponse struct {
	ResponseHeader ResponseHeader `json:"responseHeader"`
	Commands       []Command      `json:"commands,omitempty"`
	Balance        *int64         `json:"balance,omitempty"`
	CardAccountID  string         `json:"cardAccountId,omitempty"`
}

// Done tells whether the answer ends the loop successfully.
func (r *CommandsResponse) Done() bool {
	return r.ResponseHeader.StatusCode == StatusOK && len(r.Commands) == 0
}
