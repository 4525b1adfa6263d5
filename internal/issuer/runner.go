package issuer

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/transit"
)

// runOperation carries an operation to its end. Each run looks at the
// operation's wallet tasks: any still queued or running means a later look
// (the job snoozes); once all have ended, one FAILED fails the operation;
// when they are all COMPLETED the operation's next step runs. For a deletion that step checks
// every digital card in scope again and queues a DELETE for any that is
// not deleted yet (a card provisioned meanwhile, or one whose earlier
// DELETE by someone else failed), so the deletion converges on "every
// digital card deleted" before anything is removed.
func (s *Service) runOperation(ctx context.Context, job *engine.Job[OperationArgs]) error {
	op, err := readOperation(ctx, s.db, job.Args.OperationID)
	if err != nil {
		return err
	}
	if op == nil || op.Status != StatusPending {
		return nil // removed by retention, or already ended
	}
	if s.now().Sub(op.StartTime) > s.cfg.WaitLimit {
		return s.fail(ctx, job, op, "TIMEOUT", fmt.Sprintf("the wallet tasks were not done %s after the operation started", s.cfg.WaitLimit))
	}
	tasks, err := s.linkedTasks(ctx, op.OperationID)
	if err != nil {
		return err
	}
	// Every task ends before the operation does, so that what a FAILED
	// operation says about the data is final when the issuer reads it.
	for _, t := range tasks {
		if t.Status == transit.TaskQueued || t.Status == transit.TaskProcessing {
			return engine.Snooze(s.pollWait(job.Snoozes))
		}
	}
	for _, t := range tasks {
		if t.Status == transit.TaskFailed {
			return s.failTask(ctx, job, op, t)
		}
	}
	if op.Type == OpDelete && op.DigitalCardID == "" {
		return s.converge(ctx, job, op)
	}
	if !op.tasksQueued {
		queued, err := s.queueCardTasks(ctx, job, op)
		if err != nil {
			return err
		}
		if queued > 0 {
			return engine.Snooze(s.pollWait(0))
		}
	}
	return s.succeed(ctx, job, op)
}

func (s *Service) pollWait(n int) time.Duration {
	return s.cfg.PollSchedule[min(n, len(s.cfg.PollSchedule)-1)]
}

func (s *Service) linkedTasks(ctx context.Context, operationID string) ([]transit.Task, error) {
	var tasks []transit.Task
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		ids, err := linkedTaskIDsTx(ctx, tx, operationID)
		if err != nil {
			return err
		}
		tasks, err = s.transit.TasksByIDTx(ctx, tx, ids)
		return err
	})
	return tasks, err
}

// queueCardTasks carries a card's suspension or resumption to its digital
// cards: SUSPEND for each that is (or will be) ACTIVE, remembered on the
// card; RESUME for those its suspension suspended.
func (s *Service) queueCardTasks(ctx context.Context, job *engine.Job[OperationArgs], op *operationRow) (int, error) {
	queued := 0
	err := s.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		queued = 0
		// Only the attempt that owns the job queues tasks: another
		// instance running it too (it took the job of one it thought dead)
		// would queue them twice.
		if err := s.engine.FenceTx(ctx, tx, job.JobRow); err != nil {
			return err
		}
		c, err := cardTx(ctx, tx, op.IssuerID, op.CardID)
		if err != nil {
			return err
		}
		if c != nil {
			switch op.Type {
			case OpSuspend:
				dcs, err := s.transit.CardsOfAccountTx(ctx, tx, op.IssuerID, op.CardID)
				if err != nil {
					return err
				}
				var held []string
				for _, dc := range dcs {
					if dc.Projected != transit.Active {
						continue
					}
					if err := s.queueLinkedTx(ctx, tx, op, dc.CardID, transit.OpSuspend); err != nil {
						return err
					}
					held = append(held, dc.CardID)
					queued++
				}
				if err := setHeldDigitalCardsTx(ctx, tx, op.IssuerID, op.CardID, held); err != nil {
					return err
				}
			case OpResume:
				for _, id := range c.heldDigitalCards() {
					err := s.queueLinkedTx(ctx, tx, op, id, transit.OpResume)
					switch transit.KindOf(err) {
					case transit.KindNotAllowed, transit.KindUnknownCard:
						continue // deleted or resumed meanwhile
					case 0:
						queued++
					default:
						return err
					}
				}
				if err := setHeldDigitalCardsTx(ctx, tx, op.IssuerID, op.CardID, nil); err != nil {
					return err
				}
			}
		}
		return markTasksQueuedTx(ctx, tx, op.OperationID)
	})
	return queued, err
}

