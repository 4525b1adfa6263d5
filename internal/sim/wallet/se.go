package wallet

import (
	"bytes"
	"encoding/hex"
	"sort"
	"strings"

	"github.com/provhub/provhub/internal/apdu"
)

// Application life-cycle state after the last STORE DATA block.
const statePersonalized byte = 0x0F

// instance is an applet instance on the emulated secure element.
type instance struct {
	aid    apdu.AID
	state  byte
	locked bool
	data   map[uint16][]byte // personalisation data by DGI
}

// secureElement emulates the card-content side of a GlobalPlatform secure
// element: instances with their life-cycle state and personalisation data.
// The Simulator's mutex guards it.
type secureElement struct {
	id        string
	instances map[string]*instance // by upper-case hex AID
}

func newSecureElement(id string) *secureElement {
	return &secureElement{id: id, instances: map[string]*instance{}}
}

func key(aid []byte) string { return strings.ToUpper(hex.EncodeToString(aid)) }

// session is one script's view of the card: what is selected and which
// STORE DATA block comes next.
type session struct {
	se        *secureElement
	selected  *instance
	nextBlock int
	// pending holds the start of a DGI that continues in the next block.
	pending []byte
	// installed is the last instance this script installed.
	installed apdu.AID
}

func (se *secureElement) session() *session { return &session{se: se} }

func sw(code uint16) []byte { return apdu.Response{SW: code}.Bytes() }

func ok(data []byte) []byte { return apdu.Response{Data: data, SW: apdu.SWOK}.Bytes() }

// exec runs one command APDU and returns the response APDU.
func (s *session) exec(raw []byte) []byte {
	c, err := apdu.ParseCommand(raw)
	if err != nil {
		return sw(apdu.SWWrongLength)
	}
	switch c.CLA &^ 0x03 { // logical channel bits aside
	case apdu.ClaISO, apdu.ClaGP, 0x84:
	default:
		return sw(apdu.SWCLANotSupported)
	}
	switch c.INS {
	case apdu.InsSelect:
		return s.selectAID(c)
	case apdu.InsGetStatus:
		return s.getStatus(c)
	case apdu.InsSetStatus:
		return s.setStatus(c)
	case apdu.InsDelete:
		return s.delete(c)
	case apdu.InsInstall:
		return s.install(c)
	case apdu.InsStoreData:
		return s.storeData(c)
	}
	return sw(apdu.SWINSNotSupported)
}

func (s *session) selectAID(c apdu.Command) []byte {
	if c.P1 != 0x04 {
		return sw(apdu.SWIncorrectP1P2)
	}
	inst, found := s.se.instances[key(c.Data)]
	if !found {
		s.selected = nil
		return sw(apdu.SWFileNotFound)
	}
	if inst.locked {
		// A locked application cannot be selected.
		s.selected = nil
		return sw(apdu.SWConditionsNotSatisfied)
	}
	s.selected, s.nextBlock, s.pending = inst, 0, nil
	fci := apdu.TLV{Tag: 0x6F, Value: apdu.EncodeTLVs(apdu.TLV{Tag: 0x84, Value: inst.aid}, apdu.TLV{Tag: 0xA5})}
	return ok(fci.Bytes())
}

func (s *session) getStatus(c apdu.Command) []byte {
	if c.P1 != apdu.StatusScopeApplications {
		return sw(apdu.SWIncorrectP1P2)
	}
	ts, err := apdu.ParseTLVs(c.Data)
	if err != nil {
		return sw(apdu.SWWrongData)
	}
	var prefix []byte
	if f, found := apdu.Find(ts, 0x4F); found {
		prefix = f.Value
	}
	var keys []string
	for k, inst := range s.se.instances {
		if bytes.HasPrefix(inst.aid, prefix) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return sw(apdu.SWReferencedDataNotFound)
	}
	sort.Strings(keys)
	var out []byte
	for _, k := range keys {
		inst := s.se.instances[k]
		st := inst.state
		if inst.locked {
			st |= apdu.StateLockedBit
		}
		out = append(out, apdu.TLV{Tag: 0xE3, Value: apdu.EncodeTLVs(
			apdu.TLV{Tag: 0x4F, Value: inst.aid}, apdu.TLV{Tag: 0x9F70, Value: []byte{st}})}.Bytes()...)
	}
	return ok(out)
}

