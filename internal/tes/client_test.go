package tes

import (
	"errors"
	"testing"
)

func TestDecodeAnswer(t *testing.T) {
	cases := []struct {
		name, body string
		http       int
		wantCode   int // -1: ErrUnavailable, 0: OK
		done       bool
	}{
		{"next batch", `{"responseHeader":{"responseId":"r","sessionId":"s","statusCode":0},"commands":[{"id":"poll","kind":"FELICA","data":"0600000300"}]}`, 200, 0, false},
		{"end with balance and unknown members", `{"responseHeader":{"responseId":"r","sessionId":"s","statusCode":0},"balance":15,"future":{"x":1}}`, 200, 0, true},
		{"refusal", `{"responseHeader":{"responseId":"r","sessionId":"s","statusCode":162,"statusMessage":"low"}}`, 200, 162, false},
		{"statusCode 0.0", `{"responseHeader":{"responseId":"r","sessionId":"s","statusCode":0.0},"balance":15}`, 200, 0, true},
		{"statusCode 162.0", `{"responseHeader":{"responseId":"r","sessionId":"s","statusCode":162.0}}`, 200, 162, false},
		{"statusCode a string", `{"responseHeader":{"responseId":"r","sessionId":"s","statusCode":"0"},"balance":15}`, 200, -1, false},
		{"no statusCode", `{"responseHeader":{"responseId":"r","sessionId":"s"},"balance":15}`, 200, -1, false},
		{"HTTP 500", ``, 500, -1, false},
		{"no header", `{"commands":[]}`, 200, -1, false},
		{"not JSON", `<html>`, 200, -1, false},
		{"command with odd hex", `{"responseHeader":{"responseId":"r","sessionId":"s","statusCode":0},"commands":[{"id":"a","kind":"FELICA","data":"ABC"}]}`, 200, -1, false},
		{"command of an unknown kind", `{"responseHeader":{"responseId":"r","sessionId":"s","statusCode":0},"commands":[{"id":"a","kind":"MIFARE","data":"AB"}]}`, 200, -1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := DecodeAnswer("getCardCommands", c.http, []byte(c.body))
			var se *StatusError
			switch {
			case c.wantCode == -1:
				if !errors.Is(err, ErrUnavailable) || !Retryable(err) {
					t.Fatalf("want ErrUnavailable, got %v", err)
				}
			case c.wantCode == 0:
				if err != nil || res.Done() != c.done {
					t.Fatalf("%+v %v", res, err)
				}
			default:
				if !errors.As(err, &se) || se.Code != c.wantCode || se.Retryable() || res == nil {
					t.Fatalf("want status %d, got %v", c.wantCode, err)
				}
			}
		})
	}
	for code, retry := range map[int]bool{221: true, 321: true, 322: true, 921: true, 162: false, 323: false, 911: false} {
		if (&StatusError{Code: code}).Retryable() != retry {
			t.Errorf("status %d retryable should be %v", code, retry)
		}
	}
}

func FuzzDecodeAnswer(f *testing.F) {
	f.Add(`{"responseHeader":{"responseId":"r","sessionId":"s","statusCode":0},"commands":[{"id":"poll","kind":"FELICA","data":"0600000300"}]}`)
	f.Add(`{"responseHeader":{"responseId":"r","sessionId":"s","statusCode":162}}`)
	f.Add(`{"responseHeader":{"responseId":"r","statusCode":"0"}}`)
	f.Fuzz(func(t *testing.T, body string) {
		res, err := DecodeAnswer("fuzz", 200, []byte(body))
		if err == nil && (res == nil || res.ResponseHeader.StatusCode != StatusOK) {
			t.Fatalf("accepted %s as %+v", body, res)
		}
		if err == nil {
			for _, c := range res.Commands {
				if c.ID == "" || !isHex(c.Data) {
					t.Fatalf("accepted a malformed command %+v", c)
				}
			}
		}
	})
}
