package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/provhub/provhub/internal/cas"
	cassim "github.com/provhub/provhub/internal/sim/cas"
)

// crmFlow is CRM clients sending add_subscriptions, cancel_subscriptions
// and reset_pin_to_default_value for their own smartcards, one request at a
// time per client, as a CRM's workers would.
type crmFlow struct {
	c         *cluster
	mu        sync.Mutex
	accepted  []string // request ids the hub acknowledged
	ambiguous atomic.Int64
}

func (f *crmFlow) name() string { return "crm" }

func (f *crmFlow) run(ctx context.Context) {
	var wg sync.WaitGroup
	for client := range f.c.plan.crmClients {
		wg.Go(func() { f.client(ctx, client) })
	}
	wg.Wait()
}

func (f *crmFlow) client(ctx context.Context, client int) {
	c := f.c
	token := ""
	var mine []int
	for i := client; i < c.plan.smartcards; i += c.plan.crmClients {
		mine = append(mine, i)
	}
	for ctx.Err() == nil {
		if token == "" {
			var env crmEnvelope
			if err := f.post(ctx, "/authentication/token", map[string]any{"username": crmUser, "password": c.crmPass, "organisation": crmOrg}, &env); err != nil || env.Status.Code != "OK" {
				sleepCtx(ctx, 200*time.Millisecond)
				continue
			}
			var data struct{ Token string }
			_ = json.Unmarshal(env.Data, &data)
			token = data.Token
		}
		card := mine[c.intN(len(mine))]
		// Some requests wait for the CAS's answer, most are queued.
		body := map[string]any{"token": token, "process_immediately": c.intN(5) == 0,
			"subscription_identifier": map[string]string{"number": subNumber},
			"smartcard_identifier":    map[string]string{"serial_number": smartcardSerial(card)}}
		method := "add_subscriptions"
		switch x := c.intN(10); {
		case x == 0:
			method = "reset_pin_to_default_value"
		case x < 5:
			method = "cancel_subscriptions"
		}
		if method != "reset_pin_to_default_value" {
			body["service_identifier"] = map[string]string{"code": chaosServices[c.intN(len(chaosServices))]}
		}
		var env crmEnvelope
		err := f.post(ctx, "/conax_web_services/provisioning_requests/"+method, body, &env)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				f.ambiguous.Add(1) // taken or not: the audit finds out
			}
			sleepCtx(ctx, 100*time.Millisecond)
		case env.Status.Code == "OK":
			var r struct{ ID string }
			_ = json.Unmarshal(env.Data, &r)
			f.mu.Lock()
			f.accepted = append(f.accepted, r.ID)
			f.mu.Unlock()
		case env.Status.Code == "INVALID_TOKEN" || env.Status.Code == "UNAUTHORIZED":
			token = ""
		default:
			c.t.Errorf("crm %s refused: %s %s", method, env.Status.Code, env.Raw)
			sleepCtx(ctx, time.Second)
		}
		sleepCtx(ctx, time.Duration(c.intN(20))*time.Millisecond)
	}
}

type crmEnvelope struct {
	Status struct {
		Code string `json:"code"`
	} `json:"status"`
	Data json.RawMessage `json:"data"`
	Raw  string          `json:"-"`
}

func (f *crmFlow) post(ctx context.Context, path string, body any, into *crmEnvelope) error {
	raw, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.c.hubURL()+"/crmapi/rest/v2"+path, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	var m json.RawMessage
	if err := f.c.do(req, &m); err != nil {
		return err
	}
	into.Raw = string(m)
	return json.Unmarshal(m, into)
}

// crmRecord is a provisioning request as the hub keeps it.
type crmRecord struct {
	ID, State, ErrorCode, SmartcardCAID string
	Command                             cas.Command
	Created                             int64
	Seq                                 int64
}

// crmView is what the CRM audit reads: the client's acknowledgements, the
// hub's records and the CAS's journal and cards.
type crmView struct {
	accepted []string
	records  []crmRecord
	journal  []cassim.Applied
	// entitlements is each smartcard's services at the CAS.
	entitlements map[string][]string
}

func (f *crmFlow) view(ctx context.Context) (crmView, error) {
	v := crmView{entitlements: map[string][]string{}}
	f.mu.Lock()
	v.accepted = slices.Clone(f.accepted)
	f.mu.Unlock()
	rows, err := f.c.db.QueryContext(ctx, `SELECT id, life_cycle_state, COALESCE(error_code, ''), smartcard_ca_id, command, created_at,
		COALESCE(sequence_number, 0) FROM paytv_requests ORDER BY created_at, number`)
	if err != nil {
		return v, err
	}
	defer rows.Close()
	for rows.Next() {
		var r crmRecord
		var command string
		if err := rows.Scan(&r.ID, &r.State, &r.ErrorCode, &r.SmartcardCAID, &command, &r.Created, &r.Seq); err != nil {
			return v, err
		}
		if err := json.Unmarshal([]byte(command), &r.Command); err != nil {
			return v, fmt.Errorf("request %s: command: %w", r.ID, err)
		}
		v.records = append(v.records, r)
	}
	if err := rows.Err(); err != nil {
		return v, err
	}
	v.journal = f.c.cas.Applied()
	for i := range f.c.plan.smartcards {
		if card, ok := f.c.cas.Card(smartcardCAID(i)); ok {
			v.entitlements[smartcardCAID(i)] = card.Entitlements
		}
	}
	return v, nil
}

