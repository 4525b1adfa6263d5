package paytv

import (
	"context"
	"strings"

	"github.com/provhub/provhub/internal/store"
)

// ReferenceData is the CRM data provhub keeps a copy of, in the JSON form
// `provhub crm import` reads (see docs/crm.md). Importing is an upsert:
// records are matched by id, or by their natural key (name, number, code,
// serial number) when the id is left out.
type ReferenceData struct {
	Organisation  string             `json:"organisation"`
	Units         []UnitData         `json:"units"`
	Subscriptions []SubscriptionData `json:"subscriptions"`
	Services      []ServiceData      `json:"services"`
	Smartcards    []ItemData         `json:"smartcards"`
	STBs          []ItemData         `json:"stbs"`
}

// UnitData is a unit of the organisation.
type UnitData struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	Description     string `json:"description"`
	AlternativeCode string `json:"alternative_code"`
	GroupName       string `json:"group_name"`
	CommunityName   string `json:"community_name"`
}

// SubscriptionData is a customer's subscription. LifeCycleState is ACTIVE
// (the default) or any other CRM state; requests are refused for
// subscriptions that are not ACTIVE.
type SubscriptionData struct {
	ID             string `json:"id"`
	Number         string `json:"number"`
	LifeCycleState string `json:"life_cycle_state"`
}

// ServiceData is a product classified as a service, with its CA id.
type ServiceData struct {
	ID              string `json:"id"`
	Code            string `json:"code"`
	AlternativeCode string `json:"alternative_code"`
	CAID            string `json:"ca_id"`
}

// ItemData is an installed item: a smartcard or an STB, with its CA id.
type ItemData struct {
	ID                            string `json:"id"`
	SerialNumber                  string `json:"serial_number"`
	AlternativeCode               string `json:"alternative_code"`
	CAID                          string `json:"ca_id"`
	SubProvisioningDistributionID string `json:"sub_provisioning_distribution_id"`
}

// ImportSummary counts what an import wrote.
type ImportSummary struct {
	Units, Subscriptions, Services, Smartcards, STBs int
}

// Import writes reference data in one transaction: all of it or none.
func (s *Service) Import(ctx context.Context, d ReferenceData) (ImportSummary, error) {
	var sum ImportSummary
	if strings.TrimSpace(d.Organisation) == "" {
		return sum, errorf(KindMissing, "organisation is required")
	}
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		orgID, err := ensureOrganisation(ctx, tx, d.Organisation)
		if err != nil {
			return err
		}
		for i, u := range d.Units {
			if u.Name == "" {
				return errorf(KindMissing, "units[%d]: name is required", i)
			}
			if err := saveUnitTx(ctx, tx, orgID, u); err != nil {
				return err
			}
			sum.Units++
		}
		for i, sub := range d.Subscriptions {
			if sub.Number == "" {
				return errorf(KindMissing, "subscriptions[%d]: number is required", i)
			}
			if sub.LifeCycleState == "" {
				sub.LifeCycleState = "ACTIVE"
			}
			if err := saveSubscriptionTx(ctx, tx, orgID, sub); err != nil {
				return err
			}
			sum.Subscriptions++
		}
		for i, svc := range d.Services {
			if svc.Code == "" || svc.CAID == "" {
				return errorf(KindMissing, "services[%d]: code and ca_id are required", i)
			}
			if err := saveServiceTx(ctx, tx, orgID, svc); err != nil {
				return err
			}
			sum.Services++
		}
		for _, group := range []struct {
			kind  string
			items []ItemData
			count *int
		}{{"smartcard", d.Smartcards, &sum.Smartcards}, {"stb", d.STBs, &sum.STBs}} {
			for i, it := range group.items {
				if it.SerialNumber == "" || it.CAID == "" {
					return errorf(KindMissing, "%ss[%d]: serial_number and ca_id are required", group.kind, i)
				}
				if err := saveItemTx(ctx, tx, orgID, group.kind, it); err != nil {
					return err
				}
				*group.count++
			}
		}
		return nil
	})
	return sum, err
}

func null(s string) any {
	if s == "" {
		return nil
	}
	return s
}
