package wallet

import (
	"encoding/hex"
	"encoding/json"
	"net/http"

	"github.com/provhub/provhub/internal/apdu"
)

type adminError struct {
	Error string `json:"error"`
}

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
		writeJSON(w, http.StatusBadRequest, adminError{"device: " + err.Error()})
		return
	}
	if err := s.AddDevice(d.SEID, d.DeviceID); err != nil {
		writeJSON(w, http.StatusBadRequest, adminError{err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Simulator) adminAddCard(w http.ResponseWriter, r *http.Request) {
	var c NewCard
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&c); err != nil {
		writeJSON(w, http.StatusBadRequest, adminError{"card: " + err.Error()})
		return
	}
	aid, err := hex.DecodeString(c.InstanceAID)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, adminError{"instanceAid must be hex"})
		return
	}
	var inst apdu.AID
	if len(aid) > 0 {
		inst = aid
	}
	if err := s.AddCard(c.WalletCardID, c.SEID, inst); err != nil {
		writeJSON(w, http.StatusBadRequest, adminError{err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Simulator) adminSecureElement(w http.ResponseWriter, r *http.Request) {
	st, ok := s.SecureElement(r.PathValue("se_id"))
	if !ok {
		writeJSON(w, http.StatusNotFound, adminError{"unknown secure element"})
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Simulator) adminPutFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&f); err != nil {
		writeJSON(w, http.StatusBadRequest, adminError{"faults: " + err.Error()})
		return
	}
	if err := s.SetFaults(f); err != nil {
		writeJSON(w, http.StatusBadRequest, adminError{err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, f)
}
