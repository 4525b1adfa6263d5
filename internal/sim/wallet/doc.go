// Package wallet simulates a wallet server behind the TSH -> WS API
// (api/wallet.yaml) with an emulated secure element per device, so that
// transit flows run end to end on one machine. Scripts sent with
// sendScript run APDU by APDU against the emulator, asynchronously;
// updateCard locks, unlocks and deletes applet instances; getTaskStatus
// reports PROCESSING, COMPLETED or FAILED. It validates every request as a
// real server would (111 missing, 112 bad format, 119 unknown card, 121
// unknown task, 321 device busy, 432 not allowed in the card's state) and
// has fault knobs for reliability tests.
//
// It is also the wallet server's side of provisioning (WS -> TSH, as a
// partner of the hub): Provision (POST /admin/provision) runs the
// published flow for a card a wallet app adds, checkCardAccount, getAsset
// for the terms and every card-art image it does not hold, each verified
// to be what its content type says (a PNG or JPEG that decodes, UTF-8 text,
// a PDF), then provisionCard, and registers the wallet card the hub named
// on the secure element. After a METADATA_UPDATE it fetches any new art.
// /admin/stats counts the cards provisioned and the assets fetched,
// verified and rejected; /admin/assets lists those held.
//
// Layout, as in every simulator: doc.go, sim.go (the simulator and its
// published API), faults.go (its knobs, with internal/sim/fault's meaning),
// admin.go (set-up and inspection under /admin/); device.go, notify.go,
// provision.go, se.go and validate.go hold the wallet server's own parts.
package wallet
