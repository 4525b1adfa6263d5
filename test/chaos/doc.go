// Package chaos runs provhub as its users run it and breaks what it depends
// on, then audits the result from the outside.
//
// The tests build the provhub binary, set it up with its own commands
// (migrate, crm import, crm user add, issuer add, partner add), start
// `provhub serve` processes on SQLite (one instance) and on PostgreSQL
// (several instances on one schema), and drive every flow over HTTP as
// partners and clients do: CRM provisioning requests, wallet tasks
// (personalisation, SUSPEND, RESUME, DELETE), the issuer's consumer
// deletion, and top-up and park loops run by simulated devices. Meanwhile
// they SIGKILL hub processes at random moments and start them again on the
// same database, cut and refuse the hubs' connections to PostgreSQL
// through a TCP proxy, turn on the simulators' fault knobs (errors,
// timeouts, busy, malformed and lost answers) and take the CAS and the
// wallet server away entirely for a while.
//
// When the load stops and the hubs have drained, the audits compare three
// sources: what the clients were told was accepted, the hub's records (read
// from its database) and the simulators' own journals and state (the
// CAS's decided commands and entitlements, the wallet server's carried-out
// tasks and applets, the TES's purchases and accounts and the cards'
// purses). Nothing accepted may be missing or left unfinished, nothing may
// have been carried out twice or out of order, and every effect downstream
// must match the hub's record. Each audit is shown to catch a planted
// fault (audit_test.go).
//
// `go test ./test/chaos` runs the short version (a few kills per flow, one
// outage, both backends); it is part of `go test ./...`. The long version,
// behind the chaos build tag, kills every flow at least twenty times,
// restarts PostgreSQL itself and holds a two-minute outage:
//
//	go test -tags chaos -timeout 60m -v ./test/chaos
//
// It prints a figures table per backend (docs/reliability.md holds the
// recorded ones). PROVHUB_TEST_POSTGRES names the PostgreSQL server, as for
// the other tests; restarting it needs pg_ctlcluster on this machine.
package chaos
