//go:build !chaos

package chaos

import "time"

// thePlan is the short version, run by go test ./...: every flow sees a
// few kills and one outage longer than the old retry budget.
var thePlan = plan{
	name:         "short",
	load:         60 * time.Second,
	kills:        4,
	outage:       20 * time.Second,
	pgInstances:  2,
	pgCuts:       1,
	restartPG:    false,
	crmClients:   4,
	walletSlots:  3,
	consumers:    2,
	deviceCards:  3,
	smartcards:   24,
	faultPercent: 5,
	minAccepted:  20,
}
