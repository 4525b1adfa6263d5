// Package trace turns the APDU and FeliCa frames of a relayed command loop
// into rows an operator can read: the command's name and parameters (SELECT
// by AID, INSTALL, DELETE, SET STATUS lock or unlock, STORE DATA, GET STATUS;
// Polling, Request Service, Read and Write Without Encryption), and the
// answer's status word or FeliCa status flags with their meaning, the raw
// hex kept beside. It reads frames with internal/apdu and internal/felica.
package trace

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/provhub/provhub/internal/apdu"
	"github.com/provhub/provhub/internal/felica"
)

// Frame is one command or response, decoded.
type Frame struct {
	// Direction is "command" (from the TES to the card) or "response".
	Direction string
	ID, Kind  string
	// Name is what the frame is; Detail its parameters; Status, for a
	// response, its outcome in words; OK whether that outcome is success.
	Name, Detail, Status string
	OK                   bool
	Raw                  string
}

// Step is one relay step: the device's responses to the previous batch,
// the TES's next batch, and how the TES answered.
type Step struct {
	Responses, Commands []Frame
	// Outcome is the TES's statusCode and message, and the balance it
	// gave, in words.
	Outcome string
}

// Steps decodes recorded relay steps: each the device's request (with
// responses) and the TES's answer (with commands), as stored. A response's
// kind is that of the command of the same id in the step before.
func Steps(requests, answers []string) []Step {
	out := make([]Step, len(requests))
	kinds := map[string]string{}
	for i := range requests {
		var req struct {
			Responses []struct{ ID, Data string } `json:"responses"`
		}
		_ = json.Unmarshal([]byte(requests[i]), &req)
		for _, r := range req.Responses {
			out[i].Responses = append(out[i].Responses, Response(r.ID, kinds[r.ID], r.Data))
		}
		var ans struct {
			ResponseHeader struct {
				StatusCode    json.Number `json:"statusCode"`
				StatusMessage string      `json:"statusMessage"`
			} `json:"responseHeader"`
			Commands []struct{ ID, Kind, Data string } `json:"commands"`
			Balance  *int64                            `json:"balance"`
		}
		if i < len(answers) {
			_ = json.Unmarshal([]byte(answers[i]), &ans)
		}
		kinds = map[string]string{}
		for _, c := range ans.Commands {
			kinds[c.ID] = c.Kind
			out[i].Commands = append(out[i].Commands, Command(c.ID, c.Kind, c.Data))
		}
		outcome := "statusCode " + string(ans.ResponseHeader.StatusCode)
		if ans.ResponseHeader.StatusMessage != "" {
			outcome += " " + ans.ResponseHeader.StatusMessage
		}
		if ans.Balance != nil {
			outcome += fmt.Sprintf(", balance %d", *ans.Balance)
		}
		if len(ans.Commands) == 0 && ans.ResponseHeader.StatusCode == "0" {
			outcome += ", the loop ends"
		}
		out[i].Outcome = outcome
	}
	return out
}

// Command decodes a command of kind FELICA or APDU.
func Command(id, kind, rawHex string) Frame {
	f := Frame{Direction: "command", ID: id, Kind: kind, Raw: strings.ToUpper(rawHex)}
	b, err := hex.DecodeString(rawHex)
	if err != nil {
		f.Name = "not hex"
		return f
	}
	switch kind {
	case "FELICA":
		f.Name, f.Detail = feliCaCommand(b)
	case "APDU":
		f.Name, f.Detail = apduCommand(b)
	default:
		f.Name = "unknown kind"
	}
	return f
}

// Response decodes the response to a command of kind (FELICA or APDU;
// empty when the command is not known).
func Response(id, kind, rawHex string) Frame {
	f := Frame{Direction: "response", ID: id, Kind: kind, Raw: strings.ToUpper(rawHex)}
	b, err := hex.DecodeString(rawHex)
	switch {
	case err != nil:
		f.Name = "not hex"
	case kind == "FELICA":
		f.Name, f.Detail, f.Status, f.OK = feliCaResponse(b)
	case kind == "APDU":
		f.Name, f.Detail, f.Status, f.OK = apduResponse(b)
	default:
		f.Name = "response to an unknown command"
	}
	return f
}

