// Package wallet simulates a wallet server behind the TSH -> WS API
// (api/wallet.yaml) with an emulated secure element per device, so that
// transit flows run end to end on one machine. Scripts sent with
// sendScript run APDU by APDU against the emulator, asynchronously;
// updateCard locks, unlocks and deletes applet instances; getTaskStatus
// reports PROCESSING, COMPLETED or FAILED. It validates every request as a
// real server would (111 missing, 112 bad format, 119 unknown card, 121
// unknown task, 321 device busy, 432 not allowed in the card's state) and
// has fault knobs for reliability tests.
package wallet
