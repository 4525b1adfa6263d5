package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/provhub/provhub/api"
	simtes "github.com/provhub/provhub/internal/sim/tes"
	simwallet "github.com/provhub/provhub/internal/sim/wallet"
)

// browser starts Debian's Chromium, headless, for one test. It fails the
// test, never skips it, when Chromium cannot start: .ci/run installs it.
// Only -short (the quick loop) skips the browser tests.
func browser(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: drives Chromium")
	}
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed (apt-get install chromium; .ci/run does it): %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("chromium did not start: %v", err)
	}
	return ctx
}

// screenshot saves the page as a test artifact, in $PROVHUB_TEST_ARTIFACTS
// (default: a folder under the system's temporary folder). It waits for a
// loaded, laid-out document first: a page caught between two documents has
// no size to capture.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if err := saveScreenshot(t, ctx, name); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
}

func saveScreenshot(t *testing.T, ctx context.Context, name string) error {
	t.Helper()
	dir := os.Getenv("PROVHUB_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "provhub-test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`document.readyState === "complete" && document.documentElement.scrollWidth > 0`)); err != nil {
		return fmt.Errorf("wait for a laid-out page: %w", err)
	}
	png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	if err != nil {
		return err
	}
	file := filepath.Join(dir, name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		return err
	}
	t.Logf("screenshot: %s", file)
	return nil
}

// stepFailed reports a failed browser step with a screenshot of the page; a
// screenshot that cannot be taken is logged, so that it never hides the
// step's own error.
func stepFailed(t *testing.T, ctx context.Context, what string, err error) {
	t.Helper()
	if serr := saveScreenshot(t, ctx, "failed-"+strings.ReplaceAll(what, " ", "-")); serr != nil {
		t.Logf("no screenshot of the failure: %v", serr)
	}
	t.Fatalf("%s: %v", what, err)
}

// steps runs browser actions with a deadline.
func steps(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, actions...); err != nil {
		stepFailed(t, ctx, what, err)
	}
}

// submit clicks a form's button and waits for the document the form's
// answer loads (not the one it leaves, which may show the same elements),
// then for ready. The old document is marked before the click; the new one
// is the first loaded document without the mark. While the browser is
// between the two, a probe fails ("context destroyed") and is asked again.
func submit(t *testing.T, ctx context.Context, what string, button string, ready chromedp.Action[chromedp.Void]) {
	t.Helper()
	steps(t, ctx, what+": click",
		chromedp.Evaluate[chromedp.Void](`window.__provhubLeft = true`),
		chromedp.Click(chromedp.CSS(button)),
	)
	deadline := time.Now().Add(30 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		arrived, err := chromedp.Run(pctx, chromedp.Evaluate[bool](`window.__provhubLeft !== true && document.readyState === "complete"`))
		cancel()
		if err == nil && arrived {
			break
		}
		if time.Now().After(deadline) {
			stepFailed(t, ctx, what, fmt.Errorf("the form's answer did not load (last probe: %v)", err))
		}
		time.Sleep(50 * time.Millisecond)
	}
	steps(t, ctx, what, ready)
}

// value runs one browser action that answers a value, with a deadline.
func value[T any](t *testing.T, ctx context.Context, what string, action chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, action)
	if err != nil {
		stepFailed(t, ctx, what, err)
	}
	return v
}

func loginInBrowser(t *testing.T, e *env, ctx context.Context) {
	t.Helper()
	if err := e.hub.Console().AddOperator(context.Background(), "olga", "operator-pass"); err != nil {
		t.Fatal(err)
	}
	steps(t, ctx, "log in",
		chromedp.Navigate(e.url+"/console/crm"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "olga"),
		chromedp.SendKeys(chromedp.ID("password"), "operator-pass"),
	)
	submit(t, ctx, "log in", "#login", chromedp.WaitVisible(chromedp.ID("requests")))
}

