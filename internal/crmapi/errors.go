package crmapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/provhub/provhub/internal/httpapi"
	"github.com/provhub/provhub/internal/paytv"
)

// The status codes of the envelope. Every answer with an envelope is HTTP
// 200, as CRM clients read the outcome from status.code, except
// INTERNAL_ERROR (HTTP 500) and a path that is no method of the API (HTTP
// 404, NOT_FOUND).
const (
	CodeOK                  = "OK"
	CodeMissingParameter    = "MISSING_MANDATORY_PARAMETER"
	CodeInvalidParameter    = "INVALID_PARAMETER"
	CodeMoreThanOneField    = "MORE_THAN_ONE_IDENTIFIER_FIELD"
	CodeNotFound            = "NOT_FOUND"
	CodeInvalidToken        = "INVALID_TOKEN"
	CodeLoginFailed         = "LOGIN_FAILED"
	CodeTooManyAttempts     = "TOO_MANY_LOGIN_ATTEMPTS"
	CodeNotAllowedInState   = "NOT_ALLOWED_IN_CURRENT_STATE"
	CodeInternalError       = "INTERNAL_ERROR"
	internalErrorMessage    = "internal error"
	internalErrorDetail     = "the request could not be completed; it is logged under its correlation id"
	invalidParameterMessage = "invalid parameter"
)

// apiError is a refusal decided in this package, before the domain.
type apiError struct {
	code    string
	message string
}

func (e *apiError) Error() string { return e.message }

func missing(msg string) error { return &apiError{CodeMissingParameter, msg} }
func invalid(msg string) error { return &apiError{CodeInvalidParameter, msg} }

var messages = map[string]string{
	CodeMissingParameter:  "missing mandatory parameter",
	CodeInvalidParameter:  invalidParameterMessage,
	CodeMoreThanOneField:  "more than one identifier field",
	CodeNotFound:          "not found",
	CodeInvalidToken:      "invalid or expired token",
	CodeLoginFailed:       "login failed",
	CodeTooManyAttempts:   "too many failed logins",
	CodeNotAllowedInState: "not allowed in current state",
}

var domainCodes = map[paytv.ErrorKind]string{
	paytv.KindInvalid:         CodeInvalidParameter,
	paytv.KindMissing:         CodeMissingParameter,
	paytv.KindNotFound:        CodeNotFound,
	paytv.KindNotAllowed:      CodeNotAllowedInState,
	paytv.KindInvalidToken:    CodeInvalidToken,
	paytv.KindLoginFailed:     CodeLoginFailed,
	paytv.KindTooManyAttempts: CodeTooManyAttempts,
}

// writeError is the one place that turns an error into an envelope.
func writeError(ctx context.Context, log *slog.Logger, w http.ResponseWriter, err error) {
	var ae *apiError
	var de *paytv.Error
	switch {
	case errors.As(err, &ae):
		httpapi.WriteEnvelopeError(w, http.StatusOK, ae.code, messages[ae.code], ae.message)
	case errors.As(err, &de):
		code := domainCodes[de.Kind]
		httpapi.WriteEnvelopeError(w, http.StatusOK, code, messages[code], de.Message)
	default:
		log.ErrorContext(ctx, "crm api call failed", "err", err)
		httpapi.WriteEnvelopeError(w, http.StatusInternalServerError, CodeInternalError, internalErrorMessage, internalErrorDetail)
	}
}
