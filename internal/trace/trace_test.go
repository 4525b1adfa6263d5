package trace

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/provhub/provhub/internal/apdu"
	"github.com/provhub/provhub/internal/felica"
	"github.com/provhub/provhub/internal/sim/felicacard"
)

func hexOf(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

func TestAPDUCommandsAndStatusWordsGetTheirNames(t *testing.T) {
	aid := apdu.AID{0xA0, 0, 0, 1, 0x51, 0x53, 0x50, 1}
	sel, _ := apdu.Select(aid)
	lock, _ := apdu.Lock(aid)
	unlock, _ := apdu.Unlock(aid)
	del, _ := apdu.Delete(aid, true)
	inst, _ := apdu.InstallCommand(apdu.Install{LoadFile: aid[:7], Module: aid[:7], Instance: aid, Privileges: []byte{0}})
	store, _ := apdu.StoreData(2, true, []byte{1, 2, 3})
	for _, c := range []struct {
		cmd         apdu.Command
		name, inDet string
	}{
		{sel, "SELECT by AID", "A0000001515350"},
		{lock, "SET STATUS (lock)", "A0000001515350"},
		{unlock, "SET STATUS (unlock)", ""},
		{del, "DELETE", "related"},
		{inst, "INSTALL for install and make selectable", "instance A000000151535001"},
		{store, "STORE DATA", "block 2, the last, 3 bytes"},
		{apdu.GetStatus(apdu.StatusScopeApplications, nil), "GET STATUS", "applications"},
	} {
		f := Command("c", "APDU", hexOf(c.cmd.MustBytes()))
		if f.Name != c.name || !strings.Contains(f.Detail, c.inDet) {
			t.Errorf("%X: %q %q, want %q with %q", c.cmd.MustBytes(), f.Name, f.Detail, c.name, c.inDet)
		}
	}
	for sw, want := range map[string]string{"9000": "9000 success", "6A82": "6A82 file or application not found", "6985": "conditions of use",
		"6283": "locked", "6110": "16 more bytes", "6F12": "error"} {
		f := Response("c", "APDU", sw)
		if !strings.HasPrefix(f.Status, sw) || !strings.Contains(f.Status, strings.TrimPrefix(want, sw+" ")) || f.OK != (sw == "9000") {
			t.Errorf("%s: %q ok=%v, want %q", sw, f.Status, f.OK, want)
		}
	}
}

func TestFeliCaFramesGetTheirNamesAndThePurse(t *testing.T) {
	idm := felica.IDm{1, 2, 3, 4, 5, 6, 7, 8}
	card := felicacard.Transit(idm, 1234)
	poll, _ := felica.Polling(0x0003, 0, 0).Encode()
	read, _ := felica.Read(idm, felicacard.PurseService, felicacard.PurseBlock).Encode()
	write, _ := felica.Write(idm, felicacard.PurseService, felicacard.PurseBlock, felica.Purse{Balance: 1500, Counter: 2}.Block()).Encode()
	for _, c := range []struct {
		frame           []byte
		name, inDetail  string
		respName, inRes string
	}{
		{poll, "Polling", "system code 0003", "Polling response", "IDm 0102030405060708"},
		{read, "Read Without Encryption", "services 1009", "Read Without Encryption response", "purse: balance 1234"},
		{write, "Write Without Encryption", "purse: balance 1500, counter 2", "Write Without Encryption response", ""},
	} {
		cmd := Command("x", "FELICA", hexOf(c.frame))
		if cmd.Name != c.name || !strings.Contains(cmd.Detail, c.inDetail) {
			t.Errorf("command %q %q, want %q with %q", cmd.Name, cmd.Detail, c.name, c.inDetail)
		}
		res := Response("x", "FELICA", hexOf(card.Exec(c.frame)))
		if res.Name != c.respName || !strings.Contains(res.Detail, c.inRes) || !res.OK {
			t.Errorf("response %q %q %q, want %q with %q", res.Name, res.Detail, res.Status, c.respName, c.inRes)
		}
	}
	// A read of a service the card does not have: its flags in words.
	bad, _ := felica.Read(idm, 0x2009, 0).Encode()
	if res := Response("x", "FELICA", hexOf(card.Exec(bad))); res.OK || !strings.Contains(res.Status, "A6 illegal service code list") {
		t.Errorf("a read of an unknown service: %+v", res)
	}
	if s := feliCaStatus(0xFF, 0xA6); s != "FF A6 illegal service code list at the command" {
		t.Errorf("status: %q", s)
	}
}

func TestStepsPairResponsesWithTheCommandsBefore(t *testing.T) {
	idm := felica.IDm{1, 2, 3, 4, 5, 6, 7, 8}
	card := felicacard.Transit(idm, 50)
	poll, _ := felica.Polling(0x0003, 0, 0).Encode()
	steps := Steps(
		[]string{`{}`, `{"responses":[{"id":"poll","data":"` + hexOf(card.Exec(poll)) + `"}]}`},
		[]string{`{"responseHeader":{"statusCode":0},"commands":[{"id":"poll","kind":"FELICA","data":"` + hexOf(poll) + `"}]}`,
			`{"responseHeader":{"statusCode":0},"balance":50}`})
	if len(steps) != 2 || steps[0].Commands[0].Name != "Polling" || steps[1].Responses[0].Name != "Polling response" ||
		!strings.Contains(steps[1].Outcome, "balance 50, the loop ends") {
		t.Fatalf("%+v", steps)
	}
	if f := Command("x", "FELICA", "ZZ"); f.Name != "not hex" {
		t.Errorf("bad hex: %+v", f)
	}
}

// FuzzFrames: any hex decodes to a frame without panicking.
func FuzzFrames(f *testing.F) {
	f.Add("APDU", "00A4040008A000000151535001")
	f.Add("FELICA", "060000030000")
	f.Add("FELICA", "1D0701C7BCA44E80F092000001E803000000000000B100000000000000")
	f.Add("APDU", "9000")
	f.Fuzz(func(t *testing.T, kind, raw string) {
		if Command("x", kind, raw).Raw != strings.ToUpper(raw) || Response("x", kind, raw).Raw != strings.ToUpper(raw) {
			t.Fatal("the raw hex is not kept")
		}
	})
}
