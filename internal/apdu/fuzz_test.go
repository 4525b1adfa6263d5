package apdu

import (
	"bytes"
	"testing"
)

// Decoders must never panic; what they accept must encode back to an
// equivalent value.

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"00A4040007A000000151535000", "80CA9F7F", "00B00000000000", "00D6000000012C", "00B0000010"} {
		f.Add(unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCommand(b)
		if err != nil {
			return
		}
		enc, err := c.Bytes()
		if err != nil {
			t.Fatalf("accepted %X but cannot encode %+v: %v", b, c, err)
		}
		back, err := ParseCommand(enc)
		if err != nil || !sameCommand(back, c) {
			t.Fatalf("%X -> %+v -> %X -> %+v (%v)", b, c, enc, back, err)
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	f.Add(unhex(f, "9000"))
	f.Add(unhex(f, "6F0A840800000000000000006A82"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseResponse(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Bytes(), b) {
			t.Fatalf("%X re-encoded as %X", b, r.Bytes())
		}
	})
}

func FuzzParseTLVs(f *testing.F) {
	for _, s := range []string{"6F1D8407A0000000041010A512500A4D617374657263617264 9F38039F1A02", "BF0C820001AA", "004F01AAFF", "9F9F01"} {
		f.Add(unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := ParseTLVs(b)
		if err != nil {
			return
		}
		back, err := ParseTLVs(EncodeTLVs(ts...))
		if err != nil || len(back) != len(ts) {
			t.Fatalf("%X: re-parse gave %d objects (%v), want %d", b, len(back), err, len(ts))
		}
		for i := range ts {
			if back[i].Tag != ts[i].Tag || !bytes.Equal(back[i].Value, ts[i].Value) {
				t.Fatalf("%X: object %d changed", b, i)
			}
			if ts[i].Constructed() {
				_, _ = ts[i].Children()
			}
		}
	})
}

func FuzzParseDGIs(f *testing.F) {
	f.Add(unhex(f, "010103AABBCC8000FF0001EE"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ds, err := ParseDGIs(b)
		if err != nil {
			return
		}
		var enc []byte
		for _, d := range ds {
			enc = append(enc, d.Bytes()...)
		}
		back, err := ParseDGIs(enc)
		if err != nil || len(back) != len(ds) {
			t.Fatalf("%X: re-parse %v", b, err)
		}
	})
}
