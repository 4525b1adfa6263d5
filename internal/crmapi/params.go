package crmapi

import (
	"encoding/json"
	"fmt"
	"iter"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/provhub/provhub/internal/paytv"
	"github.com/provhub/provhub/internal/wire"
)

// dateLayout is the CRM's date form; dates carry no zone and are read and
// written as UTC.
const dateLayout = "2006-01-02T15:04:05"

// Paging defaults of list.
const (
	defaultResults = 50
	maxResults     = 500
)

// body is a decoded POST body: its fields by name, each still raw, read
// with package wire.
type body struct{ wire.Object }

// fromWire gives a wire problem the CRM's status code: a parameter missing
// or invalid.
func fromWire(err error) error {
	p := wire.ProblemOf(err)
	switch {
	case p == nil:
		return err
	case p.Fault == wire.Missing:
		return missing(p.Error())
	}
	return invalid(p.Error())
}

// parseBody decodes a JSON object and refuses fields the method does not
// take, so that a misspelt optional parameter is not silently ignored.
func parseBody(raw []byte, allowed []string) (body, error) {
	o, err := wire.Decode(raw)
	if err != nil {
		return body{}, fromWire(err)
	}
	if err := refuseUnknown(slices.Values(o.Names()), allowed); err != nil {
		return body{}, err
	}
	return body{o}, nil
}

// refuseUnknown names every parameter that is not allowed.
func refuseUnknown(names iter.Seq[string], allowed []string) error {
	var unknown []string
	for k := range names {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return invalid(fmt.Sprintf("unknown parameter %s (this method takes %s)", strings.Join(unknown, ", "), strings.Join(allowed, ", ")))
}

// has reports whether a field is present and not null.
func (b body) has(name string) bool { return b.Has(name) }

// str reads a string; a required one that is empty counts as missing.
func (b body) str(name string, required bool) (string, error) {
	s, err := b.String(name, wire.Text{Required: required})
	if err != nil {
		return "", fromWire(err)
	}
	if required && s == "" {
		return "", missing(name + " is required")
	}
	return s, nil
}

// boolean reads a Boolean; 0 and 1 are accepted as well, since the CRM's
// own answers carry them.
func (b body) boolean(name string) (bool, error) {
	if !b.has(name) {
		return false, nil
	}
	switch string(b.Raw(name)) {
	case "null":
		return false, nil // as not given
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, invalid(name + " must be true or false")
}

func (b body) date(name string) (*time.Time, error) {
	s, err := b.str(name, false)
	if err != nil || s == "" {
		return nil, err
	}
	t, err := parseDate(s)
	if err != nil {
		return nil, invalid(name + " must be a date YYYY-MM-DDTHH:MM:SS")
	}
	return &t, nil
}

func parseDate(s string) (time.Time, error) {
	return time.ParseInLocation(dateLayout, s, time.UTC)
}

// identifier reads an identifier object: a JSON object holding exactly
// one of the fields the identifier allows, with a non-empty string value.
func (b body) identifier(name string, required bool) (*paytv.Identifier, error) {
	if !b.has(name) {
		if required {
			return nil, missing(name + " is required")
		}
		return nil, nil
	}
	return decodeIdentifier(name, b.Raw(name))
}

func decodeIdentifier(name string, raw json.RawMessage) (*paytv.Identifier, error) {
	allowed := paytv.IdentifierFields[name]
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, invalid(name + " must be an object holding one of " + strings.Join(allowed, ", "))
	}
	return identifierFrom(name, allowed, obj)
}

func identifierFrom(name string, allowed []string, obj map[string]json.RawMessage) (*paytv.Identifier, error) {
	switch len(obj) {
	case 0:
		return nil, missing(name + " needs one of " + strings.Join(allowed, ", "))
	case 1:
	default:
		return nil, &apiError{CodeMoreThanOneField, name + " must hold exactly one of " + strings.Join(allowed, ", ")}
	}
	for field, raw := range obj {
		if !slices.Contains(allowed, field) {
			return nil, invalid(fmt.Sprintf("%s: unknown field %q (one of %s)", name, field, strings.Join(allowed, ", ")))
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, invalid(fmt.Sprintf("%s.%s must be a string", name, field))
		}
		if v == "" {
			return nil, missing(fmt.Sprintf("%s.%s is empty", name, field))
		}
		if err := refuseNUL(v, func() string { return name + "." + field }); err != nil {
			return nil, err
		}
		return &paytv.Identifier{Field: field, Value: v}, nil
	}
	panic("unreachable")
}

// caIDSet reads smartcard_set or stb_set: an array of objects each holding
// the one mandatory field key.
func (b body) caIDSet(name, key string) ([]string, error) {
	if !b.has(name) {
		return nil, nil
	}
	var entries []map[string]json.RawMessage
	if err := json.Unmarshal(b.Raw(name), &entries); err != nil {
		return nil, invalid(fmt.Sprintf("%s must be an array of {%q: ...}", name, key))
	}
	ids := make([]string, 0, len(entries))
	for i, e := range entries {
		raw, ok := e[key]
		if !ok || string(raw) == "null" {
			return nil, missing(fmt.Sprintf("%s[%d].%s is required", name, i, key))
		}
		if len(e) != 1 {
			return nil, invalid(fmt.Sprintf("%s[%d] takes only %s", name, i, key))
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil || v == "" {
			return nil, invalid(fmt.Sprintf("%s[%d].%s must be a non-empty string", name, i, key))
		}
		if err := refuseNUL(v, func() string { return fmt.Sprintf("%s[%d].%s", name, i, key) }); err != nil {
			return nil, err
		}
		ids = append(ids, v)
	}
	return ids, nil
}

// refuseNUL refuses a value read outside package wire that holds a NUL,
// as wire.Text does; member names it, and is built only then.
func refuseNUL(v string, member func() string) error {
	if strings.IndexByte(v, 0) < 0 {
		return nil
	}
	return fromWire(wire.Text{}.Check(member(), v))
}

// query is a GET's parameters, checked against what the method takes.
type query struct{ url.Values }

func parseQuery(raw string, allowed []string) (query, error) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return query{}, invalid("the query string is malformed")
	}
	if err := refuseUnknown(maps.Keys(v), allowed); err != nil {
		return query{}, err
	}
	for name, vs := range v {
		for _, s := range vs {
			if err := refuseNUL(s, func() string { return name }); err != nil {
				return query{}, err
			}
		}
	}
	return query{v}, nil
}

