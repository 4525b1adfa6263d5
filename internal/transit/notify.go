package transit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/outcome"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/wallet"
)

// NotifyArgs is the job that pushes one notification to a digital card's
// device through the wallet server; the notification row is found by the
// notificationId derived from the job's id (pvn-<job id>), the same on
// every retry.
type NotifyArgs struct {
	CardID string `json:"card_id"`
}

// Kind names the job kind.
func (NotifyArgs) Kind() string { return "transit.push_notification" }

// Notification statuses.
const (
	NotificationQueued = "QUEUED"
	NotificationSent   = "SENT"
	NotificationFailed = "FAILED"
)

// PushedNotification is a notification as stored.
type PushedNotification struct {
	NotificationID, CardID, SEID, Kind, Status string
	StatusCode                                 *int
	Message                                    string
	CreatedAt, UpdatedAt                       time.Time
}

// notifyTx queues a notification about card c in tx, unless the card's
// issuer turned the kind off or the card has no digital card on a device.
// It runs in the transaction that records the event, so an event that
// happened is notified, once.
func (s *Service) notifyTx(ctx context.Context, tx *store.Tx, c *Card, n wallet.Notification) error {
	if c.WalletCardID == "" || c.SEID == "" {
		return nil
	}
	var off int
	switch err := tx.QueryRowContext(ctx, `SELECT 1 FROM transit_notification_off WHERE issuer_id = $1 AND kind = $2`, c.IssuerID, n.Kind).Scan(&off); {
	case err == nil:
		return nil
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("notification settings: %w", err)
	}
	now := s.now()
	n.TextKey = "provhub." + strings.ToLower(n.Kind)
	n.OccurredAt = now.UTC().Format(time.RFC3339)
	payload, _ := json.Marshal(n)
	// The secure element's subject: a notification waits for the wallet
	// tasks queued before it (a top-up's REDIRECT, a suspension).
	job, err := s.engine.Insert(ctx, tx, NotifyArgs{CardID: c.CardID}, &engine.InsertOpts{Subject: "se:" + c.SEID})
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO transit_notifications (notification_id, card_id, se_id, kind, payload, status, job_id, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, 'QUEUED', $6, $7, $7)`, fmt.Sprintf("pvn-%d", job.ID), c.CardID, c.SEID, n.Kind, string(payload), job.ID, now.UnixMicro())
	if err != nil {
		return fmt.Errorf("store notification: %w", err)
	}
	return nil
}

// cardTx reads a card inside tx.
func cardTx(ctx context.Context, tx *store.Tx, cardID string) (*Card, error) {
	return scanCardRow(tx.QueryRowContext(ctx, `SELECT `+cardColumns+` FROM transit_cards WHERE card_id = $1`, cardID))
}

// runNotify sends one notification. The wallet server shows a notification
// once per notificationId, so a retry after a lost answer does no harm.
func (s *Service) runNotify(ctx context.Context, job *engine.Job[NotifyArgs]) error {
	id := fmt.Sprintf("pvn-%d", job.ID)
	var (
		status             string
		payload            sql.NullString
		walletCardID, seID sql.NullString
	)
	err := s.db.ReadRow(ctx, `SELECT n.status, n.payload, c.wallet_card_id, c.se_id FROM transit_notifications n
		JOIN transit_cards c ON c.card_id = n.card_id WHERE n.notification_id = $1`, id).Scan(&status, &payload, &walletCardID, &seID)
	if errors.Is(err, sql.ErrNoRows) {
		return engine.Terminal(fmt.Errorf("notification %s does not exist", id))
	}
	if err != nil {
		return fmt.Errorf("load notification %s: %w", id, err)
	}
	if status != NotificationQueued {
		return nil
	}
	if walletCardID.String == "" {
		return s.endNotification(ctx, job, id, NotificationFailed, nil, "the digital card has left the device")
	}
	var n wallet.Notification
	if err := json.Unmarshal([]byte(payload.String), &n); err != nil {
		return engine.Terminal(fmt.Errorf("notification %s: stored payload: %w", id, err))
	}
	err = s.cfg.Wallet.PushNotification(ctx, wallet.PushNotificationRequest{RequestHeader: s.cfg.Wallet.Header(id), NotificationID: id,
		WalletCardID: walletCardID.String, SEID: seID.String, Notification: n})
	var se *wallet.StatusError
	switch {
	case err == nil:
		return s.endNotification(ctx, job, id, NotificationSent, nil, "")
	case errors.As(err, &se) && !se.Retryable():
		return s.endNotification(ctx, job, id, NotificationFailed, &se.Code, se.Error())
	case ctx.Err() != nil || (job.Attempt < job.MaxAttempts && s.withinBudget(job.JobRow)):
		s.log.WarnContext(ctx, "push notification failed, will retry", "notification_id", id, "attempt", job.Attempt, "err", err)
		if ctx.Err() == nil {
			s.cfg.Outcomes.DownstreamError(outcome.Wallet)
		}
		return err
	}
	var code *int
	if errors.As(err, &se) {
		code = &se.Code
	}
	return s.endNotification(ctx, job, id, NotificationFailed, code, fmt.Sprintf("gave up after %d attempts: %v", job.Attempt, err))
}

func (s *Service) endNotification(ctx context.Context, job *engine.Job[NotifyArgs], id, status string, code *int, msg string) error {
	return s.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE transit_notifications SET status = $2, status_code = $3, message = $4, payload = NULL, updated_at = $5
			WHERE notification_id = $1 AND status = 'QUEUED'`, id, status, code, nullString(msg), s.now().UnixMicro())
		if err != nil {
			return fmt.Errorf("notification %s: record outcome: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil
		}
		return s.engine.CompleteTx(ctx, tx, job.JobRow)
	})
}

