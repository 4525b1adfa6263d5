// Package tes simulates a transit entity server's device gateway
// (api/tes.yaml) with real state: issuers, card accounts with balances,
// purchases, cards linked to devices, blacklist and expiry flags, and a
// register of physical cards for reader mode. Its loops speak FeliCa to the
// card through the hub and the phone: Polling to learn the card's IDm,
// Read Without Encryption of the purse block, Write Without Encryption of
// the new purse and a verifying read. A purchase is applied once only: a
// request repeated with the same session and responses gets the same
// answer, and a loop started again after the card was already written
// recognises the written purse.
//
// Layout, as in every simulator: doc.go, sim.go (the simulator and its
// published API), faults.go (its knobs, with internal/sim/fault's meaning),
// admin.go (set-up and inspection under /admin/).
package tes