// TestBrowser_ARequestTurnsCompletedWithoutAReload logs in, adds a
// subscription through the CRM API, due a few seconds later, and watches
// the console's list show it PENDING, then COMPLETED, without the page
// being reloaded.
func TestBrowser_ARequestTurnsCompletedWithoutAReload(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := browser(t)
	loginInBrowser(t, e, ctx)
	screenshot(t, ctx, "crm-list-empty")
	// Due in a few seconds, so that the page shows it PENDING first.
	tok := e.login("mpadministrator", "mp-admin-1234")
	due := e.clock.Now().Add(6 * time.Second).UTC().Format("2006-01-02T15:04:05")
	r := e.create(ws, "add_subscriptions", map[string]any{"token": tok, "subscription_identifier": map[string]string{"number": "S60058"},
		"service_identifier": map[string]string{"code": "SPORTS"}, "smartcard_identifier": map[string]string{"serial_number": "sc20000005"},
		"scheduled_date": due})
	if r.LifeCycleState != "PENDING" {
		t.Fatalf("request %+v", r)
	}
	row := fmt.Sprintf(`tr[data-number="%s"]`, r.Number)
	steps(t, ctx, "see it PENDING", chromedp.WaitVisible(chromedp.CSS(row+`[data-state="PENDING"]`)))
	value(t, ctx, "mark the page", chromedp.Evaluate[bool](`window.__stillThisPage = true`))
	screenshot(t, ctx, "crm-request-pending")
	steps(t, ctx, "see it COMPLETED", chromedp.WaitVisible(chromedp.CSS(row+`[data-state="COMPLETED"]`)))
	marked := value(t, ctx, "read the mark", chromedp.Evaluate[bool](`window.__stillThisPage === true`))
	// The badge says when the page was last refreshed.
	if live := value(t, ctx, "read the live badge", chromedp.Evaluate[string](`document.getElementById("live").textContent`)); !strings.HasPrefix(live, "\u25cf live, ") {
		t.Errorf("live badge %q", live)
	}
	screenshot(t, ctx, "crm-request-completed")
	if !marked {
		t.Error("the page was reloaded to show the change")
	}
	steps(t, ctx, "open the dashboard", chromedp.Navigate(e.url+"/console/"), chromedp.WaitVisible(chromedp.ID("counts")))
	if got := value(t, ctx, "read the counts", chromedp.Text(chromedp.ID("counts"))); !strings.Contains(got, "paytv.send_request") {
		t.Errorf("dashboard counts: %q", got)
	}
	screenshot(t, ctx, "dashboard")
}

// TestBrowser_CancelAndRetryAJobFromTheConsole cancels a queued job from its
// page, retries it, and watches it complete.
func TestBrowser_CancelAndRetryAJobFromTheConsole(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := browser(t)
	loginInBrowser(t, e, ctx)
	tok := e.login("mpadministrator", "mp-admin-1234")
	soon := e.clock.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05")
	r := e.create(ws, "add_subscriptions", map[string]any{"token": tok, "subscription_identifier": map[string]string{"number": "S60058"},
		"service_identifier": map[string]string{"code": "MOVIES"}, "smartcard_identifier": map[string]string{"serial_number": "sc20000006"},
		"scheduled_date": soon})
	job := e.jobOf(r.ID)
	steps(t, ctx, "open the job",
		chromedp.Navigate(fmt.Sprintf("%s/console/jobs/%d", e.url, job.ID)),
		chromedp.WaitVisible(chromedp.ID("cancel")),
	)
	submit(t, ctx, "cancel", "#cancel", chromedp.WaitVisible(chromedp.ID("retry")))
	if flash := value(t, ctx, "read the message", chromedp.Text(chromedp.CSS(".flash"))); !strings.Contains(flash, "cancel: done") {
		t.Errorf("after cancel: %q", flash)
	}
	screenshot(t, ctx, "job-cancelled")
	// The page left behind shows a flash too ("cancel: done"): submit waits
	// for the retry's own answer.
	submit(t, ctx, "retry", "#retry", chromedp.WaitVisible(chromedp.CSS(".flash")))
	if flash := value(t, ctx, "read the message", chromedp.Text(chromedp.CSS(".flash"))); !strings.Contains(flash, "retry: done") {
		t.Errorf("after retry: %q", flash)
	}
	e.clock.Advance(2 * time.Hour) // the request's date comes
	value(t, ctx, "see it completed",
		chromedp.Poll[bool](`document.getElementById("job-state").textContent === "completed"`, chromedp.WithPollingTimeout(20*time.Second)))
	state := value(t, ctx, "read the state", chromedp.Text(chromedp.ID("job-state")))
	screenshot(t, ctx, "job-completed")
	if state != "completed" {
		t.Errorf("job state %q", state)
	}
}

