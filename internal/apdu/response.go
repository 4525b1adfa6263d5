package apdu

import "fmt"

// Status words the flows rely on (ISO/IEC 7816-4 and GlobalPlatform).
const (
	SWOK                      uint16 = 0x9000
	SWWrongLength             uint16 = 0x6700
	SWSecurityNotSatisfied    uint16 = 0x6982
	SWConditionsNotSatisfied  uint16 = 0x6985
	SWWrongData               uint16 = 0x6A80
	SWFunctionNotSupported    uint16 = 0x6A81
	SWFileNotFound            uint16 = 0x6A82
	SWReferencedDataNotFound  uint16 = 0x6A88
	SWIncorrectP1P2           uint16 = 0x6A86
	SWINSNotSupported         uint16 = 0x6D00
	SWCLANotSupported         uint16 = 0x6E00
	SWMemoryFailure           uint16 = 0x6581
	SWNotEnoughMemory         uint16 = 0x6A84
	SWReferencedDataInvalid   uint16 = 0x6984
	SWApplicationLockedStatus uint16 = 0x6283 // selected file invalidated (locked application)
)

// Response is a response APDU: data followed by the status word.
type Response struct {
	Data []byte
	SW   uint16
}

// OK reports whether the status word is 9000.
func (r Response) OK() bool { return r.SW == SWOK }

// SW1 and SW2 are the two bytes of the status word.
func (r Response) SW1() byte { return byte(r.SW >> 8) }
func (r Response) SW2() byte { return byte(r.SW) }

// Bytes encodes r.
func (r Response) Bytes() []byte {
	out := make([]byte, 0, len(r.Data)+2)
	out = append(out, r.Data...)
	return append(out, r.SW1(), r.SW2())
}

// String shows the status word and the data length.
func (r Response) String() string {
	return fmt.Sprintf("SW %04X, %d data bytes", r.SW, len(r.Data))
}

// ParseResponse decodes a response APDU.
func ParseResponse(b []byte) (Response, error) {
	if len(b) < 2 {
		return Response{}, malformed("response of %d bytes, at least 2", len(b))
	}
	if len(b)-2 > MaxExtendedLe {
		return Response{}, malformed("response of %d data bytes, at most %d", len(b)-2, MaxExtendedLe)
	}
	n := len(b) - 2
	return Response{Data: append([]byte(nil), b[:n]...), SW: uint16(b[n])<<8 | uint16(b[n+1])}, nil
}
