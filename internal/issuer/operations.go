package issuer

import (
	"context"
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

// recordOperationTx stores op under a new id as asked by by.
func (s *Service) recordOperationTx(ctx context.Context, tx *store.Tx, op *Operation, by Requestor) error {
	op.OperationID = newOperationID()
	op.RequestorType, op.RequestorID, op.CorrelationID = by.Type, by.ID, by.CorrelationID
	return insertOperationTx(ctx, tx, op)
}

// OperationJobKey is the unique key of the job that carries out an
// operation: the console finds an operation's job by it.
func OperationJobKey(operationID string) string { return "issuer.operation:" + operationID }

// startOperationTx records a PENDING operation and the job that ends it.
func (s *Service) startOperationTx(ctx context.Context, tx *store.Tx, op *Operation, by Requestor) error {
	op.Status, op.StartTime = StatusPending, s.now()
	if err := s.recordOperationTx(ctx, tx, op, by); err != nil {
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
		if err := setConsumerStateTx(ctx, tx, issuerID, consumerID, ConsumerDeleting, s.now().UnixMicro()); err != nil {
			return err
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
	op, err := pendingConsumerDeleteTx(ctx, tx, issuerID, consumerID)
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
		consumerID, found, err := accountOwnerTx(ctx, tx, issuerID, accountID)
		if err != nil {
			return err
		}
		if !found {
			return errorf(KindNotFound, "unknown account %s", accountID)
		}
		consumer, err := consumerTx(ctx, tx, issuerID, consumerID)
		if err != nil {
			return err
		}
		if err := usable(consumer); err != nil {
			return err
		}
		pending, err := pendingAccountDeleteTx(ctx, tx, issuerID, accountID)
		if err != nil || pending != nil {
			op = pending
			return err
		}
		// The account's cards are being deleted: no other operation starts on them.
		if err := markAccountCardsDeletingTx(ctx, tx, issuerID, accountID, s.now().UnixMicro()); err != nil {
			return err
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
		if err := updateCardTx(ctx, tx, issuerID, cardID, change, s.now().UnixMicro()); err != nil {
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
		return markTasksQueuedTx(ctx, tx, op.OperationID)
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "digital card operation accepted", "issuer_id", issuerID, "operation", typ, "operation_id", op.OperationID)
	return op, nil
}

// Operations returns a page of a consumer's operations, newest first,
// skipping offset. As published, a consumer with no operations, one never
// registered included, has an empty list; a deleted one keeps its
// operations until retention removes them.
func (s *Service) Operations(ctx context.Context, issuerID, consumerID string, offset, limit int) (*Page, error) {
	if offset < 0 || limit < 1 {
		return nil, errorf(KindBadInput, "offset must be >= 0 and limit >= 1")
	}
	ops, total, err := consumerOperations(ctx, s.db, issuerID, consumerID, offset, limit)
	if err != nil {
		return nil, err
	}
	page := &Page{Operations: ops, Remaining: max(0, total-offset-len(ops))}
	if page.Operations == nil {
		page.Operations = []Operation{}
	}
	return page, nil
}

// Operation returns one operation of a consumer.
func (s *Service) Operation(ctx context.Context, issuerID, consumerID, operationID string) (*Operation, error) {
	op, err := readConsumerOperation(ctx, s.db, issuerID, consumerID, operationID)
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
	return recentOperations(ctx, s.db, q, min(max(q.Limit, 1), 500))
}

// OperationByID returns any issuer's operation, for the operator console.
func (s *Service) OperationByID(ctx context.Context, operationID string) (*Operation, error) {
	op, err := readOperation(ctx, s.db, operationID)
	if err != nil {
		return nil, err
	}
	if op == nil {
		return nil, errorf(KindNotFound, "unknown operation %s", operationID)
	}
	return &op.Operation, nil
}

// OutcomeCounts counts the operations started since a time by status and
// error code ("FAILED WALLET_432").
func (s *Service) OutcomeCounts(ctx context.Context, since time.Time) (map[string]int, error) {
	return operationOutcomes(ctx, s.db, since.UnixMicro())
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