// TestBrowser_AWalletTaskFailedByAFaultIsSentAgainFromTheConsole makes the
// wallet server fail every call (a fault knob), so that a SUSPEND task
// fails after its retries; the operator fixes nothing but the knob, sends
// the task again from the console, and watches the new task complete.
func TestBrowser_AWalletTaskFailedByAFaultIsSentAgainFromTheConsole(t *testing.T) {
	e := newEnv(t, envOptions{})
	cardID, _ := e.provision("0F0F0F01", "ACC-CONSOLE")
	if task := e.waitTask(cardID, e.perso(cardID).TaskID); task.Status != "COMPLETED" {
		t.Fatalf("perso: %+v", task)
	}
	f := e.wsim.Faults()
	f.ErrorRate = 1
	if err := e.wsim.SetFaults(f); err != nil {
		t.Fatal(err)
	}
	failed := e.waitTask(cardID, e.state(cardID, "SUSPEND").TaskID)
	if failed.Status != "FAILED" {
		t.Fatalf("task under the fault: %+v", failed)
	}
	f.ErrorRate = 0
	if err := e.wsim.SetFaults(f); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)
	loginInBrowser(t, e, ctx)
	steps(t, ctx, "open the failed task",
		chromedp.Navigate(e.url+"/console/transit?status=FAILED"),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-id="%s"][data-status="FAILED"] button.resend`, failed.TaskID))),
	)
	screenshot(t, ctx, "task-failed")
	submit(t, ctx, "send it again", fmt.Sprintf(`button.resend[data-task="%s"]`, failed.TaskID), chromedp.WaitVisible(chromedp.CSS(".flash")))
	flash := value(t, ctx, "read the message", chromedp.Text(chromedp.CSS(".flash")))
	if !strings.Contains(flash, "sent again as pvh-") {
		t.Fatalf("after sending again: %q", flash)
	}
	newTask := strings.TrimSpace(flash[strings.LastIndex(flash, "pvh-"):])
	steps(t, ctx, "see the new task complete",
		chromedp.Navigate(e.url+"/console/transit"),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-id="%s"][data-status="COMPLETED"]`, newTask))),
	)
	screenshot(t, ctx, "task-sent-again")
	if !instanceOn(e, "0F0F0F01").Locked {
		t.Error("the card was not suspended on the secure element")
	}
	if c := e.card(cardID); c.State != "SUSPENDED" {
		t.Errorf("card state %s", c.State)
	}
	if n := e.count(`SELECT COUNT(*) FROM console_actions WHERE target = $1 AND action = 'resend' AND username = 'olga'`, "task:"+failed.TaskID); n != 1 {
		t.Errorf("%d recorded resend actions", n)
	}
}

// consoleErrors collects what pages write to the browser's console as
// errors or exceptions (a script error, a refused resource, a CSP
// violation) from now until the test ends.
func consoleErrors(t *testing.T, ctx context.Context) func() []string {
	t.Helper()
	lctx, cancel := context.WithCancel(ctx)
	messages := chromedp.Console(lctx)
	var mu sync.Mutex
	var errs []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				errs = append(errs, m.String())
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(errs)
	}
}

