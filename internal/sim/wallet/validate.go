package wallet

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/provhub/provhub/internal/southbound"
	ws "github.com/provhub/provhub/internal/wallet"
	"github.com/provhub/provhub/internal/wire"
)

// body is a decoded request: its members, still raw, read with package
// wire against the limits of api/wallet.yaml.
type body struct{ wire.Object }

// fieldError is a validation failure: 111 for a missing member, 112 for a
// malformed one.
type fieldError struct {
	code int
	msg  string
}

func (e *fieldError) reply() reply { return reply{code: e.code, message: e.msg} }

// refusal turns a wire problem (or any error) into its status code.
func refusal(err error) *fieldError {
	if err == nil {
		return nil
	}
	if p := wire.ProblemOf(err); p != nil {
		return &fieldError{code: southbound.StatusOf(p), msg: p.Error()}
	}
	return &fieldError{code: ws.StatusBadFormat, msg: err.Error()}
}

func missing(name string) *fieldError {
	return &fieldError{code: ws.StatusMissing, msg: name + " is missing"}
}

func badFormat(format string, args ...any) *fieldError {
	return &fieldError{code: ws.StatusBadFormat, msg: fmt.Sprintf(format, args...)}
}

// optional holds a member to t when it is there; whether an operation
// needs it is the operation's check (need).
func optional(t wire.Text) wire.Text { t.Required = false; return t }

// decode reads a JSON object and checks the members every operation
// shares, when present, by their published lengths and patterns.
func decode(raw []byte) (body, *fieldError) {
	o, err := wire.Decode(raw)
	if err != nil {
		return body{}, refusal(err)
	}
	b := body{o}
	if _, err := southbound.ReadRequestHeader(o, false); err != nil {
		return b, refusal(err)
	}
	for _, m := range []struct {
		name string
		t    wire.Text
	}{
		{"taskId", ws.TaskIDText}, {"walletCardId", ws.WalletCardText}, {"seId", ws.SEIDText}, {"operation", ws.OperationText},
	} {
		if _, err := o.String(m.name, optional(m.t)); err != nil {
			return b, refusal(err)
		}
	}
	return b, nil
}

// need reports the first absent member.
func (b body) need(names ...string) *fieldError { return refusal(b.Require(names...)) }

// str reads a string member decode has checked.
func (b body) str(name string) string {
	s, _ := b.String(name, wire.Text{})
	return s
}

// sessionID echoes the request's session id, or a placeholder when the
// request had none usable.
func (b body) sessionID() string {
	var h struct {
		SessionID string `json:"sessionId"`
	}
	_ = json.Unmarshal(b.Raw("requestHeader"), &h)
	if h.SessionID == "" || len(h.SessionID) > 48 {
		return "unknown"
	}
	return h.SessionID
}

// APDU commands' published forms.
var (
	apduDataText    = wire.Text{Required: true, Max: 512, Pattern: ws.HexPattern}
	messageIDText   = wire.Text{Required: true, Min: 1, Max: 64}
	messageNameText = wire.Text{Min: 1, Max: 100}
)

// script reads apduCommands into command bytes and message ids.
func (b body) script(cmds *[][]byte, ids *[]string) *fieldError {
	items, err := b.Objects("apduCommands", true)
	if err != nil {
		return refusal(err)
	}
	for _, it := range items {
		if err := it.Require("data", "messageId"); err != nil {
			return refusal(err)
		}
		data, err := it.String("data", apduDataText)
		if err != nil {
			return refusal(err)
		}
		id, err := it.String("messageId", messageIDText)
		if err != nil {
			return refusal(err)
		}
		if _, err := it.String("messageName", messageNameText); err != nil {
			return refusal(err)
		}
		raw, _ := hex.DecodeString(data)
		*cmds = append(*cmds, raw)
		*ids = append(*ids, id)
	}
	return nil
}

// labelColorPattern accepts rgb(r,g,b), the published pattern's intent,
// and its literal reading rgbr,g,b (api/wallet.yaml).
var labelColorPattern = regexp.MustCompile(`^rgb(\([0-9]{1,3},[0-9]{1,3},[0-9]{1,3}\)|[0-9]{1,3},[0-9]{1,3},[0-9]{1,3})$`)

// descriptorTexts are the string members of a cardDescriptor.
var descriptorTexts = []struct {
	name string
	t    wire.Text
}{
	{"appletCurrencyCode", wire.Text{Min: 3, Max: 3}}, {"displayCardNumber", wire.Text{Min: 1, Max: 16}}, {"cardholderName", wire.Text{Min: 1, Max: 128}},
	{"labelColor", wire.Text{Max: 64, Pattern: labelColorPattern}}, {"shortDescription", wire.Text{Max: 32}}, {"longDescription", wire.Text{Max: 64}},
	{"privacyPolicyURL", wire.Text{Max: 128}}, {"termsAndConditionsURL", wire.Text{Max: 128}}, {"contactWebsite", wire.Text{Max: 128}},
	{"contactEmail", wire.Text{Max: 32}}, {"contactNumber", wire.Text{Max: 32}}, {"contactName", wire.Text{Max: 128}},
}

// checkDescriptor holds a cardDescriptor to api/wallet.yaml, member by
// member: 111 for a required member missing, 112 for a wrong type, length
// or pattern. Members the document does not name are let through.
func checkDescriptor(d wire.Object) *fieldError {
	for _, s := range descriptorTexts {
		if _, err := d.String(s.name, s.t); err != nil {
			return refusal(err)
		}
	}
	guids, err := d.Array("cardArtManifest", false)
	if err != nil {
		return badFormat("%s must be an array of strings", d.Label("cardArtManifest"))
	}
	for i, g := range guids {
		if _, err := wire.StringOf(fmt.Sprintf("%s[%d]", d.Label("cardArtManifest"), i), g, wire.Text{Max: 64}); err != nil {
			return refusal(err)
		}
	}
	if actions, found, err := d.Object("cardActions", false); err != nil {
		return refusal(err)
	} else if found {
		if err := actions.Require("maxLoadedBalance", "minLoadAmount"); err != nil {
			return refusal(err)
		}
		for _, name := range actions.Names() {
			if _, _, err := actions.Number(name, false); err != nil {
				return refusal(err)
			}
		}
	}
	if app, found, err := d.Object("mobileApp", false); err != nil {
		return refusal(err)
	} else if found {
		if err := app.Require("identifier"); err != nil {
			return refusal(err)
		}
		for _, name := range app.Names() {
			if _, err := app.String(name, wire.Text{Max: 128}); err != nil {
				return refusal(err)
			}
		}
	}
	return nil
}
