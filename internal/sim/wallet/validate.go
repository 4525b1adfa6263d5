package wallet

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	ws "github.com/provhub/provhub/internal/wallet"
)

// body is a decoded request: its members, still raw.
type body map[string]json.RawMessage

// fieldError is a validation failure: 111 for a missing member, 112 for a
// malformed one.
type fieldError struct {
	code int
	msg  string
}

func (e *fieldError) reply() reply { return reply{code: e.code, message: e.msg} }

func missing(name string) *fieldError {
	return &fieldError{code: ws.StatusMissing, msg: name + " is missing"}
}

func badFormat(format string, args ...any) *fieldError {
	return &fieldError{code: ws.StatusBadFormat, msg: fmt.Sprintf(format, args...)}
}

var hexPairs = regexp.MustCompile(`^([0-9a-fA-F]{2})*$`)

// decode reads a JSON object and checks the members every operation
// shares, by their published lengths and patterns.
func decode(raw []byte) (body, *fieldError) {
	var b body
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&b); err != nil || b == nil {
		return body{}, badFormat("the body is not a JSON object")
	}
	if dec.More() {
		return body{}, badFormat("unexpected data after the JSON body")
	}
	checks := map[string]func(json.RawMessage) *fieldError{
		"requestHeader": checkHeader,
		"taskId":        stringOf("taskId", 1, 64, nil),
		"walletCardId":  stringOf("walletCardId", 1, 64, nil),
		"seId":          stringOf("seId", 2, 48, seIDPattern),
		"operation":     stringOf("operation", 1, 32, nil),
	}
	for name, check := range checks {
		if raw, ok := b[name]; ok && string(raw) != "null" {
			if e := check(raw); e != nil {
				return b, e
			}
		}
	}
	return b, nil
}

func stringOf(name string, min, max int, pattern *regexp.Regexp) func(json.RawMessage) *fieldError {
	return func(raw json.RawMessage) *fieldError {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return badFormat("%s must be a string", name)
		}
		if len(s) < min || len(s) > max {
			return badFormat("%s must have %d to %d characters", name, min, max)
		}
		if pattern != nil && !pattern.MatchString(s) {
			return badFormat("%s has a bad format", name)
		}
		return nil
	}
}

func checkHeader(raw json.RawMessage) *fieldError {
	var h map[string]json.RawMessage
	if err := json.Unmarshal(raw, &h); err != nil || h == nil {
		return badFormat("requestHeader must be an object")
	}
	for _, name := range []string{"requestId", "sessionId"} {
		v, ok := h[name]
		if !ok || string(v) == "null" {
			return missing("requestHeader." + name)
		}
		if e := stringOf("requestHeader."+name, 1, 48, nil)(v); e != nil {
			return e
		}
	}
	if v, ok := h["generationDateTime"]; ok {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return badFormat("requestHeader.generationDateTime must be an RFC 3339 time")
		}
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			return badFormat("requestHeader.generationDateTime must be an RFC 3339 time")
		}
	}
	return nil
}

// need reports the first absent member.
func (b body) need(names ...string) *fieldError {
	for _, n := range names {
		if v, ok := b[n]; !ok || string(v) == "null" {
			return missing(n)
		}
	}
	return nil
}

func (b body) str(name string) string {
	var s string
	_ = json.Unmarshal(b[name], &s)
	return s
}

// sessionID echoes the request's session id, or a placeholder when the
// request had none usable.
func (b body) sessionID() string {
	var h struct {
		SessionID string `json:"sessionId"`
	}
	_ = json.Unmarshal(b["requestHeader"], &h)
	if h.SessionID == "" || len(h.SessionID) > 48 {
		return "unknown"
	}
	return h.SessionID
}

