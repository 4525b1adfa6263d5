package chaos

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/provhub/provhub/internal/felica"
	"github.com/provhub/provhub/internal/sim/felicacard"
	simtes "github.com/provhub/provhub/internal/sim/tes"
	simwallet "github.com/provhub/provhub/internal/sim/wallet"
	"github.com/provhub/provhub/internal/tes"
)

const (
	walletAPI  = "/tsh/wsapi/1/0/"
	transitAPI = "/tsh/transitapi/1/0/"
)

// transitAnswer is the part of a transit API answer the clients read.
type transitAnswer struct {
	ResponseHeader struct {
		StatusCode    int    `json:"statusCode"`
		StatusMessage string `json:"statusMessage"`
	} `json:"responseHeader"`
	CardID      string `json:"cardId"`
	TaskID      string `json:"taskId"`
	OperationID string `json:"operationId"`
	Operation   *struct {
		Status string `json:"status"`
	} `json:"operation"`
}

// digitalCard is one card on a simulated secure element: card is the
// issuer's card (the card account), wallet the walletCardId the hub gave
// it, consumer its end user ("" for none).
type digitalCard struct {
	card, wallet, se, consumer string
}

// chaosLastDigits are the last digits every chaos card is registered with.
const chaosLastDigits = "4711"

// newDigitalCard registers the card with the issuer (for its consumer, if
// any), has the wallet simulator provision it as a wallet server does
// (checkCardAccount, getAsset, provisionCard, with opaqueCardAccountData
// the issuer asked the hub for), then has the TES personalise it and waits
// for the personalisation to end. It sets d.wallet, and returns false when
// ctx ends first.
func (c *cluster) newDigitalCard(ctx context.Context, d *digitalCard, ambiguous *atomic.Int64) bool {
	var token string
	if !c.retryCall(ctx, ambiguous, func() (bool, error) {
		var err error
		token, err = c.issuerToken(ctx)
		return err == nil, err
	}) {
		return false
	}
	reg := map[string]any{"cardProductId": "CHAOS_PRODUCT", "lastDigits": chaosLastDigits}
	if d.consumer != "" {
		reg["consumerId"] = d.consumer
	}
	if !c.retryCall(ctx, ambiguous, func() (bool, error) {
		status, err := c.bank(ctx, token, "PUT", "/cards/"+d.card, reg, nil)
		if err == nil && status != 204 {
			err = fmt.Errorf("register card %s: HTTP %d", d.card, status)
		}
		return status == 204, err
	}) {
		return false
	}
	provisioned := c.retryCall(ctx, ambiguous, func() (bool, error) {
		var pd struct {
			Data string `json:"opaqueCardAccountData"`
		}
		status, err := c.bank(ctx, token, "POST", "/cards/"+d.card+"/provisioningData", nil, &pd)
		if err != nil || status != 200 {
			return false, fmt.Errorf("provisioning data of %s: HTTP %d %v", d.card, status, err)
		}
		// Any live instance; a repeat after a lost answer is answered alike.
		c.wallet.SetWalletAPIURL(c.hubURL())
		res, err := c.wallet.Provision(ctx, simwallet.ProvisionRequest{IssuerID: issuerID, SEID: d.se, DeviceID: "dev-" + d.se,
			CardSource: "USER-INPUT", OpaqueCardAccountData: pd.Data, LastDigits: chaosLastDigits})
		switch {
		case err != nil:
			return false, err
		case res.OK():
			d.wallet = res.WalletCardID
			return true, nil
		}
		return false, fmt.Errorf("provisioning %s: %s answered %d %s", d.card, res.Step, res.StatusCode, res.StatusMessage)
	})
	if !provisioned {
		return false
	}
	task, ok := c.cardTask(ctx, ambiguous, d.card, "PERSONALIZE", "submitCardPersoData", map[string]any{"issuerId": issuerID, "cardId": d.card,
		"cardPersoData": map[string]any{"dgis": []map[string]string{{"dgi": "0101", "data": "0102030405"}, {"dgi": "9F10", "data": "A1B2C3D4"}}}})
	return ok && c.waitTask(ctx, task)
}

