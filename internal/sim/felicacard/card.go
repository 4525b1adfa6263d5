// Package felicacard emulates a FeliCa card for the simulators: the
// transit card in a phone's secure element and the physical card a phone
// reads in reader mode. It answers Polling for its system code, Request
// Service with its key versions, and reads and writes of 16-byte blocks of
// services that allow them without encryption.
package felicacard

import (
	"encoding/binary"
	"errors"
	"sync"

	"github.com/provhub/provhub/internal/felica"
)

// Card is an emulated FeliCa card; safe for concurrent use.
type Card struct {
	mu         sync.Mutex
	idm        felica.IDm
	pmm        felica.PMm
	systemCode uint16
	// blocks per service code; a service absent here does not exist.
	blocks map[uint16]map[uint16][felica.BlockSize]byte
	// keyVersions per node (area or service) code.
	keyVersions map[uint16]uint16
}

// New returns a card with one system; add services with AddService.
func New(idm felica.IDm, pmm felica.PMm, systemCode uint16) *Card {
	return &Card{idm: idm, pmm: pmm, systemCode: systemCode, blocks: map[uint16]map[uint16][felica.BlockSize]byte{}, keyVersions: map[uint16]uint16{}}
}

// AddService creates a service with n zeroed blocks and its key version.
func (c *Card) AddService(code uint16, n int, keyVersion uint16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	bs := map[uint16][felica.BlockSize]byte{}
	for i := range n {
		bs[uint16(i)] = [felica.BlockSize]byte{}
	}
	c.blocks[code] = bs
	c.keyVersions[code] = keyVersion
}

// AddArea records an area's key version (areas hold no blocks).
func (c *Card) AddArea(code, keyVersion uint16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keyVersions[code] = keyVersion
}

// IDm returns the card's IDm.
func (c *Card) IDm() felica.IDm { return c.idm }

// PMm returns the card's PMm.
func (c *Card) PMm() felica.PMm { return c.pmm }

// SystemCode returns the card's system code.
func (c *Card) SystemCode() uint16 { return c.systemCode }

// SetBlock writes a block directly (set-up).
func (c *Card) SetBlock(service, block uint16, data [felica.BlockSize]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	bs, ok := c.blocks[service]
	if !ok {
		return errors.New("felicacard: no such service")
	}
	if _, ok := bs[block]; !ok {
		return errors.New("felicacard: no such block")
	}
	bs[block] = data
	return nil
}

// Block reads a block directly (inspection).
func (c *Card) Block(service, block uint16) ([felica.BlockSize]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.blocks[service][block]
	return d, ok
}

// writable tells whether a service code's attribute allows writing
// without a key (random, cyclic or purse services whose low bit is set).
func writable(service uint16) bool { return service&0x01 == 0x01 && service&0x02 == 0 }

// readable tells whether a service code's attribute allows reading
// without a key.
func readable(service uint16) bool { return service&0x01 == 0x01 }

// Exec runs one command packet and returns the response packet; a command
// the card does not answer (another system code, another IDm, a malformed
// packet) returns nil, as a card that stays silent.
func (c *Card) Exec(packet []byte) []byte {
	cmd, err := felica.DecodeCommand(packet)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var res felica.Response
	switch cmd.Code {
	case felica.CodePolling:
		if cmd.SystemCode != c.systemCode && cmd.SystemCode != 0xFFFF {
			return nil
		}
		res = felica.Response{Code: felica.CodePolling + 1, IDm: c.idm, PMm: c.pmm}
		if cmd.RequestCode == 0x01 {
			res.RequestData = binary.BigEndian.AppendUint16(nil, c.systemCode)
		}
	case felica.CodeRequestService:
		if cmd.IDm != c.idm {
			return nil
		}
		res = felica.Response{Code: felica.CodeRequestService + 1, IDm: c.idm}
		for _, node := range cmd.Codes {
			v, ok := c.keyVersions[node]
			if !ok {
				v = 0xFFFF // the node does not exist
			}
			res.KeyVersions = append(res.KeyVersions, v)
		}
	case felica.CodeReadWithoutEnc, felica.CodeWriteWithoutEnc:
		if cmd.IDm != c.idm {
			return nil
		}
		res = c.readWrite(cmd)
	default:
		return nil
	}
	out, err := res.Encode()
	if err != nil {
		return nil
	}
	return out
}

// readWrite runs a read or write; it changes nothing unless every block
// element is valid.
func (c *Card) readWrite(cmd felica.Command) felica.Response {
	write := cmd.Code == felica.CodeWriteWithoutEnc
	res := felica.Response{Code: cmd.Code + 1, IDm: c.idm}
	for i, e := range cmd.Blocks {
		svc := cmd.Codes[e.ServiceIndex]
		bs, ok := c.blocks[svc]
		switch {
		case !ok:
			res.Status1, res.Status2 = byte(i+1), felica.StatusFlagServiceError
		case (write && !writable(svc)) || (!write && !readable(svc)):
			res.Status1, res.Status2 = byte(i+1), felica.StatusFlagAccessError
		default:
			if _, ok := bs[e.Block]; !ok {
				res.Status1, res.Status2 = byte(i+1), felica.StatusFlagBlockError
			}
		}
		if !res.OK() {
			return res
		}
	}
	for i, e := range cmd.Blocks {
		svc := cmd.Codes[e.ServiceIndex]
		if write {
			c.blocks[svc][e.Block] = cmd.Data[i]
		} else {
			res.Data = append(res.Data, c.blocks[svc][e.Block])
		}
	}
	return res
}

// The transit card layout the simulators share: one system, an area
// holding the purse service, the purse in block 0 (felica.Purse).
const (
	TransitSystemCode uint16 = 0x0003
	PurseArea         uint16 = 0x1000
	PurseAreaKey      uint16 = 0x0001
	PurseService      uint16 = 0x1009
	PurseBlock        uint16 = 0
	// ServiceName is the cardServiceId a phone reports for such a card.
	ServiceName = "provhub transit"
)

// Transit returns a transit card holding balance.
func Transit(idm felica.IDm, balance uint32) *Card {
	c := New(idm, felica.PMm{0x01, 0x20, 0x22, 0x04, 0x27, 0x67, 0x77, 0xFF}, TransitSystemCode)
	c.AddArea(PurseArea, PurseAreaKey)
	c.AddService(PurseService, 4, PurseAreaKey)
	_ = c.SetBlock(PurseService, PurseBlock, felica.Purse{Balance: balance}.Block())
	return c
}

// Balance reads the purse of a transit card.
func (c *Card) Balance() (felica.Purse, error) {
	b, ok := c.Block(PurseService, PurseBlock)
	if !ok {
		return felica.Purse{}, errors.New("felicacard: no purse")
	}
	return felica.ParsePurse(b)
}
