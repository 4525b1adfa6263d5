package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/issuer"
	cassim "github.com/provhub/provhub/internal/sim/cas"
	simtes "github.com/provhub/provhub/internal/sim/tes"
	simwallet "github.com/provhub/provhub/internal/sim/wallet"
)

// operator logs an operator in to the console and returns a client that
// carries the session cookie.
type operator struct {
	e    *env
	http *http.Client
}

func (e *env) operatorClient(t *testing.T) *operator {
	t.Helper()
	if err := e.hub.Console().AddOperator(context.Background(), "olga", "operator-pass"); err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	o := &operator{e: e, http: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
	status, body := o.post(t, "/console/login", url.Values{"username": {"olga"}, "password": {"operator-pass"}, "next": {"/console/"}})
	if status != http.StatusOK || !strings.Contains(body, "Jobs by kind and state") {
		t.Fatalf("login: HTTP %d\n%s", status, body)
	}
	return o
}

func (o *operator) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := o.http.Get(o.e.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (o *operator) post(t *testing.T, path string, form url.Values) (int, string) {
	t.Helper()
	resp, err := o.http.PostForm(o.e.url+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9A-Fa-f]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the page:\n%s", page)
	}
	return m[1]
}

func TestConsole_LoginSessionsAndCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	anon := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := anon.Get(e.url + "/console/jobs?state=failed")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/login?next=") {
		t.Fatalf("anonymous visitor: HTTP %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if err := e.hub.Console().AddOperator(context.Background(), "olga", "operator-pass"); err != nil {
		t.Fatal(err)
	}
	resp, err = anon.PostForm(e.url+"/console/login", url.Values{"username": {"olga"}, "password": {"wrong-password"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "wrong password") || len(resp.Cookies()) != 0 {
		t.Fatalf("wrong password: HTTP %d %v", resp.StatusCode, resp.Cookies())
	}
	resp, err = anon.PostForm(e.url+"/console/login", url.Values{"username": {"olga"}, "password": {"operator-pass"}, "next": {"https://evil.example/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ck := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" || len(ck) != 1 || !ck[0].HttpOnly ||
		ck[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("login: HTTP %d to %q, cookies %+v", resp.StatusCode, resp.Header.Get("Location"), ck)
	}
	// The session cookie's token is stored hashed only.
	if n := e.count(`SELECT COUNT(*) FROM console_sessions WHERE token_hash = $1`, ck[0].Value); n != 0 {
		t.Error("the session token is stored in clear")
	}
	o := e.operatorClient(t)
	status, page := o.get(t, "/console/jobs")
	if status != http.StatusOK || !strings.Contains(page, "Content-Security-Policy") && resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("jobs page: HTTP %d", status)
	}
	// An action without the page's CSRF token, or from another origin, is refused.
	if status, _ := o.post(t, "/console/jobs/1/cancel", url.Values{}); status != http.StatusForbidden {
		t.Errorf("action without CSRF token: HTTP %d", status)
	}
	req, _ := http.NewRequest(http.MethodPost, e.url+"/console/jobs/1/cancel", strings.NewReader("csrf="+csrfOf(t, page)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	resp, err = o.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin action: HTTP %d", resp.StatusCode)
	}
	// A live page asks for its content only.
	req, _ = http.NewRequest(http.MethodGet, e.url+"/console/", nil)
	req.Header.Set("X-Console-Partial", "1")
	resp, err = o.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), "<html") || !strings.Contains(string(b), "Jobs by kind and state") {
		t.Errorf("partial page: %s", b)
	}
	// Logging out ends the session.
	if status, _ := o.post(t, "/console/logout", url.Values{"csrf": {csrfOf(t, page)}}); status != http.StatusOK {
		t.Errorf("logout: HTTP %d", status)
	}
	if status, page := o.get(t, "/console/jobs"); status != http.StatusOK || !strings.Contains(page, "Operator log in") {
		t.Errorf("after logout the console still opens")
	}
	// Lapsed sessions do not pile up: a login removes them.
	login := func() {
		t.Helper()
		resp, err := anon.PostForm(e.url+"/console/login", url.Values{"username": {"olga"}, "password": {"operator-pass"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	login()
	if n := e.count(`SELECT COUNT(*) FROM console_sessions`); n != 1 {
		t.Fatalf("%d sessions, want 1", n)
	}
	e.clock.Advance(9 * time.Hour)
	login()
	if n := e.count(`SELECT COUNT(*) FROM console_sessions`); n != 1 {
		t.Errorf("%d sessions after a login past the idle time, want 1", n)
	}
}

func TestConsole_CancelAndRetryAJobAreRecorded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	tok := e.login("mpadministrator", "mp-admin-1234")
	tomorrow := e.clock.Now().Add(24 * time.Hour).UTC().Format("2006-01-02T15:04:05")
	r := e.create(ws, "add_subscriptions", map[string]any{"token": tok, "subscription_identifier": map[string]string{"number": "S60058"},
		"service_identifier": map[string]string{"code": "MOVIES"}, "smartcard_identifier": map[string]string{"serial_number": "sc20000004"},
		"scheduled_date": tomorrow})
	job := e.jobOf(r.ID)
	if job.State != engine.StateScheduled {
		t.Fatalf("job %+v", job)
	}
	o := e.operatorClient(t)
	path := fmt.Sprintf("/console/jobs/%d", job.ID)
	_, page := o.get(t, path)
	if !strings.Contains(page, `id="cancel"`) || strings.Contains(page, `id="retry"`) {
		t.Fatalf("a scheduled job's page should offer cancel only:\n%s", page)
	}
	status, page := o.post(t, path+"/cancel", url.Values{"csrf": {csrfOf(t, page)}})
	if status != http.StatusOK || !strings.Contains(page, "cancel: done") || !strings.Contains(page, `id="retry"`) {
		t.Fatalf("cancel: HTTP %d\n%s", status, page)
	}
	if j, _ := e.hub.Engine().Get(context.Background(), job.ID); j.State != engine.StateCancelled {
		t.Fatalf("job after cancel: %s", j.State)
	}
	status, page = o.post(t, path+"/retry", url.Values{"csrf": {csrfOf(t, page)}})
	if status != http.StatusOK || !strings.Contains(page, "retry: done") {
		t.Fatalf("retry: HTTP %d\n%s", status, page)
	}
	for _, want := range []string{"<td>olga</td><td>cancel</td><td>done</td>", "<td>olga</td><td>retry</td><td>done</td>"} {
		if !strings.Contains(page, want) {
			t.Errorf("the job page does not show %q", want)
		}
	}
	// The cancel ended the request for good: REJECTED as CANCELLED, and
	// the job retried afterwards finds it ended and sends nothing.
	if got := e.show(ws, tok, r.ID); got.LifeCycleState != "REJECTED" || str(got.ErrorCode) != "CANCELLED" {
		t.Errorf("after the cancel, the request is %s %s", got.LifeCycleState, str(got.ErrorCode))
	}
	waitFor(t, "the retried job to end", func() bool {
		j, err := e.hub.Engine().Get(context.Background(), job.ID)
		return err == nil && j.State == engine.StateCompleted
	})
	if got := e.show(ws, tok, r.ID); got.LifeCycleState != "REJECTED" || e.sim.Stats().Commands != 0 {
		t.Errorf("a cancelled request was sent after all: %+v", got)
	}
	// A second cancel of a finished job is refused, and recorded as such.
	_, page = o.get(t, path)
	if strings.Contains(page, `id="cancel"`) {
		t.Error("a finished job offers cancel")
	}
	_, page = o.post(t, path+"/cancel", url.Values{"csrf": {csrfOf(t, page)}})
	if !strings.Contains(page, "cancel: refused") {
		t.Errorf("cancelling a finished job:\n%s", page)
	}
	// The lists show it.
	if _, page := o.get(t, "/console/crm?state=REJECTED"); !strings.Contains(page, fmt.Sprintf(`data-number="%s" data-state="REJECTED"`, r.Number)) {
		t.Errorf("CRM list:\n%s", page)
	}
	if _, page := o.get(t, "/console/"); !strings.Contains(page, "paytv.send_request") || !strings.Contains(page, "CAS") {
		t.Errorf("dashboard:\n%s", page)
	}
	// The operator's session lapses over a day: it logs in again.
	e.clock.Advance(25 * time.Hour)
	if _, page := o.get(t, path); !strings.Contains(page, "Operator log in") {
		t.Error("a session idle for a day still opens the console")
	}
}

func TestConsole_ListsShowIssuerOperationsTransitAndDevices(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, consoleLists)
}

func consoleLists(t *testing.T, e *env) {
	keys, _ := e.issuerKeys()
	tok := e.accessToken(keys[issuerA], issuerA)
	e.registerCard(tok, "CARD-CON", "connie", "")
	wcConnie := e.digital("0C0C0C01", "CARD-CON", true)
	var res opResult
	e.mustBank(http.StatusOK, &res, conforming, tok, "POST", "/issuers/"+issuerA+"/consumers/connie/operations:delete", "", nil)
	e.waitOperation(tok, "connie", res.OperationID)
	cardID, _, se := e.transitCard(9, 10)
	o := e.operatorClient(t)
	for path, wants := range map[string][]string{
		"/console/issuer?status=SUCCESSFUL":   {fmt.Sprintf(`data-id="%s" data-status="SUCCESSFUL"`, res.OperationID), "connie", "DELETE"},
		"/console/transit":                    {"PERSONALIZE", cardID},
		"/console/devices":                    {fmt.Sprintf(`data-se="%s"`, se), cardID, "ACTIVE"},
		"/console/jobs?kind=issuer.operation": {"issuer.operation", "completed"},
		"/console/":                           {"issuer.operation", "wallet server (through wallet tasks)", "transit.wallet_task"},
	} {
		status, page := o.get(t, path)
		if status != http.StatusOK {
			t.Errorf("%s: HTTP %d", path, status)
		}
		for _, w := range wants {
			if !strings.Contains(page, w) {
				t.Errorf("%s does not show %q", path, w)
			}
		}
	}
	// Detail pages.
	tokCRM := e.login("mpadministrator", "mp-admin-1234")
	req := e.create(ws, "add_subscriptions", map[string]any{"token": tokCRM, "subscription_identifier": map[string]string{"number": "S60058"},
		"service_identifier": map[string]string{"code": "BASIC"}, "smartcard_identifier": map[string]string{"serial_number": "S60058"},
		"process_immediately": true})
	_ = e.tsim.AddPurchase(simtes.Purchase{ID: "P-CON", CardAccountID: cardID, Amount: 5})
	top := e.startTopUp(cardID, "P-CON")
	e.waitOp(top.OperationID)
	for path, wants := range map[string][]string{
		"/console/crm/" + req.Number:         {`id="request-state">COMPLETED`, "service_ca_id=1001", "ADD_SUBSCRIPTIONS"},
		"/console/issuer/" + res.OperationID: {`id="operation-status">SUCCESSFUL`, "connie", "ISSUER_DECISION"},
		"/console/transit/operations/" + top.OperationID: {`id="operation-status">COMPLETED`, "P-CON", "Relay steps", "poll",
			// Decoded: the FeliCa frames by name, the purse read off the card.
			"FELICA Polling", "Read Without Encryption response", "purse: balance 10", "00 00 success", "statusCode 0"},
	} {
		status, page := o.get(t, path)
		if status != http.StatusOK {
			t.Errorf("%s: HTTP %d", path, status)
		}
		for _, w := range wants {
			if !strings.Contains(page, w) {
				t.Errorf("%s does not show %q", path, w)
			}
		}
	}
	// Each record links its job, and the job links the record back.
	for path, back := range map[string]string{
		"/console/crm/" + req.Number:                     `id="record" href="/console/crm/` + req.Number + `"`,
		"/console/issuer/" + res.OperationID:             `id="record" href="/console/issuer/` + res.OperationID + `"`,
		"/console/transit/operations/" + top.OperationID: `id="record" href="/console/transit/operations/` + top.OperationID + `"`,
	} {
		_, page := o.get(t, path)
		m := regexp.MustCompile(`<a href="(/console/jobs/\d+)" id="record-job">`).FindStringSubmatch(page)
		if m == nil {
			t.Errorf("%s links no job:\n%s", path, page)
			continue
		}
		if _, job := o.get(t, m[1]); !strings.Contains(job, back) {
			t.Errorf("%s (the job of %s) does not link back: lacks %s", m[1], path, back)
		}
	}
	// Search: by the identifiers an operator has at hand.
	for path, want := range map[string]string{
		"/console/issuer?q=connie":        fmt.Sprintf(`data-id="%s"`, res.OperationID),
		"/console/transit?q=" + se:        fmt.Sprintf(`data-id="%s"`, top.OperationID),
		"/console/devices?q=" + cardID:    fmt.Sprintf(`data-se="%s"`, se),
		"/console/jobs?q=" + se:           "transit.wallet_task",
		"/console/crm?q=S60058":           fmt.Sprintf(`data-number="%s"`, req.Number),
		"/console/crm?q=" + req.Number:    "<code>subscription number=S60058</code>",
		"/console/crm?q=1001":             fmt.Sprintf(`data-number="%s"`, req.Number),
		"/console/issuer?q=someone-else":  "No operations match.",
		"/console/transit?q=someone-else": "No wallet tasks match.",
		"/console/devices?q=someone-else": "No device holds a card",
		"/console/crm?q=S6005%25":         "No requests match.",
	} {
		if _, page := o.get(t, path); !strings.Contains(page, want) {
			t.Errorf("%s does not show %q", path, want)
		}
	}
	for _, path := range []string{"/console/crm/999999", "/console/issuer/op-none", "/console/transit/operations/dop-none", "/console/crm/x"} {
		if status, _ := o.get(t, path); status != http.StatusNotFound {
			t.Errorf("%s: HTTP %d, want 404", path, status)
		}
	}
	// Each instance counts what it ended.
	e.metricsHave(t,
		`provhub_device_operations_total{kind="TOPUP",status="COMPLETED",status_code="0"} 1`,
		`provhub_issuer_operations_total{error_code="",operation="DELETE",status="SUCCESSFUL"} 1`,
		`provhub_crm_requests_total{error_code="",state="COMPLETED",type="ADD_SUBSCRIPTIONS"} 1`,
		`provhub_wallet_tasks_total{operation="DELETE",status="COMPLETED",status_code=""} 1`)
	// The deleted consumer's digital card is gone from the devices page.
	if _, page := o.get(t, "/console/devices"); strings.Contains(page, wcConnie) {
		t.Error("the devices page shows a deleted consumer's digital card")
	}
}

// A card's art is on the devices page, served to operators only and only
// as the image it was checked to be.
func TestConsole_ShowsACardsArt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	art := e.artAsset("TRANSIT1", 4)
	terms, err := e.hub.Assets().Add(context.Background(), "TRANSIT1", "text/html", []byte("<p>terms</p><script>alert(1)</script>"), "")
	if err != nil {
		t.Fatal(err)
	}
	e.opaqueFor("TRANSIT1", "ACC-ART")
	termsID := terms.GUID
	if err := e.hub.Issuer().RegisterCard(context.Background(), "TRANSIT1", "ACC-ART", issuer.CardInput{CardProductID: "TRANSIT_PRODUCT",
		CardArt: []string{art}, SetCardArt: true, TermsID: &termsID}, issuer.Requestor{Type: issuer.RequestorIssuer, ID: "TRANSIT1"}); err != nil {
		t.Fatal(err)
	}
	e.provision("0C0C0C02", "ACC-ART")
	o := e.operatorClient(t)
	_, page := o.get(t, "/console/devices")
	if !strings.Contains(page, `src="/console/assets/`+art+`"`) {
		t.Fatalf("the devices page shows no art for the card:\n%s", page)
	}
	resp, err := o.http.Get(e.url + "/console/assets/" + art)
	if err != nil {
		t.Fatal(err)
	}
	img, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" || resp.Header.Get("X-Content-Type-Options") != "nosniff" ||
		!bytes.Equal(img, pngImage(12, 5)) {
		t.Fatalf("art: HTTP %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(img))
	}
	// Terms (HTML) are not served as a page of the console's origin.
	if status, _ := o.get(t, "/console/assets/"+terms.GUID); status != http.StatusNotFound {
		t.Errorf("terms through the console: HTTP %d", status)
	}
	// Without a session: the login page, not the image.
	anon := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = anon.Get(e.url + "/console/assets/" + art)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Error("the art is served without a session")
	}
}

// The dashboard counts what the domains ended with, not only job states:
// a CRM request the CAS refused and a wallet task the wallet server failed
// turn it red, each with its code and a link to its records; what is
// retrying now is listed with its last error.
func TestConsole_TheDashboardShowsFailuresAsFailures(t *testing.T) {
	t.Parallel()
	both(t, envOptions{sendAttempts: 50}, func(t *testing.T, e *env) {
		o := e.operatorClient(t)
		if _, page := o.get(t, "/console/"); !strings.Contains(page, "no failure in the last 24 hours") ||
			!strings.Contains(page, `id="live"`) || !strings.Contains(page, `<text class="axis" x="4" y="55" transform="rotate(-90 8 55)">jobs/min</text>`) {
			t.Fatalf("a fresh hub is not green, or the page has no live badge or chart axes:\n%s", page)
		}
		tok := e.login("mpadministrator", "mp-admin-1234")
		add := func(serial string) request {
			return e.create(ws, "add_subscriptions", map[string]any{"token": tok,
				"subscription_identifier": map[string]string{"number": "S60058"}, "service_identifier": map[string]string{"code": "BASIC"},
				"smartcard_identifier": map[string]string{"serial_number": serial}})
		}
		if r := e.waitFinal(ws, tok, add("sc-unknown-to-cas").ID); r.LifeCycleState != "REJECTED" {
			t.Fatalf("the CAS refusal: %+v", r)
		}
		cardID, _ := e.provision("0D0D0D0D", "ACC-DASH")
		if err := e.wsim.SetFaults(simwallet.Faults{FailedNext: 1, FailedOp: "sendScript"}); err != nil {
			t.Fatal(err)
		}
		if tk := e.waitTask(cardID, e.perso(cardID).TaskID); tk.Status != "FAILED" {
			t.Fatalf("the failed task: %+v", tk)
		}
		// The CAS goes away: a request retries, and says so.
		if err := e.sim.SetFaults(cassim.Faults{ErrorRate: 1}); err != nil {
			t.Fatal(err)
		}
		retrying := add("sc20000002")
		waitFor(t, "the request to fail an attempt", func() bool { return len(e.jobOf(retrying.ID).Errors) > 0 })
		_, page := o.get(t, "/console/")
		for _, want := range []string{
			`id="outcome-badge">failures in the last 24 hours`,
			`class="outcome bad" href="/console/crm?state=REJECTED" data-outcome="REJECTED CAS_REJECTED"`,
			`class="outcome bad" href="/console/transit?status=FAILED" data-outcome="FAILED 911"`,
			`data-outcome="PENDING retrying"`,
			`<a href="/console/jobs?kind=paytv.send_request">paytv.send_request</a>`,
			"injected server error",
		} {
			if !strings.Contains(page, want) {
				t.Errorf("the dashboard lacks %s", want)
			}
		}
		if t.Failed() {
			t.Logf("%s", page)
		}
		// The same figures for Prometheus.
		e.metricsHave(t,
			`provhub_outcomes_last_24h{code="CAS_REJECTED",domain="crm_requests",state="REJECTED"} 1`,
			`provhub_outcomes_last_24h{code="911",domain="wallet_tasks",state="FAILED"} 1`,
			// The same outcomes as counters of the instance that ended them.
			`provhub_crm_requests_total{error_code="CAS_REJECTED",state="REJECTED",type="ADD_SUBSCRIPTIONS"} 1`,
			`provhub_wallet_tasks_total{operation="PERSONALIZE",status="FAILED",status_code="911"} 1`,
			`provhub_downstream_call_errors_total{system="cas"} `)
		if err := e.sim.SetFaults(cassim.Faults{}); err != nil {
			t.Fatal(err)
		}
		e.waitFinal(ws, tok, retrying.ID)
	})
}

// A job's page links the record it works for.
func TestConsole_AJobLinksItsRecord(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	o := e.operatorClient(t)
	tok := e.login("mpadministrator", "mp-admin-1234")
	req := e.create(ws, "add_subscriptions", map[string]any{"token": tok, "subscription_identifier": map[string]string{"number": "S60058"},
		"service_identifier": map[string]string{"code": "BASIC"}, "smartcard_identifier": map[string]string{"serial_number": "sc20000002"}})
	e.waitFinal(ws, tok, req.ID)
	cardID, _ := e.provision("0D0E0F01", "ACC-LINK")
	task := e.perso(cardID)
	e.waitTask(cardID, task.TaskID)
	for _, c := range []struct {
		job  int64
		link string
	}{
		{e.jobOf(req.ID).ID, `id="record" href="/console/crm/` + req.Number + `"`},
		{e.waitTask(cardID, task.TaskID).JobID, `id="record" href="/console/transit/tasks/` + task.TaskID + `"`},
	} {
		if _, page := o.get(t, fmt.Sprintf("/console/jobs/%d", c.job)); !strings.Contains(page, c.link) {
			t.Errorf("job %d's page lacks %s", c.job, c.link)
		}
	}
	if _, page := o.get(t, "/console/transit"); !strings.Contains(page, `href="/console/transit/tasks/`+task.TaskID+`"`) {
		t.Error("the transit page does not link the task")
	}
	// The task's page: its job, and its script decoded, without the
	// personalisation data (kept nowhere once the task has ended).
	_, page := o.get(t, "/console/transit/tasks/"+task.TaskID)
	for _, want := range []string{`id="task-status">COMPLETED`, fmt.Sprintf(`href="/console/jobs/%d" id="record-job"`, e.waitTask(cardID, task.TaskID).JobID),
		"INSTALL for install and make selectable", "SELECT by AID", "STORE DATA", "data withheld"} {
		if !strings.Contains(page, want) {
			t.Errorf("the task's page lacks %q", want)
		}
	}
	for _, secret := range []string{"0102030405", strings.Repeat("AB", 40)} {
		if strings.Contains(page, secret) {
			t.Errorf("the task's page shows personalisation data %s", secret)
		}
		if n := e.count(`SELECT COUNT(*) FROM transit_tasks WHERE task_id = $1 AND (outline LIKE $2 OR payload LIKE $2)`, task.TaskID, "%"+secret+"%"); n != 0 {
			t.Errorf("the ended task keeps personalisation data %s", secret)
		}
	}
	if status, _ := o.get(t, "/console/transit/tasks/pvh-0"); status != http.StatusNotFound {
		t.Errorf("an unknown task: HTTP %d", status)
	}
}

// metricsHave checks that the hub's /metrics holds each line given.
func (e *env) metricsHave(t *testing.T, lines ...string) {
	t.Helper()
	resp, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range lines {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestConsole_ANULCharacterIsABadRequestNotAServerError: a NUL in a login
// form, a search or a path (which PostgreSQL cannot store or compare)
// gets HTTP 400, before and after logging in.
func TestConsole_ANULCharacterIsABadRequestNotAServerError(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		o := e.operatorClient(t)
		resp, err := http.PostForm(e.url+"/console/login", url.Values{"username": {"ol\x00ga"}, "password": {"operator-pass"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("a login with a NUL: HTTP %d, want 400", resp.StatusCode)
		}
		for _, path := range []string{"/console/jobs?q=a%00b", "/console/crm?q=a%00b", "/console/transit?q=a%00b",
			"/console/transit/tasks/pvh-%00", "/console/issuer/op%00", "/console/transit/operations/dop%00", "/console/devices?q=%00"} {
			if status, body := o.get(t, path); status != http.StatusBadRequest {
				t.Errorf("GET %s: HTTP %d, want 400\n%.200s", path, status, body)
			}
		}
		if status, _ := o.get(t, "/console/jobs?q=ab"); status != http.StatusOK {
			t.Errorf("a search without a NUL: HTTP %d", status)
		}
	})
}
