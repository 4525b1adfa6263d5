package wallet

import (
	"bytes"
	hexpkg "encoding/hex"
	"testing"

	"github.com/provhub/provhub/internal/apdu"
)

func run(t *testing.T, s *session, c apdu.Command, err error) apdu.Response {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	r, perr := apdu.ParseResponse(s.exec(c.MustBytes()))
	if perr != nil {
		t.Fatal(perr)
	}
	return r
}

func TestSecureElement_CardContentManagement(t *testing.T) {
	se := newSecureElement("0A")
	s := se.session()
	app := apdu.AID{0xA0, 0, 0, 1, 0x51, 0x53, 0x50, 0x01}
	pkg := apdu.AID{0xA0, 0, 0, 1, 0x51, 0x53, 0x50}
	if r := run(t, s, apdu.GetStatus(apdu.StatusScopeApplications, nil), nil); r.SW != apdu.SWReferencedDataNotFound {
		t.Fatalf("GET STATUS of an empty card: %v", r)
	}
	in := apdu.Install{LoadFile: pkg, Module: pkg, Instance: app, Privileges: []byte{0}}
	c, err := apdu.InstallCommand(in)
	if r := run(t, s, c, err); !r.OK() {
		t.Fatalf("INSTALL: %v", r)
	}
	if r := run(t, s, c, err); r.SW != apdu.SWConditionsNotSatisfied {
		t.Fatalf("second INSTALL: %v", r)
	}
	c, err = apdu.Select(app)
	if r := run(t, s, c, err); !r.OK() || !bytes.Contains(r.Data, app) {
		t.Fatalf("SELECT: %v %X", r, r.Data)
	}
	sd, err := apdu.StoreData(1, true, apdu.DGI{ID: 0x0101, Value: []byte{9}}.Bytes())
	if r := run(t, s, sd, err); r.SW != apdu.SWIncorrectP1P2 {
		t.Fatalf("STORE DATA out of order: %v", r)
	}
	sd, err = apdu.StoreData(0, true, apdu.DGI{ID: 0x0101, Value: []byte{9}}.Bytes())
	if r := run(t, s, sd, err); !r.OK() {
		t.Fatalf("STORE DATA: %v", r)
	}
	c, err = apdu.Lock(app)
	if r := run(t, s, c, err); !r.OK() {
		t.Fatalf("lock: %v", r)
	}
	r := run(t, s, apdu.GetStatus(apdu.StatusScopeApplications, app[:5]), nil)
	ts, _ := apdu.ParseTLVs(r.Data)
	e3, _ := ts[0].Children()
	st, _ := apdu.Find(e3, 0x9F70)
	if !r.OK() || len(ts) != 1 || st.Value[0] != statePersonalized|apdu.StateLockedBit {
		t.Fatalf("GET STATUS after lock: %v %+v", r, e3)
	}
	c, err = apdu.Select(app)
	if r := run(t, s, c, err); r.SW != apdu.SWConditionsNotSatisfied {
		t.Fatalf("SELECT of a locked application: %v", r)
	}
	c, err = apdu.Unlock(app)
	if r := run(t, s, c, err); !r.OK() {
		t.Fatalf("unlock: %v", r)
	}
	if r := run(t, s, c, err); r.SW != apdu.SWConditionsNotSatisfied {
		t.Fatalf("unlock twice: %v", r)
	}
	c, err = apdu.Delete(app, false)
	if r := run(t, s, c, err); !r.OK() || len(se.instances) != 0 {
		t.Fatalf("DELETE: %v", r)
	}
	if r := run(t, s, c, err); r.SW != apdu.SWReferencedDataNotFound {
		t.Fatalf("DELETE twice: %v", r)
	}
	if r := run(t, s, apdu.Command{CLA: 0xA0, INS: 0xA4, Le: apdu.NoLe}, nil); r.SW != apdu.SWCLANotSupported {
		t.Fatalf("unknown CLA: %v", r)
	}
	if r := run(t, s, apdu.Command{CLA: 0x80, INS: 0x50, Le: apdu.NoLe}, nil); r.SW != apdu.SWINSNotSupported {
		t.Fatalf("unknown INS: %v", r)
	}
	if res, _ := apdu.ParseResponse(s.exec([]byte{0x00, 0xA4})); res.SW != apdu.SWWrongLength {
		t.Fatalf("short APDU: %v", res)
	}
}

// FuzzSecureElement runs arbitrary APDUs: the emulator always answers with
// a status word and never panics.
func FuzzSecureElement(f *testing.F) {
	for _, s := range []string{"00A4040008A000000151535001", "80F24002024F0000", "80E2880004010101AA", "80E60C00", "80F0408008A000000151535001"} {
		b, _ := hexDecode(s)
		f.Add(b)
	}
	se := newSecureElement("0A")
	se.instances[key([]byte{0xA0, 0, 0, 1, 0x51, 0x53, 0x50, 0x01})] = &instance{aid: apdu.AID{0xA0, 0, 0, 1, 0x51, 0x53, 0x50, 0x01}, state: apdu.StateSelectable, data: map[uint16][]byte{}}
	s := se.session()
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := apdu.ParseResponse(s.exec(b)); err != nil {
			t.Fatalf("answer to %X is not a response APDU", b)
		}
	})
}

// FuzzDecode feeds arbitrary request bodies to the validation of every
// operation.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"requestHeader":{"requestId":"r","sessionId":"s"},"taskId":"t","walletCardId":"w","seId":"0A","apduCommands":[{"data":"00A4","messageId":"1"}]}`,
		`{"requestHeader":{"requestId":"r","sessionId":"s","generationDateTime":"2026-01-01T00:00:00Z"},"taskId":"t","seId":"0A","operation":"SUSPEND"}`,
		`{"apduCommands":[{}]}`, `[]`, `{"requestHeader":7}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, e := decode(raw)
		if e != nil {
			if e.code != 111 && e.code != 112 {
				t.Fatalf("validation answered %d", e.code)
			}
			return
		}
		var cmds [][]byte
		var ids []string
		if e := b.script(&cmds, &ids); e == nil && len(cmds) != len(ids) {
			t.Fatal("commands and ids differ in number")
		}
		_ = b.sessionID()
	})
}

func hexDecode(s string) ([]byte, error) { return hexpkg.DecodeString(s) }
