package apdu

import (
	"errors"
	"fmt"
)

// NoLe marks a command that expects no response data.
const NoLe = -1

// Maximum lengths of the two encodings.
const (
	MaxShortData    = 255
	MaxShortLe      = 256
	MaxExtendedData = 65535
	MaxExtendedLe   = 65536
)

// Command is a command APDU. Le is the number of response bytes expected:
// NoLe for none, or 1..65536 (an encoded Le of zero means the maximum of
// its form: 256 short, 65536 extended).
type Command struct {
	CLA, INS, P1, P2 byte
	Data             []byte
	Le               int
}

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed APDU")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Extended reports whether c needs the extended-length encoding.
func (c Command) Extended() bool {
	return len(c.Data) > MaxShortData || c.Le > MaxShortLe
}

// Bytes encodes c, in short form when it fits and extended form otherwise.
func (c Command) Bytes() ([]byte, error) {
	if len(c.Data) > MaxExtendedData {
		return nil, fmt.Errorf("encode APDU: %d data bytes, at most %d", len(c.Data), MaxExtendedData)
	}
	if c.Le != NoLe && (c.Le < 1 || c.Le > MaxExtendedLe) {
		return nil, fmt.Errorf("encode APDU: Le %d outside 1..%d", c.Le, MaxExtendedLe)
	}
	out := []byte{c.CLA, c.INS, c.P1, c.P2}
	if !c.Extended() {
		if len(c.Data) > 0 {
			out = append(out, byte(len(c.Data)))
			out = append(out, c.Data...)
		}
		if c.Le != NoLe {
			out = append(out, byte(c.Le)) // 256 encodes as 0x00
		}
		return out, nil
	}
	if len(c.Data) > 0 {
		out = append(out, 0, byte(len(c.Data)>>8), byte(len(c.Data)))
		out = append(out, c.Data...)
		if c.Le != NoLe {
			out = append(out, byte(c.Le>>8), byte(c.Le)) // 65536 encodes as 0x0000
		}
		return out, nil
	}
	// Case 2E: only an extended Le.
	return append(out, 0, byte(c.Le>>8), byte(c.Le)), nil
}

// MustBytes is Bytes for commands built by this package's constructors,
// which are always encodable.
func (c Command) MustBytes() []byte {
	b, err := c.Bytes()
	if err != nil {
		panic(err)
	}
	return b
}

// ParseCommand decodes a command APDU in any of the seven cases of
// ISO/IEC 7816-3 (1, 2S, 3S, 4S, 2E, 3E, 4E).
func ParseCommand(b []byte) (Command, error) {
	if len(b) < 4 {
		return Command{}, malformed("command of %d bytes, at least 4", len(b))
	}
	c := Command{CLA: b[0], INS: b[1], P1: b[2], P2: b[3], Le: NoLe}
	body := b[4:]
	switch {
	case len(body) == 0: // case 1
		return c, nil
	case len(body) == 1: // case 2S
		c.Le = shortLe(body[0])
		return c, nil
	case body[0] != 0: // cases 3S and 4S
		n := int(body[0])
		switch len(body) {
		case 1 + n:
		case 2 + n:
			c.Le = shortLe(body[1+n])
		default:
			return Command{}, malformed("short Lc %d does not match a body of %d bytes", n, len(body))
		}
		c.Data = append([]byte(nil), body[1:1+n]...)
		return c, nil
	case len(body) == 3: // case 2E
		c.Le = extendedLe(body[1], body[2])
		return c, nil
	case len(body) < 3:
		return Command{}, malformed("extended length field cut short")
	}
	n := int(body[1])<<8 | int(body[2])
	if n == 0 {
		return Command{}, malformed("extended Lc of zero")
	}
	switch len(body) {
	case 3 + n: // case 3E
	case 5 + n: // case 4E
		c.Le = extendedLe(body[3+n], body[4+n])
	default:
		return Command{}, malformed("extended Lc %d does not match a body of %d bytes", n, len(body))
	}
	c.Data = append([]byte(nil), body[3:3+n]...)
	return c, nil
}

func shortLe(b byte) int {
	if b == 0 {
		return MaxShortLe
	}
	return int(b)
}

func extendedLe(hi, lo byte) int {
	n := int(hi)<<8 | int(lo)
	if n == 0 {
		return MaxExtendedLe
	}
	return n
}
