// Package wire reads a JSON request body member by member and checks each
// member against the limits the API documents publish (api/*.yaml):
// presence, type, length and pattern. The hub's APIs and the simulators
// read their bodies through it, so one limit is checked one way everywhere,
// and each maps a Problem to its API's own refusal: a 111 or 112 in a
// responseHeader, a CRM status code, an HTTP 400 with an error body.
//
// It is written by hand rather than validating each request against the
// OpenAPI documents at run time with kin-openapi's request filter. Speed
// does not decide it: BenchmarkObject_TaskRequest measures both side by
// side, and they cost the same per sendScript body. What does: the
// published APIs tell a member that is absent or null (111, "missing")
// from one of the wrong form (112), where a schema validator reports a
// null as a type error; the refusals name members as the APIs name them
// ("apduCommands[1].data"), not schema paths; and the simulators would
// otherwise load and route documents to answer a malformed call. The
// documents stay the reference: the end-to-end tests validate every
// request and answer against them, and the limits here are theirs.
package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Fault is what is wrong with a member.
type Fault uint8

const (
	// Missing: a required member is absent or null.
	Missing Fault = iota + 1
	// Malformed: a member has the wrong type, length or form, or the body
	// is not one JSON object.
	Malformed
)

// Problem is a member that fails its check.
type Problem struct {
	Fault Fault
	// Member names it as the API does ("requestHeader.sessionId",
	// "apduCommands[2].data"); "" for the body itself.
	Member string
	// Detail says what is wrong with a malformed member ("must be a
	// string").
	Detail string
}

func (p *Problem) Error() string {
	switch {
	case p.Fault == Missing:
		return p.Member + " is required"
	case p.Member == "":
		return p.Detail
	}
	return p.Member + " " + p.Detail
}

// ProblemOf returns the Problem in err's chain, or nil.
func ProblemOf(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	return nil
}

func missing(member string) error { return &Problem{Fault: Missing, Member: member} }

func malformed(member, format string, args ...any) error {
	return &Problem{Fault: Malformed, Member: member, Detail: fmt.Sprintf(format, args...)}
}

// Object is a decoded JSON object whose members are still raw. Members are
// named in problems with the object's own place in the body before them.
type Object struct {
	members map[string]json.RawMessage
	path    string // "" for the body, else "requestHeader." or "items[2]."
}

// Decode reads a body that must be exactly one JSON object.
func Decode(raw []byte) (Object, error) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&m); err != nil || m == nil {
		return Object{}, malformed("", "the body must be a JSON object")
	}
	if dec.More() {
		return Object{}, malformed("", "the body must be one JSON object, with nothing after it")
	}
	return Object{members: m}, nil
}

// ObjectOf reads a raw member value as an object named member.
func ObjectOf(member string, raw json.RawMessage) (Object, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return Object{}, malformed(member, "must be an object")
	}
	return Object{members: m, path: member + "."}, nil
}

// Label is how problems name member name of o.
func (o Object) Label(name string) string { return o.path + name }

// Has reports whether member name is present and not null.
func (o Object) Has(name string) bool {
	v, ok := o.members[name]
	return ok && string(v) != "null"
}

// Raw returns member name as sent (nil when absent).
func (o Object) Raw(name string) json.RawMessage { return o.members[name] }

