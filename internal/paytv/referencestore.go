package paytv

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/provhub/provhub/internal/auth"
	"github.com/provhub/provhub/internal/store"
)

// The SQL of the CRM reference data provhub keeps a copy of: organisations,
// units, subscriptions, services and installed items, a named function a
// use. The reads of a new request's records are in lookup.go, which
// composes them into one statement.

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

// saveUnitTx writes a unit, matched by id or else by name.
func saveUnitTx(ctx context.Context, tx *store.Tx, orgID string, u UnitData) error {
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
	return nil
}

// saveSubscriptionTx writes a subscription, matched by id or else by number.
func saveSubscriptionTx(ctx context.Context, tx *store.Tx, orgID string, sub SubscriptionData) error {
	id, err := orID(ctx, tx, sub.ID, `SELECT id FROM paytv_subscriptions WHERE organisation_id = $1 AND number = $2`, orgID, sub.Number)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO paytv_subscriptions (id, organisation_id, number, life_cycle_state) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET number = excluded.number, life_cycle_state = excluded.life_cycle_state`,
		id, orgID, sub.Number, sub.LifeCycleState); err != nil {
		return fmt.Errorf("import subscription %q: %w", sub.Number, err)
	}
	return nil
}

// saveServiceTx writes a service, matched by id or else by code.
func saveServiceTx(ctx context.Context, tx *store.Tx, orgID string, svc ServiceData) error {
	id, err := orID(ctx, tx, svc.ID, `SELECT id FROM paytv_services WHERE organisation_id = $1 AND code = $2`, orgID, svc.Code)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO paytv_services (id, organisation_id, code, alternative_code, ca_id) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET code = excluded.code, alternative_code = excluded.alternative_code, ca_id = excluded.ca_id`,
		id, orgID, svc.Code, null(svc.AlternativeCode), svc.CAID); err != nil {
		return fmt.Errorf("import service %q: %w", svc.Code, err)
	}
	return nil
}

// saveItemTx writes an installed item of a kind (smartcard, stb), matched
// by id or else by serial number.
func saveItemTx(ctx context.Context, tx *store.Tx, orgID, kind string, it ItemData) error {
	id, err := orID(ctx, tx, it.ID, `SELECT id FROM paytv_installed_items WHERE organisation_id = $1 AND serial_number = $2`, orgID, it.SerialNumber)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO paytv_installed_items (id, organisation_id, kind, serial_number, alternative_code, ca_id, sub_provisioning_distribution_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, serial_number = excluded.serial_number,
			alternative_code = excluded.alternative_code, ca_id = excluded.ca_id,
			sub_provisioning_distribution_id = excluded.sub_provisioning_distribution_id`,
		id, orgID, kind, it.SerialNumber, null(it.AlternativeCode), it.CAID, null(it.SubProvisioningDistributionID)); err != nil {
		return fmt.Errorf("import %s %q: %w", kind, it.SerialNumber, err)
	}
	return nil
}