// cardTask makes a TES call that queues a wallet task on a card and
// returns the task's id. After a call without an answer it looks for the
// task in the hub's records before calling again, as a TES reconciling
// would.
func (c *cluster) cardTask(ctx context.Context, ambiguous *atomic.Int64, card, operation, call string, body map[string]any) (string, bool) {
	var task string
	since := time.Now().Add(-time.Second).UnixMicro()
	ok := c.retryCall(ctx, ambiguous, func() (bool, error) {
		var a transitAnswer
		err := c.partnerCall(ctx, c.tesCreds, transitAPI+call, body, &a)
		if err == nil && a.ResponseHeader.StatusCode == 0 && a.TaskID != "" {
			task = a.TaskID
			return true, nil
		}
		// Taken by an earlier call whose answer was lost?
		row := c.db.QueryRowContext(ctx, `SELECT task_id FROM transit_tasks WHERE card_id = $1 AND operation = $2 AND created_at >= $3
			ORDER BY created_at DESC LIMIT 1`, card, operation, since)
		if row.Scan(&task) == nil {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		return false, fmt.Errorf("%s %s: %d %s", call, card, a.ResponseHeader.StatusCode, a.ResponseHeader.StatusMessage)
	})
	return task, ok
}

// retryCall repeats call until it succeeds, counting calls that got no
// answer, and pausing after refusals. It returns false when ctx ends.
func (c *cluster) retryCall(ctx context.Context, ambiguous *atomic.Int64, call func() (bool, error)) bool {
	for ctx.Err() == nil {
		done, err := call()
		if done {
			return true
		}
		if err != nil && ctx.Err() == nil {
			if n := ambiguous.Add(1); n <= 5 {
				c.t.Logf("a call failed (retrying): %v", err)
			}
		}
		sleepCtx(ctx, 200*time.Millisecond)
	}
	return false
}

// waitTask waits for a wallet task to end; false when ctx ends first.
func (c *cluster) waitTask(ctx context.Context, task string) bool {
	for ctx.Err() == nil {
		var status string
		err := c.db.QueryRowContext(ctx, `SELECT status FROM transit_tasks WHERE task_id = $1`, task).Scan(&status)
		if err == nil && (status == "COMPLETED" || status == "FAILED") {
			return true
		}
		if errors.Is(err, sql.ErrNoRows) {
			return true // removed with its card (a consumer's deletion)
		}
		sleepCtx(ctx, 50*time.Millisecond)
	}
	return false
}

// walletFlow gives cards their whole life through the wallet server:
// provisioning, personalisation, SUSPEND and RESUME, DELETE and (every
// other card) ERASE, one card after another in each slot.
type walletFlow struct {
	c         *cluster
	ambiguous atomic.Int64
	mu        sync.Mutex
	cards     []digitalCard
	tasks     []string
}

func (f *walletFlow) name() string { return "wallet" }

func (f *walletFlow) run(ctx context.Context) {
	var wg sync.WaitGroup
	for slot := range f.c.plan.walletSlots {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				d := digitalCard{card: fmt.Sprintf("WAL-%d-%d", slot, n), se: fmt.Sprintf("A1%02X%06X", slot, n)}
				f.mu.Lock()
				f.cards = append(f.cards, d)
				f.mu.Unlock()
				if !f.c.newDigitalCard(ctx, &d, &f.ambiguous) {
					return
				}
				// Every other card is erased after its deletion.
				steps := []string{"SUSPEND", "RESUME", "SUSPEND", "RESUME", "DELETE"}
				if n%2 == 0 {
					steps = append(steps, "ERASE")
				}
				for _, action := range steps {
					task, ok := f.c.cardTask(ctx, &f.ambiguous, d.card, action, "updateCardState", map[string]any{"issuerId": issuerID, "cardId": d.card, "action": action})
					if !ok {
						return
					}
					f.mu.Lock()
					f.tasks = append(f.tasks, task)
					f.mu.Unlock()
					if !f.c.waitTask(ctx, task) {
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func (f *walletFlow) pending(ctx context.Context) (int, error) {
	return count(ctx, f.c, `SELECT COUNT(*) FROM transit_tasks WHERE status IN ('QUEUED', 'PROCESSING')`)
}

// walletTask is a wallet task as the hub keeps it.
type walletTask struct {
	ID, Card, SE, Operation, Status string
}

// walletView is what the wallet audit reads.
type walletView struct {
	accepted []string
	tasks    []walletTask      // the hub's, oldest first
	states   map[string]string // card -> the hub's state
	journal  []simwallet.AppliedTask
	// applets is each card's applet at the wallet server: "" when none,
	// else "active" or "locked".
	applets map[string]string
	cards   []digitalCard
}

func (f *walletFlow) view(ctx context.Context) (walletView, error) {
	v := walletView{states: map[string]string{}, applets: map[string]string{}}
	f.mu.Lock()
	v.accepted, v.cards = slices.Clone(f.tasks), slices.Clone(f.cards)
	f.mu.Unlock()
	rows, err := f.c.db.QueryContext(ctx, `SELECT t.task_id, t.card_id, t.se_id, t.operation, t.status, c.state FROM transit_tasks t
		JOIN transit_cards c ON c.card_id = t.card_id WHERE t.card_id LIKE 'WAL-%' ORDER BY t.created_at`)
	if err != nil {
		return v, err
	}
	defer rows.Close()
	for rows.Next() {
		var t walletTask
		var state string
		if err := rows.Scan(&t.ID, &t.Card, &t.SE, &t.Operation, &t.Status, &state); err != nil {
			return v, err
		}
		v.tasks = append(v.tasks, t)
		v.states[t.Card] = state
	}
	if err := rows.Err(); err != nil {
		return v, err
	}
	v.journal = f.c.wallet.Applied()
	for _, d := range v.cards {
		v.applets[d.card] = appletOf(f.c.wallet, d.se)
	}
	return v, nil
}

func appletOf(w *simwallet.Simulator, se string) string {
	s, ok := w.SecureElement(se)
	switch {
	case !ok || len(s.Instances) == 0:
		return ""
	case s.Instances[0].Locked:
		return "locked"
	}
	return "active"
}

func (f *walletFlow) audit(ctx context.Context) (figures, []string) {
	v, err := f.view(ctx)
	if err != nil {
		return figures{}, []string{"read the wallet tasks: " + err.Error()}
	}
	fig, problems := auditWallet(v)
	fig.ambiguous = int(f.ambiguous.Load())
	return fig, problems
}

// wireOperation is the name the wallet server journals a hub task under.
func wireOperation(op string) string {
	if op == "PERSONALIZE" {
		return "sendScript"
	}
	return op
}

// auditWallet checks the wallet tasks against the wallet server.
func auditWallet(v walletView) (figures, []string) {
	var p problems
	fig := figures{accepted: len(v.accepted), records: len(v.tasks)}
	hub := map[string]walletTask{}
	for _, t := range v.tasks {
		hub[t.SE+"/"+t.ID] = t
		switch t.Status {
		case "QUEUED", "PROCESSING":
			p.add("task %s (%s on %s) is still %s", t.ID, t.Operation, t.Card, t.Status)
		case "FAILED":
			p.add("task %s (%s on %s) FAILED", t.ID, t.Operation, t.Card)
		}
	}
	known := map[string]bool{}
	for _, t := range v.tasks {
		known[t.ID] = true
	}
	lost := map[string]bool{}
	for _, id := range v.accepted {
		if !known[id] {
			lost[id] = true
			p.add("accepted task %s is missing", id)
		}
	}
	carried := map[string]int{}
	perSE := map[string][]string{}
	for _, j := range v.journal {
		key := j.SEID + "/" + j.TaskID
		t, ours := hub[key]
		if !ours {
			if len(j.SEID) >= 2 && j.SEID[:2] == "A1" {
				lost[j.TaskID] = true
				p.add("the wallet server carried out task %s on %s, which the hub has no record of", j.TaskID, j.SEID)
			}
			continue
		}
		carried[key]++
		if carried[key] == 2 {
			fig.duplicates++
			p.add("the wallet server carried out task %s (%s on %s) twice", t.ID, t.Operation, t.Card)
		}
		if j.Operation != wireOperation(t.Operation) {
			p.add("task %s is %s at the hub and %s at the wallet server", t.ID, t.Operation, j.Operation)
		}
		perSE[j.SEID] = append(perSE[j.SEID], j.TaskID)
	}
	fig.lost = len(lost)
	wantOrder := map[string][]string{}
	for _, t := range v.tasks {
		if t.Status == "COMPLETED" && carried[t.SE+"/"+t.ID] == 0 {
			p.add("task %s (%s on %s) is COMPLETED but the wallet server never carried it out", t.ID, t.Operation, t.Card)
		}
		if carried[t.SE+"/"+t.ID] > 0 {
			wantOrder[t.SE] = append(wantOrder[t.SE], t.ID)
		}
	}
	for se, got := range perSE {
		if !slices.Equal(got, wantOrder[se]) {
			p.add("secure element %s: the wallet server carried out %v, the hub queued %v", se, got, wantOrder[se])
		}
	}
	for _, d := range v.cards {
		state, ok := v.states[d.card]
		if !ok {
			continue // provisioning never answered before the load ended
		}
		want := map[string]string{"ACTIVE": "active", "SUSPENDED": "locked", "DELETED": "", "ERASED": "", "PENDING_PERSO": ""}[state]
		if got := v.applets[d.card]; got != want {
			p.add("card %s is %s at the hub but its applet is %q at the wallet server", d.card, state, got)
		}
	}
	return fig, p.list
}

// consumerFlow registers consumers with two digital cards each and has
// the issuer delete them, which deletes their digital cards through the
// wallet server.
type consumerFlow struct {
	c         *cluster
	ambiguous atomic.Int64
	mu        sync.Mutex
	deleted   []deletedConsumer
}

type deletedConsumer struct {
	consumer, operation string
	cards               []digitalCard
}

func (f *consumerFlow) name() string { return "consumer-delete" }

func (f *consumerFlow) run(ctx context.Context) {
	var wg sync.WaitGroup
	for slot := range f.c.plan.consumers {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				if !f.one(ctx, slot, n) {
					return
				}
			}
		})
	}
	wg.Wait()
}

func (f *consumerFlow) one(ctx context.Context, slot, n int) bool {
	c := f.c
	consumer := fmt.Sprintf("cons-%d-%d", slot, n)
	var token string
	if !c.retryCall(ctx, &f.ambiguous, func() (bool, error) {
		var err error
		token, err = c.issuerToken(ctx)
		return err == nil, err
	}) {
		return false
	}
	var cards []digitalCard
	for k := range 2 {
		d := digitalCard{card: fmt.Sprintf("CON-%d-%d-%d", slot, n, k), se: fmt.Sprintf("C1%02X%05X%X", slot, n, k), consumer: consumer}
		if !c.newDigitalCard(ctx, &d, &f.ambiguous) {
			return false
		}
		cards = append(cards, d)
	}
	var op struct {
		OperationID string `json:"operationId"`
	}
	if !c.retryCall(ctx, &f.ambiguous, func() (bool, error) {
		status, err := c.bank(ctx, token, "POST", "/consumers/"+consumer+"/operations:delete", map[string]any{"reasonCode": "USER_DECISION"}, &op)
		return status/100 == 2 && op.OperationID != "", err
	}) {
		return false
	}
	f.mu.Lock()
	f.deleted = append(f.deleted, deletedConsumer{consumer: consumer, operation: op.OperationID, cards: cards})
	f.mu.Unlock()
	return true
}

func (f *consumerFlow) pending(ctx context.Context) (int, error) {
	return count(ctx, f.c, `SELECT COUNT(*) FROM issuer_operations WHERE status = 'PENDING'`)
}

// consumerView is what the consumer audit reads.
type consumerView struct {
	deleted []deletedConsumer
	// status is each operation's status at the hub ("" when missing).
	status map[string]string
	// leftCards counts each deleted consumer's cards the hub still has.
	leftCards map[string]int
	applets   map[string]string // card -> applet at the wallet server
	journal   []simwallet.AppliedTask
}

func (f *consumerFlow) view(ctx context.Context) (consumerView, error) {
	v := consumerView{status: map[string]string{}, leftCards: map[string]int{}, applets: map[string]string{}}
	f.mu.Lock()
	v.deleted = slices.Clone(f.deleted)
	f.mu.Unlock()
	for _, d := range v.deleted {
		var status, why string
		err := f.c.db.QueryRowContext(ctx, `SELECT status, COALESCE(error_code, '') || ' ' || COALESCE(error, '') FROM issuer_operations WHERE operation_id = $1`,
			d.operation).Scan(&status, &why)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return v, err
		}
		v.status[d.operation] = status
		if status == "FAILED" {
			v.status[d.operation] = status + " (" + strings.TrimSpace(why) + ")"
		}
		n, err := count(ctx, f.c, `SELECT COUNT(*) FROM issuer_cards WHERE issuer_id = $1 AND consumer_id = $2`, issuerID, d.consumer)
		if err != nil {
			return v, err
		}
		for _, card := range d.cards {
			m, err := count(ctx, f.c, `SELECT COUNT(*) FROM transit_cards WHERE card_id = $1`, card.card)
			if err != nil {
				return v, err
			}
			n += m
			v.applets[card.card] = appletOf(f.c.wallet, card.se)
		}
		v.leftCards[d.consumer] = n
	}
	v.journal = f.c.wallet.Applied()
	return v, nil
}

func (f *consumerFlow) audit(ctx context.Context) (figures, []string) {
	v, err := f.view(ctx)
	if err != nil {
		return figures{}, []string{"read the consumer operations: " + err.Error()}
	}
	fig, problems := auditConsumers(v)
	fig.ambiguous = int(f.ambiguous.Load())
	return fig, problems
}

// auditConsumers checks each deletion ended SUCCESSFUL and took the
// consumer's digital cards off their secure elements, once.
func auditConsumers(v consumerView) (figures, []string) {
	var p problems
	fig := figures{accepted: len(v.deleted), records: len(v.status)}
	ours := map[string]string{}
	for _, d := range v.deleted {
		switch st := v.status[d.operation]; st {
		case "SUCCESSFUL":
		case "":
			fig.lost++
			p.add("the deletion of %s (operation %s) is missing", d.consumer, d.operation)
		default:
			p.add("the deletion of %s is %s", d.consumer, st)
		}
		if n := v.leftCards[d.consumer]; n > 0 {
			p.add("deleted consumer %s still has %d card(s) at the hub", d.consumer, n)
		}
		for _, card := range d.cards {
			ours[card.se] = card.card
			if a := v.applets[card.card]; a != "" {
				p.add("deleted consumer %s: card %s is still %s on %s", d.consumer, card.card, a, card.se)
			}
		}
	}
	seen := map[string]bool{}
	deletes := map[string]int{}
	for _, j := range v.journal {
		if _, mine := ours[j.SEID]; !mine {
			continue
		}
		key := j.SEID + "/" + j.TaskID
		if seen[key] {
			fig.duplicates++
			p.add("the wallet server carried out task %s on %s twice", j.TaskID, j.SEID)
		}
		seen[key] = true
		if j.Operation == "DELETE" {
			deletes[j.SEID]++
		}
	}
	for se, card := range ours {
		if deletes[se] > 1 {
			fig.duplicates++
			p.add("card %s was deleted %d times on %s", card, deletes[se], se)
		}
	}
	return fig, p.list
}

// deviceFlow tops up cards: the TES asks the hub, the hub redirects the
// device, the device runs the TES's FeliCa commands through the hub, and
// the TES applies the purchase.
type deviceFlow struct {
	c         *cluster
	ambiguous atomic.Int64
	mu        sync.Mutex
	cards     []digitalCard
	ops       []string
	purchases map[string]int64 // purchase -> amount
	failed    atomic.Int64
	refusals  atomic.Int64
}

const deviceStartBalance = 1000

func (f *deviceFlow) name() string { return "top-up" }

// prepare personalises the flow's cards before the load starts.
func (f *deviceFlow) prepare(ctx context.Context) {
	f.purchases = map[string]int64{}
	for i := range f.c.plan.deviceCards {
		d := digitalCard{card: fmt.Sprintf("DEV-%d", i), se: fmt.Sprintf("D1%06X", i)}
		if !f.c.newDigitalCard(ctx, &d, &f.ambiguous) {
			f.c.t.Fatalf("card %s not personalised", d.card)
		}
		if err := f.c.wallet.SetCardBalance(d.wallet, deviceStartBalance); err != nil {
			f.c.t.Fatal(err)
		}
		if err := f.c.tes.AddAccount(simtes.Account{ID: d.card, IssuerID: issuerID, DeviceID: "dev-" + d.se, Balance: deviceStartBalance}); err != nil {
			f.c.t.Fatal(err)
		}
		f.cards = append(f.cards, d)
	}
}

func (f *deviceFlow) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, d := range f.cards {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				f.topUp(ctx, d, fmt.Sprintf("P-%s-%d", d.card, n), int64(1+f.c.intN(50)))
			}
		})
	}
	wg.Wait()
}