func feliCaCommand(b []byte) (name, detail string) {
	c, err := felica.DecodeCommand(b)
	if err != nil {
		return "FeliCa frame", "not a FeliCa command this hub knows: " + err.Error()
	}
	switch c.Code {
	case felica.CodePolling:
		return "Polling", fmt.Sprintf("system code %04X, request code %02X, %d time slot(s)", c.SystemCode, c.RequestCode, int(c.TimeSlot)+1)
	case felica.CodeRequestService:
		return "Request Service", fmt.Sprintf("IDm %X, nodes %s", c.IDm, codes(c.Codes))
	case felica.CodeReadWithoutEnc:
		return "Read Without Encryption", fmt.Sprintf("IDm %X, services %s, blocks %s", c.IDm, codes(c.Codes), blocks(c))
	case felica.CodeWriteWithoutEnc:
		detail = fmt.Sprintf("IDm %X, services %s, blocks %s", c.IDm, codes(c.Codes), blocks(c))
		for _, d := range c.Data {
			detail += "; " + block(d)
		}
		return "Write Without Encryption", detail
	}
	return fmt.Sprintf("FeliCa command %02X", c.Code), ""
}

func feliCaResponse(b []byte) (name, detail, status string, ok bool) {
	r, err := felica.DecodeResponse(b)
	if err != nil {
		return "FeliCa frame", "", "not a FeliCa response this hub knows: " + err.Error(), false
	}
	switch r.Code {
	case felica.CodePolling + 1:
		return "Polling response", fmt.Sprintf("IDm %X, PMm %X", r.IDm, r.PMm), "card found", true
	case felica.CodeRequestService + 1:
		return "Request Service response", fmt.Sprintf("key versions %s", codes(r.KeyVersions)), "answered", true
	case felica.CodeReadWithoutEnc + 1, felica.CodeWriteWithoutEnc + 1:
		name = "Read Without Encryption response"
		if r.Code == felica.CodeWriteWithoutEnc+1 {
			name = "Write Without Encryption response"
		}
		var parts []string
		for _, d := range r.Data {
			parts = append(parts, block(d))
		}
		return name, strings.Join(parts, "; "), feliCaStatus(r.Status1, r.Status2), r.OK()
	}
	return fmt.Sprintf("FeliCa response %02X", r.Code), "", "", false
}

// feliCaStatus says what a pair of FeliCa status flags means.
func feliCaStatus(s1, s2 byte) string {
	if s1 == 0 && s2 == 0 {
		return "00 00 success"
	}
	meaning := map[byte]string{
		0x01: "purse data under- or overflow", 0x02: "cashback data exceeded", 0x70: "memory error", 0x71: "memory worn out",
		0xA1: "illegal number of services", 0xA2: "illegal command packet (number of blocks)", 0xA3: "illegal block list (service order)",
		0xA4: "illegal service type", 0xA5: "access denied", 0xA6: "illegal service code list", 0xA7: "illegal block list (access mode)",
		0xA8: "illegal block number", 0xA9: "data write failure", 0xAA: "key change failure", 0xAB: "illegal parity or checksum",
		0xB0: "illegal parameter", 0xB1: "service exists already", 0xB2: "illegal system code", 0xB3: "too many simultaneous cyclic writes",
		0xC0: "illegal package identifier", 0xC1: "illegal package parity", 0xC2: "illegal package MAC",
	}[s2]
	if meaning == "" {
		meaning = "error"
	}
	where := "at the command"
	if s1 != 0xFF {
		where = fmt.Sprintf("at list element %d", s1)
	}
	return fmt.Sprintf("%02X %02X %s %s", s1, s2, meaning, where)
}

func codes(cs []uint16) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%04X", c)
	}
	return strings.Join(parts, ", ")
}

func blocks(c felica.Command) string {
	parts := make([]string, len(c.Blocks))
	for i, b := range c.Blocks {
		parts[i] = fmt.Sprintf("%d of service %d", b.Block, b.ServiceIndex)
	}
	return strings.Join(parts, ", ")
}

// block shows a 16-byte block, and the transit purse it holds when it
// holds one.
func block(d [felica.BlockSize]byte) string {
	if p, err := felica.ParsePurse(d); err == nil {
		return fmt.Sprintf("purse: balance %d, counter %d", p.Balance, p.Counter)
	}
	return fmt.Sprintf("block %X", d[:])
}

