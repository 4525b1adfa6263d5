package wallet

import (
	"regexp"

	"github.com/provhub/provhub/internal/southbound"
	"github.com/provhub/provhub/internal/wire"
)

// The published forms of the wallet server's request members
// (api/wallet.yaml), for reading them with package wire; the requestHeader
// check is the family's (southbound.ReadRequestHeader).
var (
	// SEIDPattern is a secure element id: 1 to 24 bytes in hex.
	SEIDPattern = regexp.MustCompile(`^([0-9a-fA-F]{2}){1,24}$`)
	// HexPattern is data in hex, whole bytes, possibly none.
	HexPattern = southbound.HexPattern

	TaskIDText     = wire.Text{Required: true, Min: 1, Max: 64}
	WalletCardText = wire.Text{Required: true, Min: 1, Max: 64}
	SEIDText       = wire.Text{Required: true, Min: 2, Max: 48, Pattern: SEIDPattern}
	OperationText  = wire.Text{Required: true, Min: 1, Max: 32}
)
