package apdu

import "fmt"

// Class bytes: ISO inter-industry, and GlobalPlatform proprietary.
const (
	ClaISO byte = 0x00
	ClaGP  byte = 0x80
)

// Instruction bytes of the commands built here.
const (
	InsSelect    byte = 0xA4
	InsGetStatus byte = 0xF2
	InsSetStatus byte = 0xF0
	InsDelete    byte = 0xE4
	InsInstall   byte = 0xE6
	InsStoreData byte = 0xE2
)

// AID is an application identifier: 5 to 16 bytes.
type AID []byte

// Valid reports whether a has a legal length.
func (a AID) Valid() bool { return len(a) >= 5 && len(a) <= 16 }

func (a AID) String() string { return fmt.Sprintf("%X", []byte(a)) }

func checkAID(a AID) error {
	if !a.Valid() {
		return fmt.Errorf("AID of %d bytes, want 5 to 16", len(a))
	}
	return nil
}

// Select is SELECT by DF name (first or only occurrence), asking for the
// FCI.
func Select(aid AID) (Command, error) {
	if err := checkAID(aid); err != nil {
		return Command{}, err
	}
	return Command{CLA: ClaISO, INS: InsSelect, P1: 0x04, P2: 0x00, Data: aid, Le: MaxShortLe}, nil
}

// GetStatus scopes (P1) of GET STATUS.
const (
	StatusScopeISD          byte = 0x80
	StatusScopeApplications byte = 0x40
	StatusScopeLoadFiles    byte = 0x20
)

// GetStatus asks for the life-cycle state of the objects in scope whose AID
// starts with prefix (all of them when prefix is empty), in the TLV form
// (P2 = 02).
func GetStatus(scope byte, prefix []byte) Command {
	return Command{CLA: ClaGP, INS: InsGetStatus, P1: scope, P2: 0x02,
		Data: TLV{Tag: 0x4F, Value: prefix}.Bytes(), Le: MaxShortLe}
}

// Application life-cycle states (GlobalPlatform card specification).
const (
	StateInstalled  byte = 0x03
	StateSelectable byte = 0x07
	// StateLockedBit is set on top of an application's state while it is
	// locked.
	StateLockedBit byte = 0x80
)

// SetStatus changes the life-cycle state of the application aid: P1 40
// addresses an application, P2 the new state.
func SetStatus(aid AID, state byte) (Command, error) {
	if err := checkAID(aid); err != nil {
		return Command{}, err
	}
	return Command{CLA: ClaGP, INS: InsSetStatus, P1: 0x40, P2: state, Data: aid, Le: NoLe}, nil
}

// Lock and Unlock are SET STATUS commands that lock or unlock an
// application (the card keeps its state below the lock bit).
func Lock(aid AID) (Command, error)   { return SetStatus(aid, StateLockedBit) }
func Unlock(aid AID) (Command, error) { return SetStatus(aid, 0x00) }

// Delete removes the object aid (P2 80: with its related objects when
// related is set).
func Delete(aid AID, related bool) (Command, error) {
	if err := checkAID(aid); err != nil {
		return Command{}, err
	}
	var p2 byte
	if related {
		p2 = 0x80
	}
	return Command{CLA: ClaGP, INS: InsDelete, P1: 0x00, P2: p2, Data: TLV{Tag: 0x4F, Value: aid}.Bytes(), Le: MaxShortLe}, nil
}

// Install describes INSTALL [for install and make selectable].
type Install struct {
	LoadFile   AID
	Module     AID
	Instance   AID
	Privileges []byte // 1 or 3 bytes
	// Params are the install parameters; they are wrapped in tag C9.
	Params []byte
}

// InstallCommand builds INSTALL [for install and make selectable] (P1 0C).
func InstallCommand(in Install) (Command, error) {
	for _, a := range []AID{in.LoadFile, in.Module, in.Instance} {
		if err := checkAID(a); err != nil {
			return Command{}, err
		}
	}
	if len(in.Privileges) != 1 && len(in.Privileges) != 3 {
		return Command{}, fmt.Errorf("privileges of %d bytes, want 1 or 3", len(in.Privileges))
	}
	params := TLV{Tag: 0xC9, Value: in.Params}.Bytes()
	if len(params) > 255 {
		return Command{}, fmt.Errorf("install parameters of %d bytes, too long", len(params))
	}
	var d []byte
	for _, field := range [][]byte{in.LoadFile, in.Module, in.Instance, in.Privileges, params} {
		d = append(d, byte(len(field)))
		d = append(d, field...)
	}
	d = append(d, 0x00) // no install token
	return Command{CLA: ClaGP, INS: InsInstall, P1: 0x0C, P2: 0x00, Data: d, Le: MaxShortLe}, nil
}

