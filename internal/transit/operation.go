package transit

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/outcome"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/tes"
	"github.com/provhub/provhub/internal/wallet"
)

// TES is the port to a transit entity server's device gateway;
// *tes.Client is one.
type TES interface {
	Header(sessionID string) tes.RequestHeader
	CardCommands(ctx context.Context, req tes.CardCommandsRequest) (*tes.CommandsResponse, error)
	ParkCardCommands(ctx context.Context, req tes.ParkCardCommandsRequest) (*tes.CommandsResponse, error)
	ReaderModeCommands(ctx context.Context, req tes.ReaderModeCommandsRequest) (*tes.CommandsResponse, error)
}

// OperationKind is what a device operation does.
type OperationKind string

const (
	KindTopUp      OperationKind = "TOPUP"
	KindPark       OperationKind = "PARK"
	KindReaderMode OperationKind = "READER_MODE"
)

// OperationStatus is where a device operation stands.
type OperationStatus string

const (
	OperationPending    OperationStatus = "PENDING"
	OperationRedirected OperationStatus = "REDIRECTED"
	OperationRunning    OperationStatus = "RUNNING"
	OperationCompleted  OperationStatus = "COMPLETED"
	OperationFailed     OperationStatus = "FAILED"
)

// Final tells whether the operation has ended.
func (s OperationStatus) Final() bool { return s == OperationCompleted || s == OperationFailed }

// DeviceOperation is a command loop between the TES and a device.
type DeviceOperation struct {
	OperationID                     string
	Kind                            OperationKind
	IssuerID, CardID, PurchaseID    string
	SEID, DeviceID, WalletCardID    string
	CardContents                    *tes.CardContents
	Status                          OperationStatus
	Step                            int
	StatusCode                      *int
	Message                         string
	Balance                         *int64
	CardAccountID                   string
	CreatedAt, UpdatedAt, ExpiresAt time.Time
	EndedAt                         *time.Time
}

// OperationArgs is the job of a device operation: it sends the REDIRECT
// that makes the device call in, and ends the operation when its time to
// live runs out.
type OperationArgs struct {
	OperationID string `json:"operation_id"`
}

// Kind names the job kind.
func (OperationArgs) Kind() string { return "transit.device_operation" }

func newOperationID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "dop-" + hex.EncodeToString(b[:])
}

// DeviceToken is the secret a device presents on every call of operation
// id's command loop: 192 bits of HMAC-SHA256 under the hub's device-token
// key. It is sent to the device in the REDIRECT (or to the wallet server
// that starts reader mode) and never stored; the operation keeps its
// SHA-256 to find the operation by.
func (s *Service) DeviceToken(operationID string) string {
	mac := hmac.New(sha256.New, s.cfg.DeviceTokenKey)
	mac.Write([]byte("device-token\n" + operationID))
	return "pdt_" + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:24])
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// redirectPayload is what a REDIRECT task keeps: the operation it opens
// (the token is derived again on every attempt).
type redirectPayload struct {
	OperationID string `json:"operation_id"`
}

// StartTopUp starts a top-up of a card with a purchase: the device is
// redirected to the hub and the TES's commands run on the card.
func (s *Service) StartTopUp(ctx context.Context, issuerID, cardID, purchaseID string) (*DeviceOperation, error) {
	if purchaseID == "" || len(purchaseID) > 64 {
		return nil, errorf(KindBadFormat, "purchaseId must have 1 to 64 characters")
	}
	return s.startCardOperation(ctx, KindTopUp, issuerID, cardID, purchaseID)
}

// StartPark starts moving a card's balance to the TES.
func (s *Service) StartPark(ctx context.Context, issuerID, cardID string) (*DeviceOperation, error) {
	return s.startCardOperation(ctx, KindPark, issuerID, cardID, "")
}

func (s *Service) startCardOperation(ctx context.Context, kind OperationKind, issuerID, cardID, purchaseID string) (*DeviceOperation, error) {
	if s.cfg.TES == nil {
		return nil, errorf(KindNotAllowed, "this hub has no TES configured")
	}
	c, err := s.issuerCard(ctx, issuerID, cardID)
	if err != nil {
		return nil, err
	}
	if c.State != Active {
		return nil, errorf(KindNotAllowed, "a %s needs an ACTIVE card; card %s is %s", kind, cardID, c.State)
	}
	device := c.DeviceID
	if device == "" {
		device = c.SEID
	}
	op := &DeviceOperation{Kind: kind, IssuerID: issuerID, CardID: cardID, PurchaseID: purchaseID, SEID: c.SEID, DeviceID: device,
		WalletCardID: c.WalletCardID, Status: OperationPending}
	if err := s.insertOperation(ctx, op, c); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "device operation started", "operation_id", op.OperationID, "kind", kind, "card_id", cardID, "se_id", c.SEID)
	return op, nil
}