// script reads apduCommands into command bytes and message ids.
func (b body) script(cmds *[][]byte, ids *[]string) *fieldError {
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(b["apduCommands"], &items); err != nil {
		return badFormat("apduCommands must be an array of objects")
	}
	for i, it := range items {
		for _, name := range []string{"data", "messageId"} {
			if v, ok := it[name]; !ok || string(v) == "null" {
				return missing(fmt.Sprintf("apduCommands[%d].%s", i, name))
			}
		}
		if e := stringOf(fmt.Sprintf("apduCommands[%d].data", i), 0, 512, hexPairs)(it["data"]); e != nil {
			return e
		}
		if e := stringOf(fmt.Sprintf("apduCommands[%d].messageId", i), 1, 64, nil)(it["messageId"]); e != nil {
			return e
		}
		if v, ok := it["messageName"]; ok {
			if e := stringOf(fmt.Sprintf("apduCommands[%d].messageName", i), 1, 100, nil)(v); e != nil {
				return e
			}
		}
		var data, id string
		_ = json.Unmarshal(it["data"], &data)
		_ = json.Unmarshal(it["messageId"], &id)
		raw, _ := hex.DecodeString(data)
		*cmds = append(*cmds, raw)
		*ids = append(*ids, id)
	}
	return nil
}

// labelColorPattern accepts rgb(r,g,b), the published pattern's intent,
// and its literal reading rgbr,g,b (api/wallet.yaml).
var labelColorPattern = regexp.MustCompile(`^rgb(\([0-9]{1,3},[0-9]{1,3},[0-9]{1,3}\)|[0-9]{1,3},[0-9]{1,3},[0-9]{1,3})$`)

// checkDescriptor holds a cardDescriptor to api/wallet.yaml, member by
// member: 111 for a required member missing, 112 for a wrong type, length
// or pattern. Members the document does not name are let through.
func checkDescriptor(raw json.RawMessage) *fieldError {
	var d body
	if err := json.Unmarshal(raw, &d); err != nil || d == nil {
		return badFormat("cardDescriptor must be an object")
	}
	strs := []struct {
		name     string
		min, max int
		pattern  *regexp.Regexp
	}{
		{"appletCurrencyCode", 3, 3, nil}, {"displayCardNumber", 1, 16, nil}, {"cardholderName", 1, 128, nil},
		{"labelColor", 0, 64, labelColorPattern}, {"shortDescription", 0, 32, nil}, {"longDescription", 0, 64, nil},
		{"privacyPolicyURL", 0, 128, nil}, {"termsAndConditionsURL", 0, 128, nil}, {"contactWebsite", 0, 128, nil},
		{"contactEmail", 0, 32, nil}, {"contactNumber", 0, 32, nil}, {"contactName", 0, 128, nil},
	}
	for _, s := range strs {
		if v, ok := d[s.name]; ok && string(v) != "null" {
			if e := stringOf("cardDescriptor."+s.name, s.min, s.max, s.pattern)(v); e != nil {
				return e
			}
		}
	}
	if v, ok := d["cardArtManifest"]; ok && string(v) != "null" {
		var guids []json.RawMessage
		if err := json.Unmarshal(v, &guids); err != nil {
			return badFormat("cardDescriptor.cardArtManifest must be an array of strings")
		}
		for i, g := range guids {
			if e := stringOf(fmt.Sprintf("cardDescriptor.cardArtManifest[%d]", i), 0, 64, nil)(g); e != nil {
				return e
			}
		}
	}
	if v, ok := d["cardActions"]; ok && string(v) != "null" {
		if e := checkObject("cardDescriptor.cardActions", v, []string{"maxLoadedBalance", "minLoadAmount"}, func(name string, m json.RawMessage) *fieldError {
			var f float64
			if err := json.Unmarshal(m, &f); err != nil {
				return badFormat("cardDescriptor.cardActions.%s must be a number", name)
			}
			return nil
		}); e != nil {
			return e
		}
	}
	if v, ok := d["mobileApp"]; ok && string(v) != "null" {
		if e := checkObject("cardDescriptor.mobileApp", v, []string{"identifier"}, func(name string, m json.RawMessage) *fieldError {
			return stringOf("cardDescriptor.mobileApp."+name, 0, 128, nil)(m)
		}); e != nil {
			return e
		}
	}
	return nil
}

// checkObject checks an object member: its required members are there and
// each member passes check.
func checkObject(label string, raw json.RawMessage, required []string, check func(name string, v json.RawMessage) *fieldError) *fieldError {
	var o body
	if err := json.Unmarshal(raw, &o); err != nil || o == nil {
		return badFormat("%s must be an object", label)
	}
	for _, r := range required {
		if v, ok := o[r]; !ok || string(v) == "null" {
			return missing(label + "." + r)
		}
	}
	for name, v := range o {
		if e := check(name, v); e != nil {
			return e
		}
	}
	return nil
}
