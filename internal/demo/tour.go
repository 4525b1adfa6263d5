package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/provhub/provhub/internal/oauth"
	"github.com/provhub/provhub/internal/reqsign"
	simwallet "github.com/provhub/provhub/internal/sim/wallet"
)

// demoBreakFaults is the tour's "break it" knob: the wallet server answers
// the next updateCard 921 (the hub asks again), then 911 (the task fails).
const demoBreakFaults = `{"code":921,"code_next":1,"code_op":"updateCard","failed_next":1,"failed_op":"updateCard"}`

// demoTour is the printed tour: shell commands that work as printed, run
// from the repository's root, each step followed by what it shows and
// where to look on the console.
func demoTour(r ReadyLine) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	s := r.Sample
	w("")
	if r.Reused {
		w("provhub demo: hub %s, reusing %s (its database, issuer key and logins; run %d, so this run's sample ids end in -r%d)", r.Hub, r.Data, s.Run, s.Run)
	} else {
		w("provhub demo: hub %s, database and issuer key in %s", r.Hub, r.Data)
	}
	w("Simulators: wallet server %s, TES %s, CAS %s", r.WalletSim, r.TESSim, r.CASSim)
	w("Operator console: %s (log in as %s / %s)", r.Console, r.Operator.Username, r.Operator.Password)
	w("API reference: %s/reference/", r.Hub)
	w("Sample ids: consumers %s (cards %s, %s) and %s (card %s, purchase %s); CRM smartcard %s, subscription %s, service %s",
		s.DeleteConsumer, s.cards[0].card, s.cards[1].card, s.TopUpConsumer, s.TopUpCard, s.Purchase, s.Smartcard, s.Subscription, s.Service)
	w("")
	w("# 1. CRM: log in, add a subscription (process_immediately: the answer waits for the CAS), then show the request.")
	w(`$ TOKEN=$(curl -s -X POST %s/crmapi/rest/v2/authentication/token -H 'Content-Type: application/json' -d '{"username":"%s","password":"%s","organisation":"%s"}' | sed -E 's/.*"token":"([0-9A-F]+)".*/\1/')`,
		r.Hub, r.CRM.Username, r.CRM.Password, r.CRM.Organisation)
	w(`$ REQ=$(curl -s -X POST %s/crmapi/rest/v2/conax_web_services/provisioning_requests/add_subscriptions -H 'Content-Type: application/json' -d '{"token":"'$TOKEN'","subscription_identifier":{"number":"%s"},"service_identifier":{"code":"%s"},"smartcard_identifier":{"serial_number":"%s"},"process_immediately":true}' | grep -o '"number":"[0-9]*"' | head -1 | cut -d'"' -f4); echo "request $REQ"`,
		r.Hub, s.Subscription, s.Service, s.Smartcard)
	w(`$ curl -s "%s/crmapi/rest/v2/conax_web_services/provisioning_requests/show?token=$TOKEN&provisioning_request_identifier=number=$REQ"`, r.Hub)
	w("#   shows: the request COMPLETED, with the CAS's reference number. Console: %s/console/crm/$REQ (the CAS exchange, the job)", r.Hub)
	w("")
	w("# 2. Issuer: mint an access token, delete consumer %s (her two digital cards are deleted through the wallet server), read her operations.", s.DeleteConsumer)
	w(`$ ITOKEN=$(go run ./cmd/provhub issuer token --url %s --id %s --kid %s --key %s | tail -1)`, r.Hub, r.Issuer.ID, r.Issuer.Kid, r.Issuer.PrivateKeyFile)
	w(`$ curl -s -X POST %s/banking/v1/issuers/%s/consumers/%s/operations:delete -H "Authorization: Bearer $ITOKEN" -H 'Content-Type: application/json' -d '{"reason":"customer asked","reasonCode":"USER_DECISION"}'`, r.Hub, r.Issuer.ID, s.DeleteConsumer)
	w(`$ %s`, waitWhilePending(fmt.Sprintf(`curl -s %s/banking/v1/issuers/%s/consumers/%s/operations -H "Authorization: Bearer $ITOKEN"`, r.Hub, r.Issuer.ID, s.DeleteConsumer)))
	w("#   shows: the DELETE operation SUCCESSFUL after REGISTER. Console: %s/console/issuer?q=%s", r.Hub, s.DeleteConsumer)
	w("")
	w("# 3. Transit: the TES (a partner of the hub, signing its calls) tops up %s with purchase %s; the phone runs the TES's FeliCa commands.", s.TopUpCard, s.Purchase)
	w(`$ OP=$(go run ./cmd/provhub partner call --url %s --id %s --secret-file %s /tsh/transitapi/1/0/topupCard '{"requestHeader":{"requestId":"demo-%d-1","sessionId":"demo"},"issuerId":"%s","cardId":"%s","purchaseId":"%s"}' | sed -E 's/.*"operationId":"([^"]+)".*/\1/')`,
		r.Hub, r.TES.PartnerID, r.TES.SecretFile, s.Run, r.Issuer.ID, s.TopUpCard, s.Purchase)
	w(`$ %s`, waitUntilEnded(fmt.Sprintf(`go run ./cmd/provhub partner call --url %s --id %s --secret-file %s /tsh/transitapi/1/0/getOperationStatus '{"requestHeader":{"requestId":"demo-%d-2","sessionId":"demo"},"issuerId":"%s","operationId":"'$OP'"}'`,
		r.Hub, r.TES.PartnerID, r.TES.SecretFile, s.Run, r.Issuer.ID)))
	w("#   shows: the operation COMPLETED, balance 1500. Console: %s/console/transit/operations/$OP (every FeliCa frame decoded)", r.Hub)
	w("")
	w("# 4. Wallet server: each sample card was provisioned as a wallet server does it (checkCardAccount, getAsset for its terms and card art, each checked, then provisionCard); its counters.")
	w(`$ curl -s %s/admin/stats`, r.WalletSim)
	w("#   shows: 3 cards provisioned, 4 assets fetched and verified. Console: %s/console/devices (the cards with their art)", r.Hub)
	w("")
	w("# 5. Break it: the wallet server answers the next updateCard 921 (the hub asks again), then 911; the issuer suspends %s.", s.TopUpCard)
	w(`$ curl -s -X PUT %s/admin/faults -H 'Content-Type: application/json' -d '%s'`, r.WalletSim, demoBreakFaults)
	w(`$ curl -s -X POST %s/banking/v1/issuers/%s/cards/%s/operations:suspend -H "Authorization: Bearer $ITOKEN" -H 'Content-Type: application/json' -d '{"reasonCode":"CARD_LOST"}'`, r.Hub, r.Issuer.ID, s.TopUpCard)
	w(`$ %s`, waitWhilePending(fmt.Sprintf(`curl -s %s/banking/v1/issuers/%s/consumers/%s/operations -H "Authorization: Bearer $ITOKEN"`, r.Hub, r.Issuer.ID, s.TopUpConsumer)))
	w("#   shows: the SUSPEND operation FAILED (WALLET_911). The dashboard %s turns red (\"failures in the last 24 hours\", FAILED 911);", r.Console)
	w("#   on %s/console/transit?status=FAILED the task shows code 911; press \"Send again\": the new task completes and the digital card is suspended.", r.Hub)
	return b.String()
}

