package chaos

import (
	"slices"
	"strings"
	"testing"

	"github.com/provhub/provhub/internal/cas"
	cassim "github.com/provhub/provhub/internal/sim/cas"
	simtes "github.com/provhub/provhub/internal/sim/tes"
	simwallet "github.com/provhub/provhub/internal/sim/wallet"
)

// Each audit passes a consistent view and reports the planted fault of
// each broken one: an audit that cannot fail proves nothing.

func TestAuditCRM_CatchesEveryPlantedFault(t *testing.T) {
	add := func(id, card, svc string) crmRecord {
		return crmRecord{ID: id, State: "COMPLETED", SmartcardCAID: card, Command: cas.Command{Command: cas.CmdAddSubscriptions, SmartcardCAID: card, ServiceCAIDs: []string{svc}}}
	}
	cancel := func(id, card, svc string) crmRecord {
		r := add(id, card, svc)
		r.Command.Command = cas.CmdCancelSubscriptions
		return r
	}
	ok := func(r crmRecord) cassim.Applied {
		return cassim.Applied{RequestID: r.ID, Command: r.Command.Command, SmartcardCAID: r.SmartcardCAID, ServiceCAIDs: r.Command.ServiceCAIDs, Result: cas.ResultOK}
	}
	consistent := func() crmView {
		r1, r2, r3 := add("r1", "C1", "S1"), cancel("r2", "C1", "S1"), add("r3", "C2", "S2")
		rejected := add("r4", "C2", "S2")
		rejected.State, rejected.ErrorCode = "REJECTED", "CAS_REJECTED"
		return crmView{accepted: []string{"r1", "r2", "r3", "r4"}, records: []crmRecord{r1, r2, r3, rejected},
			journal:      []cassim.Applied{ok(r1), ok(r3), ok(r2), {RequestID: "r4", Command: cas.CmdAddSubscriptions, SmartcardCAID: "C2", Result: cas.ResultServiceAlreadyActive}},
			entitlements: map[string][]string{"C1": {}, "C2": {"S2"}}}
	}
	if fig, p := auditCRM(consistent()); len(p) > 0 || fig.lost+fig.duplicates > 0 {
		t.Fatalf("a consistent view: %+v %v", fig, p)
	}
	for _, c := range []struct {
		name, want string
		plant      func(v *crmView)
	}{
		{"a deleted row", "r3 (ADD_SUBSCRIPTIONS on C2), which the hub has no record of", func(v *crmView) { v.records = slices.Delete(v.records, 2, 3) }},
		{"an accepted request never stored", "accepted request r9 is missing", func(v *crmView) { v.accepted = append(v.accepted, "r9") }},
		{"a doubled command", "carried out request r1 twice", func(v *crmView) { v.journal = append(v.journal, v.journal[0]) }},
		{"a request left PENDING", "r2 is still PENDING", func(v *crmView) { v.records[1].State = "PENDING" }},
		{"a request given up", "r4 was given up", func(v *crmView) { v.records[3].ErrorCode = "CAS_UNAVAILABLE" }},
		{"COMPLETED without the CAS", "r3 is COMPLETED but the CAS did not carry it out", func(v *crmView) { v.journal = slices.Delete(v.journal, 1, 2) }},
		{"out of order", "smartcard C1: the CAS saw [r2 r1]", func(v *crmView) { v.journal[0], v.journal[2] = v.journal[2], v.journal[0] }},
		{"an effect the hub does not know", "smartcard C1 holds [S1] at the CAS", func(v *crmView) { v.entitlements["C1"] = []string{"S1"} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := consistent()
			c.plant(&v)
			if _, p := auditCRM(v); !found(p, c.want) {
				t.Errorf("want a finding with %q, got %v", c.want, p)
			}
		})
	}
	// The deleted row and the doubled command are also counted.
	v := consistent()
	v.journal = append(v.journal, v.journal[0])
	v.records = slices.Delete(v.records, 2, 3)
	if fig, _ := auditCRM(v); fig.lost != 1 || fig.duplicates != 1 {
		t.Errorf("figures %+v, want 1 lost and 1 duplicate", fig)
	}
}

