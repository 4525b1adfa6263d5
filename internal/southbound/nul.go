package southbound

import "bytes"

// nulEscape is how JSON writes a NUL inside a string (a raw control byte
// is not valid JSON), and replacement the escape of U+FFFD.
var (
	nulEscape   = []byte(`\u0000`)
	replacement = []byte(`\ufffd`)
)

// withoutNUL rewrites every NUL escape of a JSON text as U+FFFD's. No
// published member of an answer holds a NUL, and PostgreSQL can store
// none: a partner's message holding one would otherwise make the write of
// the outcome that records it fail on every retry. Invalid UTF-8 needs no
// such care: the JSON decoder already reads it as U+FFFD.
//
// An escape counts only where its backslash is not itself escaped: the
// text `\\u0000` is a backslash followed by "u0000", and stays. The answer
// is returned as is when it holds no NUL escape (the common case, one scan).
func withoutNUL(body []byte) []byte {
	i := bytes.Index(body, nulEscape)
	if i < 0 {
		return body
	}
	out := make([]byte, 0, len(body))
	for i >= 0 {
		// The escape is real when an even number of backslashes precede
		// its own.
		n := 0
		for j := i - 1; j >= 0 && body[j] == '\\'; j-- {
			n++
		}
		out = append(out, body[:i]...)
		if n%2 == 0 {
			out = append(out, replacement...)
		} else {
			out = append(out, nulEscape...)
		}
		body = body[i+len(nulEscape):]
		i = bytes.Index(body, nulEscape)
	}
	return append(out, body...)
}