func (f *crmFlow) pending(ctx context.Context) (int, error) {
	return count(ctx, f.c, `SELECT COUNT(*) FROM paytv_requests WHERE life_cycle_state = 'PENDING'`)
}

func (f *crmFlow) audit(ctx context.Context) (figures, []string) {
	v, err := f.view(ctx)
	if err != nil {
		return figures{}, []string{"read the CRM records: " + err.Error()}
	}
	fig, problems := auditCRM(v)
	fig.ambiguous = int(f.ambiguous.Load())
	return fig, problems
}

// auditCRM checks the CRM flow's records against the CAS.
func auditCRM(v crmView) (figures, []string) {
	var p problems
	fig := figures{accepted: len(v.accepted)}
	byID := map[string]crmRecord{}
	for _, r := range v.records {
		byID[r.ID] = r
		if r.State == "PENDING" {
			p.add("request %s is still PENDING", r.ID)
		}
		if r.ErrorCode == "CAS_UNAVAILABLE" {
			p.add("request %s was given up: REJECTED CAS_UNAVAILABLE", r.ID)
		}
	}
	lost := map[string]bool{}
	for _, id := range v.accepted {
		if _, ok := byID[id]; !ok {
			lost[id] = true
			p.add("accepted request %s is missing", id)
		}
	}
	decided := map[string]cassim.Applied{}
	perCard := map[string][]string{}
	for _, j := range v.journal {
		if _, twice := decided[j.RequestID]; twice {
			fig.duplicates++
			p.add("the CAS carried out request %s twice", j.RequestID)
			continue
		}
		decided[j.RequestID] = j
		r, ok := byID[j.RequestID]
		if !ok {
			lost[j.RequestID] = true
			p.add("the CAS carried out %s (%s on %s), which the hub has no record of", j.RequestID, j.Command, j.SmartcardCAID)
			continue
		}
		perCard[r.SmartcardCAID] = append(perCard[r.SmartcardCAID], r.ID)
	}
	model := map[string]map[string]bool{}
	ordered := map[string][]string{}
	for _, r := range v.records {
		j, sent := decided[r.ID]
		switch {
		case r.State == "COMPLETED" && (!sent || j.Result != cas.ResultOK):
			p.add("request %s is COMPLETED but the CAS did not carry it out", r.ID)
		case r.State == "REJECTED" && r.ErrorCode == "CAS_REJECTED" && (!sent || j.Result == cas.ResultOK):
			p.add("request %s is REJECTED by the CAS but the CAS carried it out", r.ID)
		}
		if sent {
			ordered[r.SmartcardCAID] = append(ordered[r.SmartcardCAID], r.ID)
		}
		if r.State != "COMPLETED" {
			continue
		}
		if model[r.SmartcardCAID] == nil {
			model[r.SmartcardCAID] = map[string]bool{}
		}
		for _, svc := range r.Command.ServiceCAIDs {
			switch r.Command.Command {
			case cas.CmdAddSubscriptions:
				model[r.SmartcardCAID][svc] = true
			case cas.CmdCancelSubscriptions:
				delete(model[r.SmartcardCAID], svc)
			}
		}
	}
	// Per smartcard, the CAS decided the requests in the order the hub
	// accepted them.
	for card, got := range perCard {
		if !slices.Equal(got, ordered[card]) {
			p.add("smartcard %s: the CAS saw %v, accepted in the order %v", card, got, ordered[card])
		}
	}
	for card, got := range v.entitlements {
		var want []string
		for svc := range model[card] {
			want = append(want, svc)
		}
		slices.Sort(want)
		if !slices.Equal(want, got) && (len(want) > 0 || len(got) > 0) {
			p.add("smartcard %s holds %v at the CAS; the hub's COMPLETED requests make %v", card, got, want)
		}
	}
	fig.records, fig.lost = len(v.records), len(lost)
	return fig, p.list
}

// count runs a COUNT(*) query on the hub's database.
func count(ctx context.Context, c *cluster, query string, args ...any) (int, error) {
	var n int
	err := c.db.QueryRowContext(ctx, query, args...).Scan(&n)
	return n, err
}

// problems collects audit findings, up to a readable number.
type problems struct{ list []string }

func (p *problems) add(format string, args ...any) {
	if len(p.list) < 50 {
		p.list = append(p.list, fmt.Sprintf(format, args...))
	}
}

func (f *crmFlow) progress() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.accepted)
}