// StartReaderMode starts ingesting the external card a device holds; the
// device then fetches the TES's commands itself.
func (s *Service) StartReaderMode(ctx context.Context, seID, deviceID, issuerID string, contents tes.CardContents) (*DeviceOperation, error) {
	if s.cfg.TES == nil {
		return nil, errorf(KindNotAllowed, "this hub has no TES configured")
	}
	op := &DeviceOperation{Kind: KindReaderMode, IssuerID: issuerID, SEID: normalizeSE(seID), DeviceID: deviceID, CardContents: &contents,
		Status: OperationRunning}
	if err := s.insertOperation(ctx, op, nil); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "reader mode started", "operation_id", op.OperationID, "se_id", op.SEID)
	return op, nil
}

func normalizeSE(seID string) string {
	b, err := hex.DecodeString(seID)
	if err != nil {
		return seID
	}
	return fmt.Sprintf("%X", b)
}

// insertOperation stores a new operation with its job, refusing a second
// operation on a secure element whose operation has not ended. With a
// card, it also queues the REDIRECT wallet task that sends the device to
// the hub (in the secure element's order of wallet tasks).
func (s *Service) insertOperation(ctx context.Context, op *DeviceOperation, c *Card) error {
	now := s.now()
	op.OperationID, op.CreatedAt, op.UpdatedAt, op.ExpiresAt = newOperationID(), now, now, now.Add(s.cfg.OperationTTL)
	var contents any
	if op.CardContents != nil {
		raw, _ := json.Marshal(op.CardContents)
		contents = string(raw)
	}
	return s.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		busy, err := runningOperationTx(ctx, tx, op.SEID, now)
		switch {
		case err != nil:
			return err
		case busy != "":
			return errorf(KindBusy, "operation %s runs on this device", busy)
		}
		recent, err := operationsSinceTx(ctx, tx, op.SEID, now.Add(-s.cfg.OperationsWindow))
		if err != nil {
			return err
		}
		if recent >= s.cfg.OperationsPerSE {
			return errorf(KindBusy, "%d operations were started on this device within %s; try again later", recent, s.cfg.OperationsWindow)
		}
		if _, err := s.engine.Insert(ctx, tx, OperationArgs{OperationID: op.OperationID}, &engine.InsertOpts{UniqueKey: OperationJobKey(op.OperationID)}); err != nil {
			return err
		}
		var redirect any
		if c != nil {
			payload, _ := json.Marshal(redirectPayload{OperationID: op.OperationID})
			t, err := s.queueTx(ctx, tx, c, OpRedirect, payload, nil)
			if err != nil {
				return err
			}
			redirect = t.TaskID
		}
		return insertOperationTx(ctx, tx, op, redirect, contents, hashToken(s.DeviceToken(op.OperationID)))
	})
}

// OperationJobKey is the unique key of the job that runs a device
// operation: the console finds an operation's job by it.
func OperationJobKey(operationID string) string { return "transit.operation:" + operationID }

// Operation returns a device operation of an issuer.
func (s *Service) Operation(ctx context.Context, issuerID, operationID string) (*DeviceOperation, error) {
	op, err := s.operation(ctx, operationID)
	if err != nil {
		return nil, err
	}
	if op.IssuerID != issuerID {
		return nil, errorf(KindUnknownOperation, "unknown operation %s", operationID)
	}
	return op, nil
}

func (s *Service) operation(ctx context.Context, operationID string) (*DeviceOperation, error) {
	return readOperation(ctx, s.db, operationID)
}

// end records an operation's outcome unless it has already ended, with
// the notification of the card's device in the same transaction.
func (s *Service) end(ctx context.Context, op *DeviceOperation, status OperationStatus, code int, msg string) error {
	now := s.now().UnixMicro()
	ended := false
	err := s.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		var err error
		if ended, err = endOperationTx(ctx, tx, op.OperationID, status, code, msg, now); err != nil || !ended {
			return err
		}
		tx.AfterCommit(func() { s.cfg.Outcomes.DeviceOperation(string(op.Kind), string(status), code) })
		return s.notifyOperationTx(ctx, tx, op, status, code, nil)
	})
	if err != nil {
		return fmt.Errorf("end operation %s: %w", op.OperationID, err)
	}
	if ended {
		s.log.InfoContext(ctx, "device operation ended", "operation_id", op.OperationID, "kind", op.Kind, "status", status, "status_code", code)
	}
	return nil
}

