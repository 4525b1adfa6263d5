package issuer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/transit"
)

// OperationArgs is the job that carries an operation to its end: it queues
// the operation's wallet tasks, waits for them and records the outcome.
type OperationArgs struct {
	OperationID string `json:"operation_id"`
}

// Kind names the job kind.
func (OperationArgs) Kind() string { return "issuer.operation" }

// insertOperationTx stores op (a new id is set) as asked by by.
func (s *Service) insertOperationTx(ctx context.Context, tx *store.Tx, op *Operation, by Requestor) error {
	op.OperationID = newOperationID()
	op.RequestorType, op.RequestorID, op.CorrelationID = by.Type, by.ID, by.CorrelationID
	var end any
	if op.EndTime != nil {
		end = op.EndTime.UnixMicro()
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO issuer_operations (operation_id, issuer_id, consumer_id, operation, status, requestor_type, requestor_id,
			reason, reason_code, card_id, digital_card_id, correlation_id, start_time, end_time, account_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		op.OperationID, op.IssuerID, op.ConsumerID, string(op.Type), string(op.Status), op.RequestorType, op.RequestorID,
		nullString(op.Reason), nullString(op.ReasonCode), nullString(op.CardID), nullString(op.DigitalCardID), nullString(op.CorrelationID),
		op.StartTime.UnixMicro(), end, nullString(op.AccountID))
	if err != nil {
		return fmt.Errorf("record operation: %w", err)
	}
	return nil
}

// OperationJobKey is the unique key of the job that carries out an
// operation: the console finds an operation's job by it.
func OperationJobKey(operationID string) string { return "issuer.operation:" + operationID }

// startOperationTx records a PENDING operation and the job that ends it.
func (s *Service) startOperationTx(ctx context.Context, tx *store.Tx, op *Operation, by Requestor) error {
	op.Status, op.StartTime = StatusPending, s.now()
	if err := s.insertOperationTx(ctx, tx, op, by); err != nil {
		return err
	}
	_, err := s.engine.Insert(ctx, tx, OperationArgs{OperationID: op.OperationID},
		&engine.InsertOpts{Subject: "consumer:" + op.IssuerID + "/" + op.ConsumerID, UniqueKey: OperationJobKey(op.OperationID)})
	return err
}

// DeleteConsumer records a DELETE operation, PENDING, and leaves the rest to
// its job: every digital card of the consumer is deleted through the wallet
// server, then the consumer's accounts, cards and digital cards are removed
// for good and the consumerId is burnt. Asking again while the deletion runs
// returns the same operation.
func (s *Service) DeleteConsumer(ctx context.Context, issuerID, consumerID string, why Reason, by Requestor) (*Operation, error) {
	code, err := reasonCode(why.Code, ConsumerDeleteReasons)
	if err != nil {
		return nil, err
	}
	var op *Operation
	err = s.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		c, err := consumerTx(ctx, tx, issuerID, consumerID)
		if err != nil {
			return err
		}
		switch {
		case c == nil:
			return errorf(KindNotFound, "unknown consumer %s", consumerID)
		case c.State == ConsumerDeleted:
			return errorf(KindForbidden, "consumer %s is already deleted", consumerID)
		case c.State == ConsumerDeleting:
			op, err = pendingDeleteTx(ctx, tx, issuerID, consumerID)
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE issuer_consumers SET state = 'DELETING', updated_at = $3 WHERE issuer_id = $1 AND consumer_id = $2`,
			issuerID, consumerID, s.now().UnixMicro()); err != nil {
			return fmt.Errorf("mark consumer deleting: %w", err)
		}
		op = &Operation{IssuerID: issuerID, ConsumerID: consumerID, Type: OpDelete, Reason: why.Text, ReasonCode: code}
		return s.startOperationTx(ctx, tx, op, by)
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "consumer deletion accepted", "issuer_id", issuerID, "operation_id", op.OperationID)
	return op, nil
}

func pendingDeleteTx(ctx context.Context, tx *store.Tx, issuerID, consumerID string) (*Operation, error) {
	row := tx.QueryRowContext(ctx, `SELECT `+operationColumns+` FROM issuer_operations WHERE issuer_id = $1 AND consumer_id = $2
		AND operation = 'DELETE' AND card_id IS NULL AND digital_card_id IS NULL AND account_id IS NULL AND status = 'PENDING' ORDER BY seq DESC LIMIT 1`, issuerID, consumerID)
	op, err := scanOperation(row)
	if err != nil {
		return nil, err
	}
	if op == nil {
		return nil, errorf(KindForbidden, "consumer %s is being deleted", consumerID)
	}
	return op, nil
}

// DeleteAccount is the deprecated account deletion: an operation, PENDING,
// whose job deletes every digital card of the account's cards through the
// wallet server, then marks those cards DELETED and removes the account.
// The operation is the account's consumer's. Asking again while it runs
// returns the same operation.
func (s *Service) DeleteAccount(ctx context.Context, issuerID, accountID string, why Reason, by Requestor) (*Operation, error) {
	code, err := reasonCode(why.Code, CardDeleteReasons)
	if err != nil {
		return nil, err
	}
	var op *Operation
	err = s.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		var consumerID string
		err := tx.QueryRowContext(ctx, `SELECT consumer_id FROM issuer_accounts WHERE issuer_id = $1 AND account_id = $2`, issuerID, accountID).Scan(&consumerID)
		if errors.Is(err, sql.ErrNoRows) {
			return errorf(KindNotFound, "unknown account %s", accountID)
		}
		if err != nil {
			return fmt.Errorf("read account: %w", err)
		}
		consumer, err := consumerTx(ctx, tx, issuerID, consumerID)
		if err != nil {
			return err
		}
		if err := usable(consumer); err != nil {
			return err
		}
		pending, err := scanOperation(tx.QueryRowContext(ctx, `SELECT `+operationColumns+` FROM issuer_operations WHERE issuer_id = $1 AND account_id = $2
			AND operation = 'DELETE' AND status = 'PENDING' ORDER BY seq DESC LIMIT 1`, issuerID, accountID))
		if err != nil || pending != nil {
			op = pending
			return err
		}
		// The account's cards are being deleted: no other operation starts on them.
		if _, err := tx.ExecContext(ctx, `UPDATE issuer_cards SET ongoing_operation = 'DELETE', updated_at = $3
			WHERE issuer_id = $1 AND account_id = $2 AND state <> 'DELETED'`, issuerID, accountID, s.now().UnixMicro()); err != nil {
			return fmt.Errorf("mark the account's cards: %w", err)
		}
		op = &Operation{IssuerID: issuerID, ConsumerID: consumerID, Type: OpDelete, Reason: why.Text, ReasonCode: code, AccountID: accountID}
		return s.startOperationTx(ctx, tx, op, by)
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "account deletion accepted", "issuer_id", issuerID, "account_id", accountID, "operation_id", op.OperationID)
	return op, nil
}

// CardOperation suspends, resumes or deletes a card. Suspension and
// resumption change the card at once and carry the change to its digital
// cards through the wallet server; deletion deletes the digital cards first
// and marks the card DELETED when they are gone.
func (s *Service) CardOperation(ctx context.Context, issuerID, cardID string, typ OperationType, why Reason, by Requestor) (*Operation, error) {
	var allowed []string
	switch typ {
	case OpSuspend:
		allowed = CardSuspendReasons
	case OpResume:
		allowed = CardResumeReasons
	case OpDelete:
		allowed = CardDeleteReasons
	default:
		return nil, errorf(KindBadInput, "unknown card operation %s", typ)
	}
	code, err := reasonCode(why.Code, allowed)
	if err != nil {
		return nil, err
	}
	var op *Operation
	err = s.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		c, err := operableCardTx(ctx, tx, issuerID, cardID, "unknown card "+cardID)
		if err != nil {
			return err
		}
		change, err := cardChangeFor(&c.Card, typ, code)
		if err != nil {
			return err
		}
		if err := updateCardTx(ctx, tx, issuerID, cardID, change, s.now()); err != nil {
			return err
		}
		op = &Operation{IssuerID: issuerID, ConsumerID: c.ConsumerID, Type: typ, Reason: why.Text, ReasonCode: code, CardID: cardID}
		return s.startOperationTx(ctx, tx, op, by)
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "card operation accepted", "issuer_id", issuerID, "card_id", cardID, "operation", typ, "operation_id", op.OperationID)
	return op, nil
}

// DigitalCardOperation suspends, resumes or deletes one digital card
// through the wallet server. The wallet task is queued with the operation,
// so a state that forbids it is refused at once.
func (s *Service) DigitalCardOperation(ctx context.Context, issuerID, digitalCardID string, typ OperationType, why Reason, by Requestor) (*Operation, error) {
	var walletOp transit.Operation
	switch typ {
	case OpSuspend:
		walletOp = transit.OpSuspend
	case OpResume:
		walletOp = transit.OpResume
	case OpDelete:
		walletOp = transit.OpDelete
	default:
		return nil, errorf(KindBadInput, "unknown digital card operation %s", typ)
	}
	if why.Code == "" {
		why.Code = ReasonIssuerDecision
	}
	tc, _, err := s.digitalCard(ctx, issuerID, digitalCardID)
	if err != nil {
		return nil, err
	}
	var op *Operation
	err = s.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		c, err := operableCardTx(ctx, tx, issuerID, tc.CardAccountID, "unknown digital card "+digitalCardID)
		if err != nil {
			return err
		}
		switch {
		case c.OngoingOperation != "":
			return errorf(KindForbidden, "the card of digital card %s is being deleted", digitalCardID)
		case typ == OpResume && c.State != CardActive:
			return errorf(KindForbidden, "the card of digital card %s is %s", digitalCardID, c.State)
		}
		task, err := s.transit.QueueTx(ctx, tx, tc.CardID, walletOp)
		switch transit.KindOf(err) {
		case 0:
		case transit.KindNotAllowed:
			return errorf(KindForbidden, "digital card %s: %v", digitalCardID, err)
		case transit.KindUnknownCard:
			return errorf(KindNotFound, "unknown digital card %s", digitalCardID)
		default:
			return err
		}
		if err != nil {
			return err
		}
		op = &Operation{IssuerID: issuerID, ConsumerID: c.ConsumerID, Type: typ, Reason: why.Text, ReasonCode: why.Code,
			CardID: c.CardID, DigitalCardID: digitalCardID}
		if err := s.startOperationTx(ctx, tx, op, by); err != nil {
			return err
		}
		if err := linkTaskTx(ctx, tx, op.OperationID, task.TaskID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE issuer_operations SET tasks_queued = 1 WHERE operation_id = $1`, op.OperationID)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "digital card operation accepted", "issuer_id", issuerID, "operation", typ, "operation_id", op.OperationID)
	return op, nil
}

