package wallet

import (
	"errors"
	"net/http"
	"testing"
)

// FuzzDecodeAnswer: any answer decodes to success, a StatusError or
// ErrUnavailable, and never panics.
func FuzzDecodeAnswer(f *testing.F) {
	for _, s := range []string{
		`{"responseHeader":{"responseId":"r","sessionId":"s","statusCode":0},"taskStatus":"COMPLETED"}`,
		`{"responseHeader":{"responseId":"r","sessionId":"s","statusCode":321,"statusMessage":"busy"}}`,
		`{"responseHeader":{"statusCode":"0"}}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var res GetTaskStatusResponse
		err := decodeAnswer("getTaskStatus", http.StatusOK, b, &res, &res.ResponseHeader)
		var se *StatusError
		switch {
		case err == nil:
			if res.ResponseHeader.ResponseID == "" || res.ResponseHeader.StatusCode != StatusOK {
				t.Fatalf("accepted %q as success", b)
			}
		case errors.As(err, &se):
			if se.Code == StatusOK {
				t.Fatal("status 0 reported as an error")
			}
		case !errors.Is(err, ErrUnavailable):
			t.Fatalf("error %v is neither a status nor unavailable", err)
		}
	})
}