// TestBrowser_TheFrontDoorAndEveryAPIReferenceLoadWithoutErrors opens the
// front door, follows its link to each rendered API reference, and waits
// for Redoc to draw the document's operations, with nothing on the
// browser's console.
func TestBrowser_TheFrontDoorAndEveryAPIReferenceLoadWithoutErrors(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := browser(t)
	steps(t, ctx, "open the browser") // the tab exists before listening
	errs := consoleErrors(t, ctx)
	steps(t, ctx, "open the front door", chromedp.Navigate(e.url+"/"), chromedp.WaitVisible(chromedp.CSS(`a[href="/console/"]`)))
	screenshot(t, ctx, "front-door")
	links := value(t, ctx, "read the reference links", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('a[href^="/reference/"]')].map(a => a.getAttribute("href")).filter(h => h !== "/reference/")`))
	if len(links) != len(api.Documents()) {
		t.Fatalf("the front door links %d references, want one per document (%d): %v", len(links), len(api.Documents()), links)
	}
	for _, link := range links {
		steps(t, ctx, "open "+link, chromedp.Navigate(e.url+link))
		// Redoc draws each operation under an id of its own.
		value(t, ctx, "see "+link+" drawn",
			chromedp.Poll[bool](`document.querySelectorAll('[id^="operation/"], [id^="tag/"]').length > 0`, chromedp.WithPollingTimeout(20*time.Second)))
		title := value(t, ctx, "read the title", chromedp.Evaluate[string](`document.querySelector("h1") ? document.querySelector("h1").textContent : ""`))
		if title == "" {
			t.Errorf("%s: the reference has no title", link)
		}
	}
	screenshot(t, ctx, "api-reference")
	if got := errs(); len(got) > 0 {
		t.Errorf("the browser's console shows errors:\n%s", strings.Join(got, "\n"))
	}
}

// TestBrowser_FailuresShowAsFailuresAndRecordsLinkTheirJobs has the CAS
// refuse a request and the wallet server fail a task: the dashboard turns
// red, its failure cells lead to the records, a record leads to its job
// and the job back to the record; a device operation's page shows its
// frames decoded.
func TestBrowser_FailuresShowAsFailuresAndRecordsLinkTheirJobs(t *testing.T) {
	e := newEnv(t, envOptions{})
	tok := e.login("mpadministrator", "mp-admin-1234")
	rejected := e.waitFinal(ws, tok, e.create(ws, "add_subscriptions", map[string]any{"token": tok,
		"subscription_identifier": map[string]string{"number": "S60058"}, "service_identifier": map[string]string{"code": "BASIC"},
		"smartcard_identifier": map[string]string{"serial_number": "sc-unknown-to-cas"}}).ID)
	if rejected.LifeCycleState != "REJECTED" {
		t.Fatalf("the CAS refusal: %+v", rejected)
	}
	cardID, _, _ := e.transitCard(77, 100)
	if err := e.tsim.AddPurchase(simtes.Purchase{ID: "P-BROWSER", CardAccountID: cardID, Amount: 5}); err != nil {
		t.Fatal(err)
	}
	top := e.startTopUp(cardID, "P-BROWSER")
	if op := e.waitOp(top.OperationID); op.Status != "COMPLETED" {
		t.Fatalf("top-up: %+v", op)
	}
	// Kept for sendScript: a notification of the top-up in flight cannot
	// take it.
	if err := e.wsim.SetFaults(simwallet.Faults{FailedNext: 1, FailedOp: "sendScript"}); err != nil {
		t.Fatal(err)
	}
	second, _ := e.provision("0B0B0B77", "ACC-BROWSER")
	failed := e.waitTask(second, e.perso(second).TaskID)
	if failed.Status != "FAILED" {
		t.Fatalf("the failed task: %+v", failed)
	}
	ctx := browser(t)
	loginInBrowser(t, e, ctx)
	errs := consoleErrors(t, ctx)
	steps(t, ctx, "open the dashboard", chromedp.Navigate(e.url+"/console/"), chromedp.WaitVisible(chromedp.ID("outcome-badge")))
	if badge := value(t, ctx, "read the badge", chromedp.Text(chromedp.ID("outcome-badge"))); badge != "failures in the last 24 hours" {
		t.Errorf("badge %q", badge)
	}
	legend := value(t, ctx, "read the chart's legend", chromedp.Text(chromedp.ID("chart-legend")))
	if !strings.Contains(legend, "paytv.send_request") || !strings.Contains(legend, "transit.wallet_task") {
		t.Errorf("the chart has no series per kind: %q", legend)
	}
	screenshot(t, ctx, "dashboard-with-failures")
	// The wallet task's failure, with its code, leads to the task.
	submit(t, ctx, "open the failed tasks", `a.outcome.bad[data-outcome="FAILED 911"]`,
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-id="%s"][data-status="FAILED"]`, failed.TaskID))))
	// Its page: the code with its meaning, the script decoded (its
	// personalisation data withheld), and its job.
	submit(t, ctx, "open the failed task", fmt.Sprintf(`tr[data-id="%s"] td a`, failed.TaskID), chromedp.WaitVisible(chromedp.ID("script")))
	if outcome := value(t, ctx, "read the outcome", chromedp.Text(chromedp.ID("task-outcome"))); !strings.Contains(outcome, "911 operation failed") {
		t.Errorf("the task's outcome %q", outcome)
	}
	script := value(t, ctx, "read the script", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll("#script tbody tr")].map(r => r.cells[2].textContent + " | " + r.cells[4].textContent)`))
	if len(script) < 3 || !strings.HasPrefix(script[0], "INSTALL for install and make selectable") || !strings.HasPrefix(script[1], "SELECT by AID") ||
		!slices.ContainsFunc(script, func(r string) bool { return strings.HasPrefix(r, "STORE DATA | data withheld") }) {
		t.Errorf("the decoded script: %q", script)
	}
	screenshot(t, ctx, "wallet-task-failed")
	// The CRM refusal leads to the request, the request to its job, the
	// job back to the request.
	steps(t, ctx, "back to the dashboard", chromedp.Navigate(e.url+"/console/"), chromedp.WaitVisible(chromedp.ID("outcome-badge")))
	submit(t, ctx, "open the rejected requests", `a.outcome.bad[data-outcome="REJECTED CAS_REJECTED"]`,
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-number="%s"][data-state="REJECTED"]`, rejected.Number))))
	submit(t, ctx, "open the request", fmt.Sprintf(`tr[data-number="%s"] a`, rejected.Number), chromedp.WaitVisible(chromedp.ID("record-job")))
	if state := value(t, ctx, "read the state", chromedp.Text(chromedp.ID("request-state"))); state != "REJECTED" {
		t.Errorf("request state %q", state)
	}
	submit(t, ctx, "open its job", "#record-job", chromedp.WaitVisible(chromedp.ID("record")))
	submit(t, ctx, "back to the request", "#record", chromedp.WaitVisible(chromedp.ID("request-state")))
	if url := value(t, ctx, "read the address", chromedp.Location()); !strings.HasSuffix(url, "/console/crm/"+rejected.Number) {
		t.Errorf("the job led to %s", url)
	}
	// A device operation's frames, decoded, the raw hex a click away.
	steps(t, ctx, "open the top-up", chromedp.Navigate(e.url+"/console/transit/operations/"+top.OperationID),
		chromedp.WaitVisible(chromedp.CSS("table.trace")))
	rows := value(t, ctx, "read the decoded rows", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll("table.trace tr.response")].map(r => r.cells[2].textContent + " | " + r.cells[4].textContent)`))
	if !slices.ContainsFunc(rows, func(r string) bool {
		return strings.Contains(r, "Read Without Encryption") && strings.Contains(r, "00 00 success")
	}) {
		t.Errorf("no decoded Read Without Encryption row with its status meaning: %q", rows)
	}
	hidden := value(t, ctx, "read the raw hex", chromedp.Evaluate[bool](`!document.querySelector("table.trace details").open`))
	screenshot(t, ctx, "device-operation-trace")
	if !hidden {
		t.Error("the raw hex is shown before a click")
	}
	submit(t, ctx, "open the operation's job", "#record-job", chromedp.WaitVisible(chromedp.ID("record")))
	if got := errs(); len(got) > 0 {
		t.Errorf("the browser's console shows errors:\n%s", strings.Join(got, "\n"))
	}
}

// TestBrowser_ListsPageOnAndSearch makes 105 requests and reads the oldest
// on the CRM list's second page, then finds one by the client's own
// subscription number.
func TestBrowser_ListsPageOnAndSearch(t *testing.T) {
	e := newEnv(t, envOptions{})
	tok := e.login("mpadministrator", "mp-admin-1234")
	later := e.clock.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05")
	var first, last request
	for i := range 105 {
		sub := "S60058"
		if i == 50 {
			sub = "S60059"
		}
		r := e.create(ws, "add_subscriptions", map[string]any{"token": tok, "subscription_identifier": map[string]string{"number": sub},
			"service_identifier": map[string]string{"code": "BASIC"}, "smartcard_identifier": map[string]string{"serial_number": "sc20000002"},
			"scheduled_date": later})
		if r.LifeCycleState != "PENDING" {
			t.Fatalf("request %d: %+v", i, r)
		}
		if i == 0 {
			first = r
		}
		last = r
	}
	ctx := browser(t)
	loginInBrowser(t, e, ctx)
	count := func(what string) int {
		return value(t, ctx, what, chromedp.Evaluate[int](`document.querySelectorAll("#requests tbody tr[data-number]").length`))
	}
	steps(t, ctx, "see the newest", chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-number="%s"]`, last.Number))))
	if n := count("count the first page"); n != 100 {
		t.Errorf("the first page shows %d rows, want 100", n)
	}
	submit(t, ctx, "open the next page", "nav.pager a.next", chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-number="%s"]`, first.Number))))
	if n := count("count the second page"); n != 5 {
		t.Errorf("the second page shows %d rows (rows 101 to 105), want 5", n)
	}
	if n := value(t, ctx, "look for another page", chromedp.Evaluate[int](`document.querySelectorAll("nav.pager a.next").length`)); n != 0 {
		t.Error("the last page links a next one")
	}
	screenshot(t, ctx, "crm-second-page")
	submit(t, ctx, "back to the newest", "nav.pager a.first", chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-number="%s"]`, last.Number))))
	steps(t, ctx, "search", chromedp.SendKeys(chromedp.CSS(`input[name="q"]`), "S60059"))
	submit(t, ctx, "search", `form.filters button[type="submit"]`, chromedp.WaitVisible(chromedp.CSS("#requests")))
	if n := count("count the found"); n != 1 {
		t.Errorf("the search for S60059 shows %d rows, want 1", n)
	}
	if ids := value(t, ctx, "read the identifiers", chromedp.Text(chromedp.CSS("#requests td.ids"))); !strings.Contains(ids, "subscription number=S60059") {
		t.Errorf("the row shows %q", ids)
	}
}