// one returns a parameter given at most once.
func (q query) one(name string) (string, error) {
	vs := q.Values[name]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", invalid(name + " is given more than once")
}

// identifier reads an identifier in the query form name=field=value
// (e.g. provisioning_request_identifier=number=4049); naming it twice is
// naming more than one field.
func (q query) identifier(name string) (*paytv.Identifier, error) {
	allowed := paytv.IdentifierFields[name]
	vs := q.Values[name]
	if len(vs) == 0 {
		return nil, missing(name + " is required")
	}
	obj := map[string]json.RawMessage{}
	for _, v := range vs {
		field, value, ok := strings.Cut(v, "=")
		if !ok {
			return nil, invalid(fmt.Sprintf("%s must be written %s=FIELD=VALUE with FIELD one of %s", name, name, strings.Join(allowed, ", ")))
		}
		if _, dup := obj[field]; dup {
			return nil, &apiError{CodeMoreThanOneField, name + " names " + field + " twice"}
		}
		raw, _ := json.Marshal(value)
		obj[field] = raw
	}
	return identifierFrom(name, allowed, obj)
}

func (q query) count(name string, def, max int) (int, error) {
	s, err := q.one(name)
	if err != nil || s == "" {
		return def, err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, invalid(name + " must be a whole number, 0 or more")
	}
	if n > max {
		return 0, invalid(fmt.Sprintf("%s must be at most %d", name, max))
	}
	return n, nil
}

// fieldsSet reads fields_set: comma-separated names of response fields.
// Nil means all fields.
func fieldsSet(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(responseFields, f) {
			return nil, invalid(fmt.Sprintf("fields_set: unknown field %q", f))
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, invalid("fields_set names no field")
	}
	return out, nil
}