func (s *Service) queueLinkedTx(ctx context.Context, tx *store.Tx, op *operationRow, transitCardID string, walletOp transit.Operation) error {
	task, err := s.transit.QueueTx(ctx, tx, transitCardID, walletOp)
	if err != nil {
		return err
	}
	return linkTaskTx(ctx, tx, op.OperationID, task.TaskID)
}

// converge moves a consumer or card deletion on: it queues DELETE for every
// digital card in scope that will not be deleted by the tasks already
// queued, waits while any task of those cards is queued or running, and
// when every digital card is deleted ends the operation, removing the
// consumer's data (consumer deletion) or marking the card DELETED.
func (s *Service) converge(ctx context.Context, job *engine.Job[OperationArgs], op *operationRow) error {
	wait := false
	err := s.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		wait = false
		// As in queueCardTasks: a DELETE queued twice for one digital card
		// fails at the wallet server (the card is already deleted).
		if err := s.engine.FenceTx(ctx, tx, job.JobRow); err != nil {
			return err
		}
		cardIDs, err := s.scopeTx(ctx, tx, op)
		if err != nil {
			return err
		}
		var digital []string
		for _, cardID := range cardIDs {
			dcs, err := s.transit.CardsOfAccountTx(ctx, tx, op.IssuerID, cardID)
			if err != nil {
				return err
			}
			for _, dc := range dcs {
				digital = append(digital, dc.CardID)
				// A card the TES is erasing leaves provhub by itself.
				if dc.Projected != transit.Deleted && dc.Projected != transit.Erased {
					if err := s.queueLinkedTx(ctx, tx, op, dc.CardID, transit.OpDelete); err != nil {
						return err
					}
					wait = true
				} else if dc.Pending > 0 {
					wait = true
				}
			}
		}
		if wait {
			return markTasksQueuedTx(ctx, tx, op.OperationID)
		}
		switch {
		case op.CardID != "" || op.AccountID != "":
			for _, cardID := range cardIDs {
				if err := markCardDeletedTx(ctx, tx, op.IssuerID, cardID, op.ReasonCode, s.now().UnixMicro()); err != nil {
					return err
				}
			}
			if op.AccountID != "" {
				// The deleted cards stay, without their account.
				if err := removeAccountTx(ctx, tx, op.IssuerID, op.AccountID); err != nil {
					return err
				}
			}
		default:
			if err := s.removeConsumerTx(ctx, tx, op, cardIDs, digital); err != nil {
				return err
			}
		}
		return s.endTx(ctx, tx, job, op, StatusSuccessful, "", "")
	})
	if err != nil {
		return err
	}
	if wait {
		return engine.Snooze(s.pollWait(job.Snoozes))
	}
	s.log.InfoContext(ctx, "operation successful", "operation_id", op.OperationID, "operation", op.Type, "issuer_id", op.IssuerID)
	return nil
}

// scopeTx returns the cards a deletion covers: the operation's card, the
// account's cards not yet deleted, or every card of the consumer.
func (s *Service) scopeTx(ctx context.Context, tx *store.Tx, op *operationRow) ([]string, error) {
	if op.CardID != "" {
		return []string{op.CardID}, nil
	}
	if op.AccountID != "" {
		return accountCardIDsTx(ctx, tx, op.IssuerID, op.AccountID)
	}
	return consumerCardIDsTx(ctx, tx, op.IssuerID, op.ConsumerID)
}

