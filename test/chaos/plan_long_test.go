//go:build chaos

package chaos

import "time"

// thePlan is the long version (-tags chaos): at least twenty kills while
// every flow runs, PostgreSQL restarted, and a two-minute outage of the
// CAS and the wallet server.
var thePlan = plan{
	name:         "long",
	load:         6 * time.Minute,
	kills:        24,
	outage:       2 * time.Minute,
	pgInstances:  3,
	pgCuts:       4,
	restartPG:    true,
	crmClients:   16,
	walletSlots:  8,
	consumers:    4,
	deviceCards:  8,
	smartcards:   96,
	faultPercent: 10,
	minAccepted:  100,
}
