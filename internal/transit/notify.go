package transit

import (
	"context"
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
	if off, err := kindOffTx(ctx, tx, c.IssuerID, n.Kind); err != nil || off {
		return err
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
	return insertNotificationTx(ctx, tx, queuedNotification{id: fmt.Sprintf("pvn-%d", job.ID), cardID: c.CardID, seID: c.SEID, kind: n.Kind,
		payload: payload, jobID: job.ID}, now)
}

// runNotify sends one notification. The wallet server shows a notification
// once per notificationId, so a retry after a lost answer does no harm.
func (s *Service) runNotify(ctx context.Context, job *engine.Job[NotifyArgs]) error {
	id := fmt.Sprintf("pvn-%d", job.ID)
	stored, found, err := readNotificationToSend(ctx, s.db, id)
	switch {
	case err != nil:
		return err
	case !found:
		return engine.Terminal(fmt.Errorf("notification %s does not exist", id))
	}
	status, payload, walletCardID, seID := stored.status, stored.payload, stored.walletCardID, stored.seID
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
		ended, err := endNotificationTx(ctx, tx, id, status, code, msg, s.now())
		if err != nil || !ended {
			return err
		}
		return s.engine.CompleteTx(ctx, tx, job.JobRow)
	})
}

// Notifications returns a card's notifications, oldest first.
func (s *Service) Notifications(ctx context.Context, cardID string) ([]PushedNotification, error) {
	return notificationsOfCard(ctx, s.db, cardID)
}

// SetNotifications turns notification kinds on or off for an issuer's
// cards (every kind is on until turned off).
func (s *Service) SetNotifications(ctx context.Context, issuerID string, on, off []string) error {
	for _, k := range append(slices.Clone(on), off...) {
		if !slices.Contains(wallet.NotificationKinds, k) {
			return errorf(KindBadFormat, "unknown notification kind %q (known: %s)", k, strings.Join(wallet.NotificationKinds, ", "))
		}
	}
	return s.db.InTx(ctx, func(tx *store.Tx) error { return setKindsTx(ctx, tx, issuerID, on, off) })
}

// NotificationsOff lists the kinds an issuer turned off.
func (s *Service) NotificationsOff(ctx context.Context, issuerID string) ([]string, error) {
	return kindsOff(ctx, s.db, issuerID)
}