// notifyOperationTx queues the notification of a top-up's or park's end
// (reader mode has no digital card yet to tell).
func (s *Service) notifyOperationTx(ctx context.Context, tx *store.Tx, op *DeviceOperation, status OperationStatus, code int, balance *int64) error {
	var kind string
	switch {
	case op.CardID == "":
		return nil
	case op.Kind == KindTopUp && status == OperationCompleted:
		kind = wallet.NotifyTopUpCompleted
	case op.Kind == KindTopUp:
		kind = wallet.NotifyTopUpFailed
	case op.Kind == KindPark && status == OperationCompleted:
		kind = wallet.NotifyParkCompleted
	case op.Kind == KindPark:
		kind = wallet.NotifyParkFailed
	default:
		return nil
	}
	c, err := cardTx(ctx, tx, op.CardID)
	if err != nil {
		return err
	}
	n := wallet.Notification{Kind: kind, Balance: balance, OperationID: op.OperationID}
	if status != OperationCompleted {
		n.StatusCode = &code
	}
	return s.notifyTx(ctx, tx, c, n)
}

// runOperation follows the REDIRECT task of a top-up or park (a task that
// fails for good fails the operation with 221), then waits for the
// operation's time to live and fails it with 322 if the loop has not ended
// by then.
func (s *Service) runOperation(ctx context.Context, job *engine.Job[OperationArgs]) error {
	op, err := s.operation(ctx, job.Args.OperationID)
	if KindOf(err) == KindUnknownOperation {
		return nil
	}
	if err != nil {
		return err
	}
	if op.Status.Final() {
		return nil
	}
	now := s.now()
	if !now.Before(op.ExpiresAt) {
		return s.end(ctx, op, OperationFailed, tes.StatusTTLExpired, "the operation's time to live expired")
	}
	if op.Status == OperationPending {
		status, msg, err := redirectTaskOf(ctx, s.db, op.OperationID)
		if err != nil {
			return err
		}
		switch status {
		case TaskQueued, TaskProcessing:
			return engine.Snooze(s.pollWait(job.Snoozes))
		case TaskFailed:
			why := "the device could not be redirected"
			if msg != "" {
				why += ": " + msg
			}
			return s.end(ctx, op, OperationFailed, tes.StatusDeviceUnreachable, why)
		}
		if err := markRedirected(ctx, s.db, op.OperationID, now); err != nil {
			return err
		}
	}
	// Look again at the expiry, or every few seconds if that is later (the
	// relay may have ended the operation meanwhile).
	return engine.Snooze(min(op.ExpiresAt.Sub(now)+time.Millisecond, 5*time.Second))
}

// DeviceCall is a device's getDeviceCommands.
type DeviceCall struct {
	// Token is the operation's device token, from the REDIRECT (or the
	// answer to startReaderMode); without it the call learns nothing.
	Token                           string
	SEID, WalletCardID, OperationID string
	// Step is the batch the responses answer (0 on the first call).
	Step           int
	Responses      []tes.Response
	ResponseTimeMs *float64
	// StatusCode reports how the batch went on the device (0, 231, 232).
	StatusCode    *int
	StatusMessage string
}

// DeviceAnswer is the next batch, or the end.
type DeviceAnswer struct {
	OperationID   string
	Step          int
	Commands      []tes.Command
	Done          bool
	StatusCode    int
	Message       string
	Balance       *int64
	CardAccountID string
}

