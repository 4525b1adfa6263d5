package apdu

import "fmt"

// TLV is one BER-TLV data object. Tag holds the tag bytes as a number
// (e.g. 0x4F, 0x9F70, 0xBF0C). A constructed object's value is itself a
// sequence of data objects, which Children decodes.
type TLV struct {
	Tag   uint32
	Value []byte
}

// Constructed reports whether the tag marks a constructed object (bit 6
// of its first byte).
func (t TLV) Constructed() bool {
	first := t.Tag
	for first > 0xFF {
		first >>= 8
	}
	return first&0x20 != 0
}

// Children decodes the value of a constructed object.
func (t TLV) Children() ([]TLV, error) {
	if !t.Constructed() {
		return nil, fmt.Errorf("tag %X is primitive", t.Tag)
	}
	return ParseTLVs(t.Value)
}

// maxTagBytes bounds a tag's length; real tags have at most three bytes.
const maxTagBytes = 3

// ParseTLVs decodes a sequence of BER-TLV objects, strictly: every byte
// must belong to an object, lengths must fit, and tags have at most three
// bytes. Padding bytes 00 and FF between objects, which ISO/IEC 7816-4
// allows, are skipped.
func ParseTLVs(b []byte) ([]TLV, error) {
	var out []TLV
	for len(b) > 0 {
		if b[0] == 0x00 || b[0] == 0xFF {
			b = b[1:]
			continue
		}
		t, rest, err := parseTLV(b)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
		b = rest
	}
	return out, nil
}

func parseTLV(b []byte) (TLV, []byte, error) {
	tag := uint32(b[0])
	i := 1
	if b[0]&0x1F == 0x1F {
		for {
			if i >= len(b) {
				return TLV{}, nil, malformed("tag cut short")
			}
			if i >= maxTagBytes {
				return TLV{}, nil, malformed("tag longer than %d bytes", maxTagBytes)
			}
			tag = tag<<8 | uint32(b[i])
			i++
			if b[i-1]&0x80 == 0 {
				break
			}
		}
	}
	if i >= len(b) {
		return TLV{}, nil, malformed("length of tag %X missing", tag)
	}
	n := int(b[i])
	i++
	if n > 0x80 {
		k := n & 0x7F
		if k > 3 || i+k > len(b) {
			return TLV{}, nil, malformed("length of tag %X: %d length bytes", tag, k)
		}
		n = 0
		for _, x := range b[i : i+k] {
			n = n<<8 | int(x)
		}
		i += k
	} else if n == 0x80 {
		return TLV{}, nil, malformed("indefinite length of tag %X", tag)
	}
	if n > len(b)-i {
		return TLV{}, nil, malformed("tag %X: length %d, %d bytes left", tag, n, len(b)-i)
	}
	return TLV{Tag: tag, Value: append([]byte(nil), b[i:i+n]...)}, b[i+n:], nil
}

// Bytes encodes t with the shortest length form.
func (t TLV) Bytes() []byte {
	var out []byte
	switch {
	case t.Tag > 0xFFFF:
		out = append(out, byte(t.Tag>>16), byte(t.Tag>>8), byte(t.Tag))
	case t.Tag > 0xFF:
		out = append(out, byte(t.Tag>>8), byte(t.Tag))
	default:
		out = append(out, byte(t.Tag))
	}
	n := len(t.Value)
	switch {
	case n < 0x80:
		out = append(out, byte(n))
	case n <= 0xFF:
		out = append(out, 0x81, byte(n))
	case n <= 0xFFFF:
		out = append(out, 0x82, byte(n>>8), byte(n))
	default:
		out = append(out, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(out, t.Value...)
}

// EncodeTLVs concatenates the encodings of ts.
func EncodeTLVs(ts ...TLV) []byte {
	var out []byte
	for _, t := range ts {
		out = append(out, t.Bytes()...)
	}
	return out
}

// Find returns the first object with tag among ts.
func Find(ts []TLV, tag uint32) (TLV, bool) {
	for _, t := range ts {
		if t.Tag == tag {
			return t, true
		}
	}
	return TLV{}, false
}
