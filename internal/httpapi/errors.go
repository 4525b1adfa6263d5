package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/provhub/provhub/internal/southbound"
)

// WriteJSON writes v as JSON with the given HTTP status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ErrorBody is the issuer API's error answer: an HTTP status and this body.
type ErrorBody struct {
	Error string `json:"error"`
}

// WriteError answers in the issuer style: HTTP status plus {"error": msg}.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, ErrorBody{Error: msg})
}

// EnvelopeStatus is the status part of a CRM envelope; Code is "OK" on
// success.
type EnvelopeStatus struct {
	Code        string  `json:"code"`
	Message     *string `json:"message"`
	Description *string `json:"description"`
}

// Envelope is the CRM answer: {status:{code,message,description}, data}.
type Envelope struct {
	Status EnvelopeStatus `json:"status"`
	Data   any            `json:"data"`
}

// WriteEnvelopeOK answers a CRM call that succeeded.
func WriteEnvelopeOK(w http.ResponseWriter, data any) {
	WriteJSON(w, http.StatusOK, Envelope{Status: EnvelopeStatus{Code: "OK"}, Data: data})
}

// WriteEnvelopeError answers a CRM call that failed, with a non-OK code.
func WriteEnvelopeError(w http.ResponseWriter, status int, code, message, description string) {
	s := EnvelopeStatus{Code: code}
	if message != "" {
		s.Message = &message
	}
	if description != "" {
		s.Description = &description
	}
	WriteJSON(w, status, Envelope{Status: s})
}

// ResponseHeader is the wallet-server and TES family's common answer
// header (the family's own, southbound's): the business outcome is
// StatusCode, and the HTTP status is 200.
type ResponseHeader = southbound.ResponseHeader

// NewResponseHeader fills a header answering sessionID with code.
func NewResponseHeader(sessionID string, code int, message string, now time.Time) ResponseHeader {
	return ResponseHeader{
		ResponseID:         NewID(),
		SessionID:          sessionID,
		GenerationDateTime: now.UTC().Format(time.RFC3339),
		StatusCode:         code,
		StatusMessage:      message,
	}
}

// WriteStatusCode answers in the wallet/TES style: HTTP 200 and a body
// holding only the responseHeader (used for every non-zero status code).
func WriteStatusCode(w http.ResponseWriter, h ResponseHeader) {
	WriteJSON(w, http.StatusOK, struct {
		ResponseHeader ResponseHeader `json:"responseHeader"`
	}{h})
}

// DecodeJSON reads a JSON body into v, refusing unknown trailing data. It
// reports a body over the size limit as ErrBodyTooLarge.
func DecodeJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return ErrBodyTooLarge
		}
		return fmt.Errorf("read body: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("unexpected data after the JSON body")
	}
	return nil
}

// ErrBodyTooLarge is returned by DecodeJSON for a body over the limit.
var ErrBodyTooLarge = errors.New("request body too large")
