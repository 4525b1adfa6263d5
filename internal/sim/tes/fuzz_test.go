package tes

import (
	"encoding/json"
	"slices"
	"testing"

	ws "github.com/provhub/provhub/internal/tes"
)

var published = []int{0, 111, 112, 113, 117, 118, 119, 159, 160, 162, 163, 167, 172, 173, 177, 178, 191, 192, 221, 231, 232, 321, 322, 323, 911, 921}

// FuzzHandle: any body gets a well-formed answer with a published status
// code, and never a panic.
func FuzzHandle(f *testing.F) {
	for _, s := range []string{
		`{"requestHeader":{"requestId":"r","sessionId":"s"},"issuerId":"TRANSIT1","cardId":"A","deviceId":"d","operation":"TOPUP","purchaseId":"P"}`,
		`{"requestHeader":{"requestId":"r","sessionId":"s"},"issuerId":"TRANSIT1","cardId":"A","deviceId":"d","responses":[{"id":"poll","data":"1201"}]}`,
		`{"requestHeader":{"requestId":"r","sessionId":"s2"},"issuerId":"TRANSIT1","deviceId":"d","cardContents":{"systemCode":"0003","idm":"0102030405060708"}}`,
		`{"statusCode":"x"}`, `[]`, `{}`,
	} {
		f.Add(ws.PathCardCommands, s)
		f.Add(ws.PathReaderModeCommands, s)
	}
	sim, err := New(Config{Seed: 3})
	if err != nil {
		f.Fatal(err)
	}
	_ = sim.AddAccount(Account{ID: "A", IssuerID: "TRANSIT1", Balance: 5})
	_ = sim.AddPurchase(Purchase{ID: "P", CardAccountID: "A", Amount: 1})
	_ = sim.AddExternalCard(ExternalCard{IDm: "0102030405060708"})
	f.Fuzz(func(t *testing.T, path, body string) {
		if path != ws.PathCardCommands && path != ws.PathParkCardCommands && path != ws.PathReaderModeCommands {
			return
		}
		out := sim.handle(path, "fuzz", []byte(body))
		res, err := ws.DecodeAnswer("fuzz", 200, out)
		if res == nil {
			t.Fatalf("unreadable answer %s: %v", out, err)
		}
		if !slices.Contains(published, res.ResponseHeader.StatusCode) {
			t.Fatalf("status %d is not in the published table", res.ResponseHeader.StatusCode)
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON %s", out)
		}
	})
}
