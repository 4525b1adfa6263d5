package wallet

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/provhub/provhub/internal/sim/fault"
	ws "github.com/provhub/provhub/internal/wallet"
)

// DeviceNotification is a notification the wallet server pushed to a
// device (the simulator records it).
type DeviceNotification struct {
	NotificationID string          `json:"notificationId"`
	WalletCardID   string          `json:"walletCardId"`
	Notification   ws.Notification `json:"notification"`
	ReceivedAt     time.Time       `json:"receivedAt"`
}

// pushNotification checks a notification as api/wallet.yaml describes it
// and records it on the device, once per notificationId (a repeat is
// answered alike and not shown again).
func (s *Simulator) pushNotification(_ string, req body) reply {
	if e := req.need("requestHeader", "notificationId", "walletCardId", "seId", "notification"); e != nil {
		return e.reply()
	}
	id := req.str("notificationId")
	if len(id) > 64 {
		return badFormat("notificationId must have 1 to 64 characters").reply()
	}
	var n ws.Notification
	dec := json.NewDecoder(bytes.NewReader(req.Raw("notification")))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&n); err != nil {
		return badFormat("notification: %v", err).reply()
	}
	switch {
	case n.Kind == "" || n.TextKey == "" || n.OccurredAt == "":
		return missing("notification.kind, notification.textKey and notification.occurredAt").reply()
	case !slices.Contains(ws.NotificationKinds, n.Kind):
		return badFormat("notification.kind %q is not a known kind", n.Kind).reply()
	case len(n.TextKey) > 128 || len(n.OperationID) > 64:
		return badFormat("notification.textKey has at most 128 characters and operationId 64").reply()
	}
	if _, err := time.Parse(time.RFC3339, n.OccurredAt); err != nil {
		return badFormat("notification.occurredAt must be an RFC 3339 time").reply()
	}
	seID, cardID := normalizeSE(req.str("seId")), req.str("walletCardId")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.PushNotification++
	d, c, rep := s.lookup(seID, cardID)
	if c == nil {
		return rep
	}
	if slices.ContainsFunc(d.notifications, func(x DeviceNotification) bool { return x.NotificationID == id }) {
		return reply{code: ws.StatusOK}
	}
	d.notifications = append(d.notifications, DeviceNotification{NotificationID: id, WalletCardID: cardID, Notification: n, ReceivedAt: time.Now().UTC()})
	return reply{code: ws.StatusOK}
}

// Notifications returns what a device was shown, oldest first.
func (s *Simulator) Notifications(seID string) []DeviceNotification {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[normalizeSE(seID)]
	if !ok {
		return nil
	}
	return slices.Clone(d.notifications)
}

func (s *Simulator) adminNotifications(w http.ResponseWriter, r *http.Request) {
	fault.WriteJSON(w, http.StatusOK, s.Notifications(r.PathValue("se_id")))
}