func TestAuditWallet_CatchesEveryPlantedFault(t *testing.T) {
	card := digitalCard{card: "WAL-0-0", wallet: "wc-0", se: "A10000000"}
	consistent := func() walletView {
		tasks := []walletTask{{"t1", card.card, card.se, "PERSONALIZE", "COMPLETED"}, {"t2", card.card, card.se, "SUSPEND", "COMPLETED"}}
		return walletView{accepted: []string{"t2"}, tasks: tasks, states: map[string]string{card.card: "SUSPENDED"},
			journal: []simwallet.AppliedTask{{SEID: card.se, TaskID: "t1", Operation: "sendScript", Status: "COMPLETED"}, {SEID: card.se, TaskID: "t2", Operation: "SUSPEND", Status: "COMPLETED"}},
			applets: map[string]string{card.card: "locked"}, cards: []digitalCard{card}}
	}
	if fig, p := auditWallet(consistent()); len(p) > 0 || fig.lost+fig.duplicates > 0 {
		t.Fatalf("a consistent view: %+v %v", fig, p)
	}
	for _, c := range []struct {
		name, want string
		plant      func(v *walletView)
	}{
		{"a deleted row", "carried out task t2 on A10000000, which the hub has no record of", func(v *walletView) { v.tasks = v.tasks[:1]; v.accepted = nil }},
		{"an accepted task never stored", "accepted task t9 is missing", func(v *walletView) { v.accepted = append(v.accepted, "t9") }},
		{"a doubled command", "carried out task t2 (SUSPEND on WAL-0-0) twice", func(v *walletView) { v.journal = append(v.journal, v.journal[1]) }},
		{"a task left QUEUED", "t2 (SUSPEND on WAL-0-0) is still QUEUED", func(v *walletView) { v.tasks[1].Status = "QUEUED" }},
		{"a failed task", "t2 (SUSPEND on WAL-0-0) FAILED", func(v *walletView) { v.tasks[1].Status = "FAILED" }},
		{"COMPLETED without the wallet server", "t2 (SUSPEND on WAL-0-0) is COMPLETED but the wallet server never carried it out", func(v *walletView) { v.journal = v.journal[:1] }},
		{"out of order", "secure element A10000000: the wallet server carried out [t2 t1]", func(v *walletView) { v.journal[0], v.journal[1] = v.journal[1], v.journal[0] }},
		{"an applet in another state", `is SUSPENDED at the hub but its applet is "active"`, func(v *walletView) { v.applets[card.card] = "active" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := consistent()
			c.plant(&v)
			if _, p := auditWallet(v); !found(p, c.want) {
				t.Errorf("want a finding with %q, got %v", c.want, p)
			}
		})
	}
}

func TestAuditConsumers_CatchesEveryPlantedFault(t *testing.T) {
	cards := []digitalCard{{card: "CON-0-0-0", se: "C100000000"}, {card: "CON-0-0-1", se: "C100000001"}}
	consistent := func() consumerView {
		return consumerView{deleted: []deletedConsumer{{consumer: "cons-0-0", operation: "op1", cards: cards}},
			status: map[string]string{"op1": "SUCCESSFUL"}, leftCards: map[string]int{"cons-0-0": 0},
			applets: map[string]string{"CON-0-0-0": "", "CON-0-0-1": ""},
			journal: []simwallet.AppliedTask{{SEID: "C100000000", TaskID: "d1", Operation: "DELETE"}, {SEID: "C100000001", TaskID: "d2", Operation: "DELETE"}}}
	}
	if fig, p := auditConsumers(consistent()); len(p) > 0 || fig.lost+fig.duplicates > 0 {
		t.Fatalf("a consistent view: %+v %v", fig, p)
	}
	for _, c := range []struct {
		name, want string
		plant      func(v *consumerView)
	}{
		{"a deleted row", "the deletion of cons-0-0 (operation op1) is missing", func(v *consumerView) { v.status["op1"] = "" }},
		{"an operation left PENDING", "the deletion of cons-0-0 is PENDING", func(v *consumerView) { v.status["op1"] = "PENDING" }},
		{"a card left at the hub", "deleted consumer cons-0-0 still has 1 card(s)", func(v *consumerView) { v.leftCards["cons-0-0"] = 1 }},
		{"an applet left on the phone", "card CON-0-0-1 is still active", func(v *consumerView) { v.applets["CON-0-0-1"] = "active" }},
		{"a doubled command", "carried out task d1 on C100000000 twice", func(v *consumerView) { v.journal = append(v.journal, v.journal[0]) }},
		{"deleted twice under two task ids", "card CON-0-0-0 was deleted 2 times", func(v *consumerView) {
			v.journal = append(v.journal, simwallet.AppliedTask{SEID: "C100000000", TaskID: "d3", Operation: "DELETE"})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := consistent()
			c.plant(&v)
			if _, p := auditConsumers(v); !found(p, c.want) {
				t.Errorf("want a finding with %q, got %v", c.want, p)
			}
		})
	}
}

func TestAuditDevices_CatchesEveryPlantedFault(t *testing.T) {
	consistent := func() deviceView {
		return deviceView{accepted: []string{"op1", "op2"}, status: map[string]string{"op1": "COMPLETED", "op2": "FAILED"},
			purchases: map[string]int64{"P-DEV-0-0": 30, "P-DEV-0-1": 5}, applied: map[string]bool{"P-DEV-0-0": true},
			completed: map[string]bool{"P-DEV-0-0": true},
			balances:  map[string]int64{"DEV-0": deviceStartBalance + 30}, purses: map[string]int64{"DEV-0": deviceStartBalance + 30}}
	}
	if fig, p := auditDevices(consistent()); len(p) > 0 || fig.lost+fig.duplicates > 0 {
		t.Fatalf("a consistent view: %+v %v", fig, p)
	}
	for _, c := range []struct {
		name, want string
		plant      func(v *deviceView)
	}{
		{"a deleted row", "accepted top-up op2 is missing", func(v *deviceView) { delete(v.status, "op2") }},
		{"an operation left running", "top-up op2 is still RUNNING", func(v *deviceView) { v.status["op2"] = "RUNNING" }},
		{"a purchase applied twice", "the TES account holds 1060, the purchases applied make 1030", func(v *deviceView) {
			v.balances["DEV-0"] += 30
			v.purses["DEV-0"] += 30
		}},
		{"a purse written twice", "the purse holds 1060, the TES account 1030", func(v *deviceView) { v.purses["DEV-0"] += 30 }},
		{"COMPLETED without the TES", "P-DEV-0-0: its top-up COMPLETED but the TES did not apply it", func(v *deviceView) { v.applied["P-DEV-0-0"] = false }},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := consistent()
			c.plant(&v)
			if _, p := auditDevices(v); !found(p, c.want) {
				t.Errorf("want a finding with %q, got %v", c.want, p)
			}
		})
	}
}