func apduCommand(b []byte) (name, detail string) {
	c, err := apdu.ParseCommand(b)
	if err != nil {
		return "APDU", "not a command APDU: " + err.Error()
	}
	lv := func() []byte { // the first length-value field of the data
		if len(c.Data) > 0 && int(c.Data[0]) < len(c.Data) {
			return c.Data[1 : 1+int(c.Data[0])]
		}
		return nil
	}
	switch c.INS {
	case 0xA4:
		if c.P1 == 0x04 {
			return "SELECT by AID", fmt.Sprintf("AID %X", c.Data)
		}
		return "SELECT", fmt.Sprintf("P1 %02X P2 %02X, %X", c.P1, c.P2, c.Data)
	case 0xE6:
		what := map[byte]string{0x02: "for load", 0x04: "for install", 0x08: "for make selectable", 0x0C: "for install and make selectable"}[c.P1]
		return "INSTALL " + what, installDetail(c.Data)
	case 0xE4:
		d := ""
		if len(c.Data) > 2 && c.Data[0] == 0x4F {
			d = fmt.Sprintf("AID %X", c.Data[2:min(len(c.Data), 2+int(c.Data[1]))])
		}
		if c.P2&0x80 != 0 {
			d += ", with its related objects"
		}
		return "DELETE", d
	case 0xF0:
		action := "unlock"
		if c.P2&apdu.StateLockedBit != 0 {
			action = "lock"
		}
		return "SET STATUS (" + action + ")", fmt.Sprintf("state %02X of AID %X", c.P2, c.Data)
	case 0xF2:
		scope := map[byte]string{apdu.StatusScopeISD: "the issuer security domain", apdu.StatusScopeApplications: "applications",
			apdu.StatusScopeLoadFiles: "load files", 0x10: "load files and their modules"}[c.P1]
		return "GET STATUS", "of " + scope + fmt.Sprintf(", search %X", lv())
	case 0xE2:
		last := ""
		if c.P1&0x80 != 0 {
			last = ", the last"
		}
		return "STORE DATA", fmt.Sprintf("block %d%s, %d bytes", c.P2, last, len(c.Data))
	case 0xCA, 0xCB:
		return "GET DATA", fmt.Sprintf("tag %02X%02X", c.P1, c.P2)
	case 0xC0:
		return "GET RESPONSE", ""
	case 0x50:
		return "INITIALIZE UPDATE", ""
	case 0x82:
		return "EXTERNAL AUTHENTICATE", ""
	case 0xB0:
		return "READ BINARY", ""
	case 0xD6:
		return "UPDATE BINARY", ""
	}
	return fmt.Sprintf("INS %02X", c.INS), fmt.Sprintf("CLA %02X P1 %02X P2 %02X, %d data bytes", c.CLA, c.P1, c.P2, len(c.Data))
}

// installDetail reads INSTALL's load file, module and instance AIDs.
func installDetail(d []byte) string {
	var aids []string
	for i := 0; i < len(d) && len(aids) < 3; {
		n := int(d[i])
		if i+1+n > len(d) {
			break
		}
		aids = append(aids, fmt.Sprintf("%X", d[i+1:i+1+n]))
		i += 1 + n
	}
	labels := []string{"load file", "module", "instance"}
	var parts []string
	for i, a := range aids {
		parts = append(parts, labels[i]+" "+a)
	}
	return strings.Join(parts, ", ")
}

func apduResponse(b []byte) (name, detail, status string, ok bool) {
	r, err := apdu.ParseResponse(b)
	if err != nil {
		return "APDU", "", "not a response APDU: " + err.Error(), false
	}
	if len(r.Data) > 0 {
		detail = fmt.Sprintf("%d data bytes", len(r.Data))
	}
	return "response", detail, fmt.Sprintf("%04X %s", r.SW, SWMeaning(r.SW)), r.OK()
}

// SWMeaning says what a status word means (ISO 7816-4, GlobalPlatform).
func SWMeaning(sw uint16) string {
	if sw&0xFF00 == 0x6100 {
		return fmt.Sprintf("success, %d more bytes to get", sw&0xFF)
	}
	if sw&0xFF00 == 0x6C00 {
		return fmt.Sprintf("wrong Le: %d bytes are available", sw&0xFF)
	}
	if m, ok := map[uint16]string{
		0x9000: "success", 0x6283: "the selected application is locked", 0x6310: "more data to come",
		0x6400: "no precise diagnosis", 0x6581: "memory failure", 0x6700: "wrong length", 0x6881: "logical channel not supported",
		0x6982: "security status not satisfied", 0x6985: "conditions of use not satisfied", 0x6A80: "incorrect data",
		0x6A81: "function not supported", 0x6A82: "file or application not found", 0x6A84: "not enough memory",
		0x6A86: "incorrect P1 or P2", 0x6A88: "referenced data not found", 0x6D00: "instruction not supported",
		0x6E00: "class not supported", 0x6F00: "no precise diagnosis",
	}[sw]; ok {
		return m
	}
	return "error"
}
