// Package benchmark is `provhub bench`: the measurements behind
// bench/README.md, each printing its figures and ratios from one run (never
// asserted by a test). Engine drives the job engine alone (internal/loadgen's
// workload, the same that bench/river runs on River); CRM, Wallet and TopUp
// drive the whole hub over HTTP against the simulators, in this process
// (internal/loopback) or, for CRM --instances N, against N `provhub serve`
// processes of the running binary on one PostgreSQL database; WalletSim
// measures the wallet-server simulator alone.
//
// Each command parses its own flags (internal/cliflag) and refuses a
// database that holds real records: point it at a scratch database.
package benchmark
