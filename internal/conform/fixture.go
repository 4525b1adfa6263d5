package conform

import (
	"encoding/json"
	"fmt"
	"os"
)

// Fixture is the state the server under test was given, which behaviour
// rules need: a JSON file the integrator fills in. Each part is optional;
// a rule whose part is missing is skipped.
type Fixture struct {
	Wallet *WalletFixture `json:"wallet,omitempty"`
	TES    *TESFixture    `json:"tes,omitempty"`
	CAS    *CASFixture    `json:"cas,omitempty"`
}

// WalletFixture names a digital card the wallet server holds, ACTIVE (not
// suspended): the kit sends it METADATA_UPDATEs and a RESUME (refused).
type WalletFixture struct {
	SEID         string `json:"seId"`
	WalletCardID string `json:"walletCardId"`
}

// TESFixture names a card account of the TES on a device, the balance its
// card holds and, for the top-up rule, a purchase not yet applied.
type TESFixture struct {
	IssuerID string `json:"issuerId"`
	CardID   string `json:"cardId"`
	DeviceID string `json:"deviceId"`
	// IDm is the card's FeliCa IDm (16 hex digits) and Balance its purse.
	IDm     string `json:"idm"`
	Balance uint32 `json:"balance"`
	// PurchaseID and Amount: a purchase for CardID, used up by the run.
	PurchaseID string `json:"purchaseId,omitempty"`
	Amount     int64  `json:"amount,omitempty"`
}

// CASFixture names a smartcard the CAS knows and a service to add and
// cancel on it (left as it was found).
type CASFixture struct {
	SmartcardCAID string `json:"smartcardCaId"`
	ServiceCAID   string `json:"serviceCaId"`
}

// LoadFixture reads a fixture file.
func LoadFixture(path string) (*Fixture, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fixture: %w", err)
	}
	var f Fixture
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("fixture %s: %w", path, err)
	}
	return &f, nil
}