// DeviceCommands relays one step of a device operation: the device's
// responses to the TES, the TES's next batch to the device. A call that
// repeats the last step is answered from the record; a call for a new step
// asks the TES, which answers a repeated request the same way, so that a
// step lost anywhere is asked again without any effect applied twice.
func (s *Service) DeviceCommands(ctx context.Context, call DeviceCall) (*DeviceAnswer, error) {
	op, err := s.findOperation(ctx, call)
	if err != nil {
		return nil, err
	}
	if op.Status.Final() {
		return finalAnswer(op), nil
	}
	if !s.now().Before(op.ExpiresAt) {
		if err := s.end(ctx, op, OperationFailed, tes.StatusTTLExpired, "the operation's time to live expired"); err != nil {
			return nil, err
		}
		return &DeviceAnswer{OperationID: op.OperationID, Done: true, StatusCode: tes.StatusTTLExpired, Message: "the operation's time to live expired"}, nil
	}
	switch {
	case call.Step == op.Step-1 && op.Step > 0:
		return s.replay(ctx, op)
	case call.Step != op.Step:
		return nil, errorf(KindBadStep, "step %d is out of order; the device should answer step %d", call.Step, op.Step)
	}
	loop := tes.Loop{Responses: call.Responses, ResponseTimeMs: call.ResponseTimeMs, StatusCode: call.StatusCode, StatusMessage: call.StatusMessage}
	res, tesErr := s.askTES(ctx, op, loop)
	var se *tes.StatusError
	if tesErr != nil && !errors.As(tesErr, &se) {
		s.log.WarnContext(ctx, "TES did not answer a relay step", "operation_id", op.OperationID, "step", call.Step, "err", tesErr)
		return nil, errorf(KindUnavailable, "the TES did not answer; repeat the call")
	}
	won, err := s.record(ctx, op, call.Step, loop, res)
	if err != nil {
		return nil, err
	}
	if won {
		ans := &DeviceAnswer{OperationID: op.OperationID, Step: call.Step + 1, Commands: res.Commands}
		if hdr := res.ResponseHeader; hdr.StatusCode != tes.StatusOK || res.Done() {
			ans.Commands, ans.Done, ans.StatusCode, ans.Message = nil, true, hdr.StatusCode, hdr.StatusMessage
			ans.Balance, ans.CardAccountID = res.Balance, res.CardAccountID
			if hdr.StatusCode == tes.StatusOK {
				ans.Message = ""
			}
		}
		return ans, nil
	}
	// A concurrent call recorded this step first: its record is the answer.
	op, err = s.operation(ctx, op.OperationID)
	if err != nil {
		return nil, err
	}
	if op.Status.Final() {
		return finalAnswer(op), nil
	}
	return s.replay(ctx, op)
}

// findOperation finds the operation by its device token. A token that
// names no operation, or an operation of another secure element, wallet
// card or id than the call says, gets one answer: the caller learns
// nothing of which operations exist.
func (s *Service) findOperation(ctx context.Context, call DeviceCall) (*DeviceOperation, error) {
	if call.Token == "" {
		return nil, errorf(KindMissing, "deviceToken is missing")
	}
	op, err := readOperationByToken(ctx, s.db, hashToken(call.Token))
	switch {
	case KindOf(err) == KindUnknownOperation:
		return nil, errorf(KindNoOperation, "no operation waits for this device")
	case err != nil:
		return nil, err
	case op.SEID != normalizeSE(call.SEID), call.OperationID != "" && call.OperationID != op.OperationID,
		call.WalletCardID != "" && call.WalletCardID != op.WalletCardID:
		return nil, errorf(KindNoOperation, "no operation waits for this device")
	}
	return op, nil
}

func finalAnswer(op *DeviceOperation) *DeviceAnswer {
	a := &DeviceAnswer{OperationID: op.OperationID, Step: op.Step, Done: true, Message: op.Message, Balance: op.Balance, CardAccountID: op.CardAccountID}
	if op.StatusCode != nil {
		a.StatusCode = *op.StatusCode
	}
	return a
}

// replay answers with the batch of the operation's current step.
func (s *Service) replay(ctx context.Context, op *DeviceOperation) (*DeviceAnswer, error) {
	raw, err := stepAnswer(ctx, s.db, op.OperationID, op.Step)
	if err != nil {
		return nil, err
	}
	var res tes.CommandsResponse
	if err := json.Unmarshal([]byte(raw), &res); err != nil {
		return nil, fmt.Errorf("operation %s: stored step %d: %w", op.OperationID, op.Step, err)
	}
	return &DeviceAnswer{OperationID: op.OperationID, Step: op.Step, Commands: res.Commands}, nil
}