// StoreData carries one block of personalisation data to the selected
// application. P1 bit 8 marks the last block, bits 5-4 say the data is
// DGI-formatted (01); P2 is the block number.
func StoreData(block byte, last bool, data []byte) (Command, error) {
	if len(data) == 0 || len(data) > MaxShortData {
		return Command{}, fmt.Errorf("STORE DATA block of %d bytes, want 1 to %d", len(data), MaxShortData)
	}
	p1 := byte(0x08) // DGI format
	if last {
		p1 |= 0x80
	}
	return Command{CLA: ClaGP, INS: InsStoreData, P1: p1, P2: block, Data: data, Le: NoLe}, nil
}

// DGI is one data group of personalisation data: a two-byte identifier
// and its value (length on one byte below 255, else FF and two bytes).
type DGI struct {
	ID    uint16
	Value []byte
}

// Bytes encodes d.
func (d DGI) Bytes() []byte {
	out := []byte{byte(d.ID >> 8), byte(d.ID)}
	if n := len(d.Value); n < 0xFF {
		out = append(out, byte(n))
	} else {
		out = append(out, 0xFF, byte(n>>8), byte(n))
	}
	return append(out, d.Value...)
}

// ParseDGIs decodes a sequence of DGIs.
func ParseDGIs(b []byte) ([]DGI, error) {
	var out []DGI
	for len(b) > 0 {
		if len(b) < 3 {
			return nil, malformed("DGI header cut short")
		}
		d := DGI{ID: uint16(b[0])<<8 | uint16(b[1])}
		n, i := int(b[2]), 3
		if n == 0xFF {
			if len(b) < 5 {
				return nil, malformed("DGI %04X: long length cut short", d.ID)
			}
			n, i = int(b[3])<<8|int(b[4]), 5
		}
		if n > len(b)-i {
			return nil, malformed("DGI %04X: length %d, %d bytes left", d.ID, n, len(b)-i)
		}
		d.Value = append([]byte(nil), b[i:i+n]...)
		out = append(out, d)
		b = b[i+n:]
	}
	return out, nil
}

// PersoScript builds the personalisation script of one application: SELECT
// of its instance, then the DGIs as one stream cut into STORE DATA blocks of
// at most maxBlock bytes (a DGI may span blocks, as GlobalPlatform allows),
// the last block flagged. maxBlock is at most 255; a transport that carries
// commands of at most N bytes needs maxBlock <= N-5.
func PersoScript(instance AID, dgis []DGI, maxBlock int) ([]Command, error) {
	if maxBlock < 1 || maxBlock > MaxShortData {
		return nil, fmt.Errorf("STORE DATA block size %d outside 1..%d", maxBlock, MaxShortData)
	}
	sel, err := Select(instance)
	if err != nil {
		return nil, err
	}
	if len(dgis) == 0 {
		return nil, fmt.Errorf("no personalisation data")
	}
	var stream []byte
	for _, d := range dgis {
		if len(d.Value) > 0xFFFF {
			return nil, fmt.Errorf("DGI %04X of %d bytes is too long", d.ID, len(d.Value))
		}
		stream = append(stream, d.Bytes()...)
	}
	blocks := (len(stream) + maxBlock - 1) / maxBlock
	if blocks > 256 {
		return nil, fmt.Errorf("personalisation data needs %d blocks, at most 256", blocks)
	}
	script := []Command{sel}
	for i := range blocks {
		chunk := stream[i*maxBlock : min((i+1)*maxBlock, len(stream))]
		sd, err := StoreData(byte(i), i == blocks-1, chunk)
		if err != nil {
			return nil, err
		}
		script = append(script, sd)
	}
	return script, nil
}