// refused logs the first refusals of topupCard (the device is busy with
// another operation: 321, and the TES retries).
func (f *deviceFlow) refused(purchase string, a transitAnswer) {
	if n := f.refusals.Add(1); n <= 5 {
		f.c.t.Logf("topupCard %s refused: %d %s", purchase, a.ResponseHeader.StatusCode, a.ResponseHeader.StatusMessage)
	}
}

// topUp runs one top-up to its end (or until ctx ends); it returns
// whether the operation ended.
func (f *deviceFlow) topUp(ctx context.Context, d digitalCard, purchase string, amount int64) bool {
	c := f.c
	if err := c.tes.AddPurchase(simtes.Purchase{ID: purchase, CardAccountID: d.card, Amount: amount}); err != nil {
		c.t.Errorf("TES purchase: %v", err)
		return false
	}
	f.mu.Lock()
	f.purchases[purchase] = amount
	f.mu.Unlock()
	var op string
	if !c.retryCall(ctx, &f.ambiguous, func() (bool, error) {
		var a transitAnswer
		err := c.partnerCall(ctx, c.tesCreds, transitAPI+"topupCard", map[string]any{"issuerId": issuerID, "cardId": d.card, "purchaseId": purchase}, &a)
		if err == nil && a.ResponseHeader.StatusCode == 0 && a.OperationID != "" {
			op = a.OperationID
			return true, nil
		}
		if c.db.QueryRowContext(ctx, `SELECT operation_id FROM transit_operations WHERE purchase_id = $1`, purchase).Scan(&op) == nil {
			return true, nil // taken by a call whose answer was lost
		}
		if err == nil {
			f.refused(purchase, a)
		}
		return false, err
	}) {
		return false
	}
	f.mu.Lock()
	f.ops = append(f.ops, op)
	f.mu.Unlock()
	for ctx.Err() == nil {
		var a transitAnswer
		err := c.partnerCall(ctx, c.tesCreds, transitAPI+"getOperationStatus", map[string]any{"issuerId": issuerID, "operationId": op}, &a)
		if err == nil && a.Operation != nil && (a.Operation.Status == "COMPLETED" || a.Operation.Status == "FAILED") {
			if a.Operation.Status == "FAILED" {
				f.failed.Add(1)
			}
			return true
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
	return false
}

func (f *deviceFlow) pending(ctx context.Context) (int, error) {
	return count(ctx, f.c, `SELECT COUNT(*) FROM transit_operations WHERE kind = 'TOPUP' AND status NOT IN ('COMPLETED', 'FAILED')`)
}

// reconcile runs one more top-up per card with nothing failing: its loop
// reads the purse, so a purchase written by a loop that was cut off is
// applied now (the TES applies a written purchase on the next read).
func (f *deviceFlow) reconcile(ctx context.Context) {
	var wg sync.WaitGroup
	for _, d := range f.cards {
		wg.Go(func() {
			if !f.topUp(ctx, d, "P-"+d.card+"-final", 1) {
				f.c.t.Errorf("the reconciling top-up of %s did not end", d.card)
			}
		})
	}
	wg.Wait()
}

// deviceView is what the top-up audit reads.
type deviceView struct {
	accepted  []string
	status    map[string]string // operation -> status at the hub
	purchases map[string]int64
	applied   map[string]bool  // purchase -> applied at the TES
	completed map[string]bool  // purchase -> its operation COMPLETED
	balances  map[string]int64 // card -> TES account balance
	purses    map[string]int64 // card -> the purse on the device
}

func (f *deviceFlow) view(ctx context.Context) (deviceView, error) {
	v := deviceView{status: map[string]string{}, applied: map[string]bool{}, completed: map[string]bool{},
		balances: map[string]int64{}, purses: map[string]int64{}}
	f.mu.Lock()
	v.accepted = slices.Clone(f.ops)
	v.purchases = map[string]int64{}
	for k, a := range f.purchases {
		v.purchases[k] = a
	}
	f.mu.Unlock()
	rows, err := f.c.db.QueryContext(ctx, `SELECT operation_id, status, COALESCE(purchase_id, '') FROM transit_operations WHERE kind = 'TOPUP'`)
	if err != nil {
		return v, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, status, purchase string
		if err := rows.Scan(&id, &status, &purchase); err != nil {
			return v, err
		}
		v.status[id] = status
		if status == "COMPLETED" {
			v.completed[purchase] = true
		}
	}
	if err := rows.Err(); err != nil {
		return v, err
	}
	for p := range v.purchases {
		st, _ := f.c.tes.PurchaseState(p)
		v.applied[p] = st.Applied
	}
	for _, d := range f.cards {
		acc, _ := f.c.tes.AccountState(d.card)
		v.balances[d.card] = acc.Balance
		purse, err := f.c.wallet.CardPurse(d.wallet)
		if err != nil {
			return v, err
		}
		v.purses[d.card] = int64(purse.Balance)
	}
	return v, nil
}

func (f *deviceFlow) audit(ctx context.Context) (figures, []string) {
	v, err := f.view(ctx)
	if err != nil {
		return figures{}, []string{"read the top-ups: " + err.Error()}
	}
	f.logFailures(ctx)
	fig, problems := auditDevices(v)
	fig.ambiguous = int(f.ambiguous.Load())
	fig.failed = int(f.failed.Load())
	return fig, problems
}

// logFailures says why device operations ended FAILED: a final outcome,
// but one the figures explain.
func (f *deviceFlow) logFailures(ctx context.Context) {
	rows, err := f.c.db.QueryContext(ctx, `SELECT kind, COALESCE(status_code, -1), COALESCE(message, ''), COUNT(*) FROM transit_operations
		WHERE status = 'FAILED' GROUP BY kind, status_code, message ORDER BY COUNT(*) DESC LIMIT 10`)
	if err != nil {
		f.c.t.Logf("device operation failures: %v", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var kind, msg string
		var code, n int
		if rows.Scan(&kind, &code, &msg, &n) == nil {
			f.c.t.Logf("%d %s operation(s) FAILED with %d: %s", n, kind, code, msg)
		}
	}
}

// auditDevices checks every top-up ended, every completed one was applied
// once, and each card's purse holds what the TES's account says.
func auditDevices(v deviceView) (figures, []string) {
	var p problems
	fig := figures{accepted: len(v.accepted), records: len(v.status)}
	for _, op := range v.accepted {
		switch st := v.status[op]; st {
		case "COMPLETED", "FAILED":
		case "":
			fig.lost++
			p.add("accepted top-up %s is missing", op)
		default:
			p.add("top-up %s is still %s", op, st)
		}
	}
	applied := map[string]int64{}
	for purchase, amount := range v.purchases {
		if v.completed[purchase] && !v.applied[purchase] {
			p.add("purchase %s: its top-up COMPLETED but the TES did not apply it", purchase)
		}
		if v.applied[purchase] {
			applied[cardOfPurchase(purchase)] += amount
		}
	}
	for card, balance := range v.balances {
		if want := deviceStartBalance + applied[card]; balance != want {
			fig.duplicates++
			p.add("card %s: the TES account holds %d, the purchases applied make %d", card, balance, want)
		}
		if purse := v.purses[card]; purse != balance {
			p.add("card %s: the purse holds %d, the TES account %d", card, purse, balance)
		}
	}
	return fig, p.list
}

// cardOfPurchase reads the card out of a purchase id P-<card>-<n>.
func cardOfPurchase(purchase string) string {
	s := purchase[2:]
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '-' {
			return s[:i]
		}
	}
	return s
}

// parkFlow parks cards: the balance on each card's purse moves to its
// TES account, through the same command loop as a top-up. Each card is
// parked once, then a new one is made.
type parkFlow struct {
	c         *cluster
	ambiguous atomic.Int64
	mu        sync.Mutex
	parks     []park
}

// park is one card parked, with the balance its purse held.
type park struct {
	d         digitalCard
	balance   int64
	operation string
}

func (f *parkFlow) name() string { return "park" }

func (f *parkFlow) run(ctx context.Context) {
	var wg sync.WaitGroup
	for slot := range max(1, f.c.plan.deviceCards/2) {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				d := digitalCard{card: fmt.Sprintf("PRK-%d-%d", slot, n), se: fmt.Sprintf("E1%02X%06X", slot, n)}
				if !f.c.newDigitalCard(ctx, &d, &f.ambiguous) {
					return
				}
				balance := int64(100 + f.c.intN(900))
				if err := errors.Join(f.c.wallet.SetCardBalance(d.wallet, uint32(balance)),
					f.c.tes.AddAccount(simtes.Account{ID: d.card, IssuerID: issuerID, DeviceID: "dev-" + d.se, Balance: balance})); err != nil {
					f.c.t.Errorf("park card %s: %v", d.card, err)
					return
				}
				op, ok := f.park(ctx, d)
				if !ok {
					return
				}
				f.mu.Lock()
				f.parks = append(f.parks, park{d: d, balance: balance, operation: op})
				f.mu.Unlock()
				f.c.waitOperation(ctx, op)
			}
		})
	}
	wg.Wait()
}

