package e2e

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/provhub/provhub/internal/felica"
	"github.com/provhub/provhub/internal/sim/felicacard"
	simtes "github.com/provhub/provhub/internal/sim/tes"
	"github.com/provhub/provhub/internal/tes"
)

// TestTES_LoopsConformToTheDocument runs a top-up, a park, a reader-mode
// ingestion and refusals between provhub's TES client and the TES simulator
// through a proxy that checks every request and answer against
// api/tes.yaml.
func TestTES_LoopsConformToTheDocument(t *testing.T) {
	t.Parallel()
	sim, err := simtes.New(simtes.Config{Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	base := newSpecProxy(t, sim, "tes.yaml")
	cli, err := tes.NewClient(tes.ClientConfig{BaseURL: base + "/tes/devicegtwapi/1/0", Actor: "hub-test-pod"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_ = sim.AddAccount(simtes.Account{ID: "ACC-T", IssuerID: "TRANSIT1", DeviceID: "dev-t", Balance: 300})
	_ = sim.AddAccount(simtes.Account{ID: "ACC-PARK", IssuerID: "TRANSIT1", DeviceID: "dev-p", Balance: 0})
	_ = sim.AddPurchase(simtes.Purchase{ID: "P-T", CardAccountID: "ACC-T", Amount: 200})
	_ = sim.AddPurchase(simtes.Purchase{ID: "P-LOW", CardAccountID: "ACC-T", Amount: -10000})
	card := felicacard.Transit(felica.IDm{9, 9, 9, 9, 9, 9, 9, 1}, 300)
	drive := func(first func(tes.Loop) (*tes.CommandsResponse, error), c *felicacard.Card) (*tes.CommandsResponse, error) {
		var loop tes.Loop
		for range 10 {
			res, err := first(loop)
			if err != nil || res.Done() {
				return res, err
			}
			loop = tes.Loop{}
			for _, cmd := range res.Commands {
				raw, _ := hex.DecodeString(cmd.Data)
				loop.Responses = append(loop.Responses, tes.Response{ID: cmd.ID, Data: strings.ToUpper(hex.EncodeToString(c.Exec(raw)))})
			}
			ms := 12.5
			loop.ResponseTimeMs = &ms
		}
		t.Fatal("the loop did not end")
		return nil, nil
	}
	res, err := drive(func(l tes.Loop) (*tes.CommandsResponse, error) {
		return cli.CardCommands(ctx, tes.CardCommandsRequest{RequestHeader: cli.Header("top-1"), IssuerID: "TRANSIT1", CardID: "ACC-T",
			PurchaseID: "P-T", DeviceID: "dev-t", Operation: tes.OpTopUp, Loop: l})
	}, card)
	if err != nil || *res.Balance != 500 {
		t.Fatalf("top-up: %+v %v", res, err)
	}
	_, err = drive(func(l tes.Loop) (*tes.CommandsResponse, error) {
		return cli.CardCommands(ctx, tes.CardCommandsRequest{RequestHeader: cli.Header("top-2"), IssuerID: "TRANSIT1", CardID: "ACC-T",
			PurchaseID: "P-LOW", DeviceID: "dev-t", Operation: tes.OpTopUp, Loop: l})
	}, card)
	if se, ok := err.(*tes.StatusError); !ok || se.Code != tes.StatusInsufficient {
		t.Fatalf("insufficient balance: %v", err)
	}
	parkCard := felicacard.Transit(felica.IDm{9, 9, 9, 9, 9, 9, 9, 2}, 80)
	res, err = drive(func(l tes.Loop) (*tes.CommandsResponse, error) {
		return cli.ParkCardCommands(ctx, tes.ParkCardCommandsRequest{RequestHeader: cli.Header("park-1"), IssuerID: "TRANSIT1", CardID: "ACC-PARK",
			DeviceID: "dev-p", Operation: tes.OpPark, Loop: l})
	}, parkCard)
	if err != nil || *res.Balance != 80 {
		t.Fatalf("park: %+v %v", res, err)
	}
	ext := felicacard.Transit(felica.IDm{9, 9, 9, 9, 9, 9, 9, 3}, 1234)
	_ = sim.AddExternalCard(simtes.ExternalCard{IDm: "0909090909090903"})
	cc := &tes.CardContents{CardServiceID: felicacard.ServiceName, SystemCode: "0003", IDm: "0909090909090903", PMm: "0120220427677FFF",
		AreaCodeList: []tes.Area{{AreaCode: "1000", KeyVersion: "0001"}}}
	res, err = drive(func(l tes.Loop) (*tes.CommandsResponse, error) {
		req := tes.ReaderModeCommandsRequest{RequestHeader: cli.Header("rm-1"), IssuerID: "TRANSIT1", DeviceID: "dev-r", Operation: tes.OpReaderMode, Loop: l}
		if len(l.Responses) == 0 {
			req.CardContents = cc
		}
		return cli.ReaderModeCommands(ctx, req)
	}, ext)
	if err != nil || res.CardAccountID == "" || *res.Balance != 1234 {
		t.Fatalf("reader mode: %+v %v", res, err)
	}
}
