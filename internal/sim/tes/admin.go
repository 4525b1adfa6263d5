package tes

import (
	"net/http"

	"github.com/provhub/provhub/internal/sim/fault"
)

// mountAdmin serves the simulator's set-up and inspection endpoints under
// fault.AdminPrefix, as every simulator does.
func (s *Simulator) mountAdmin() {
	p := fault.AdminPrefix
	s.mux.HandleFunc("POST "+p+"accounts", fault.Post(s.AddAccount))
	s.mux.HandleFunc("POST "+p+"purchases", fault.Post(s.AddPurchase))
	s.mux.HandleFunc("POST "+p+"external-cards", fault.Post(s.AddExternalCard))
	s.mux.HandleFunc("GET "+p+"accounts/{id}", func(w http.ResponseWriter, r *http.Request) {
		if a, ok := s.AccountState(r.PathValue("id")); ok {
			fault.WriteJSON(w, http.StatusOK, a)
			return
		}
		fault.Refuse(w, http.StatusNotFound, "unknown account")
	})
	s.mux.HandleFunc("GET "+p+"purchases/{id}", func(w http.ResponseWriter, r *http.Request) {
		if pu, ok := s.PurchaseState(r.PathValue("id")); ok {
			fault.WriteJSON(w, http.StatusOK, pu)
			return
		}
		fault.Refuse(w, http.StatusNotFound, "unknown purchase")
	})
	fault.Mount(s.mux, s.Faults, s.SetFaults)
	s.mux.HandleFunc("GET "+p+"stats", func(w http.ResponseWriter, r *http.Request) { fault.WriteJSON(w, http.StatusOK, s.Stats()) })
}