// park asks the hub to park d's card and returns the operation.
func (f *parkFlow) park(ctx context.Context, d digitalCard) (string, bool) {
	c := f.c
	var op string
	since := time.Now().Add(-time.Second).UnixMicro()
	ok := c.retryCall(ctx, &f.ambiguous, func() (bool, error) {
		var a transitAnswer
		err := c.partnerCall(ctx, c.tesCreds, transitAPI+"parkCard", map[string]any{"issuerId": issuerID, "cardId": d.card}, &a)
		if err == nil && a.ResponseHeader.StatusCode == 0 && a.OperationID != "" {
			op = a.OperationID
			return true, nil
		}
		if c.db.QueryRowContext(ctx, `SELECT operation_id FROM transit_operations WHERE card_id = $1 AND kind = 'PARK' AND created_at >= $2
			ORDER BY created_at DESC LIMIT 1`, d.card, since).Scan(&op) == nil {
			return true, nil // taken by a call whose answer was lost
		}
		return false, err
	})
	return op, ok
}

// waitOperation polls getOperationStatus until a device operation ends;
// it returns the final status, or "" when ctx ends first.
func (c *cluster) waitOperation(ctx context.Context, op string) string {
	for ctx.Err() == nil {
		var a transitAnswer
		err := c.partnerCall(ctx, c.tesCreds, transitAPI+"getOperationStatus", map[string]any{"issuerId": issuerID, "operationId": op}, &a)
		if err == nil && a.Operation != nil && (a.Operation.Status == "COMPLETED" || a.Operation.Status == "FAILED") {
			return a.Operation.Status
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
	return ""
}

func (f *parkFlow) pending(ctx context.Context) (int, error) {
	return count(ctx, f.c, `SELECT COUNT(*) FROM transit_operations WHERE kind = 'PARK' AND status NOT IN ('COMPLETED', 'FAILED')`)
}

// reconcile parks again, with nothing failing, every card whose park
// ended FAILED: the TES applies a park it wrote on the next loop that
// reads the card, so each card must end parked once.
//
// A park the hub gave up at its time to live (322) may leave its loop open
// at the TES, which has no call to end one: the TES refuses the device
// (321) until that loop's own time to live ends (two minutes here, against
// the hub's 45 s), so a park answered 321 is asked again until then.
func (f *parkFlow) reconcile(ctx context.Context) {
	f.mu.Lock()
	parks := slices.Clone(f.parks)
	f.mu.Unlock()
	for _, p := range parks {
		var status string
		if err := f.c.db.QueryRowContext(ctx, `SELECT status FROM transit_operations WHERE operation_id = $1`, p.operation).Scan(&status); err != nil || status != "FAILED" {
			continue
		}
		for {
			op, ok := f.park(ctx, p.d)
			status := ""
			if ok {
				status = f.c.waitOperation(ctx, op)
			}
			if status == "COMPLETED" {
				break
			}
			var code int
			if status == "FAILED" && f.c.db.QueryRowContext(ctx, `SELECT COALESCE(status_code, 0) FROM transit_operations WHERE operation_id = $1`, op).Scan(&code) == nil &&
				code == tes.StatusBusy && ctx.Err() == nil {
				sleepCtx(ctx, time.Second)
				continue
			}
			f.c.t.Errorf("parking %s again did not complete (%s)", p.d.card, status)
			break
		}
	}
}

// parkView is what the park audit reads.
type parkView struct {
	parks    []park
	status   map[string]string // operation -> status at the hub
	accounts map[string]simtes.Account
	purses   map[string]int64
}

func (f *parkFlow) view(ctx context.Context) (parkView, error) {
	v := parkView{status: map[string]string{}, accounts: map[string]simtes.Account{}, purses: map[string]int64{}}
	f.mu.Lock()
	v.parks = slices.Clone(f.parks)
	f.mu.Unlock()
	for _, p := range v.parks {
		var status string
		err := f.c.db.QueryRowContext(ctx, `SELECT status FROM transit_operations WHERE operation_id = $1`, p.operation).Scan(&status)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return v, err
		}
		v.status[p.operation] = status
		v.accounts[p.d.card], _ = f.c.tes.AccountState(p.d.card)
		purse, err := f.c.wallet.CardPurse(p.d.wallet)
		if err != nil {
			return v, err
		}
		v.purses[p.d.card] = int64(purse.Balance)
	}
	return v, nil
}

func (f *parkFlow) audit(ctx context.Context) (figures, []string) {
	v, err := f.view(ctx)
	if err != nil {
		return figures{}, []string{"read the parks: " + err.Error()}
	}
	fig, problems := auditParks(v)
	fig.ambiguous = int(f.ambiguous.Load())
	return fig, problems
}

// auditParks checks every card ended parked once: its purse empty and its
// TES account holding what the purse held, no more.
func auditParks(v parkView) (figures, []string) {
	var p problems
	fig := figures{accepted: len(v.parks), records: len(v.status)}
	for _, k := range v.parks {
		switch st := v.status[k.operation]; st {
		case "COMPLETED":
		case "FAILED":
			fig.failed++
		case "":
			fig.lost++
			p.add("accepted park %s of %s is missing", k.operation, k.d.card)
		default:
			p.add("park %s of %s is still %s", k.operation, k.d.card, st)
		}
		acc := v.accounts[k.d.card]
		switch {
		case !acc.Parked:
			p.add("card %s: the TES account is not parked", k.d.card)
		case acc.Balance != k.balance:
			fig.duplicates++
			p.add("card %s: the TES account holds %d after the park, the purse held %d", k.d.card, acc.Balance, k.balance)
		}
		if v.purses[k.d.card] != 0 {
			p.add("card %s: the purse still holds %d after the park", k.d.card, v.purses[k.d.card])
		}
	}
	return fig, p.list
}

// readerFlow ingests physical cards in reader mode: the wallet server
// starts reader mode for a device that holds a card, the device runs the
// TES's commands on it through the hub, and the TES makes an account with
// the card's balance. Each card is ingested once, on a device of its own.
type readerFlow struct {
	c         *cluster
	ambiguous atomic.Int64
	mu        sync.Mutex
	reads     []readerRun
}

// readerRun is one physical card and the reader-mode operation that
// ingested it ("" when the hub never answered the wallet server).
type readerRun struct {
	se, idm   string
	balance   int64
	operation string
}

func (f *readerFlow) name() string { return "reader-mode" }

func (f *readerFlow) run(ctx context.Context) {
	var wg sync.WaitGroup
	for slot := range max(1, f.c.plan.deviceCards/2) {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				if !f.one(ctx, slot, n) {
					return
				}
			}
		})
	}
	wg.Wait()
}

