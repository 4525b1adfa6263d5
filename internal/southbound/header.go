package southbound

import (
	"encoding/json"
	"fmt"
)

// RequestHeader opens every request body of the TSH family of APIs (the
// wallet server's and the TES device gateway's alike); the tes and wallet
// packages name it as their own.
type RequestHeader struct {
	RequestID          string `json:"requestId"`
	SessionID          string `json:"sessionId"`
	GenerationDateTime string `json:"generationDateTime,omitempty"`
}

// ResponseHeader opens every response body of the same family.
type ResponseHeader struct {
	ResponseID         string `json:"responseId"`
	SessionID          string `json:"sessionId"`
	GenerationDateTime string `json:"generationDateTime,omitempty"`
	StatusCode         int    `json:"statusCode"`
	StatusMessage      string `json:"statusMessage,omitempty"`
}

// UnmarshalJSON reads statusCode as the JSON number it is published as
// (0.0 is 0), and refuses a header without one.
func (h *ResponseHeader) UnmarshalJSON(b []byte) error {
	type plain ResponseHeader
	var v struct {
		plain
		StatusCode json.RawMessage `json:"statusCode"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	code, err := StatusCode(v.StatusCode)
	if err != nil {
		return fmt.Errorf("responseHeader: %w", err)
	}
	*h = ResponseHeader(v.plain)
	h.StatusCode = code
	return nil
}
