// Package cas simulates a Conax-style conditional-access system behind
// provhub's CAS protocol (api/cas.yaml), so that pay-TV flows run end to end
// on one machine. It keeps real state: smartcards and STBs by CA id, the
// entitlements of each card, pairings, PINs, mail and bark messages and
// fingerprints. It rejects what a CAS would, answers a repeated request id
// with its first answer, and has fault knobs (latency, errors, timeouts,
// busy) for reliability tests.
//
// Layout, as in every simulator: doc.go, sim.go (the simulator and its
// published API), faults.go (its knobs, with internal/sim/fault's meaning),
// admin.go (set-up and inspection under /admin/), state.go (the CAS's records).
package cas
