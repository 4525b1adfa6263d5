package wallet

import (
	"encoding/hex"
	"encoding/json"
	"net/http"

	"github.com/provhub/provhub/internal/apdu"
	"github.com/provhub/provhub/internal/felica"
	"github.com/provhub/provhub/internal/sim/fault"
	"github.com/provhub/provhub/internal/sim/felicacard"
)

// NewDevice is the body of POST /admin/devices.
type NewDevice struct {
	SEID     string `json:"seId"`
	DeviceID string `json:"deviceId"`
}

// NewCard is the body of POST /admin/cards.
type NewCard struct {
	WalletCardID string `json:"walletCardId"`
	SEID         string `json:"seId"`
	InstanceAID  string `json:"instanceAid"`
}

func (s *Simulator) adminAddDevice(w http.ResponseWriter, r *http.Request) {
	var d NewDevice
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&d); err != nil {
		fault.Refuse(w, http.StatusBadRequest, "device: "+err.Error())
		return
	}
	if err := s.AddDevice(d.SEID, d.DeviceID); err != nil {
		fault.Refuse(w, http.StatusBadRequest, err.Error())
		return
	}
	fault.WriteJSON(w, http.StatusOK, d)
}

func (s *Simulator) adminAddCard(w http.ResponseWriter, r *http.Request) {
	var c NewCard
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&c); err != nil {
		fault.Refuse(w, http.StatusBadRequest, "card: "+err.Error())
		return
	}
	aid, err := hex.DecodeString(c.InstanceAID)
	if err != nil {
		fault.Refuse(w, http.StatusBadRequest, "instanceAid must be hex")
		return
	}
	var inst apdu.AID
	if len(aid) > 0 {
		inst = aid
	}
	if err := s.AddCard(c.WalletCardID, c.SEID, inst); err != nil {
		fault.Refuse(w, http.StatusBadRequest, err.Error())
		return
	}
	fault.WriteJSON(w, http.StatusOK, c)
}

// adminProvision runs the published provisioning flow for a wallet app's
// request and answers how it ended (HTTP 502 when the hub could not be
// asked).
func (s *Simulator) adminProvision(w http.ResponseWriter, r *http.Request) {
	var p ProvisionRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&p); err != nil || p.IssuerID == "" || p.SEID == "" {
		fault.Refuse(w, http.StatusBadRequest, "provision needs {issuerId, seId, cardSource, walletCardAccountId | opaqueCardAccountData, cardLastDigits}")
		return
	}
	res, err := s.Provision(r.Context(), p)
	if err != nil {
		fault.Refuse(w, http.StatusBadGateway, err.Error())
		return
	}
	fault.WriteJSON(w, http.StatusOK, res)
}

func (s *Simulator) adminSecureElement(w http.ResponseWriter, r *http.Request) {
	st, ok := s.SecureElement(r.PathValue("se_id"))
	if !ok {
		fault.Refuse(w, http.StatusNotFound, "unknown secure element")
		return
	}
	fault.WriteJSON(w, http.StatusOK, st)
}

// Balance is the body of PUT /admin/cards/{walletCardId}/balance.
type Balance struct {
	Balance uint32 `json:"balance"`
}

func (s *Simulator) adminSetBalance(w http.ResponseWriter, r *http.Request) {
	var b Balance
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&b); err != nil {
		fault.Refuse(w, http.StatusBadRequest, "balance: "+err.Error())
		return
	}
	if err := s.SetCardBalance(r.PathValue("wallet_card_id"), b.Balance); err != nil {
		fault.Refuse(w, http.StatusBadRequest, err.Error())
		return
	}
	fault.WriteJSON(w, http.StatusOK, b)
}

// ExternalCard is the body of POST /admin/secure-elements/{seId}/external-card:
// a physical transit card (IDm in hex) held to the device's reader.
type ExternalCard struct {
	IDm     string `json:"idm"`
	Balance uint32 `json:"balance"`
}

func (s *Simulator) adminHoldCard(w http.ResponseWriter, r *http.Request) {
	var c ExternalCard
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&c); err != nil {
		fault.Refuse(w, http.StatusBadRequest, "card: "+err.Error())
		return
	}
	raw, err := hex.DecodeString(c.IDm)
	if err != nil || len(raw) != 8 {
		fault.Refuse(w, http.StatusBadRequest, "idm must be 8 bytes in hex")
		return
	}
	var id felica.IDm
	copy(id[:], raw)
	if err := s.HoldExternalCard(r.PathValue("se_id"), felicacard.Transit(id, c.Balance)); err != nil {
		fault.Refuse(w, http.StatusBadRequest, err.Error())
		return
	}
	fault.WriteJSON(w, http.StatusOK, c)
}

// ReaderMode is the body of POST /admin/secure-elements/{seId}/reader-mode.
type ReaderMode struct {
	IssuerID string `json:"issuerId"`
}

func (s *Simulator) adminReaderMode(w http.ResponseWriter, r *http.Request) {
	var m ReaderMode
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&m); err != nil || m.IssuerID == "" {
		fault.Refuse(w, http.StatusBadRequest, "reader mode needs {issuerId}")
		return
	}
	if err := s.StartReaderMode(r.PathValue("se_id"), m.IssuerID, nil); err != nil {
		fault.Refuse(w, http.StatusBadRequest, err.Error())
		return
	}
	fault.WriteJSON(w, http.StatusAccepted, m)
}
