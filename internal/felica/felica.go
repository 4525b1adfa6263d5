// Package felica encodes and decodes the FeliCa card commands a transit
// back end sends through a phone to a card (the card in the phone's secure
// element, or a physical card held to the phone in reader mode): Polling,
// Request Service, Read Without Encryption and Write Without Encryption,
// and their responses with the status flags. A packet is LEN, command code
// and parameters, LEN counting itself. The package is pure: no I/O, every
// decoder bounds-checked and fuzzed. Written by hand because no maintained
// Go library covers the command set at this level.
package felica

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Command codes; a response's code is its command's plus one.
const (
	CodePolling            byte = 0x00
	CodeRequestService     byte = 0x02
	CodeReadWithoutEnc     byte = 0x06
	CodeWriteWithoutEnc    byte = 0x08
	codeResponse           byte = 0x01
	BlockSize                   = 16
	MaxBlocks                   = 15 // per read or write, as cards commonly allow
	MaxServices                 = 16
	maxPacket                   = 255
	idmSize                     = 8
	pmmSize                     = 8
	statusOK               byte = 0x00
	StatusFlagBlockError   byte = 0xA8 // illegal block number (status flag 2)
	StatusFlagServiceError byte = 0xA6 // illegal service code (status flag 2)
	StatusFlagAccessError  byte = 0xA5 // illegal access (status flag 2)
)

// IDm is a card's manufacture ID (8 bytes); PMm its manufacture parameters.
type (
	IDm [idmSize]byte
	PMm [pmmSize]byte
)

// BlockElement addresses one block of one of the command's services.
type BlockElement struct {
	// ServiceIndex is the position of the service in the command's list.
	ServiceIndex int
	Block        uint16
}

// Command is a decoded FeliCa command.
type Command struct {
	Code byte
	// Polling.
	SystemCode  uint16
	RequestCode byte
	TimeSlot    byte
	// Every other command.
	IDm IDm
	// Request Service: node codes; Read/Write: service codes.
	Codes  []uint16
	Blocks []BlockElement
	// Write: one 16-byte block per element.
	Data [][BlockSize]byte
}

// Response is a decoded FeliCa response.
type Response struct {
	Code byte
	IDm  IDm
	// Polling.
	PMm         PMm
	RequestData []byte
	// Request Service: key versions.
	KeyVersions []uint16
	// Read/Write: status flags (0, 0 on success) and, for a read, the blocks.
	Status1, Status2 byte
	Data             [][BlockSize]byte
}

// OK tells whether a read or write succeeded.
func (r Response) OK() bool { return r.Status1 == statusOK && r.Status2 == statusOK }

// Polling builds a Polling command.
func Polling(systemCode uint16, requestCode, timeSlot byte) Command {
	return Command{Code: CodePolling, SystemCode: systemCode, RequestCode: requestCode, TimeSlot: timeSlot}
}

// Read builds a Read Without Encryption of blocks of one service.
func Read(idm IDm, service uint16, blocks ...uint16) Command {
	c := Command{Code: CodeReadWithoutEnc, IDm: idm, Codes: []uint16{service}}
	for _, b := range blocks {
		c.Blocks = append(c.Blocks, BlockElement{Block: b})
	}
	return c
}

// Write builds a Write Without Encryption of one block of one service.
func Write(idm IDm, service, block uint16, data [BlockSize]byte) Command {
	return Command{Code: CodeWriteWithoutEnc, IDm: idm, Codes: []uint16{service},
		Blocks: []BlockElement{{Block: block}}, Data: [][BlockSize]byte{data}}
}

