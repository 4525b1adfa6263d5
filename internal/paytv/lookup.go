package paytv

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/provhub/provhub/internal/store"
)

// lookup finds the records a new request names, within one organisation.
// prefetch reads several of them in one round trip; each find method then
// answers from what was read ahead, or asks the database itself.
type lookup struct {
	db  *store.DB
	org string

	subscriptions map[Identifier]subscriptionRow
	services      map[Identifier]serviceRow
	items         map[Identifier]itemRow
}

type subscriptionRow struct {
	found     bool
	id, state string
}

type serviceRow struct {
	found bool
	caID  string
}

type itemRow struct {
	found bool
	item  item
}

type item struct {
	kind         string
	caID         string
	distribution *string
}

func newLookup(db *store.DB, org string) *lookup {
	return &lookup{db: db, org: org}
}

// The statements of prefetch, one branch per record asked for, each
// returning (what, a, b, c). $1 is the organisation.
const (
	prefetchSubscription = `SELECT 'subscription', id, life_cycle_state, CAST(NULL AS TEXT) FROM paytv_subscriptions
		WHERE organisation_id = $1 AND %s = $%d`
	prefetchService = `SELECT 'service', ca_id, CAST(NULL AS TEXT), CAST(NULL AS TEXT) FROM paytv_services
		WHERE organisation_id = $1 AND %s = $%d`
	prefetchItem = `SELECT 'item', kind, ca_id, sub_provisioning_distribution_id FROM paytv_installed_items
		WHERE organisation_id = $1 AND %s = $%d`
)

