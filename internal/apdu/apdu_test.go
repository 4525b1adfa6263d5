package apdu

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCommand_EncodesEveryCase(t *testing.T) {
	data300 := bytes.Repeat([]byte{0xAB}, 300)
	cases := []struct {
		name string
		cmd  Command
		want string
	}{
		{"case 1", Command{CLA: 0x80, INS: 0xCA, P1: 0x9F, P2: 0x7F, Le: NoLe}, "80CA9F7F"},
		{"case 2S", Command{INS: 0xB0, Le: 16}, "00B0000010"},
		{"case 2S Le 256", Command{INS: 0xB0, Le: 256}, "00B0000000"},
		{"case 3S", Command{INS: 0xD6, Data: []byte{1, 2}, Le: NoLe}, "00D60000020102"},
		{"case 4S", Command{INS: 0xA4, P1: 4, Data: unhex(t, "A000000151000000"), Le: 256}, "00A4040008A00000015100000000"},
		{"case 2E", Command{INS: 0xB0, Le: 65536}, "00B00000000000"},
		{"case 2E Le 300", Command{INS: 0xB0, Le: 300}, "00B0000000012C"},
		{"case 3E", Command{INS: 0xD6, Data: data300, Le: NoLe}, "00D6000000012C" + strings.Repeat("AB", 300)},
		{"case 4E", Command{INS: 0xD6, Data: data300, Le: 65536}, "00D6000000012C" + strings.Repeat("AB", 300) + "0000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.cmd.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, c.want); !bytes.Equal(got, want) {
				t.Fatalf("encoded %X, want %X", got, want)
			}
			back, err := ParseCommand(got)
			if err != nil {
				t.Fatal(err)
			}
			if !sameCommand(back, c.cmd) {
				t.Fatalf("decoded %+v, want %+v", back, c.cmd)
			}
		})
	}
}

func TestCommand_RefusesWhatCannotBeEncodedOrDecoded(t *testing.T) {
	for _, c := range []Command{
		{Data: make([]byte, 65536), Le: NoLe},
		{Le: 0},
		{Le: 65537},
	} {
		if _, err := c.Bytes(); err == nil {
			t.Errorf("encoded %d data bytes with Le %d", len(c.Data), c.Le)
		}
	}
	for _, h := range []string{
		"",
		"00A404",
		"00A4040005A0000001",       // Lc 5, 4 bytes
		"00A4040002A000000001",     // Lc 2, 4 left
		"00A404000000",             // extended, no Lc
		"00A40400000000A0",         // extended Lc 0
		"00A4040000000AA000000151", // extended Lc 10, 4 bytes
	} {
		if _, err := ParseCommand(unhex(t, h)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseCommand(%s) = %v, want ErrMalformed", h, err)
		}
	}
}

func sameCommand(a, b Command) bool {
	return a.CLA == b.CLA && a.INS == b.INS && a.P1 == b.P1 && a.P2 == b.P2 && bytes.Equal(a.Data, b.Data) && a.Le == b.Le
}

func commandGen() *rapid.Generator[Command] {
	return rapid.Custom(func(t *rapid.T) Command {
		c := Command{
			CLA: rapid.Byte().Draw(t, "cla"), INS: rapid.Byte().Draw(t, "ins"),
			P1: rapid.Byte().Draw(t, "p1"), P2: rapid.Byte().Draw(t, "p2"),
			Data: rapid.SliceOfN(rapid.Byte(), 0, 600).Draw(t, "data"),
			Le:   rapid.OneOf(rapid.Just(NoLe), rapid.IntRange(1, 300), rapid.IntRange(1, MaxExtendedLe)).Draw(t, "le"),
		}
		if len(c.Data) == 0 {
			c.Data = nil
		}
		return c
	})
}

func TestCommand_RoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := commandGen().Draw(t, "cmd")
		b, err := c.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseCommand(b)
		if err != nil {
			t.Fatalf("%X: %v", b, err)
		}
		if !sameCommand(back, c) {
			t.Fatalf("%+v became %+v", c, back)
		}
		if c.Extended() != (len(b) > 4 && b[4] == 0 && len(b) >= 7) {
			t.Fatalf("extended form chosen wrongly for %+v: %X", c, b)
		}
	})
}

