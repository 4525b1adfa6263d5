package outcome

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCounters_CountEachOutcomeUnderItsLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := New(reg)
	code := 911
	c.CRMRequest("ADD_SUBSCRIPTIONS", "REJECTED", "CAS_REJECTED")
	c.CRMRequest("ADD_SUBSCRIPTIONS", "REJECTED", "CAS_REJECTED")
	c.WalletTask("SUSPEND", "FAILED", &code)
	c.WalletTask("PERSONALIZE", "COMPLETED", nil)
	c.DeviceOperation("TOPUP", "COMPLETED", 0)
	c.IssuerOperation("DELETE", "FAILED", "WALLET_911")
	c.DownstreamError(Wallet)
	c.FirstPoll("METADATA_UPDATE", true)
	c.FirstPoll("METADATA_UPDATE", true)
	c.FirstPoll("METADATA_UPDATE", false)
	want := `
# HELP provhub_crm_requests_total CRM provisioning requests that reached a final state, by type, state and error code.
# TYPE provhub_crm_requests_total counter
provhub_crm_requests_total{error_code="CAS_REJECTED",state="REJECTED",type="ADD_SUBSCRIPTIONS"} 2
# HELP provhub_wallet_tasks_total Wallet tasks that ended, by operation, status and the wallet server's status code.
# TYPE provhub_wallet_tasks_total counter
provhub_wallet_tasks_total{operation="PERSONALIZE",status="COMPLETED",status_code=""} 1
provhub_wallet_tasks_total{operation="SUSPEND",status="FAILED",status_code="911"} 1
# HELP provhub_wallet_first_polls_total First getTaskStatus polls of wallet tasks, by operation and whether the task had ended (found ended or running).
# TYPE provhub_wallet_first_polls_total counter
provhub_wallet_first_polls_total{found="ended",operation="METADATA_UPDATE"} 2
provhub_wallet_first_polls_total{found="running",operation="METADATA_UPDATE"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "provhub_crm_requests_total", "provhub_wallet_tasks_total", "provhub_wallet_first_polls_total"); err != nil {
		t.Error(err)
	}
	for name, n := range map[string]int{"provhub_device_operations_total": 1, "provhub_issuer_operations_total": 1, "provhub_downstream_call_errors_total": 1} {
		if got, err := testutil.GatherAndCount(reg, name); err != nil || got != n {
			t.Errorf("%s: %d series (%v), want %d", name, got, err, n)
		}
	}
	// A nil *Counters counts nothing and does not panic.
	var none *Counters
	none.CRMRequest("x", "y", "z")
	none.WalletTask("x", "y", nil)
	none.DeviceOperation("x", "y", 0)
	none.IssuerOperation("x", "y", "z")
	none.DownstreamError(CAS)
	none.FirstPoll("x", true)
}
