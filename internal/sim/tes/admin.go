package tes

import (
	"encoding/json"
	"net/http"
)

// AdminPrefix is where the simulator's set-up and inspection endpoints
// live (not part of the TES API).
const AdminPrefix = "/tes/admin/"

type adminError struct {
	Error string `json:"error"`
}

func (s *Simulator) mountAdmin() {
	s.mux.HandleFunc("POST "+AdminPrefix+"accounts", adminPost(s.AddAccount))
	s.mux.HandleFunc("POST "+AdminPrefix+"purchases", adminPost(s.AddPurchase))
	s.mux.HandleFunc("POST "+AdminPrefix+"external-cards", adminPost(s.AddExternalCard))
	s.mux.HandleFunc("GET "+AdminPrefix+"accounts/{id}", func(w http.ResponseWriter, r *http.Request) {
		if a, ok := s.AccountState(r.PathValue("id")); ok {
			writeJSON(w, http.StatusOK, a)
			return
		}
		writeJSON(w, http.StatusNotFound, adminError{"unknown account"})
	})
	s.mux.HandleFunc("GET "+AdminPrefix+"purchases/{id}", func(w http.ResponseWriter, r *http.Request) {
		if p, ok := s.PurchaseState(r.PathValue("id")); ok {
			writeJSON(w, http.StatusOK, p)
			return
		}
		writeJSON(w, http.StatusNotFound, adminError{"unknown purchase"})
	})
	s.mux.HandleFunc("GET "+AdminPrefix+"faults", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.Faults()) })
	s.mux.HandleFunc("PUT "+AdminPrefix+"faults", adminPost(s.SetFaults))
	s.mux.HandleFunc("GET "+AdminPrefix+"stats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.Stats()) })
}

// adminPost decodes a body into T and hands it to add.
func adminPost[T any](add func(T) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var v T
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			writeJSON(w, http.StatusBadRequest, adminError{"body: " + err.Error()})
			return
		}
		if err := add(v); err != nil {
			writeJSON(w, http.StatusBadRequest, adminError{err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