func TestResponse_RoundTrip(t *testing.T) {
	r, err := ParseResponse(unhex(t, "6F10840E315041592E5359532E4444463031 9000"))
	if err != nil || !r.OK() || len(r.Data) != 18 || r.SW1() != 0x90 {
		t.Fatalf("%v %v", r, err)
	}
	if !bytes.Equal(r.Bytes(), unhex(t, "6F10840E315041592E5359532E44444630319000")) {
		t.Fatalf("re-encoded %X", r.Bytes())
	}
	if _, err := ParseResponse([]byte{0x90}); !errors.Is(err, ErrMalformed) {
		t.Fatal("a one-byte response was accepted")
	}
}

func TestTLV_ParsesNestedObjectsAndLengthForms(t *testing.T) {
	// FCI: 6F { 84 AID, A5 { 50 label, 9F38 PDOL } }
	b := unhex(t, "6F1D 8407A0000000041010 A512 500A4D617374657263617264 9F3803 9F1A02")
	ts, err := ParseTLVs(b)
	if err != nil || len(ts) != 1 || ts[0].Tag != 0x6F || !ts[0].Constructed() {
		t.Fatalf("%+v %v", ts, err)
	}
	kids, err := ts[0].Children()
	if err != nil || len(kids) != 2 {
		t.Fatalf("%+v %v", kids, err)
	}
	a5, ok := Find(kids, 0xA5)
	if !ok {
		t.Fatal("A5 missing")
	}
	inner, err := a5.Children()
	if err != nil {
		t.Fatal(err)
	}
	if pdol, ok := Find(inner, 0x9F38); !ok || !bytes.Equal(pdol.Value, unhex(t, "9F1A02")) {
		t.Fatalf("9F38: %+v", inner)
	}
	if !bytes.Equal(EncodeTLVs(ts...), b) {
		t.Fatal("re-encoding changed the bytes")
	}
	long := TLV{Tag: 0xBF0C, Value: bytes.Repeat([]byte{1}, 300)}
	enc := long.Bytes()
	if !bytes.Equal(enc[:5], unhex(t, "BF0C82012C")) {
		t.Fatalf("long form %X", enc[:5])
	}
	for _, h := range []string{"9F", "4F", "4F05A000", "4F80", "4F84000000010000", "9F9F9F9F0100", "4F8201"} {
		if _, err := ParseTLVs(unhex(t, h)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseTLVs(%s) = %v, want ErrMalformed", h, err)
		}
	}
	if ts, err := ParseTLVs(unhex(t, "00 4F01AA FF")); err != nil || len(ts) != 1 {
		t.Errorf("padding: %+v %v", ts, err)
	}
}

func TestTLV_RoundTripProperty(t *testing.T) {
	tagGen := rapid.OneOf(
		rapid.Custom(func(t *rapid.T) uint32 { // one byte, not 1F-form, not padding
			b := rapid.ByteRange(0x01, 0xFE).Filter(func(b byte) bool { return b&0x1F != 0x1F }).Draw(t, "b")
			return uint32(b)
		}),
		rapid.Custom(func(t *rapid.T) uint32 { // two bytes
			first := rapid.ByteRange(0, 6).Draw(t, "class")<<5 | 0x1F // FF is padding, never a tag
			return uint32(first)<<8 | uint32(rapid.ByteRange(0x1F, 0x7F).Draw(t, "n"))
		}),
	)
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 5).Draw(t, "n")
		var ts []TLV
		for range n {
			ts = append(ts, TLV{Tag: tagGen.Draw(t, "tag"), Value: rapid.SliceOfN(rapid.Byte(), 0, 400).Draw(t, "value")})
		}
		back, err := ParseTLVs(EncodeTLVs(ts...))
		if err != nil {
			t.Fatal(err)
		}
		if len(back) != len(ts) {
			t.Fatalf("%d objects became %d", len(ts), len(back))
		}
		for i := range ts {
			if back[i].Tag != ts[i].Tag || !bytes.Equal(back[i].Value, ts[i].Value) {
				t.Fatalf("object %d: %X/%d became %X/%d", i, ts[i].Tag, len(ts[i].Value), back[i].Tag, len(back[i].Value))
			}
		}
	})
}