// askTES sends one step to the TES, repeating it while the TES is
// unavailable (the repeat is the same request, which the TES answers the
// same way).
func (s *Service) askTES(ctx context.Context, op *DeviceOperation, loop tes.Loop) (*tes.CommandsResponse, error) {
	var (
		res *tes.CommandsResponse
		err error
	)
	first := time.Now()
	for {
		hdr := s.cfg.TES.Header(op.OperationID)
		switch op.Kind {
		case KindTopUp:
			res, err = s.cfg.TES.CardCommands(ctx, tes.CardCommandsRequest{RequestHeader: hdr, IssuerID: op.IssuerID, CardID: op.CardID,
				PurchaseID: op.PurchaseID, DeviceID: op.DeviceID, Operation: tes.OpTopUp, Loop: loop})
		case KindPark:
			res, err = s.cfg.TES.ParkCardCommands(ctx, tes.ParkCardCommandsRequest{RequestHeader: hdr, IssuerID: op.IssuerID, CardID: op.CardID,
				DeviceID: op.DeviceID, Operation: tes.OpPark, Loop: loop})
		case KindReaderMode:
			req := tes.ReaderModeCommandsRequest{RequestHeader: hdr, IssuerID: op.IssuerID, DeviceID: op.DeviceID, Operation: tes.OpReaderMode, Loop: loop}
			if op.Step == 0 {
				req.CardContents = op.CardContents
			}
			res, err = s.cfg.TES.ReaderModeCommands(ctx, req)
		}
		var se *tes.StatusError
		retry := errors.Is(err, tes.ErrUnavailable) || (errors.As(err, &se) && se.Code == tes.StatusServerError)
		if retry && ctx.Err() == nil {
			s.cfg.Outcomes.DownstreamError(outcome.TES)
		}
		if !retry || time.Since(first)+s.cfg.TESRetryWait > s.cfg.TESRetryFor || ctx.Err() != nil {
			break
		}
		time.Sleep(s.cfg.TESRetryWait)
	}
	var se *tes.StatusError
	if errors.As(err, &se) && se.Code == tes.StatusServerError {
		// Still unavailable: not an outcome, so not a StatusError either
		// (the caller ends the operation on those).
		return nil, fmt.Errorf("%w: the TES answered %d: %s", tes.ErrUnavailable, se.Code, se.Message)
	}
	return res, err
}

// record stores the TES's answer to step and moves the operation on. It
// reports false when a concurrent call recorded the step first (or the
// operation ended meanwhile): that record is then the answer.
func (s *Service) record(ctx context.Context, op *DeviceOperation, step int, loop tes.Loop, res *tes.CommandsResponse) (bool, error) {
	now := s.now().UnixMicro()
	reqRaw, _ := json.Marshal(loop)
	ansRaw, _ := json.Marshal(res)
	hdr := res.ResponseHeader
	won := false
	err := s.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		won = false
		moved, err := advanceOperationTx(ctx, tx, op.OperationID, step, res, now)
		if err != nil || !moved {
			return err // !moved: recorded by a concurrent call, or ended meanwhile
		}
		if err := insertStepTx(ctx, tx, op.OperationID, step+1, reqRaw, ansRaw, now); err != nil {
			return err
		}
		switch {
		case hdr.StatusCode != tes.StatusOK:
			tx.AfterCommit(func() { s.cfg.Outcomes.DeviceOperation(string(op.Kind), string(OperationFailed), hdr.StatusCode) })
			err = s.notifyOperationTx(ctx, tx, op, OperationFailed, hdr.StatusCode, nil)
		case res.Done():
			tx.AfterCommit(func() { s.cfg.Outcomes.DeviceOperation(string(op.Kind), string(OperationCompleted), 0) })
			err = s.notifyOperationTx(ctx, tx, op, OperationCompleted, 0, res.Balance)
		}
		won = err == nil
		return err
	})
	return won, err
}

// OperationStep is one recorded relay step.
type OperationStep struct {
	Step            int
	Request, Answer string
	At              time.Time
}

// OperationDetail returns any device operation with its recorded steps,
// for the operator console.
func (s *Service) OperationDetail(ctx context.Context, operationID string) (*DeviceOperation, []OperationStep, error) {
	op, err := s.operation(ctx, operationID)
	if err != nil {
		return nil, nil, err
	}
	steps, err := stepsOf(ctx, s.db, operationID)
	if err != nil {
		return nil, nil, err
	}
	return op, steps, nil
}

// PurgeOperations removes the device operations that ended before cutoff,
// with their relay steps (the retention job calls it).
func (s *Service) PurgeOperations(ctx context.Context, tx *store.Tx, cutoff time.Time) (int64, error) {
	return purgeOperationsTx(ctx, tx, cutoff)
}