// Encode returns the packet of c.
func (c Command) Encode() ([]byte, error) {
	b := []byte{0, c.Code}
	switch c.Code {
	case CodePolling:
		b = binary.BigEndian.AppendUint16(b, c.SystemCode)
		b = append(b, c.RequestCode, c.TimeSlot)
	case CodeRequestService:
		if len(c.Codes) == 0 || len(c.Codes) > 32 {
			return nil, errors.New("felica: request service needs 1 to 32 node codes")
		}
		b = append(b, c.IDm[:]...)
		b = appendCodes(b, c.Codes)
	case CodeReadWithoutEnc, CodeWriteWithoutEnc:
		if len(c.Codes) == 0 || len(c.Codes) > MaxServices {
			return nil, fmt.Errorf("felica: 1 to %d services", MaxServices)
		}
		if len(c.Blocks) == 0 || len(c.Blocks) > MaxBlocks {
			return nil, fmt.Errorf("felica: 1 to %d blocks", MaxBlocks)
		}
		if c.Code == CodeWriteWithoutEnc && len(c.Data) != len(c.Blocks) {
			return nil, errors.New("felica: a write needs one data block per block element")
		}
		b = append(b, c.IDm[:]...)
		b = appendCodes(b, c.Codes)
		b = append(b, byte(len(c.Blocks)))
		for _, e := range c.Blocks {
			if e.ServiceIndex < 0 || e.ServiceIndex >= len(c.Codes) || e.ServiceIndex > 0x0F {
				return nil, errors.New("felica: block element names no service of the command")
			}
			if e.Block <= 0xFF {
				b = append(b, 0x80|byte(e.ServiceIndex), byte(e.Block))
			} else {
				b = append(b, byte(e.ServiceIndex), byte(e.Block), byte(e.Block>>8))
			}
		}
		for _, d := range c.Data {
			b = append(b, d[:]...)
		}
	default:
		return nil, fmt.Errorf("felica: command code %02X is not supported", c.Code)
	}
	if len(b) > maxPacket {
		return nil, errors.New("felica: packet longer than 255 bytes")
	}
	b[0] = byte(len(b))
	return b, nil
}

func appendCodes(b []byte, codes []uint16) []byte {
	b = append(b, byte(len(codes)))
	for _, c := range codes {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return b
}

// reader walks a packet, remembering the first shortfall.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.err = errors.New("felica: packet too short")
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) byte1() byte {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) idm() IDm {
	var id IDm
	copy(id[:], r.take(idmSize))
	return id
}

func (r *reader) codes(limit int) []uint16 {
	n := int(r.byte1())
	if r.err == nil && (n == 0 || n > limit) {
		r.err = fmt.Errorf("felica: %d codes, want 1 to %d", n, limit)
		return nil
	}
	raw := r.take(2 * n)
	out := make([]uint16, 0, n)
	for i := 0; i+1 < len(raw); i += 2 {
		out = append(out, binary.LittleEndian.Uint16(raw[i:]))
	}
	return out
}

func (r *reader) blocks(n int) [][BlockSize]byte {
	out := make([][BlockSize]byte, 0, n)
	for range n {
		var blk [BlockSize]byte
		copy(blk[:], r.take(BlockSize))
		out = append(out, blk)
	}
	return out
}

// frame checks LEN and returns the code and the parameters.
func frame(p []byte) (byte, *reader, error) {
	if len(p) < 2 {
		return 0, nil, errors.New("felica: packet too short")
	}
	if int(p[0]) != len(p) {
		return 0, nil, fmt.Errorf("felica: LEN is %d, packet has %d bytes", p[0], len(p))
	}
	return p[1], &reader{b: p[2:]}, nil
}

// DecodeCommand reads a command packet.
func DecodeCommand(p []byte) (Command, error) {
	code, r, err := frame(p)
	if err != nil {
		return Command{}, err
	}
	c := Command{Code: code}
	switch code {
	case CodePolling:
		sc := r.take(2)
		if sc != nil {
			c.SystemCode = binary.BigEndian.Uint16(sc)
		}
		c.RequestCode, c.TimeSlot = r.byte1(), r.byte1()
	case CodeRequestService:
		c.IDm = r.idm()
		c.Codes = r.codes(32)
	case CodeReadWithoutEnc, CodeWriteWithoutEnc:
		c.IDm = r.idm()
		c.Codes = r.codes(MaxServices)
		n := int(r.byte1())
		if r.err == nil && (n == 0 || n > MaxBlocks) {
			return Command{}, fmt.Errorf("felica: %d blocks, want 1 to %d", n, MaxBlocks)
		}
		for range n {
			head := r.byte1()
			e := BlockElement{ServiceIndex: int(head & 0x0F)}
			if head&0x80 != 0 {
				e.Block = uint16(r.byte1())
			} else if v := r.take(2); v != nil {
				e.Block = binary.LittleEndian.Uint16(v)
			}
			if r.err == nil && e.ServiceIndex >= len(c.Codes) {
				return Command{}, errors.New("felica: block element names no service of the command")
			}
			c.Blocks = append(c.Blocks, e)
		}
		if code == CodeWriteWithoutEnc {
			c.Data = r.blocks(n)
		}
	default:
		return Command{}, fmt.Errorf("felica: command code %02X is not supported", code)
	}
	if r.err != nil {
		return Command{}, r.err
	}
	if len(r.b) != 0 {
		return Command{}, errors.New("felica: bytes after the command")
	}
	return c, nil
}