// removeConsumerTx removes everything of a consumer but its operations and
// the tombstone that burns its consumerId: digital cards and their wallet
// tasks, cards, accounts, and the task links of its operations.
func (s *Service) removeConsumerTx(ctx context.Context, tx *store.Tx, op *operationRow, cardIDs, digital []string) error {
	if err := s.transit.RemoveCardsTx(ctx, tx, digital); err != nil {
		return err
	}
	if err := removeConsumerDataTx(ctx, tx, op.IssuerID, op.ConsumerID); err != nil {
		return err
	}
	if err := setConsumerStateTx(ctx, tx, op.IssuerID, op.ConsumerID, ConsumerDeleted, s.now().UnixMicro()); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "consumer data removed", "issuer_id", op.IssuerID, "operation_id", op.OperationID, "cards", len(cardIDs), "digital_cards", len(digital))
	return nil
}

func (s *Service) succeed(ctx context.Context, job *engine.Job[OperationArgs], op *operationRow) error {
	err := s.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		return s.endTx(ctx, tx, job, op, StatusSuccessful, "", "")
	})
	if err == nil {
		s.log.InfoContext(ctx, "operation successful", "operation_id", op.OperationID, "operation", op.Type, "issuer_id", op.IssuerID)
	}
	return err
}

// failTask fails the operation with the outcome of a wallet task.
func (s *Service) failTask(ctx context.Context, job *engine.Job[OperationArgs], op *operationRow, t transit.Task) error {
	code := "WALLET_TASK_FAILED"
	if t.StatusCode != nil {
		code = "WALLET_" + strconv.Itoa(*t.StatusCode)
	}
	name := t.CardID
	if c, err := s.transit.Card(ctx, t.CardID); err == nil && c.WalletCardID != "" {
		name = c.WalletCardID
	}
	msg := fmt.Sprintf("%s of digital card %s failed (wallet task %s): %s", t.Operation, name, t.TaskID, t.Message)
	return s.fail(ctx, job, op, code, msg)
}

// fail ends the operation FAILED. A consumer being deleted is usable again
// and a card being deleted keeps its state; digital cards already deleted
// stay deleted.
func (s *Service) fail(ctx context.Context, job *engine.Job[OperationArgs], op *operationRow, code, msg string) error {
	err := s.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if op.Type == OpDelete && op.DigitalCardID == "" {
			now := s.now().UnixMicro()
			var err error
			switch {
			case op.AccountID != "":
				err = releaseAccountCardsTx(ctx, tx, op.IssuerID, op.AccountID, now)
			case op.CardID != "":
				err = releaseCardTx(ctx, tx, op.IssuerID, op.CardID, now)
			default:
				err = releaseConsumerTx(ctx, tx, op.IssuerID, op.ConsumerID, now)
			}
			if err != nil {
				return err
			}
		}
		return s.endTx(ctx, tx, job, op, StatusFailed, code, errorText(msg))
	})
	if err == nil {
		s.log.WarnContext(ctx, "operation failed", "operation_id", op.OperationID, "operation", op.Type, "issuer_id", op.IssuerID, "error_code", code)
	}
	return err
}

func (s *Service) endTx(ctx context.Context, tx *store.Tx, job *engine.Job[OperationArgs], op *operationRow, status OperationStatus, code, msg string) error {
	ended, err := endOperationTx(ctx, tx, op.OperationID, status, code, msg, s.now().UnixMicro())
	if err != nil {
		return err
	}
	if ended {
		tx.AfterCommit(func() { s.cfg.Outcomes.IssuerOperation(string(op.Type), string(status), code) })
	}
	return s.engine.CompleteTx(ctx, tx, job.JobRow)
}
