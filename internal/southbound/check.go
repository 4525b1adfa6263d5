package southbound

import (
	"regexp"

	"github.com/provhub/provhub/internal/wire"
)

// The checks of request members the TSH family shares (the wallet
// server's API, the TES device gateway's and the hub's own transit API),
// read with package wire.

// Status codes of a member refused: the same in every API of the family.
const (
	StatusMissing   = 111
	StatusBadFormat = 112
)

// HexPattern is data in hex, whole bytes, possibly none.
var HexPattern = regexp.MustCompile(`^([0-9a-fA-F]{2})*$`)

// headerIDText is a requestHeader's requestId and sessionId.
var headerIDText = wire.Text{Required: true, Min: 1, Max: 48}

// ReadRequestHeader checks the requestHeader of body (required or not)
// and returns its sessionId ("" when there is no header).
func ReadRequestHeader(body wire.Object, required bool) (sessionID string, err error) {
	h, found, err := body.Object("requestHeader", required)
	if err != nil || !found {
		return "", err
	}
	if _, err := h.String("requestId", headerIDText); err != nil {
		return "", err
	}
	if sessionID, err = h.String("sessionId", headerIDText); err != nil {
		return "", err
	}
	if _, _, err := h.Time("generationDateTime", wire.Text{Max: 64}); err != nil {
		return "", err
	}
	return sessionID, nil
}

// StatusOf is the status code that refuses a wire problem: 111 for a
// member missing, 112 for any other.
func StatusOf(p *wire.Problem) int {
	if p.Fault == wire.Missing {
		return StatusMissing
	}
	return StatusBadFormat
}