// Encode returns the packet of a response.
func (r Response) Encode() ([]byte, error) {
	b := []byte{0, r.Code}
	b = append(b, r.IDm[:]...)
	switch r.Code {
	case CodePolling + codeResponse:
		b = append(b, r.PMm[:]...)
		b = append(b, r.RequestData...)
	case CodeRequestService + codeResponse:
		b = appendCodes(b, r.KeyVersions)
	case CodeReadWithoutEnc + codeResponse:
		b = append(b, r.Status1, r.Status2)
		if r.OK() {
			b = append(b, byte(len(r.Data)))
			for _, d := range r.Data {
				b = append(b, d[:]...)
			}
		}
	case CodeWriteWithoutEnc + codeResponse:
		b = append(b, r.Status1, r.Status2)
	default:
		return nil, fmt.Errorf("felica: response code %02X is not supported", r.Code)
	}
	if len(b) > maxPacket {
		return nil, errors.New("felica: packet longer than 255 bytes")
	}
	b[0] = byte(len(b))
	return b, nil
}

// DecodeResponse reads a response packet.
func DecodeResponse(p []byte) (Response, error) {
	code, r, err := frame(p)
	if err != nil {
		return Response{}, err
	}
	res := Response{Code: code, IDm: r.idm()}
	switch code {
	case CodePolling + codeResponse:
		copy(res.PMm[:], r.take(pmmSize))
		if r.err == nil && len(r.b) != 0 {
			res.RequestData = append([]byte(nil), r.take(2)...)
		}
	case CodeRequestService + codeResponse:
		res.KeyVersions = r.codes(32)
	case CodeReadWithoutEnc + codeResponse:
		res.Status1, res.Status2 = r.byte1(), r.byte1()
		if r.err == nil && res.OK() {
			n := int(r.byte1())
			if r.err == nil && n > MaxBlocks {
				return Response{}, fmt.Errorf("felica: %d blocks in a read response", n)
			}
			res.Data = r.blocks(n)
		}
	case CodeWriteWithoutEnc + codeResponse:
		res.Status1, res.Status2 = r.byte1(), r.byte1()
	default:
		return Response{}, fmt.Errorf("felica: response code %02X is not supported", code)
	}
	if r.err != nil {
		return Response{}, r.err
	}
	if len(r.b) != 0 {
		return Response{}, errors.New("felica: bytes after the response")
	}
	return res, nil
}

// Purse is the stored value a transit card keeps in one block: the
// balance and a counter raised by every write (a layout of ours; real
// cards differ by operator).
type Purse struct {
	Balance uint32
	Counter uint32
}

// Block returns the purse as a block: balance and counter little-endian,
// then a check byte (the XOR of the first eight) and zeros.
func (p Purse) Block() [BlockSize]byte {
	var b [BlockSize]byte
	binary.LittleEndian.PutUint32(b[0:], p.Balance)
	binary.LittleEndian.PutUint32(b[4:], p.Counter)
	b[8] = check(b[:8])
	return b
}

// ParsePurse reads a purse block, refusing one whose check byte is wrong.
func ParsePurse(b [BlockSize]byte) (Purse, error) {
	if b[8] != check(b[:8]) {
		return Purse{}, errors.New("felica: purse block fails its check")
	}
	return Purse{Balance: binary.LittleEndian.Uint32(b[0:]), Counter: binary.LittleEndian.Uint32(b[4:])}, nil
}

func check(b []byte) byte {
	var x byte = 0x5A
	for _, c := range b {
		x ^= c
	}
	return x
}
