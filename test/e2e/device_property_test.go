package e2e

import (
	"flag"
	"fmt"
	"sync/atomic"
	"testing"

	"pgregory.net/rapid"

	"github.com/provhub/provhub/internal/felica"
	"github.com/provhub/provhub/internal/sim/felicacard"
	simtes "github.com/provhub/provhub/internal/sim/tes"
	"github.com/provhub/provhub/internal/tes"
)

// TestDevice_TopUpAppliesOnceWhateverIsLostOrRepeated runs top-ups through
// the hub's device API with a phone that, at random, repeats a call it
// already made (it lost the answer), while the TES loses answers on the
// way back and the hub is restarted between steps. Whatever happens, the
// top-up completes, the card holds the old balance plus the purchase, its
// purse was written once, and the TES applied the purchase once.
func TestDevice_TopUpAppliesOnceWhateverIsLostOrRepeated(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: a property test: many runs")
	}
	if f := flag.Lookup("rapid.checks"); f != nil && f.Value.String() == "100" {
		_ = f.Value.Set("15") // each case runs a loop through the hub and the TES; -rapid.checks=N for more
	}
	e := newEnv(t, envOptions{})
	var caseNo atomic.Int64
	rapid.Check(t, func(rt *rapid.T) {
		n := int(caseNo.Add(1)) + 100
		start := uint32(rapid.IntRange(0, 5000).Draw(rt, "balance"))
		amount := int64(rapid.IntRange(1, 3000).Draw(rt, "amount"))
		cardID, wc, se := e.transitCard(n, start)
		purchase := fmt.Sprintf("P-PROP-%d", n)
		if err := e.tsim.AddPurchase(simtes.Purchase{ID: purchase, CardAccountID: cardID, Amount: amount}); err != nil {
			rt.Fatal(err)
		}
		e.wsim.SetPodURL(e.hubCfg.Pod, "") // the phone is played by the test
		applied := e.tsim.Stats().PurchasesApplied
		d := &device{e: e, se: se, wc: wc, card: felicacard.Transit(felica.IDm{0x01, byte(n >> 8), byte(n)}, start)}
		if a := e.startTopUp(cardID, purchase); a.ResponseHeader.StatusCode != 0 {
			rt.Fatalf("topupCard: %+v", a)
		}
		step := 0
		var responses, prev []tes.Response
		prevStep := -1
		for i := 0; ; i++ {
			if i > 40 {
				rt.Fatal("the loop did not end")
			}
			if rapid.IntRange(0, 9).Draw(rt, "lose a TES answer") == 0 {
				_ = e.tsim.SetFaults(simtes.Faults{LoseNext: 1})
			}
			if rapid.IntRange(0, 19).Draw(rt, "restart the hub") == 0 {
				e.restartHub()
				e.wsim.SetPodURL(e.hubCfg.Pod, "")
			}
			if prevStep >= 0 && rapid.IntRange(0, 3).Draw(rt, "repeat the last call") == 0 {
				d.call(prevStep, prev) // its answer is lost
			}
			ans := d.call(step, responses)
			if ans.ResponseHeader.StatusCode == 921 {
				continue // the TES lost answers more times than the hub asks: call again
			}
			if ans.Done {
				if ans.ResponseHeader.StatusCode != 0 || ans.Balance == nil || *ans.Balance != int64(start)+amount {
					rt.Fatalf("end: %+v", ans)
				}
				break
			}
			if ans.ResponseHeader.StatusCode != 0 {
				rt.Fatalf("step %d: %+v", step, ans)
			}
			prev, prevStep = responses, step
			responses, step = d.run(ans.Commands), ans.Step
		}
		_ = e.tsim.SetFaults(simtes.Faults{})
		if p, _ := d.card.Balance(); int64(p.Balance) != int64(start)+amount || p.Counter != 1 {
			rt.Fatalf("card purse %+v, want %d written once", p, int64(start)+amount)
		}
		if got := e.tsim.Stats().PurchasesApplied - applied; got != 1 {
			rt.Fatalf("the TES applied the purchase %d times", got)
		}
	})
}
