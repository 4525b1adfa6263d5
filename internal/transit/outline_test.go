package transit

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/provhub/provhub/internal/apdu"
	"github.com/provhub/provhub/internal/trace"
	"github.com/provhub/provhub/internal/wallet"
)

// A script's outline keeps every command but the personalisation data:
// a STORE DATA's data becomes zeros of its length, still decoded as what it
// was; what is not a command is kept not at all.
func TestOutlineOf_WithholdsPersonalisationData(t *testing.T) {
	aid := apdu.AID{0xA0, 0, 0, 1, 0x51, 0x53, 0x50, 1}
	sel, _ := apdu.Select(aid)
	secret := []byte{0xDE, 0xAD, 0xBE, 0xEF, 0x42}
	store, _ := apdu.StoreData(3, true, secret)
	script, err := wallet.Script("cmd", []apdu.Command{sel, store}, []string{"select", "store data"})
	if err != nil {
		t.Fatal(err)
	}
	script = append(script, wallet.APDUCommand{MessageID: "cmd-3", Data: "ZZ"})
	out := outlineOf(script)
	if len(out) != 3 {
		t.Fatalf("%d lines", len(out))
	}
	if out[0].Withheld || out[0].APDU != script[0].Data || out[0].Name != "select" {
		t.Errorf("SELECT: %+v", out[0])
	}
	if !out[1].Withheld || strings.Contains(out[1].APDU, strings.ToUpper(hex.EncodeToString(secret))) {
		t.Errorf("STORE DATA kept its data: %+v", out[1])
	}
	if f := trace.Command("cmd-2", "APDU", out[1].APDU); f.Name != "STORE DATA" || !strings.Contains(f.Detail, "block 3, the last, 5 bytes") {
		t.Errorf("the withheld STORE DATA decodes as %q %q", f.Name, f.Detail)
	}
	if !out[2].Withheld || out[2].APDU != "" {
		t.Errorf("not a command: %+v", out[2])
	}
}
