package transit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/provhub/provhub/internal/store"
)

// The SQL of the push notifications (transit_notifications) and of the
// kinds issuers turned off (transit_notification_off), a named function a
// use.

const (
	kindOffSQL            = `SELECT 1 FROM transit_notification_off WHERE issuer_id = $1 AND kind = $2`
	insertNotificationSQL = `INSERT INTO transit_notifications (notification_id, card_id, se_id, kind, payload, status, job_id, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, 'QUEUED', $6, $7, $7)`
	endNotificationSQL = `UPDATE transit_notifications SET status = $2, status_code = $3, message = $4, payload = NULL, updated_at = $5
		WHERE notification_id = $1 AND status = 'QUEUED'`
)

var notificationHotStatements = []string{kindOffSQL, insertNotificationSQL, endNotificationSQL}

// kindOffTx reports whether an issuer turned a notification kind off.
func kindOffTx(ctx context.Context, tx *store.Tx, issuerID, kind string) (bool, error) {
	var one int
	err := tx.QueryRowCached(ctx, kindOffSQL, issuerID, kind).Scan(&one)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	}
	return false, fmt.Errorf("notification settings of %s: %w", issuerID, err)
}

// queuedNotification is a notification as stored, for its job.
type queuedNotification struct {
	id, cardID, seID, kind string
	payload                []byte
	jobID                  int64
}

// insertNotificationTx stores a notification QUEUED.
func insertNotificationTx(ctx context.Context, tx *store.Tx, n queuedNotification, now time.Time) error {
	if _, err := tx.ExecCached(ctx, insertNotificationSQL, n.id, n.cardID, n.seID, n.kind, string(n.payload), n.jobID, now.UnixMicro()); err != nil {
		return fmt.Errorf("store notification %s: %w", n.id, err)
	}
	return nil
}

// notificationToSend is what a notification's job reads.
type notificationToSend struct {
	status             string
	payload            sql.NullString
	walletCardID, seID sql.NullString
}

// readNotificationToSend reads a notification for its job; found is false
// for no such notification.
func readNotificationToSend(ctx context.Context, db *store.DB, id string) (n notificationToSend, found bool, err error) {
	err = db.ReadRow(ctx, `SELECT n.status, n.payload, c.wallet_card_id, c.se_id FROM transit_notifications n
		JOIN transit_cards c ON c.card_id = n.card_id WHERE n.notification_id = $1`, id).Scan(&n.status, &n.payload, &n.walletCardID, &n.seID)
	if errors.Is(err, sql.ErrNoRows) {
		return n, false, nil
	}
	if err != nil {
		return n, false, fmt.Errorf("load notification %s: %w", id, err)
	}
	return n, true, nil
}

// endNotificationTx records a queued notification's end and drops its
// payload; false when it had ended.
func endNotificationTx(ctx context.Context, tx *store.Tx, id, status string, code *int, msg string, now time.Time) (bool, error) {
	res, err := tx.ExecCached(ctx, endNotificationSQL, id, status, code, nullString(msg), now.UnixMicro())
	if err != nil {
		return false, fmt.Errorf("notification %s: record outcome: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// notificationsOfCard reads a card's notifications, oldest first.
func notificationsOfCard(ctx context.Context, db *store.DB, cardID string) ([]PushedNotification, error) {
	rows, err := db.ReadQuery(ctx, `SELECT notification_id, card_id, se_id, kind, status, status_code, message, created_at, updated_at
		FROM transit_notifications WHERE card_id = $1 ORDER BY created_at, job_id`, cardID)
	if err != nil {
		return nil, fmt.Errorf("list notifications of %s: %w", cardID, err)
	}
	return store.Collect(rows, func(r store.Scanner) (PushedNotification, error) {
		var (
			n                PushedNotification
			code             sql.NullInt64
			msg              sql.NullString
			created, updated int64
		)
		if err := r.Scan(&n.NotificationID, &n.CardID, &n.SEID, &n.Kind, &n.Status, &code, &msg, &created, &updated); err != nil {
			return n, err
		}
		n.StatusCode = nullInt(code)
		n.Message, n.CreatedAt, n.UpdatedAt = msg.String, time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
		return n, nil
	})
}

// setKindsTx turns notification kinds on and off for an issuer.
func setKindsTx(ctx context.Context, tx *store.Tx, issuerID string, on, off []string) error {
	for _, k := range on {
		if _, err := tx.ExecContext(ctx, `DELETE FROM transit_notification_off WHERE issuer_id = $1 AND kind = $2`, issuerID, k); err != nil {
			return fmt.Errorf("turn %s on for %s: %w", k, issuerID, err)
		}
	}
	for _, k := range off {
		if _, err := tx.ExecContext(ctx, `INSERT INTO transit_notification_off (issuer_id, kind) VALUES ($1, $2) ON CONFLICT (issuer_id, kind) DO NOTHING`,
			issuerID, k); err != nil {
			return fmt.Errorf("turn %s off for %s: %w", k, issuerID, err)
		}
	}
	return nil
}

// kindsOff lists the kinds an issuer turned off.
func kindsOff(ctx context.Context, db *store.DB, issuerID string) ([]string, error) {
	rows, err := db.ReadQuery(ctx, `SELECT kind FROM transit_notification_off WHERE issuer_id = $1 ORDER BY kind`, issuerID)
	if err != nil {
		return nil, fmt.Errorf("notification kinds off for %s: %w", issuerID, err)
	}
	return store.Strings(rows)
}
