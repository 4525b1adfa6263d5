package southbound

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestWithoutNUL_RewritesOnlyRealNULEscapes(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"statusMessage":"fine"}`, `{"statusMessage":"fine"}`},
		{`{"statusMessage":"a\u0000b"}`, `{"statusMessage":"a\ufffdb"}`},
		{`{"m":"\u0000\u0000"}`, `{"m":"\ufffd\ufffd"}`},
		{`{"m":"\\u0000"}`, `{"m":"\\u0000"}`},     // a backslash, then "u0000"
		{`{"m":"\\\u0000"}`, `{"m":"\\\ufffd"}`},   // a backslash, then a NUL
		{`{"m":"\\\\u0000"}`, `{"m":"\\\\u0000"}`}, // two backslashes, then "u0000"
		{`{"a\u0000":"x"}`, `{"a\ufffd":"x"}`},     // in a name too
		{`{"m":"\u00001"}`, `{"m":"\ufffd1"}`},     // the escape is four digits
		{`{"m":"\u0001"}`, `{"m":"\u0001"}`},       // other control characters store fine
	} {
		if got := string(withoutNUL([]byte(c.in))); got != c.want {
			t.Errorf("withoutNUL(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}

// FuzzWithoutNUL: for any JSON text, reading the rewritten text gives what
// reading the original gives with every NUL replaced by U+FFFD, and a text
// that is not JSON stays not JSON.
func FuzzWithoutNUL(f *testing.F) {
	for _, s := range []string{`{"a":"\u0000"}`, `["\\u0000","\\\u0000"]`, `"\u0000"`, `{"\u0000":[1,"x\u0000y"]}`, `\u0000`, `"\\\\\u0000"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out := withoutNUL(in)
		if json.Valid(in) != json.Valid(out) {
			t.Fatalf("validity changed: %q -> %q", in, out)
		}
		var before, after any
		if json.Unmarshal(in, &before) != nil {
			return
		}
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatalf("%q -> %q: %v", in, out, err)
		}
		want, exact := replaceNUL(before)
		if exact && !reflect.DeepEqual(after, want) {
			t.Fatalf("%q read as %#v, want %#v", out, after, want)
		}
	})
}

// replaceNUL replaces every NUL of a decoded value by U+FFFD; exact is
// false when that makes two names of one object alike (which one the
// decoder keeps then depends on their order in the text).
func replaceNUL(v any) (out any, exact bool) {
	switch x := v.(type) {
	case string:
		return strings.ReplaceAll(x, "\x00", "\uFFFD"), true
	case []any:
		list, exact := make([]any, len(x)), true
		for i, e := range x {
			var ok bool
			list[i], ok = replaceNUL(e)
			exact = exact && ok
		}
		return list, exact
	case map[string]any:
		obj, exact := make(map[string]any, len(x)), true
		for k, e := range x {
			k = strings.ReplaceAll(k, "\x00", "\uFFFD")
			if _, dup := obj[k]; dup {
				exact = false
			}
			var ok bool
			obj[k], ok = replaceNUL(e)
			exact = exact && ok
		}
		return obj, exact
	}
	return v, true
}
