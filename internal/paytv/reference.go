package paytv

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/provhub/provhub/internal/auth"
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
			id, err := orID(ctx, tx, u.ID, `SELECT id FROM crm_units WHERE organisation_id = $1 AND name = $2`, orgID, u.Name)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO crm_units (id, organisation_id, name, description, alternative_code, group_name, community_name)
				VALUES ($1, $2, $3, $4, $5, $6, $7)
				ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description,
					alternative_code = excluded.alternative_code, group_name = excluded.group_name, community_name = excluded.community_name`,
				id, orgID, u.Name, null(u.Description), null(u.AlternativeCode), null(u.GroupName), null(u.CommunityName)); err != nil {
				return fmt.Errorf("import unit %q: %w", u.Name, err)
			}
			sum.Units++
		}
		for i, sub := range d.Subscriptions {
			if sub.Number == "" {
				return errorf(KindMissing, "subscriptions[%d]: number is required", i)
			}
			state := sub.LifeCycleState
			if state == "" {
				state = "ACTIVE"
			}
			id, err := orID(ctx, tx, sub.ID, `SELECT id FROM paytv_subscriptions WHERE organisation_id = $1 AND number = $2`, orgID, sub.Number)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO paytv_subscriptions (id, organisation_id, number, life_cycle_state) VALUES ($1, $2, $3, $4)
				ON CONFLICT (id) DO UPDATE SET number = excluded.number, life_cycle_state = excluded.life_cycle_state`,
				id, orgID, sub.Number, state); err != nil {
				return fmt.Errorf("import subscription %q: %w", sub.Number, err)
			}
			sum.Subscriptions++
		}
		for i, svc := range d.Services {
			if svc.Code == "" || svc.CAID == "" {
				return errorf(KindMissing, "services[%d]: code and ca_id are required", i)
			}
			id, err := orID(ctx, tx, svc.ID, `SELECT id FROM paytv_services WHERE organisation_id = $1 AND code = $2`, orgID, svc.Code)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO paytv_services (id, organisation_id, code, alternative_code, ca_id) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (id) DO UPDATE SET code = excluded.code, alternative_code = excluded.alternative_code, ca_id = excluded.ca_id`,
				id, orgID, svc.Code, null(svc.AlternativeCode), svc.CAID); err != nil {
				return fmt.Errorf("import service %q: %w", svc.Code, err)
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
				id, err := orID(ctx, tx, it.ID, `SELECT id FROM paytv_installed_items WHERE organisation_id = $1 AND serial_number = $2`, orgID, it.SerialNumber)
				if err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO paytv_installed_items (id, organisation_id, kind, serial_number, alternative_code, ca_id, sub_provisioning_distribution_id)
					VALUES ($1, $2, $3, $4, $5, $6, $7)
					ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, serial_number = excluded.serial_number,
						alternative_code = excluded.alternative_code, ca_id = excluded.ca_id,
						sub_provisioning_distribution_id = excluded.sub_provisioning_distribution_id`,
					id, orgID, group.kind, it.SerialNumber, null(it.AlternativeCode), it.CAID, null(it.SubProvisioningDistributionID)); err != nil {
					return fmt.Errorf("import %s %q: %w", group.kind, it.SerialNumber, err)
				}
				*group.count++
			}
		}
		return nil
	})
	return sum, err
}

// ensureOrganisation returns the id of the organisation named name,
// creating it with a first unit when it does not exist.
func ensureOrganisation(ctx context.Context, tx *store.Tx, name string) (string, error) {
	var id string
	err := tx.QueryRowContext(ctx, `SELECT id FROM crm_organisations WHERE name = $1`, name).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("find organisation: %w", err)
	}
	id = auth.NewID()
	if _, err := tx.ExecContext(ctx, `INSERT INTO crm_organisations (id, name) VALUES ($1, $2)`, id, name); err != nil {
		return "", fmt.Errorf("create organisation: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO crm_units (id, organisation_id, name) VALUES ($1, $2, $3)`,
		auth.NewID(), id, "Head office"); err != nil {
		return "", fmt.Errorf("create organisation's first unit: %w", err)
	}
	return id, nil
}

// orID returns id when set, else the id of the record found by query, else
// a new id.
func orID(ctx context.Context, tx *store.Tx, id string, query string, args ...any) (string, error) {
	if id != "" {
		return id, nil
	}
	switch err := tx.QueryRowContext(ctx, query, args...).Scan(&id); {
	case err == nil:
		return id, nil
	case errors.Is(err, sql.ErrNoRows):
		return auth.NewID(), nil
	default:
		return "", fmt.Errorf("find existing record: %w", err)
	}
}

func null(s string) any {
	if s == "" {
		return nil
	}
	return s
}
