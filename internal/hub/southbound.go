package hub

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/provhub/provhub/internal/cas"
	"github.com/provhub/provhub/internal/partner"
	"github.com/provhub/provhub/internal/paytv"
	"github.com/provhub/provhub/internal/reqsign"
	"github.com/provhub/provhub/internal/tes"
)

// southbound keeps one client per partner provhub calls, made on first
// use: the TES registered for an issuer, the CAS registered for an
// organisation. A partner with a signing secret gets its calls signed with
// it (the same scheme it signs its own calls to provhub with).
type southbound struct {
	partners *partner.Registry
	actor    string
	clock    func() time.Time

	mu   sync.Mutex
	tes  map[string]*tes.Client // by partner id and URL
	cas  map[string]*cas.Client
	defT *tes.Client
	defC *cas.Client
}

func signer(p *partner.Partner) func(http.RoundTripper) http.RoundTripper {
	if p.Secret() == "" {
		return nil
	}
	return func(base http.RoundTripper) http.RoundTripper {
		return &reqsign.Signer{ID: p.ID, Secret: p.Secret(), Base: base}
	}
}

// tesFor is the TES client for issuerID: its registered partner's, or the
// default when no TES was ever registered for it.
func (s *southbound) tesFor(ctx context.Context, issuerID string) (*tes.Client, error) {
	p, err := s.partners.Southbound(ctx, partner.RoleTES, issuerID)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", tes.ErrUnavailable, err)
	}
	if p == nil {
		return s.defT, nil
	}
	key := p.ID + " " + p.URL
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.tes[key]; ok {
		return c, nil
	}
	c, err := tes.NewClient(tes.ClientConfig{BaseURL: p.URL, Actor: s.actor, Timeout: p.Timeout, Clock: s.clock, Wrap: signer(p)})
	if err != nil {
		return nil, fmt.Errorf("TES %s: %w", p.ID, err)
	}
	s.tes[key] = c
	return c, nil
}

// casFor is the CAS for a CRM organisation: its registered partner's, or
// the default when no CAS was ever registered for it.
func (s *southbound) casFor(ctx context.Context, organisation string) (paytv.CAS, error) {
	p, err := s.partners.Southbound(ctx, partner.RoleCAS, organisation)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", cas.ErrUnavailable, err)
	}
	if p == nil {
		return s.defC, nil
	}
	key := p.ID + " " + p.URL
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cas[key]; ok {
		return c, nil
	}
	c, err := cas.NewClient(cas.ClientConfig{BaseURL: p.URL, Timeout: p.Timeout, Wrap: signer(p)})
	if err != nil {
		return nil, fmt.Errorf("CAS %s: %w", p.ID, err)
	}
	s.cas[key] = c
	return c, nil
}

// tesRouter is the transit domain's TES: each call goes to the TES of the
// call's issuer.
type tesRouter struct{ s *southbound }

func (r tesRouter) Header(sessionID string) tes.RequestHeader { return r.s.defT.Header(sessionID) }

func (r tesRouter) CardCommands(ctx context.Context, req tes.CardCommandsRequest) (*tes.CommandsResponse, error) {
	c, err := r.s.tesFor(ctx, req.IssuerID)
	if err != nil {
		return nil, err
	}
	return c.CardCommands(ctx, req)
}

func (r tesRouter) ParkCardCommands(ctx context.Context, req tes.ParkCardCommandsRequest) (*tes.CommandsResponse, error) {
	c, err := r.s.tesFor(ctx, req.IssuerID)
	if err != nil {
		return nil, err
	}
	return c.ParkCardCommands(ctx, req)
}

func (r tesRouter) ReaderModeCommands(ctx context.Context, req tes.ReaderModeCommandsRequest) (*tes.CommandsResponse, error) {
	c, err := r.s.tesFor(ctx, req.IssuerID)
	if err != nil {
		return nil, err
	}
	return c.ReaderModeCommands(ctx, req)
}