func (f *readerFlow) one(ctx context.Context, slot, n int) bool {
	c := f.c
	se := fmt.Sprintf("F1%02X%06X", slot, n)
	idm := felica.IDm{0x01, 0x2E, 0xC0, byte(slot), byte(n >> 16), byte(n >> 8), byte(n), 0x01}
	r := readerRun{se: se, idm: strings.ToUpper(hex.EncodeToString(idm[:])), balance: int64(100 + c.intN(5000))}
	if err := errors.Join(c.wallet.AddDevice(se, "dev-"+se), c.wallet.HoldExternalCard(se, felicacard.Transit(idm, uint32(r.balance))),
		c.tes.AddExternalCard(simtes.ExternalCard{IDm: r.idm})); err != nil {
		c.t.Errorf("reader-mode card: %v", err)
		return false
	}
	for ctx.Err() == nil {
		runs := len(c.wallet.Runs(se))
		if err := c.wallet.StartReaderMode(se, issuerID, nil); err != nil {
			c.t.Errorf("start reader mode: %v", err)
			return false
		}
		var run simwallet.DeviceRun
		for ctx.Err() == nil {
			if all := c.wallet.Runs(se); len(all) > runs {
				run = all[len(all)-1]
				break
			}
			sleepCtx(ctx, 50*time.Millisecond)
		}
		if run.OperationID != "" {
			r.operation = run.OperationID
			break
		}
		if ctx.Err() == nil {
			f.ambiguous.Add(1) // the hub did not answer: the wallet server tries again
			sleepCtx(ctx, 200*time.Millisecond)
		}
	}
	f.mu.Lock()
	f.reads = append(f.reads, r)
	f.mu.Unlock()
	if r.operation != "" {
		c.waitOperation(ctx, r.operation)
	}
	return ctx.Err() == nil
}