func found(problems []string, want string) bool {
	for _, p := range problems {
		if strings.Contains(p, want) {
			return true
		}
	}
	return false
}

func TestCardOfPurchase(t *testing.T) {
	for in, want := range map[string]string{"P-DEV-1-12": "DEV-1", "P-DEV-0-final": "DEV-0", "P-X": "X"} {
		if got := cardOfPurchase(in); got != want {
			t.Errorf("cardOfPurchase(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAuditParks_CatchesEveryPlantedFault(t *testing.T) {
	d := digitalCard{card: "PRK-0-0", wallet: "wc-prk-0-0", se: "E100000000"}
	consistent := func() parkView {
		return parkView{parks: []park{{d: d, balance: 640, operation: "op1"}}, status: map[string]string{"op1": "COMPLETED"},
			accounts: map[string]simtes.Account{d.card: {ID: d.card, Balance: 640, Parked: true}}, purses: map[string]int64{d.card: 0}}
	}
	if fig, p := auditParks(consistent()); len(p) > 0 || fig.lost+fig.duplicates > 0 {
		t.Fatalf("a consistent view: %+v %v", fig, p)
	}
	for _, c := range []struct {
		name, want string
		plant      func(v *parkView)
	}{
		{"a deleted row", "accepted park op1 of PRK-0-0 is missing", func(v *parkView) { v.status["op1"] = "" }},
		{"an operation left running", "park op1 of PRK-0-0 is still RUNNING", func(v *parkView) { v.status["op1"] = "RUNNING" }},
		{"a park applied twice", "the TES account holds 1280 after the park, the purse held 640", func(v *parkView) {
			a := v.accounts[d.card]
			a.Balance = 1280
			v.accounts[d.card] = a
		}},
		{"a park never applied", "the TES account is not parked", func(v *parkView) { v.accounts[d.card] = simtes.Account{ID: d.card, Balance: 640} }},
		{"a purse left full", "the purse still holds 640", func(v *parkView) { v.purses[d.card] = 640 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := consistent()
			c.plant(&v)
			if _, p := auditParks(v); !found(p, c.want) {
				t.Errorf("want a finding with %q, got %v", c.want, p)
			}
		})
	}
}

func TestAuditReaders_CatchesEveryPlantedFault(t *testing.T) {
	consistent := func() readerView {
		return readerView{reads: []readerRun{{se: "F1", idm: "AA", balance: 420, operation: "op1"}, {se: "F2", idm: "BB", balance: 5, operation: "op2"}, {se: "F3", idm: "CC"}},
			status: map[string]string{"op1": "COMPLETED", "op2": "FAILED"}, account: map[string]string{"op1": "RM-1", "op2": ""},
			tesAccount: map[string]string{"AA": "RM-1"}, accounts: map[string]simtes.Account{"RM-1": {ID: "RM-1", Balance: 420}}, ingested: 1, completed: 1}
	}
	if fig, p := auditReaders(consistent()); len(p) > 0 || fig.lost+fig.duplicates > 0 || fig.failed != 1 {
		t.Fatalf("a consistent view: %+v %v", fig, p)
	}
	for _, c := range []struct {
		name, want string
		plant      func(v *readerView)
	}{
		{"a deleted row", "accepted reader-mode operation op1 is missing", func(v *readerView) { v.status["op1"] = "" }},
		{"an operation left running", "reader-mode operation op2 is still RUNNING", func(v *readerView) { v.status["op2"] = "RUNNING" }},
		{"a card ingested twice", "the TES ingested 2 cards, the hub completed 1", func(v *readerView) { v.ingested = 2 }},
		{"ingested behind a failed operation", "card BB: the TES made account RM-2 but the hub's operation is FAILED", func(v *readerView) { v.tesAccount["BB"] = "RM-2" }},
		{"another account recorded", "card AA: the hub recorded account RM-9, the TES made RM-1", func(v *readerView) { v.account["op1"] = "RM-9" }},
		{"a wrong balance", "account RM-1 holds 840, the card held 420", func(v *readerView) { v.accounts["RM-1"] = simtes.Account{ID: "RM-1", Balance: 840} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := consistent()
			c.plant(&v)
			if _, p := auditReaders(v); !found(p, c.want) {
				t.Errorf("want a finding with %q, got %v", c.want, p)
			}
		})
	}
}