// waitWhilePending is a shell loop that runs call until its answer holds
// no PENDING status (at most a minute), then prints the answer.
func waitWhilePending(call string) string {
	return `for i in $(seq 120); do OUT=$(` + call + `); grep -q '"status":"PENDING"' <<<"$OUT" || break; sleep 0.5; done; echo "$OUT"`
}

// waitUntilEnded is a shell loop that runs call until its answer says
// COMPLETED or FAILED (at most a minute), then prints the answer.
func waitUntilEnded(call string) string {
	return `for i in $(seq 120); do OUT=$(` + call + `); grep -qE '"status":"(COMPLETED|FAILED)"' <<<"$OUT" && break; sleep 0.5; done; echo "$OUT"`
}

// scenarioClient is the scenario's way to the hub: JSON calls, the TES's
// signed calls, and the console as the demo's operator.
type scenarioClient struct {
	ctx       context.Context
	r         ReadyLine
	hc        *http.Client
	tesSecret string
}

func (c *scenarioClient) post(path string, hdr map[string]string, body any) (map[string]any, error) {
	return c.call(http.MethodPost, path, hdr, body)
}

func (c *scenarioClient) call(method, path string, hdr map[string]string, body any) (map[string]any, error) {
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	req, err := http.NewRequestWithContext(c.ctx, method, c.r.Hub+path, bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if strings.HasPrefix(path, "/tsh/transitapi/") {
		reqsign.Sign(req, raw, c.r.TES.PartnerID, c.tesSecret, time.Now())
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: HTTP %d without JSON", path, resp.StatusCode)
	}
	return m, nil
}

// until asks check every 100 ms until it reports done, for at most limit.
func until(ctx context.Context, limit time.Duration, what string, check func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		done, err := check()
		if err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not happen within %s", what, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// operations reads a consumer's operations through the issuer API.
func (c *scenarioClient) operations(token, consumer string) ([]map[string]any, error) {
	m, err := c.call(http.MethodGet, "/banking/v1/issuers/"+c.r.Issuer.ID+"/consumers/"+consumer+"/operations", map[string]string{"Authorization": "Bearer " + token}, nil)
	if err != nil {
		return nil, err
	}
	list, _ := m["operations"].([]any)
	var out []map[string]any
	for _, o := range list {
		if op, ok := o.(map[string]any); ok {
			out = append(out, op)
		}
	}
	return out, nil
}

// waitOperation waits for a consumer's operation of a type to end, and
// returns it.
func (c *scenarioClient) waitOperation(token, consumer, kind string) (map[string]any, error) {
	var found map[string]any
	err := until(c.ctx, 60*time.Second, kind+" of "+consumer+" ending", func() (bool, error) {
		ops, err := c.operations(token, consumer)
		if err != nil {
			return false, err
		}
		for _, op := range ops {
			if op["operation"] == kind && op["status"] != "PENDING" {
				found = op
				return true, nil
			}
		}
		return false, nil
	})
	return found, err
}

// consolePage reads a console page as the demo's operator, logging in on
// first use.
func (c *scenarioClient) consolePage(path string) (string, error) {
	if c.hc.Jar == nil {
		jar, _ := cookiejar.New(nil)
		c.hc.Jar = jar
		resp, err := c.hc.PostForm(c.r.Hub+"/console/login", url.Values{"username": {c.r.Operator.Username}, "password": {c.r.Operator.Password}})
		if err != nil {
			return "", err
		}
		resp.Body.Close()
	}
	req, err := http.NewRequestWithContext(c.ctx, http.MethodGet, c.r.Hub+path, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("console %s: HTTP %d", path, resp.StatusCode)
	}
	return string(body), err
}

var (
	csrfField  = regexp.MustCompile(`name="csrf" value="([0-9A-F]+)"`)
	resendTask = regexp.MustCompile(`data-task="(pvh-[0-9]+)"`)
	sentAgain  = regexp.MustCompile(`sent again as (pvh-[0-9]+)`)
)

// sendAgain presses "Send again" on the console for the FAILED task of a
// card, as an operator would, and returns the new task's id.
func (c *scenarioClient) sendAgain(card string) (string, error) {
	page, err := c.consolePage("/console/transit?status=FAILED&q=" + url.QueryEscape(card))
	if err != nil {
		return "", err
	}
	csrf, task := csrfField.FindStringSubmatch(page), resendTask.FindStringSubmatch(page)
	if csrf == nil || task == nil {
		return "", fmt.Errorf("the console shows no FAILED task of %s to send again", card)
	}
	req, err := http.NewRequestWithContext(c.ctx, http.MethodPost, c.r.Hub+"/console/tasks/"+task[1]+"/resend", strings.NewReader(url.Values{"csrf": {csrf[1]}}.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.r.Hub)
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := sentAgain.FindStringSubmatch(string(body))
	if m == nil {
		return "", fmt.Errorf("send again of %s: HTTP %d", task[1], resp.StatusCode)
	}
	return m[1], nil
}

// scenarioStep is one step of the scenario: what it does, and a run that
// answers its outcome and the console page that shows it.
type scenarioStep struct {
	name string
	run  func() (outcome, console string, err error)
}

// runScenario takes the tour itself, over HTTP, and prints each step's
// final outcome (it waits for each) and its console page, with a progress
// bar.
func runScenario(ctx context.Context, r ReadyLine, wsim *simwallet.Simulator, out io.Writer) error {
	secret, err := os.ReadFile(r.TES.SecretFile)
	if err != nil {
		return err
	}
	c := &scenarioClient{ctx: ctx, r: r, hc: &http.Client{Timeout: 40 * time.Second}, tesSecret: strings.TrimSpace(string(secret))}
	s := r.Sample
	var crmToken, itoken, reqID string
	steps := []scenarioStep{
		{"CRM login", func() (string, string, error) {
			m, err := c.post("/crmapi/rest/v2/authentication/token", nil, map[string]string{"username": r.CRM.Username, "password": r.CRM.Password, "organisation": r.CRM.Organisation})
			if err != nil {
				return "", "", err
			}
			data, _ := m["data"].(map[string]any)
			if crmToken, _ = data["token"].(string); crmToken == "" {
				return "", "", fmt.Errorf("no token: %v", m)
			}
			return "token issued", "", nil
		}},
		{"add a subscription", func() (string, string, error) {
			m, err := c.post("/crmapi/rest/v2/conax_web_services/provisioning_requests/add_subscriptions", nil, map[string]any{"token": crmToken,
				"subscription_identifier": map[string]string{"number": s.Subscription}, "service_identifier": map[string]string{"code": s.Service},
				"smartcard_identifier": map[string]string{"serial_number": s.Smartcard}, "process_immediately": true})
			if err != nil {
				return "", "", err
			}
			data, _ := m["data"].(map[string]any)
			reqID, _ = data["id"].(string)
			if reqID == "" {
				return "", "", fmt.Errorf("not accepted: %v", m)
			}
			return fmt.Sprintf("request %v accepted", data["number"]), "", nil
		}},
		{"show the request", func() (string, string, error) {
			var data map[string]any
			err := until(ctx, 60*time.Second, "the request's final state", func() (bool, error) {
				m, err := c.call(http.MethodGet, "/crmapi/rest/v2/conax_web_services/provisioning_requests/show?"+url.Values{
					"token": {crmToken}, "provisioning_request_identifier": {"id=" + reqID}}.Encode(), nil, nil)
				if err != nil {
					return false, err
				}
				data, _ = m["data"].(map[string]any)
				return data["life_cycle_state"] != "PENDING", nil
			})
			if err != nil {
				return "", "", err
			}
			return fmt.Sprintf("request %v %v", data["number"], data["life_cycle_state"]), fmt.Sprintf("/console/crm/%v", data["number"]), nil
		}},
		{"issuer token", func() (string, string, error) {
			tok, _, err := oauth.AccessTokenWithKeyFile(ctx, r.Hub, r.Issuer.ID, r.Issuer.Kid, r.Issuer.PrivateKeyFile, "")
			itoken = tok
			return "access token for " + r.Issuer.ID, "", err
		}},
		{"delete consumer " + s.DeleteConsumer, func() (string, string, error) {
			if _, err := c.post("/banking/v1/issuers/"+r.Issuer.ID+"/consumers/"+s.DeleteConsumer+"/operations:delete", map[string]string{"Authorization": "Bearer " + itoken},
				map[string]string{"reasonCode": "USER_DECISION"}); err != nil {
				return "", "", err
			}
			op, err := c.waitOperation(itoken, s.DeleteConsumer, "DELETE")
			if err != nil {
				return "", "", err
			}
			return fmt.Sprintf("operation %v %v", op["operationId"], op["status"]), fmt.Sprintf("/console/issuer/%v", op["operationId"]), nil
		}},
		{"top up " + s.TopUpCard, func() (string, string, error) {
			hdr := map[string]string{"requestId": fmt.Sprintf("sc-%d-1", s.Run), "sessionId": "scenario"}
			m, err := c.post("/tsh/transitapi/1/0/topupCard", nil, map[string]any{"requestHeader": hdr, "issuerId": r.Issuer.ID, "cardId": s.TopUpCard, "purchaseId": s.Purchase})
			if err != nil {
				return "", "", err
			}
			op, _ := m["operationId"].(string)
			if op == "" {
				return "", "", fmt.Errorf("not started: %v", m)
			}
			var final map[string]any
			err = until(ctx, 60*time.Second, "the top-up's end", func() (bool, error) {
				st, err := c.post("/tsh/transitapi/1/0/getOperationStatus", nil, map[string]any{"requestHeader": hdr, "issuerId": r.Issuer.ID, "operationId": op})
				if err != nil {
					return false, err
				}
				final, _ = st["operation"].(map[string]any)
				status, _ := final["status"].(string)
				return status == "COMPLETED" || status == "FAILED", nil
			})
			if err != nil {
				return "", "", err
			}
			return fmt.Sprintf("%v, balance %v", final["status"], final["balance"]), "/console/transit/operations/" + op, nil
		}},
		{"break it", func() (string, string, error) {
			var f simwallet.Faults
			if err := json.Unmarshal([]byte(demoBreakFaults), &f); err != nil {
				return "", "", err
			}
			if err := wsim.SetFaults(f); err != nil {
				return "", "", err
			}
			if _, err := c.post("/banking/v1/issuers/"+r.Issuer.ID+"/cards/"+s.TopUpCard+"/operations:suspend", map[string]string{"Authorization": "Bearer " + itoken},
				map[string]string{"reasonCode": "CARD_LOST"}); err != nil {
				return "", "", err
			}
			op, err := c.waitOperation(itoken, s.TopUpConsumer, "SUSPEND")
			if err != nil {
				return "", "", err
			}
			return fmt.Sprintf("suspension %v %v after a retry", op["status"], op["errorCode"]), "/console/transit?status=FAILED", nil
		}},
		{"send it again", func() (string, string, error) {
			task, err := c.sendAgain(s.TopUpCard)
			if err != nil {
				return "", "", err
			}
			err = until(ctx, 60*time.Second, "the task sent again completing", func() (bool, error) {
				page, err := c.consolePage("/console/transit?q=" + url.QueryEscape(task))
				if err != nil {
					return false, err
				}
				if strings.Contains(page, `data-id="`+task+`" data-status="FAILED"`) {
					return false, errors.New("the task sent again FAILED too")
				}
				return strings.Contains(page, `data-id="`+task+`" data-status="COMPLETED"`), nil
			})
			if err != nil {
				return "", "", err
			}
			return task + " COMPLETED: the digital card is suspended", "/console/transit?q=" + task, nil
		}},
	}
	for i, st := range steps {
		outcome, page, err := st.run()
		bar := strings.Repeat("#", i+1) + strings.Repeat(".", len(steps)-i-1)
		if err != nil {
			fmt.Fprintf(out, "[%s] %-26s FAILED: %v\n", bar, st.name, err)
			return err
		}
		if page != "" {
			outcome += "  (" + r.Hub + page + ")"
		}
		fmt.Fprintf(out, "[%s] %-26s %s\n", bar, st.name, outcome)
	}
	return nil
}
