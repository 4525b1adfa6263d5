// Package tes is the client of a transit entity server's device gateway
// (api/tes.yaml): getCardCommands, getParkCardCommands and
// getReaderModeCommands, with the x-actor-id header, the TES family's
// request and response headers, and its status codes, split into those
// worth retrying (221, 321, 322, 921, HTTP 5xx, no answer) and final ones.
// Answers are decoded leniently: members this package does not know are
// ignored.
package tes