func (s *session) setStatus(c apdu.Command) []byte {
	if c.P1 != 0x40 {
		return sw(apdu.SWIncorrectP1P2)
	}
	inst, found := s.se.instances[key(c.Data)]
	if !found {
		return sw(apdu.SWReferencedDataNotFound)
	}
	switch c.P2 {
	case apdu.StateLockedBit:
		if inst.locked {
			return sw(apdu.SWConditionsNotSatisfied)
		}
		inst.locked = true
		if s.selected == inst {
			s.selected = nil
		}
	case 0x00:
		if !inst.locked {
			return sw(apdu.SWConditionsNotSatisfied)
		}
		inst.locked = false
	default:
		return sw(apdu.SWIncorrectP1P2)
	}
	return ok(nil)
}

func (s *session) delete(c apdu.Command) []byte {
	ts, err := apdu.ParseTLVs(c.Data)
	if err != nil {
		return sw(apdu.SWWrongData)
	}
	f, found := apdu.Find(ts, 0x4F)
	if !found {
		return sw(apdu.SWWrongData)
	}
	inst, found := s.se.instances[key(f.Value)]
	if !found {
		return sw(apdu.SWReferencedDataNotFound)
	}
	delete(s.se.instances, key(inst.aid))
	if s.selected == inst {
		s.selected = nil
	}
	return ok([]byte{0x00})
}

func (s *session) install(c apdu.Command) []byte {
	if c.P1 != 0x0C {
		return sw(apdu.SWIncorrectP1P2)
	}
	// Length-prefixed fields: load file, module, instance, privileges, parameters, token.
	var fields [][]byte
	d := c.Data
	for range 6 {
		if len(d) == 0 || int(d[0]) > len(d)-1 {
			return sw(apdu.SWWrongData)
		}
		fields = append(fields, d[1:1+int(d[0])])
		d = d[1+int(d[0]):]
	}
	aid := apdu.AID(fields[2])
	if !aid.Valid() {
		return sw(apdu.SWWrongData)
	}
	if _, exists := s.se.instances[key(aid)]; exists {
		return sw(apdu.SWConditionsNotSatisfied)
	}
	s.se.instances[key(aid)] = &instance{aid: append(apdu.AID(nil), aid...), state: apdu.StateSelectable, data: map[uint16][]byte{}}
	s.installed = append(apdu.AID(nil), aid...)
	return ok([]byte{0x00})
}

func (s *session) storeData(c apdu.Command) []byte {
	if s.selected == nil {
		return sw(apdu.SWConditionsNotSatisfied)
	}
	if int(c.P2) != s.nextBlock {
		return sw(apdu.SWIncorrectP1P2)
	}
	stream := append(s.pending, c.Data...)
	dgis, rest := completeDGIs(stream)
	for _, g := range dgis {
		s.selected.data[g.ID] = g.Value
	}
	s.pending = rest
	if c.P1&0x80 != 0 && len(rest) > 0 {
		return sw(apdu.SWWrongData) // the last block ends inside a DGI
	}
	s.nextBlock++
	if c.P1&0x80 != 0 {
		s.selected.state = statePersonalized
	}
	return ok(nil)
}

// completeDGIs takes the whole DGIs at the start of stream and returns the
// bytes of an unfinished one.
func completeDGIs(stream []byte) ([]apdu.DGI, []byte) {
	var out []apdu.DGI
	for {
		if len(stream) < 3 {
			return out, stream
		}
		n, head := int(stream[2]), 3
		if n == 0xFF {
			if len(stream) < 5 {
				return out, stream
			}
			n, head = int(stream[3])<<8|int(stream[4]), 5
		}
		if len(stream) < head+n {
			return out, stream
		}
		d, err := apdu.ParseDGIs(stream[:head+n])
		if err != nil || len(d) != 1 {
			return out, stream
		}
		out = append(out, d[0])
		stream = stream[head+n:]
	}
}