// Notifications returns a card's notifications, oldest first.
func (s *Service) Notifications(ctx context.Context, cardID string) ([]PushedNotification, error) {
	rows, err := s.db.ReadQuery(ctx, `SELECT notification_id, card_id, se_id, kind, status, status_code, message, created_at, updated_at
		FROM transit_notifications WHERE card_id = $1 ORDER BY created_at, job_id`, cardID)
	if err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	defer rows.Close()
	var out []PushedNotification
	for rows.Next() {
		var (
			n                PushedNotification
			code             sql.NullInt64
			msg              sql.NullString
			created, updated int64
		)
		if err := rows.Scan(&n.NotificationID, &n.CardID, &n.SEID, &n.Kind, &n.Status, &code, &msg, &created, &updated); err != nil {
			return nil, err
		}
		if code.Valid {
			c := int(code.Int64)
			n.StatusCode = &c
		}
		n.Message, n.CreatedAt, n.UpdatedAt = msg.String, time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
		out = append(out, n)
	}
	return out, rows.Err()
}

// SetNotifications turns notification kinds on or off for an issuer's
// cards (every kind is on until turned off).
func (s *Service) SetNotifications(ctx context.Context, issuerID string, on, off []string) error {
	for _, k := range append(slices.Clone(on), off...) {
		if !slices.Contains(wallet.NotificationKinds, k) {
			return errorf(KindBadFormat, "unknown notification kind %q (known: %s)", k, strings.Join(wallet.NotificationKinds, ", "))
		}
	}
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		for _, k := range on {
			if _, err := tx.ExecContext(ctx, `DELETE FROM transit_notification_off WHERE issuer_id = $1 AND kind = $2`, issuerID, k); err != nil {
				return err
			}
		}
		for _, k := range off {
			if _, err := tx.ExecContext(ctx, `INSERT INTO transit_notification_off (issuer_id, kind) VALUES ($1, $2) ON CONFLICT (issuer_id, kind) DO NOTHING`,
				issuerID, k); err != nil {
				return err
			}
		}
		return nil
	})
}

// NotificationsOff lists the kinds an issuer turned off.
func (s *Service) NotificationsOff(ctx context.Context, issuerID string) ([]string, error) {
	rows, err := s.db.ReadQuery(ctx, `SELECT kind FROM transit_notification_off WHERE issuer_id = $1 ORDER BY kind`, issuerID)
	if err != nil {
		return nil, err
	}
	return store.Strings(rows)
}
