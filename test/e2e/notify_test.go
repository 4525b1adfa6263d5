package e2e

import (
	"context"
	"testing"

	simtes "github.com/provhub/provhub/internal/sim/tes"
	simwallet "github.com/provhub/provhub/internal/sim/wallet"
	"github.com/provhub/provhub/internal/wallet"
)

// waitNotified waits for the device of seID to have been shown n
// notifications and returns them.
func (e *env) waitNotified(seID string, n int) []simwallet.DeviceNotification {
	e.t.Helper()
	var got []simwallet.DeviceNotification
	waitFor(e.t, "notifications on the device", func() bool {
		got = e.wsim.Notifications(seID)
		return len(got) >= n
	})
	return got
}

func TestNotify_TheUserIsToldOfTopUpsParksAndStateChangesAsTheIssuerChooses(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		cardID, _, se := e.transitCard(80, 100)
		_ = e.tsim.AddPurchase(simtes.Purchase{ID: "P-80", CardAccountID: cardID, Amount: 40})
		op := e.startTopUp(cardID, "P-80")
		if st := e.waitOp(op.OperationID); st.Status != "COMPLETED" {
			t.Fatalf("top-up: %+v", st)
		}
		got := e.waitNotified(se, 1)
		n := got[0].Notification
		if n.Kind != wallet.NotifyTopUpCompleted || n.Balance == nil || *n.Balance != 140 || n.OperationID != op.OperationID ||
			n.TextKey != "provhub.topup_completed" || got[0].WalletCardID == "" {
			t.Fatalf("after the top-up: %+v", got[0])
		}
		// A top-up the TES refuses: the user is told it failed, and why.
		_ = e.tsim.AddPurchase(simtes.Purchase{ID: "P-81", CardAccountID: "ACC-NOT-HERS", Amount: 5})
		failed := e.startTopUp(cardID, "P-81")
		if st := e.waitOp(failed.OperationID); st.Status != "FAILED" {
			t.Fatalf("a refused top-up: %+v", st)
		}
		got = e.waitNotified(se, 2)
		if n := got[1].Notification; n.Kind != wallet.NotifyTopUpFailed || n.StatusCode == nil || *n.StatusCode == 0 {
			t.Fatalf("after the refused top-up: %+v", got[1])
		}
		// The TES suspends and resumes the card.
		for i, c := range []struct{ action, kind string }{{"SUSPEND", wallet.NotifyCardSuspended}, {"RESUME", wallet.NotifyCardResumed}} {
			if task := e.waitTask(cardID, e.state(cardID, c.action).TaskID); task.Status != "COMPLETED" {
				t.Fatalf("%s: %+v", c.action, task)
			}
			got = e.waitNotified(se, 3+i)
			if got[2+i].Notification.Kind != c.kind {
				t.Fatalf("after %s: %+v", c.action, got[2+i])
			}
		}
		// The issuer turns suspensions off: the next one is not notified.
		if err := e.hub.Transit().SetNotifications(context.Background(), "TRANSIT1", nil, []string{wallet.NotifyCardSuspended}); err != nil {
			t.Fatal(err)
		}
		if task := e.waitTask(cardID, e.state(cardID, "SUSPEND").TaskID); task.Status != "COMPLETED" {
			t.Fatalf("second suspend: %+v", task)
		}
		if task := e.waitTask(cardID, e.state(cardID, "RESUME").TaskID); task.Status != "COMPLETED" {
			t.Fatalf("second resume: %+v", task)
		}
		got = e.waitNotified(se, 5)
		if len(got) != 5 || got[4].Notification.Kind != wallet.NotifyCardResumed {
			t.Fatalf("with suspensions off: %+v", got)
		}
		ns, err := e.hub.Transit().Notifications(context.Background(), cardID)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			if n.Status != "SENT" {
				waitFor(t, "notification "+n.NotificationID+" to be sent", func() bool {
					all, _ := e.hub.Transit().Notifications(context.Background(), cardID)
					for _, x := range all {
						if x.NotificationID == n.NotificationID {
							return x.Status == "SENT"
						}
					}
					return false
				})
			}
		}
		if len(ns) != 5 {
			t.Errorf("%d notifications recorded by the hub, want 5", len(ns))
		}
		// A park moves the balance to the TES: the user is told, with the
		// balance left on the card.
		park := e.opCall(transitBase+"parkCard", map[string]any{"issuerId": "TRANSIT1", "cardId": cardID})
		if st := e.waitOp(park.OperationID); st.Status != "COMPLETED" {
			t.Fatalf("park: %+v", st)
		}
		got = e.waitNotified(se, 6)
		if n := got[5].Notification; n.Kind != wallet.NotifyParkCompleted || n.OperationID != park.OperationID {
			t.Fatalf("after the park: %+v", got[5])
		}
		// New card art is told; a new cardholder name alone is not.
		meta := func(d map[string]any) {
			a := e.transitCall(conforming, transitBase+"updateCardMetadata", map[string]any{"issuerId": "TRANSIT1", "cardId": cardID, "cardDescriptor": d})
			if task := e.waitTask(cardID, a.TaskID); task.Status != "COMPLETED" {
				t.Fatalf("metadata: %+v", task)
			}
		}
		art1, art2 := e.artAsset("TRANSIT1", 1), e.artAsset("TRANSIT1", 2)
		meta(map[string]any{"cardArtManifest": []string{art1}})
		got = e.waitNotified(se, 7)
		if got[6].Notification.Kind != wallet.NotifyCardArtUpdated {
			t.Fatalf("after new card art: %+v", got[6])
		}
		meta(map[string]any{"cardholderName": "Ada Rider"})
		meta(map[string]any{"cardArtManifest": []string{art2}})
		got = e.waitNotified(se, 8)
		if len(got) != 8 || got[7].Notification.Kind != wallet.NotifyCardArtUpdated {
			t.Fatalf("a name change was notified, or new art was not: %+v", got)
		}
		// The wallet server fetched each new image once, and found it an image.
		waitFor(t, "the wallet server to fetch the new card art", func() bool {
			held := map[string]bool{}
			for _, a := range e.wsim.Assets() {
				held[a.GUID] = a.ContentType == "image/png"
			}
			return held[art1] && held[art2]
		})
		if st := e.wsim.Stats(); st.AssetsRejected != 0 || st.AssetsFetched != st.AssetsVerified {
			t.Errorf("wallet server asset counts: %+v", st)
		}
	})
}