func linkTaskTx(ctx context.Context, tx *store.Tx, operationID, taskID string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO issuer_operation_tasks (operation_id, task_id) VALUES ($1, $2)`, operationID, taskID); err != nil {
		return fmt.Errorf("link task: %w", err)
	}
	return nil
}

const operationColumns = `operation_id, issuer_id, consumer_id, operation, status, requestor_type, requestor_id, reason, reason_code,
	card_id, digital_card_id, error_code, error, correlation_id, start_time, end_time, tasks_queued, account_id`

type operationRow struct {
	Operation
	tasksQueued bool
}

func scanOperation(row interface{ Scan(...any) error }) (*Operation, error) {
	r, err := scanOperationRow(row)
	if r == nil {
		return nil, err
	}
	return &r.Operation, nil
}

func scanOperationRow(row interface{ Scan(...any) error }) (*operationRow, error) {
	var (
		o                                                        operationRow
		reason, code, card, digital, errCode, errText, correlate sql.NullString
		account                                                  sql.NullString
		start                                                    int64
		end                                                      sql.NullInt64
		queued                                                   int
	)
	err := row.Scan(&o.OperationID, &o.IssuerID, &o.ConsumerID, &o.Type, &o.Status, &o.RequestorType, &o.RequestorID, &reason, &code,
		&card, &digital, &errCode, &errText, &correlate, &start, &end, &queued, &account)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read operation: %w", err)
	}
	o.Reason, o.ReasonCode, o.CardID, o.DigitalCardID = reason.String, code.String, card.String, digital.String
	o.ErrorCode, o.Error, o.CorrelationID, o.AccountID = errCode.String, errText.String, correlate.String, account.String
	o.StartTime = time.UnixMicro(start).UTC()
	if end.Valid {
		t := time.UnixMicro(end.Int64).UTC()
		o.EndTime = &t
	}
	o.tasksQueued = queued != 0
	return &o, nil
}

// Operations returns a page of a consumer's operations, newest first,
// skipping offset. As published, a consumer with no operations, one never
// registered included, has an empty list; a deleted one keeps its
// operations until retention removes them.
func (s *Service) Operations(ctx context.Context, issuerID, consumerID string, offset, limit int) (*Page, error) {
	if offset < 0 || limit < 1 {
		return nil, errorf(KindBadInput, "offset must be >= 0 and limit >= 1")
	}
	var total int
	if err := s.db.ReadRow(ctx, `SELECT COUNT(*) FROM issuer_operations WHERE issuer_id = $1 AND consumer_id = $2`, issuerID, consumerID).Scan(&total); err != nil {
		return nil, fmt.Errorf("count operations: %w", err)
	}
	rows, err := s.db.ReadQuery(ctx, `SELECT `+operationColumns+` FROM issuer_operations WHERE issuer_id = $1 AND consumer_id = $2
		ORDER BY seq DESC LIMIT $3 OFFSET $4`, issuerID, consumerID, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("list operations: %w", err)
	}
	defer rows.Close()
	page := &Page{Operations: []Operation{}}
	for rows.Next() {
		op, err := scanOperation(rows)
		if err != nil {
			return nil, err
		}
		page.Operations = append(page.Operations, *op)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list operations: %w", err)
	}
	page.Remaining = max(0, total-offset-len(page.Operations))
	return page, nil
}

// Operation returns one operation of a consumer.
func (s *Service) Operation(ctx context.Context, issuerID, consumerID, operationID string) (*Operation, error) {
	op, err := scanOperation(s.db.ReadRow(ctx, `SELECT `+operationColumns+` FROM issuer_operations
		WHERE operation_id = $1 AND issuer_id = $2 AND consumer_id = $3`, operationID, issuerID, consumerID))
	if err != nil {
		return nil, err
	}
	if op == nil {
		return nil, errorf(KindNotFound, "unknown operation %s for consumer %s", operationID, consumerID)
	}
	return op, nil
}

// errorText keeps what the operation error's published pattern allows
// (letters, digits and _ /\[],.'#;:{}()?!*-) and at most 256 characters.
func errorText(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_ /\\[],.'#;:{}()?!*-", c) >= 0
		if !ok {
			b[i] = ' '
		}
	}
	if len(b) > 256 {
		b = b[:256]
	}
	return string(b)
}

// RecentOperations returns the newest operations of every issuer,
// optionally in one status, for the operator console.
//
// q.Status is an operation status; q.Search finds the operations of an
// operation, issuer, consumer, card, digital card or correlation id;
// q.Before is an operation id.
func (s *Service) RecentOperations(ctx context.Context, q store.ListQuery) ([]Operation, error) {
	limit := min(max(q.Limit, 1), 500)
	rows, err := s.db.ReadQuery(ctx, `SELECT `+operationColumns+` FROM issuer_operations WHERE ($1 = '' OR status = $1)
		AND ($2 = '' OR operation_id = $2 OR issuer_id = $2 OR consumer_id = $2 OR card_id = $2 OR digital_card_id = $2 OR correlation_id = $2)
		AND ($3 = '' OR seq < (SELECT seq FROM issuer_operations WHERE operation_id = $3))
		ORDER BY seq DESC LIMIT $4`,
		q.Status, q.Search, q.Before, limit)
	if err != nil {
		return nil, fmt.Errorf("recent operations: %w", err)
	}
	defer rows.Close()
	var out []Operation
	for rows.Next() {
		op, err := scanOperation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *op)
	}
	return out, rows.Err()
}

// OperationByID returns any issuer's operation, for the operator console.
func (s *Service) OperationByID(ctx context.Context, operationID string) (*Operation, error) {
	op, err := scanOperation(s.db.ReadRow(ctx, `SELECT `+operationColumns+` FROM issuer_operations WHERE operation_id = $1`, operationID))
	if err != nil {
		return nil, err
	}
	if op == nil {
		return nil, errorf(KindNotFound, "unknown operation %s", operationID)
	}
	return op, nil
}

// OutcomeCounts counts the operations started since a time by status and
// error code ("FAILED WALLET_432").
func (s *Service) OutcomeCounts(ctx context.Context, since time.Time) (map[string]int, error) {
	return s.db.CountOutcomes(ctx, `SELECT status, COALESCE(error_code, ''), count(*) FROM issuer_operations WHERE start_time >= $1 GROUP BY 1, 2`,
		since.UnixMicro())
}

// cardChange is what a card operation does to the card at once: a new state
// and reason, or (a deletion) the mark that the operation is under way while
// its digital cards are deleted.
type cardChange struct {
	state    CardState
	reason   string // with state; "" clears it
	deleting bool
}

// cardChangeFor is the rule of the card operations: what typ with reason
// code does to card c, or why it is refused.
func cardChangeFor(c *Card, typ OperationType, code string) (cardChange, error) {
	switch {
	case c.OngoingOperation != "":
		return cardChange{}, errorf(KindForbidden, "card %s is being deleted", c.CardID)
	case c.State == CardDeleted:
		return cardChange{}, errorf(KindForbidden, "card %s is deleted", c.CardID)
	case typ == OpSuspend && c.State != CardActive:
		return cardChange{}, errorf(KindForbidden, "only an ACTIVE card can be suspended; card %s is %s", c.CardID, c.State)
	case typ == OpResume && c.State != CardSuspended:
		return cardChange{}, errorf(KindForbidden, "card %s is not suspended", c.CardID)
	case typ == OpResume && !resumeAllowed(c.StateReason, code):
		return cardChange{}, errorf(KindForbidden, "a card suspended for %s cannot be resumed for %s", c.StateReason, code)
	case typ == OpSuspend:
		return cardChange{state: CardSuspended, reason: code}, nil
	case typ == OpResume:
		return cardChange{state: CardActive}, nil
	case typ == OpDelete:
		return cardChange{deleting: true}, nil
	}
	return cardChange{}, errorf(KindBadInput, "unknown card operation %s", typ)
}

// updateCardTx writes a card change.
func updateCardTx(ctx context.Context, tx *store.Tx, issuerID, cardID string, ch cardChange, now time.Time) error {
	var err error
	if ch.deleting {
		_, err = tx.ExecContext(ctx, `UPDATE issuer_cards SET ongoing_operation = 'DELETE', updated_at = $3 WHERE issuer_id = $1 AND card_id = $2`,
			issuerID, cardID, now.UnixMicro())
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE issuer_cards SET state = $3, state_reason = $4, updated_at = $5 WHERE issuer_id = $1 AND card_id = $2`,
			issuerID, cardID, string(ch.state), nullString(ch.reason), now.UnixMicro())
	}
	if err != nil {
		return fmt.Errorf("update card %s: %w", cardID, err)
	}
	return nil
}

// operableCardTx reads a card an operation may act on: it exists (else
// notFound), has a consumer, and that consumer is neither deleted nor being
// deleted.
func operableCardTx(ctx context.Context, tx *store.Tx, issuerID, cardID, notFound string) (*cardRow, error) {
	c, err := cardTx(ctx, tx, issuerID, cardID)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errorf(KindNotFound, "%s", notFound)
	}
	if err := ownedCard(c); err != nil {
		return nil, err
	}
	consumer, err := consumerTx(ctx, tx, issuerID, c.ConsumerID)
	if err != nil {
		return nil, err
	}
	if err := usable(consumer); err != nil {
		return nil, err
	}
	return c, nil
}
