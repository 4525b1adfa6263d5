// Package demo is `provhub demo`: the hub with a CAS, a wallet-server and a
// TES simulator in one process, sample data for every flow (a CRM
// organisation, an issuer with its key, transit cards on simulated phones,
// card art), partners and a console operator, then a printed tour of
// commands to try (tour.go) and, with --scenario, the tour run and checked
// step by step. A second run on the same --data keeps its logins and keys
// and seeds sample records of its own (run numbers in demo.run).
// cmd/provhub's demo test runs it whole, twice on one folder.
package demo