func (f *readerFlow) pending(ctx context.Context) (int, error) {
	return count(ctx, f.c, `SELECT COUNT(*) FROM transit_operations WHERE kind = 'READER_MODE' AND status NOT IN ('COMPLETED', 'FAILED')`)
}

// readerView is what the reader-mode audit reads.
type readerView struct {
	reads []readerRun
	// status and account are each operation's status and the account the
	// hub recorded for it.
	status, account map[string]string
	// tesAccount is the account the TES made for each card ("" when it
	// made none); accounts the TES's accounts by id.
	tesAccount map[string]string
	accounts   map[string]simtes.Account
	// ingested is how many cards the TES ingested; completed how many
	// reader-mode operations the hub completed (the clients may not have
	// heard of the last ones when the load stopped).
	ingested, completed int
}

func (f *readerFlow) view(ctx context.Context) (readerView, error) {
	v := readerView{status: map[string]string{}, account: map[string]string{}, tesAccount: map[string]string{}, accounts: map[string]simtes.Account{}}
	f.mu.Lock()
	v.reads = slices.Clone(f.reads)
	f.mu.Unlock()
	for _, r := range v.reads {
		if r.operation != "" {
			var status, account string
			err := f.c.db.QueryRowContext(ctx, `SELECT status, COALESCE(card_account_id, '') FROM transit_operations WHERE operation_id = $1`, r.operation).Scan(&status, &account)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return v, err
			}
			v.status[r.operation], v.account[r.operation] = status, account
		}
		if ext, ok := f.c.tes.ExternalCardState(r.idm); ok && ext.Account != "" {
			v.tesAccount[r.idm] = ext.Account
			v.accounts[ext.Account], _ = f.c.tes.AccountState(ext.Account)
		}
	}
	v.ingested = f.c.tes.Stats().Ingested
	n, err := count(ctx, f.c, `SELECT COUNT(*) FROM transit_operations WHERE kind = 'READER_MODE' AND status = 'COMPLETED'`)
	v.completed = n
	return v, err
}

