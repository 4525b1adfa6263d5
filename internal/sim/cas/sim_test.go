package cas_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/cas"
	cassim "github.com/provhub/provhub/internal/sim/cas"
)

func newSim(t *testing.T) (*cassim.Simulator, *cas.Client) {
	t.Helper()
	sim, err := cassim.New(cassim.Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	sim.AddDevices([]string{"C1", "C2", "C3"}, []string{"B1", "B2"})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	client, err := cas.NewClient(cas.ClientConfig{BaseURL: srv.URL, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return sim, client
}

func TestSimulator_CarriesOutOrRejectsLikeACAS(t *testing.T) {
	sim, client := newSim(t)
	ctx := context.Background()
	steps := []struct {
		name string
		cmd  cas.Command
		want string
	}{
		{"add service", cas.Command{Command: cas.CmdAddSubscriptions, SmartcardCAID: "C1", ServiceCAIDs: []string{"S1"}}, cas.ResultOK},
		{"add it again", cas.Command{Command: cas.CmdAddSubscriptions, SmartcardCAID: "C1", ServiceCAIDs: []string{"S1"}}, cas.ResultServiceAlreadyActive},
		{"unknown card", cas.Command{Command: cas.CmdAddSubscriptions, SmartcardCAID: "C9", ServiceCAIDs: []string{"S1"}}, cas.ResultUnknownSmartcard},
		{"cancel inactive", cas.Command{Command: cas.CmdCancelSubscriptions, SmartcardCAID: "C2", ServiceCAIDs: []string{"S1"}}, cas.ResultServiceNotActive},
		{"no services", cas.Command{Command: cas.CmdAddSubscriptions, SmartcardCAID: "C2"}, cas.ResultBadRequest},
		{"pair", cas.Command{Command: cas.CmdCreatePairing, SmartcardCAIDs: []string{"C1"}, STBCAIDs: []string{"B1"}}, cas.ResultOK},
		{"pair again", cas.Command{Command: cas.CmdCreatePairing, SmartcardCAIDs: []string{"C1"}, STBCAIDs: []string{"B2"}}, cas.ResultAlreadyPaired},
		{"pair unknown STB", cas.Command{Command: cas.CmdCreatePairing, SmartcardCAIDs: []string{"C2"}, STBCAIDs: []string{"B9"}}, cas.ResultUnknownSTB},
		{"add to unpaired", cas.Command{Command: cas.CmdAddToPairing, SmartcardCAID: "C2", STBCAIDs: []string{"B2"}}, cas.ResultNotPaired},
		{"add to pairing", cas.Command{Command: cas.CmdAddToPairing, SmartcardCAID: "C1", SmartcardCAIDs: []string{"C2"}, STBCAIDs: []string{"B2"}}, cas.ResultOK},
		{"bad PIN", cas.Command{Command: cas.CmdResetPIN, SmartcardCAID: "C1", PIN: "12a4"}, cas.ResultInvalidPIN},
		{"set PIN", cas.Command{Command: cas.CmdResetPIN, SmartcardCAID: "C1", PIN: "4321"}, cas.ResultOK},
		{"mail", cas.Command{Command: cas.CmdSendMail, SmartcardCAID: "C1", Text: "hello"}, cas.ResultOK},
		{"fingerprint", cas.Command{Command: cas.CmdDisplayFingerprint, SmartcardCAID: "C1", Fingerprint: &cas.Fingerprint{PositionX: 10}}, cas.ResultOK},
		{"unknown command", cas.Command{Command: "REBOOT", SmartcardCAID: "C1"}, cas.ResultBadRequest},
	}
	for i, st := range steps {
		st.cmd.RequestID = "r" + string(rune('a'+i))
		reply, err := client.Send(ctx, st.cmd)
		var rej *cas.Rejection
		switch {
		case st.want == cas.ResultOK && err != nil:
			t.Errorf("%s: %v", st.name, err)
		case st.want == cas.ResultOK && reply.ReferenceNumber == "":
			t.Errorf("%s: no reference number", st.name)
		case st.want != cas.ResultOK && (!errors.As(err, &rej) || rej.Result != st.want):
			t.Errorf("%s: got %v, want rejection %s", st.name, err, st.want)
		}
	}
	c, _ := sim.Card("C1")
	if len(c.Entitlements) != 1 || c.Entitlements[0] != "S1" || len(c.PairedSTBs) != 2 || len(c.PairedCards) != 2 ||
		c.PINIsDefault || len(c.Messages) != 1 || len(c.Fingerprints) != 1 {
		t.Errorf("card C1 = %+v", c)
	}
	if !sim.PINMatches("C1", "4321") {
		t.Error("PIN was not set")
	}
}

func TestSimulator_RepeatedRequestIDHasNoSecondEffect(t *testing.T) {
	sim, client := newSim(t)
	ctx := context.Background()
	cmd := cas.Command{RequestID: "same", Command: cas.CmdAddSubscriptions, SmartcardCAID: "C1", ServiceCAIDs: []string{"S1"}}
	first, err := client.Send(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	again, err := client.Send(ctx, cmd)
	if err != nil {
		t.Fatalf("a repeated command was not answered like the first: %v", err)
	}
	if again != first {
		t.Errorf("repeat answered %+v, first %+v", again, first)
	}
	cmd.ServiceCAIDs = []string{"S2"}
	var rej *cas.Rejection
	if _, err := client.Send(ctx, cmd); !errors.As(err, &rej) || rej.Result != cas.ResultRequestIDReused {
		t.Errorf("request id reused for another command: %v", err)
	}
	if st := sim.Stats(); st.Executed != 1 || st.Replayed != 1 {
		t.Errorf("stats %+v, want 1 executed and 1 replayed", st)
	}
	// The journal holds the request id once, with its first outcome: a
	// replay and a refused reuse are not decisions of their own.
	if j := sim.Applied(); len(j) != 1 || j[0].RequestID != "same" || j[0].Result != cas.ResultOK || j[0].ServiceCAIDs[0] != "S1" {
		t.Errorf("journal %+v, want the one carried-out command", j)
	}
}

func TestSimulator_FaultsAreUnavailableAndTimeoutsStillTakeEffect(t *testing.T) {
	sim, client := newSim(t)
	ctx := context.Background()
	if err := sim.SetFaults(cassim.Faults{ErrorNext: 1, BusyNext: 1, TimeoutNext: 1, HangMS: 10}); err != nil {
		t.Fatal(err)
	}
	cmd := cas.Command{RequestID: "x", Command: cas.CmdAddSubscriptions, SmartcardCAID: "C1", ServiceCAIDs: []string{"S1"}}
	for i, what := range []string{"error", "busy", "timeout"} {
		if _, err := client.Send(ctx, cmd); !errors.Is(err, cas.ErrUnavailable) {
			t.Fatalf("%s fault (%d): got %v, want ErrUnavailable", what, i, err)
		}
	}
	if c, _ := sim.Card("C1"); len(c.Entitlements) != 1 {
		t.Fatalf("the timed-out command did not take effect: %+v", c)
	}
	if _, err := client.Send(ctx, cmd); err != nil {
		t.Fatalf("retry after faults: %v", err)
	}
	if st := sim.Stats(); st.Executed != 1 || st.Faulted != 3 {
		t.Errorf("stats %+v", st)
	}
	if err := sim.SetFaults(cassim.Faults{ErrorRate: 2}); err == nil {
		t.Error("a rate over 1 was accepted")
	}
}
