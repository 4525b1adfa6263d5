package felicacard

import (
	"testing"

	"github.com/provhub/provhub/internal/felica"
)

func exec(t *testing.T, c *Card, cmd felica.Command) (felica.Response, bool) {
	t.Helper()
	p, err := cmd.Encode()
	if err != nil {
		t.Fatal(err)
	}
	out := c.Exec(p)
	if out == nil {
		return felica.Response{}, false
	}
	res, err := felica.DecodeResponse(out)
	if err != nil {
		t.Fatalf("the card answered a malformed packet %X: %v", out, err)
	}
	return res, true
}

func TestCard_AnswersAsAFeliCaCardDoes(t *testing.T) {
	id := felica.IDm{1, 2, 3, 4, 5, 6, 7, 8}
	c := Transit(id, 900)
	c.AddService(0x100B, 1, PurseAreaKey) // read-only without key
	if res, ok := exec(t, c, felica.Polling(TransitSystemCode, 1, 0)); !ok || res.IDm != id || len(res.RequestData) != 2 {
		t.Fatalf("polling: %+v %v", res, ok)
	}
	if _, ok := exec(t, c, felica.Polling(0xFE00, 0, 0)); ok {
		t.Error("the card answered a polling for another system")
	}
	if _, ok := exec(t, c, felica.Read(felica.IDm{9}, PurseService, 0)); ok {
		t.Error("the card answered a read addressed to another IDm")
	}
	rs, _ := exec(t, c, felica.Command{Code: felica.CodeRequestService, IDm: id, Codes: []uint16{PurseArea, PurseService, 0x2222}})
	if len(rs.KeyVersions) != 3 || rs.KeyVersions[0] != PurseAreaKey || rs.KeyVersions[2] != 0xFFFF {
		t.Errorf("request service: %+v", rs.KeyVersions)
	}
	next := felica.Purse{Balance: 1000, Counter: 1}.Block()
	if res, _ := exec(t, c, felica.Write(id, PurseService, 0, next)); !res.OK() {
		t.Fatalf("write: %+v", res)
	}
	if res, _ := exec(t, c, felica.Read(id, PurseService, 0)); !res.OK() || res.Data[0] != next {
		t.Fatalf("read back: %+v", res)
	}
	for name, cmd := range map[string]felica.Command{
		"unknown service": felica.Read(id, 0x3339, 0),
		"no such block":   felica.Read(id, PurseService, 9),
		"read-only write": felica.Write(id, 0x100B, 0, next),
	} {
		if res, _ := exec(t, c, cmd); res.OK() || res.Status1 != 1 {
			t.Errorf("%s: %+v", name, res)
		}
	}
	// A write with one bad element writes nothing.
	bad := felica.Command{Code: felica.CodeWriteWithoutEnc, IDm: id, Codes: []uint16{PurseService},
		Blocks: []felica.BlockElement{{Block: 1}, {Block: 99}}, Data: [][felica.BlockSize]byte{next, next}}
	if res, _ := exec(t, c, bad); res.OK() || res.Status1 != 2 {
		t.Errorf("partly bad write: %+v", res)
	}
	if b, _ := c.Block(PurseService, 1); b == next {
		t.Error("a refused write changed a block")
	}
}