// prefetch reads the subscription, service and installed item named (nil:
// not named) in one statement. An identifier naming an unknown field is
// left to the find method, which reports it.
func (l *lookup) prefetch(ctx context.Context, sub, svc, card *Identifier) error {
	var branches []string
	args := []any{l.org}
	add := func(format string, cols map[string]string, ident *Identifier) bool {
		if ident == nil {
			return false
		}
		col, ok := cols[ident.Field]
		if !ok {
			return false
		}
		args = append(args, ident.Value)
		// Each branch its first row by id, as the find methods take it.
		branches = append(branches, `SELECT * FROM (`+fmt.Sprintf(format, col, len(args))+` ORDER BY id LIMIT 1) AS b`+fmt.Sprint(len(args)))
		return true
	}
	askedSub := add(prefetchSubscription, subscriptionColumns, sub)
	askedSvc := add(prefetchService, serviceColumns, svc)
	askedItem := add(prefetchItem, itemColumns, card)
	if len(branches) == 0 {
		return nil
	}
	rows, err := l.db.ReadQuery(ctx, strings.Join(branches, "\nUNION ALL "), args...)
	if err != nil {
		return fmt.Errorf("find the request's records: %w", err)
	}
	defer rows.Close()
	l.subscriptions, l.services, l.items = map[Identifier]subscriptionRow{}, map[Identifier]serviceRow{}, map[Identifier]itemRow{}
	if askedSub {
		l.subscriptions[*sub] = subscriptionRow{}
	}
	if askedSvc {
		l.services[*svc] = serviceRow{}
	}
	if askedItem {
		l.items[*card] = itemRow{}
	}
	for rows.Next() {
		var what string
		var a, b, c sql.NullString
		if err := rows.Scan(&what, &a, &b, &c); err != nil {
			return fmt.Errorf("find the request's records: %w", err)
		}
		switch what {
		case "subscription":
			l.subscriptions[*sub] = subscriptionRow{found: true, id: a.String, state: b.String}
		case "service":
			l.services[*svc] = serviceRow{found: true, caID: a.String}
		case "item":
			it := item{kind: a.String, caID: b.String}
			if c.Valid {
				it.distribution = &c.String
			}
			l.items[*card] = itemRow{found: true, item: it}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("find the request's records: %w", err)
	}
	return nil
}

func (l *lookup) subscription(ctx context.Context, ident Identifier) (id, state string, err error) {
	col, err := column(subscriptionColumns, ident, "subscription_identifier")
	if err != nil {
		return "", "", err
	}
	row, ok := l.subscriptions[ident]
	if !ok {
		err = l.db.ReadRow(ctx, `SELECT id, life_cycle_state FROM paytv_subscriptions WHERE organisation_id = $1 AND `+col+` = $2 ORDER BY id LIMIT 1`,
			l.org, ident.Value).Scan(&row.id, &row.state)
		switch {
		case err == nil:
			row.found = true
		case !errors.Is(err, sql.ErrNoRows):
			return "", "", fmt.Errorf("find subscription: %w", err)
		}
	}
	if !row.found {
		return "", "", errorf(KindNotFound, "subscription_identifier: no subscription with %s", ident)
	}
	return row.id, row.state, nil
}

func (l *lookup) service(ctx context.Context, ident Identifier) (string, error) {
	col, err := column(serviceColumns, ident, "service_identifier")
	if err != nil {
		return "", err
	}
	row, ok := l.services[ident]
	if !ok {
		err = l.db.ReadRow(ctx, `SELECT ca_id FROM paytv_services WHERE organisation_id = $1 AND `+col+` = $2 ORDER BY id LIMIT 1`,
			l.org, ident.Value).Scan(&row.caID)
		switch {
		case err == nil:
			row.found = true
		case !errors.Is(err, sql.ErrNoRows):
			return "", fmt.Errorf("find service: %w", err)
		}
	}
	if !row.found {
		return "", errorf(KindNotFound, "service_identifier: no service with %s", ident)
	}
	return row.caID, nil
}

func (l *lookup) item(ctx context.Context, kind string, ident Identifier, param string) (*item, error) {
	col, err := column(itemColumns, ident, param)
	if err != nil {
		return nil, err
	}
	row, ok := l.items[ident]
	if !ok {
		err = l.db.ReadRow(ctx, `SELECT kind, ca_id, sub_provisioning_distribution_id FROM paytv_installed_items
			WHERE organisation_id = $1 AND `+col+` = $2 ORDER BY id LIMIT 1`, l.org, ident.Value).Scan(&row.item.kind, &row.item.caID, &row.item.distribution)
		switch {
		case err == nil:
			row.found = true
		case !errors.Is(err, sql.ErrNoRows):
			return nil, fmt.Errorf("find installed item: %w", err)
		}
	}
	if !row.found {
		return nil, errorf(KindNotFound, "%s: no installed item with %s", param, ident)
	}
	if row.item.kind != kind {
		return nil, errorf(KindInvalid, "%s: installed item %s is a %s, not a %s", param, ident, row.item.kind, kind)
	}
	it := row.item
	return &it, nil
}

func (l *lookup) itemsByCAID(ctx context.Context, kind string, caIDs []string) ([]*item, error) {
	param := kind + "_set"
	seen := map[string]bool{}
	items := make([]*item, 0, len(caIDs))
	for _, ca := range caIDs {
		if ca == "" {
			return nil, errorf(KindMissing, "%s: %s_ca_id is required in every entry", param, kind)
		}
		if seen[ca] {
			return nil, errorf(KindInvalid, "%s: %s is named twice", param, ca)
		}
		seen[ca] = true
		it := item{caID: ca}
		err := l.db.ReadRow(ctx, `SELECT kind, sub_provisioning_distribution_id FROM paytv_installed_items
			WHERE organisation_id = $1 AND ca_id = $2 ORDER BY kind = $3 DESC, id LIMIT 1`, l.org, ca, kind).Scan(&it.kind, &it.distribution)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, errorf(KindNotFound, "%s: no installed item with CA id %s", param, ca)
		}
		if err != nil {
			return nil, fmt.Errorf("find installed item: %w", err)
		}
		if it.kind != kind {
			return nil, errorf(KindInvalid, "%s: CA id %s is a %s, not a %s", param, ca, it.kind, kind)
		}
		items = append(items, &it)
	}
	return items, nil
}