// Names lists the members o holds, sorted.
func (o Object) Names() []string {
	names := make([]string, 0, len(o.members))
	for k := range o.members {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// Unknown lists, sorted, the members of o that allowed does not name.
func (o Object) Unknown(allowed ...string) []string {
	var out []string
	for k := range o.members {
		if !slices.Contains(allowed, k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// Require reports the first of names that is absent or null.
func (o Object) Require(names ...string) error {
	for _, n := range names {
		if !o.Has(n) {
			return missing(o.Label(n))
		}
	}
	return nil
}

// Text is the published form of a string member.
type Text struct {
	Required bool
	// Min and Max bound its length in bytes; Max 0 is no bound.
	Min, Max int
	// Pattern, when set, must match the whole value (anchor it).
	Pattern *regexp.Regexp
}

// Check holds s, the value of member, to t.
func (t Text) Check(member, s string) error {
	if len(s) < t.Min || (t.Max > 0 && len(s) > t.Max) {
		if t.Min == t.Max {
			return malformed(member, "must have %d characters", t.Max)
		}
		if t.Max == 0 {
			return malformed(member, "must have at least %d characters", t.Min)
		}
		return malformed(member, "must have %d to %d characters", t.Min, t.Max)
	}
	if t.Pattern != nil && !t.Pattern.MatchString(s) {
		return malformed(member, "must match %s", t.Pattern)
	}
	// JSON can carry a NUL ("\u0000") where no published text has one, and
	// PostgreSQL can store none: refused here, it is the caller's 112, not
	// a failed write later.
	if strings.IndexByte(s, 0) >= 0 {
		return malformed(member, "must not hold a NUL character")
	}
	return nil
}

// String reads a string member held to t; absent or null reads as "" (a
// problem when t.Required).
func (o Object) String(name string, t Text) (string, error) {
	if !o.Has(name) {
		if t.Required {
			return "", missing(o.Label(name))
		}
		return "", nil
	}
	return StringOf(o.Label(name), o.members[name], t)
}

// StringOf reads a raw value, named member, as a string held to t.
func StringOf(member string, raw json.RawMessage, t Text) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", malformed(member, "must be a string")
	}
	return s, t.Check(member, s)
}

// Object reads an object member; found is false when it is absent or
// null (a problem when required).
func (o Object) Object(name string, required bool) (obj Object, found bool, err error) {
	if !o.Has(name) {
		if required {
			return Object{}, false, missing(o.Label(name))
		}
		return Object{}, false, nil
	}
	obj, err = ObjectOf(o.Label(name), o.members[name])
	return obj, err == nil, err
}

// Array reads an array member; absent or null reads as none (a problem
// when required).
func (o Object) Array(name string, required bool) ([]json.RawMessage, error) {
	if !o.Has(name) {
		if required {
			return nil, missing(o.Label(name))
		}
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(o.members[name], &items); err != nil {
		return nil, malformed(o.Label(name), "must be an array")
	}
	return items, nil
}

// Objects reads an array member whose items are objects, each named
// "name[i]" in problems.
func (o Object) Objects(name string, required bool) ([]Object, error) {
	items, err := o.Array(name, required)
	if err != nil {
		return nil, err
	}
	out := make([]Object, len(items))
	for i, raw := range items {
		if out[i], err = ObjectOf(fmt.Sprintf("%s[%d]", o.Label(name), i), raw); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Number reads a number member; found is false when it is absent or null
// (a problem when required).
func (o Object) Number(name string, required bool) (v float64, found bool, err error) {
	if !o.Has(name) {
		if required {
			return 0, false, missing(o.Label(name))
		}
		return 0, false, nil
	}
	if err := json.Unmarshal(o.members[name], &v); err != nil {
		return 0, false, malformed(o.Label(name), "must be a number")
	}
	return v, true, nil
}

// Time reads an RFC 3339 time member held to t (its Pattern and length);
// found is false when it is absent or null.
func (o Object) Time(name string, t Text) (v time.Time, found bool, err error) {
	s, err := o.String(name, t)
	if err != nil || !o.Has(name) {
		return time.Time{}, false, err
	}
	if v, err = time.Parse(time.RFC3339, s); err != nil {
		return time.Time{}, false, malformed(o.Label(name), "must be an RFC 3339 time")
	}
	return v, true, nil
}

// Into decodes member name into v (a struct, a slice...); absent or null
// leaves v as it is (a problem when required). what says what the member
// must be, for the problem of one that does not decode ("an array of
// responses").
func (o Object) Into(name string, required bool, what string, v any) error {
	if !o.Has(name) {
		if required {
			return missing(o.Label(name))
		}
		return nil
	}
	if err := json.Unmarshal(o.members[name], v); err != nil {
		return malformed(o.Label(name), "must be %s", what)
	}
	return nil
}