func TestGlobalPlatformCommands(t *testing.T) {
	aid := AID(unhex(t, "A0000001515350"))
	must := func(c Command, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return strings.ToUpper(hex.EncodeToString(c.MustBytes()))
	}
	cases := []struct{ name, got, want string }{
		{"select", must(Select(aid)), "00A4040007A000000151535000"},
		{"get status", strings.ToUpper(hex.EncodeToString(GetStatus(StatusScopeApplications, nil).MustBytes())), "80F24002024F0000"},
		{"lock", must(Lock(aid)), "80F0408007A0000001515350"},
		{"unlock", must(Unlock(aid)), "80F0400007A0000001515350"},
		{"delete", must(Delete(aid, true)), "80E40080094F07A000000151535000"},
		{"store data", must(StoreData(2, true, []byte{0x01, 0x01, 0x01, 0xAA})), "80E288020401010 1AA"},
		{"install", must(InstallCommand(Install{LoadFile: aid, Module: aid, Instance: AID(unhex(t, "A000000151535001")),
			Privileges: []byte{0x00}, Params: []byte{0x01}})), "80E60C002007A000000151535007A000000151535008A0000001515350010100 03C9010100 00"},
	}
	for _, c := range cases {
		if want := strings.ReplaceAll(c.want, " ", ""); c.got != want {
			t.Errorf("%s: %s, want %s", c.name, c.got, want)
		}
	}
	if _, err := Select(AID{1, 2}); err == nil {
		t.Error("a 2-byte AID was accepted")
	}
	if _, err := StoreData(0, true, nil); err == nil {
		t.Error("an empty STORE DATA block was accepted")
	}
}

func TestPersoScript_PacksDGIsIntoBlocks(t *testing.T) {
	inst := AID(unhex(t, "A000000151535001"))
	dgis := []DGI{{ID: 0x0101, Value: bytes.Repeat([]byte{1}, 200)}, {ID: 0x0102, Value: bytes.Repeat([]byte{2}, 100)}, {ID: 0x8000, Value: []byte{3}}}
	script, err := PersoScript(inst, dgis, MaxShortData)
	if err != nil {
		t.Fatal(err)
	}
	if len(script) != 3 || script[0].INS != InsSelect || script[1].P1 != 0x08 || script[2].P1 != 0x88 || script[2].P2 != 1 {
		t.Fatalf("script %+v", script)
	}
	var all []byte
	for _, c := range script[1:] {
		all = append(all, c.Data...)
	}
	back, err := ParseDGIs(all)
	if err != nil || len(back) != 3 || back[2].ID != 0x8000 || len(back[0].Value) != 200 {
		t.Fatalf("DGIs back: %+v %v", back, err)
	}
	split, err := PersoScript(inst, []DGI{{ID: 0x0201, Value: bytes.Repeat([]byte{5}, 300)}}, 100)
	if err != nil || len(split) != 5 {
		t.Fatalf("a 305-byte DGI in blocks of 100: %d commands, %v", len(split), err)
	}
	var joined []byte
	for _, c := range split[1:] {
		joined = append(joined, c.Data...)
	}
	if back, err := ParseDGIs(joined); err != nil || len(back) != 1 || len(back[0].Value) != 300 {
		t.Fatalf("split DGI does not join back: %v", err)
	}
	long := DGI{ID: 0x0201, Value: make([]byte, 300)}
	if enc := long.Bytes(); enc[2] != 0xFF || enc[3] != 0x01 || enc[4] != 0x2C {
		t.Errorf("long DGI header %X", enc[:5])
	}
}
