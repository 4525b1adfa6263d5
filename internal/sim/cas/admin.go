package cas

import (
	"encoding/json"
	"net/http"

	"github.com/provhub/provhub/internal/sim/fault"
)

// mountAdmin serves the simulator's set-up and inspection endpoints under
// fault.AdminPrefix, as every simulator does.
func (s *Simulator) mountAdmin() {
	fault.Mount(s.mux, s.Faults, s.SetFaults)
	s.mux.HandleFunc("POST "+fault.AdminPrefix+"devices", s.handleAddDevices)
	s.mux.HandleFunc("GET "+fault.AdminPrefix+"smartcards/{ca_id}", s.handleCard)
	s.mux.HandleFunc("GET "+fault.AdminPrefix+"stats", s.handleStats)
	s.mux.HandleFunc("GET "+fault.AdminPrefix+"applied", func(w http.ResponseWriter, _ *http.Request) { fault.WriteJSON(w, http.StatusOK, s.Applied()) })
}

// Devices is the body of POST /admin/devices.
type Devices struct {
	SmartcardCAIDs []string `json:"smartcard_ca_ids"`
	STBCAIDs       []string `json:"stb_ca_ids"`
}

func (s *Simulator) handleAddDevices(w http.ResponseWriter, r *http.Request) {
	var d Devices
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20)).Decode(&d); err != nil {
		fault.Refuse(w, http.StatusBadRequest, "devices: "+err.Error())
		return
	}
	for _, id := range append(append([]string{}, d.SmartcardCAIDs...), d.STBCAIDs...) {
		if id == "" {
			fault.Refuse(w, http.StatusBadRequest, "a CA id is empty")
			return
		}
	}
	s.AddDevices(d.SmartcardCAIDs, d.STBCAIDs)
	fault.WriteJSON(w, http.StatusOK, d)
}

func (s *Simulator) handleCard(w http.ResponseWriter, r *http.Request) {
	c, ok := s.Card(r.PathValue("ca_id"))
	if !ok {
		fault.Refuse(w, http.StatusNotFound, "unknown smartcard")
		return
	}
	fault.WriteJSON(w, http.StatusOK, c)
}

func (s *Simulator) handleStats(w http.ResponseWriter, _ *http.Request) {
	fault.WriteJSON(w, http.StatusOK, s.Stats())
}