func (f *readerFlow) audit(ctx context.Context) (figures, []string) {
	v, err := f.view(ctx)
	if err != nil {
		return figures{}, []string{"read the reader-mode operations: " + err.Error()}
	}
	fig, problems := auditReaders(v)
	fig.ambiguous = int(f.ambiguous.Load())
	return fig, problems
}

// auditReaders checks every ingestion ended, each card was ingested at
// most once, into the account the hub recorded, with the card's balance.
func auditReaders(v readerView) (figures, []string) {
	var p problems
	fig := figures{records: len(v.status)}
	for _, r := range v.reads {
		if r.operation == "" {
			continue
		}
		fig.accepted++
		st := v.status[r.operation]
		switch st {
		case "COMPLETED":
		case "FAILED":
			fig.failed++
		case "":
			fig.lost++
			p.add("accepted reader-mode operation %s is missing", r.operation)
		default:
			p.add("reader-mode operation %s is still %s", r.operation, st)
		}
		tes := v.tesAccount[r.idm]
		switch {
		case st == "COMPLETED" && tes == "":
			p.add("card %s: the hub COMPLETED its ingestion but the TES made no account", r.idm)
		case st == "COMPLETED" && tes != v.account[r.operation]:
			p.add("card %s: the hub recorded account %s, the TES made %s", r.idm, v.account[r.operation], tes)
		case st != "COMPLETED" && tes != "":
			p.add("card %s: the TES made account %s but the hub's operation is %s", r.idm, tes, st)
		}
		if acc, ok := v.accounts[tes]; ok && acc.Balance != r.balance {
			p.add("card %s: account %s holds %d, the card held %d", r.idm, tes, acc.Balance, r.balance)
		}
	}
	if v.ingested != v.completed {
		fig.duplicates += max(0, v.ingested-v.completed)
		p.add("the TES ingested %d cards, the hub completed %d ingestions", v.ingested, v.completed)
	}
	return fig, p.list
}

// The flows' progress: how much each has had accepted so far.

func (f *walletFlow) progress() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tasks)
}

func (f *consumerFlow) progress() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.deleted)
}

func (f *deviceFlow) progress() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.ops)
}

func (f *parkFlow) progress() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.parks)
}

func (f *readerFlow) progress() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.reads {
		if r.operation != "" {
			n++
		}
	}
	return n
}
