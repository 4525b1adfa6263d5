// Package outcome counts, as Prometheus counters, how the domains' records
// end: CRM provisioning requests by type, state and error code, wallet
// tasks by operation, status and status code, device operations by kind,
// status and status code, issuer operations by operation, status and error
// code, the calls to a downstream system that failed for a passing
// reason, and what the first poll of each wallet task found (the early
// poll's hits and misses). Each instance counts what it ended, once, after the commit that
// ended it: sum the counters over instances (the database-read figures of
// the dashboard, provhub_outcomes_last_24h, are the same on every instance
// instead).
//
// A nil *Counters counts nothing, so a domain built without one (a test, a
// benchmark) needs no check.
package outcome

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Counters are the outcome counters of one hub.
type Counters struct {
	crm, walletTasks, deviceOps, issuerOps, downstream, firstPolls *prometheus.CounterVec
}

// New makes the counters and registers them with reg.
func New(reg prometheus.Registerer) *Counters {
	c := &Counters{
		crm: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "provhub_crm_requests_total",
			Help: "CRM provisioning requests that reached a final state, by type, state and error code."}, []string{"type", "state", "error_code"}),
		walletTasks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "provhub_wallet_tasks_total",
			Help: "Wallet tasks that ended, by operation, status and the wallet server's status code."}, []string{"operation", "status", "status_code"}),
		deviceOps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "provhub_device_operations_total",
			Help: "Top-up, park and reader-mode operations that ended, by kind, status and status code."}, []string{"kind", "status", "status_code"}),
		issuerOps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "provhub_issuer_operations_total",
			Help: "Issuer consumer operations that ended, by operation, status and error code."}, []string{"operation", "status", "error_code"}),
		downstream: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "provhub_downstream_call_errors_total",
			Help: "Calls to a downstream system (cas, wallet, tes) that failed for a passing reason and are asked again."}, []string{"system"}),
		firstPolls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "provhub_wallet_first_polls_total",
			Help: "First getTaskStatus polls of wallet tasks, by operation and whether the task had ended (found ended or running)."}, []string{"operation", "found"}),
	}
	reg.MustRegister(c.crm, c.walletTasks, c.deviceOps, c.issuerOps, c.downstream, c.firstPolls)
	return c
}

// CRMRequest counts a provisioning request that reached state.
func (c *Counters) CRMRequest(requestType, state, errorCode string) {
	if c != nil {
		c.crm.WithLabelValues(requestType, state, errorCode).Inc()
	}
}

// WalletTask counts a wallet task that ended (code nil: none answered).
func (c *Counters) WalletTask(operation, status string, code *int) {
	if c != nil {
		c.walletTasks.WithLabelValues(operation, status, codeLabel(code)).Inc()
	}
}

// DeviceOperation counts a device operation that ended.
func (c *Counters) DeviceOperation(kind, status string, code int) {
	if c != nil {
		c.deviceOps.WithLabelValues(kind, status, strconv.Itoa(code)).Inc()
	}
}

// IssuerOperation counts an issuer operation that ended.
func (c *Counters) IssuerOperation(operation, status, errorCode string) {
	if c != nil {
		c.issuerOps.WithLabelValues(operation, status, errorCode).Inc()
	}
}

// The downstream systems.
const (
	CAS    = "cas"
	Wallet = "wallet"
	TES    = "tes"
)

// DownstreamError counts a call to system that failed for a passing reason.
func (c *Counters) DownstreamError(system string) {
	if c != nil {
		c.downstream.WithLabelValues(system).Inc()
	}
}

// FirstPoll counts the first poll of a wallet task of operation, which
// found the task ended or still running.
func (c *Counters) FirstPoll(operation string, ended bool) {
	if c != nil {
		found := "running"
		if ended {
			found = "ended"
		}
		c.firstPolls.WithLabelValues(operation, found).Inc()
	}
}

func codeLabel(code *int) string {
	if code == nil {
		return ""
	}
	return strconv.Itoa(*code)
}
