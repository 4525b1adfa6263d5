package e2e

import (
	"strings"
	"testing"
	"time"

	cassim "github.com/provhub/provhub/internal/sim/cas"
	"github.com/provhub/provhub/internal/transit"
)

// TestBudget_ARequestRidesOutACASOutageUntilItsTimeIsUp: with attempts to
// spare, a request keeps retrying an unreachable CAS for as long as its
// budget in time (the test clock moves it on), comes through when the CAS
// is back, and is REJECTED only once the time is used up.
func TestBudget_ARequestRidesOutACASOutageUntilItsTimeIsUp(t *testing.T) {
	t.Parallel()
	both(t, envOptions{sendAttempts: 1000}, func(t *testing.T, e *env) {
		tok := e.login("mpadministrator", "mp-admin-1234")
		if err := e.sim.SetFaults(cassim.Faults{ErrorRate: 1}); err != nil {
			t.Fatal(err)
		}
		add := func(serial string) request {
			return e.create(ws, "add_subscriptions", map[string]any{"token": tok, "subscription_identifier": map[string]string{"number": "S60058"},
				"service_identifier": map[string]string{"code": "BASIC"}, "smartcard_identifier": map[string]string{"serial_number": serial}})
		}
		rides, waits := add("sc20000002"), add("sc20000003")
		// More attempts than the old budget of six, and still PENDING.
		waitFor(t, "ten failed attempts", func() bool { return e.jobOf(rides.ID).Attempt >= 10 && e.jobOf(waits.ID).Attempt >= 10 })
		// Still PENDING, and saying why: retrying, with the last error; no
		// error code, which names a final outcome.
		if r := e.show(ws, tok, rides.ID); r.LifeCycleState != "PENDING" || r.ErrorCode != nil ||
			!strings.HasPrefix(str(r.ErrorDescription), "retrying: attempt ") || !strings.Contains(str(r.ErrorDescription), "CAS") {
			t.Fatalf("a request retrying the CAS within its budget: %+v", r)
		}
		// Nine minutes into the outage (within the ten-minute budget) the
		// CAS comes back for one card's request.
		e.clock.Advance(9 * time.Minute)
		tok = e.login("mpadministrator", "mp-admin-1234")
		if err := e.sim.SetFaults(cassim.Faults{}); err != nil {
			t.Fatal(err)
		}
		if f := e.waitFinal(ws, tok, rides.ID); f.LifeCycleState != "COMPLETED" || f.ErrorDescription != nil {
			t.Fatalf("after the CAS came back: %+v", f)
		}
		if f := e.waitFinal(ws, tok, waits.ID); f.LifeCycleState != "COMPLETED" {
			t.Fatalf("the second request after the CAS came back: %+v", f)
		}
		// A request failing for longer than the budget is REJECTED.
		if err := e.sim.SetFaults(cassim.Faults{ErrorRate: 1}); err != nil {
			t.Fatal(err)
		}
		late := add("sc20000004")
		waitFor(t, "two failed attempts", func() bool { return e.jobOf(late.ID).Attempt >= 2 })
		e.clock.Advance(11 * time.Minute)
		tok = e.login("mpadministrator", "mp-admin-1234")
		f := e.waitFinal(ws, tok, late.ID)
		if f.LifeCycleState != "REJECTED" || str(f.ErrorCode) != "CAS_UNAVAILABLE" {
			t.Fatalf("past the budget: %+v", f)
		}
	})
}

// TestBudget_AWalletTaskSaysItIsRetryingAndWhy: while the wallet server
// fails, a task stays QUEUED with its last error as its message, and it
// completes when the server is back.
func TestBudget_AWalletTaskSaysItIsRetryingAndWhy(t *testing.T) {
	t.Parallel()
	both(t, envOptions{sendAttempts: 1000}, func(t *testing.T, e *env) {
		cardID, _ := e.provision("0E0E0E01", "ACC-BUDGET")
		f := e.wsim.Faults()
		f.ErrorRate = 1
		if err := e.wsim.SetFaults(f); err != nil {
			t.Fatal(err)
		}
		p := e.perso(cardID)
		var task transit.Task
		waitFor(t, "the task to say it is retrying", func() bool {
			tasks, err := e.hub.Transit().Tasks(t.Context(), cardID)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range tasks {
				if x.TaskID == p.TaskID {
					task = x
				}
			}
			return strings.HasPrefix(task.Message, "retrying: attempt")
		})
		if task.Status != transit.TaskQueued {
			t.Fatalf("retrying task %+v", task)
		}
		f.ErrorRate = 0
		if err := e.wsim.SetFaults(f); err != nil {
			t.Fatal(err)
		}
		if done := e.waitTask(cardID, p.TaskID); done.Status != transit.TaskCompleted || done.Message != "" {
			t.Fatalf("after the wallet server came back: %+v", done)
		}
	})
}
