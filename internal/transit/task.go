package transit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/outcome"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/wallet"
)

// TaskArgs is the job of one wallet task; the task row is found by the
// taskId derived from the job's id.
type TaskArgs struct {
	CardID string `json:"card_id"`
}

// Kind names the job kind.
func (TaskArgs) Kind() string { return "transit.wallet_task" }

// runTask drives one wallet task: the first run calls sendScript or
// updateCard; later runs poll getTaskStatus, snoozing between polls; the
// end commits the task's outcome, the card's new state and the job's
// completion together.
func (s *Service) runTask(ctx context.Context, job *engine.Job[TaskArgs]) error {
	taskID := fmt.Sprintf("pvh-%d", job.ID)
	r, found, err := readTaskRun(ctx, s.db, taskID)
	switch {
	case err != nil:
		return err
	case !found:
		return engine.Terminal(fmt.Errorf("task %s does not exist", taskID))
	}
	op, status, payload, walletCardID, seID, cardID := r.op, r.status, r.payload, r.walletCardID, r.seID, r.cardID
	switch status {
	case TaskCompleted, TaskFailed:
		return nil
	case TaskQueued:
		return s.startTask(ctx, job, taskID, cardID, op, payload.String, walletCardID.String, seID.String)
	}
	if ended, err := s.poll(ctx, job, taskID, cardID, op, payload.String, seID.String); ended {
		return err
	}
	if job.Snoozes >= s.cfg.MaxPolls {
		return s.finish(ctx, job, taskID, cardID, op, TaskFailed, nil, fmt.Sprintf("still PROCESSING after %d polls", job.Snoozes), nil)
	}
	return engine.Snooze(s.pollWait(job.Snoozes))
}

// poll asks the wallet server how a task stands and, when it has ended,
// records the end (ended reports it, err is then what the job returns).
func (s *Service) poll(ctx context.Context, job *engine.Job[TaskArgs], taskID, cardID string, op Operation, payload, seID string) (ended bool, err error) {
	st, err := s.cfg.Wallet.GetTaskStatus(ctx, wallet.GetTaskStatusRequest{RequestHeader: s.cfg.Wallet.Header(taskID), TaskID: taskID, SEID: seID})
	var se *wallet.StatusError
	switch {
	case errors.As(err, &se) && !se.Retryable():
		return true, s.finish(ctx, job, taskID, cardID, op, TaskFailed, &se.Code, se.Error(), nil)
	case err != nil:
		return true, s.retryOrFail(ctx, job, taskID, cardID, op, err)
	}
	return s.endIfEnded(ctx, job, taskID, cardID, op, payload, st)
}

// endIfEnded records a task's end when the wallet server says it ended.
func (s *Service) endIfEnded(ctx context.Context, job *engine.Job[TaskArgs], taskID, cardID string, op Operation, payload, st string) (ended bool, err error) {
	switch st {
	case wallet.TaskCompleted:
		var meta []byte
		if op == OpMetadataUpdate {
			meta = []byte(payload)
		}
		return true, s.finish(ctx, job, taskID, cardID, op, TaskCompleted, nil, "", meta)
	case wallet.TaskFailed:
		return true, s.finish(ctx, job, taskID, cardID, op, TaskFailed, nil, "the wallet server reports the task FAILED", nil)
	}
	return false, nil
}

func (s *Service) pollWait(polls int) time.Duration {
	return s.cfg.PollSchedule[min(polls, len(s.cfg.PollSchedule)-1)]
}

// startTask makes the wallet-server call; the same taskId on every retry
// makes a repeated call harmless.
func (s *Service) startTask(ctx context.Context, job *engine.Job[TaskArgs], taskID, cardID string, op Operation, payload, walletCardID, seID string) error {
	hdr := s.cfg.Wallet.Header(taskID)
	var err error
	if op == OpPersonalize {
		var script []wallet.APDUCommand
		if jerr := json.Unmarshal([]byte(payload), &script); jerr != nil {
			return engine.Terminal(fmt.Errorf("task %s: stored script: %w", taskID, jerr))
		}
		err = s.cfg.Wallet.SendScript(ctx, wallet.SendScriptRequest{RequestHeader: hdr, TaskID: taskID, WalletCardID: walletCardID, SEID: seID, APDUCommands: script})
	} else {
		req := wallet.UpdateCardRequest{RequestHeader: hdr, TaskID: taskID, WalletCardID: walletCardID, SEID: seID, Operation: string(op)}
		switch op {
		case OpMetadataUpdate:
			req.CardDescriptor = &wallet.CardDescriptor{}
			if jerr := json.Unmarshal([]byte(payload), req.CardDescriptor); jerr != nil {
				return engine.Terminal(fmt.Errorf("task %s: stored metadata: %w", taskID, jerr))
			}
		case OpRedirect:
			var rp redirectPayload
			if jerr := json.Unmarshal([]byte(payload), &rp); jerr != nil || rp.OperationID == "" {
				return engine.Terminal(fmt.Errorf("task %s: the REDIRECT names no operation", taskID))
			}
			req.RedirectData = &wallet.RedirectData{OperationID: rp.OperationID, DeviceToken: s.DeviceToken(rp.OperationID)}
		}
		err = s.cfg.Wallet.UpdateCard(ctx, req)
	}
	var se *wallet.StatusError
	switch {
	case errors.As(err, &se) && !se.Retryable():
		return s.finish(ctx, job, taskID, cardID, op, TaskFailed, &se.Code, se.Error(), nil)
	case err != nil:
		return s.retryOrFail(ctx, job, taskID, cardID, op, err)
	}
	// The first polls, while their waits add up to no more than
	// InlinePollFor, are made in this run: a task the wallet server ends
	// quickly is recorded at once, without a snooze and a second claim (and
	// without the PROCESSING write). The first of them may be the early
	// poll (earlypoll.go). A code that ends the task ends it here too; a
	// poll that fails for a passing reason is left to the polling runs,
	// which retry it.
	polls := 0 // of the schedule, which the polling runs go on with
	for i, p := range inlinePolls(s.early.wait(op), s.cfg.PollSchedule, s.cfg.InlinePollFor) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(p.wait):
		}
		st, perr := s.cfg.Wallet.GetTaskStatus(ctx, wallet.GetTaskStatusRequest{RequestHeader: s.cfg.Wallet.Header(taskID), TaskID: taskID, SEID: seID})
		if errors.As(perr, &se) && !se.Retryable() {
			return s.finish(ctx, job, taskID, cardID, op, TaskFailed, &se.Code, se.Error(), nil)
		}
		if perr != nil {
			break
		}
		if p.scheduled {
			polls++
		}
		ended, err := s.endIfEnded(ctx, job, taskID, cardID, op, payload, st)
		if i == 0 {
			s.early.observe(op, ended)
			s.cfg.Outcomes.FirstPoll(string(op), ended)
		}
		if ended {
			return err
		}
	}
	if err := markProcessing(ctx, s.db, taskID, s.now()); err != nil {
		return err
	}
	return engine.Snooze(s.pollWait(polls))
}

// retryOrFail returns err for the engine to retry, or fails the task on
// the last attempt.
func (s *Service) retryOrFail(ctx context.Context, job *engine.Job[TaskArgs], taskID, cardID string, op Operation, err error) error {
	if ctx.Err() != nil || (job.Attempt < job.MaxAttempts && s.withinBudget(job.JobRow)) {
		s.log.WarnContext(ctx, "wallet server call failed, will retry", "task_id", taskID, "attempt", job.Attempt, "err", err)
		if ctx.Err() == nil {
			s.cfg.Outcomes.DownstreamError(outcome.Wallet)
		}
		// The task says it is retrying, and why, while it waits.
		if uerr := noteTaskRetry(ctx, s.db, taskID, fmt.Sprintf("retrying: attempt %d failed: %v", job.Attempt, err), s.now()); uerr != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "record the retry on the task", "task_id", taskID, "err", uerr)
		}
		return err
	}
	var code *int
	var se *wallet.StatusError
	if errors.As(err, &se) {
		code = &se.Code
	}
	return s.finish(ctx, job, taskID, cardID, op, TaskFailed, code, fmt.Sprintf("gave up after %d attempts: %v", job.Attempt, err), nil)
}

// withinBudget reports whether a job failing for a passing reason may try
// again: the time since its first failure is still inside RetryFor.
func (s *Service) withinBudget(j *engine.JobRow) bool {
	since := j.FailingSince()
	return since.IsZero() || s.now().Sub(since) < s.cfg.RetryFor
}

// finish records a task's end; on success it moves the card's state (and
// for ERASE removes the card's personal data) in the same transaction that
// completes the job.
func (s *Service) finish(ctx context.Context, job *engine.Job[TaskArgs], taskID, cardID string, op Operation, status TaskStatus, code *int, message string, metadata []byte) error {
	now := s.now().UnixMicro()
	err := s.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		ended, err := endTaskTx(ctx, tx, taskID, status, code, message, now)
		if err != nil || !ended {
			return err
		}
		tx.AfterCommit(func() { s.cfg.Outcomes.WalletTask(string(op), string(status), code) })
		if status == TaskCompleted {
			kind := notifiedBy(op)
			if kind != "" || op == OpMetadataUpdate {
				c, err := cardTx(ctx, tx, cardID)
				if err != nil {
					return err
				}
				if op == OpMetadataUpdate && artChanged(c.Metadata, metadata) {
					kind = wallet.NotifyCardArtUpdated
				}
				if kind != "" {
					if err := s.notifyTx(ctx, tx, c, wallet.Notification{Kind: kind}); err != nil {
						return err
					}
				}
			}
			switch op {
			case OpErase:
				if err := eraseCardTx(ctx, tx, cardID, now); err != nil {
					return err
				}
			case OpRedirect:
				// The device was told to call the hub; the card is unchanged.
			case OpMetadataUpdate:
				if err := setCardMetadataTx(ctx, tx, cardID, metadata, now); err != nil {
					return err
				}
			default:
				if err := setCardStateTx(ctx, tx, cardID, target(op, ""), now); err != nil {
					return err
				}
			}
		}
		return s.engine.CompleteTx(ctx, tx, job.JobRow)
	})
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "wallet task finished", "task_id", taskID, "card_id", cardID, "operation", op, "status", status, "status_code", code)
	return nil
}

// notifiedBy is the notification a completed wallet task makes the user
// see ("" for none).
func notifiedBy(op Operation) string {
	switch op {
	case OpSuspend:
		return wallet.NotifyCardSuspended
	case OpResume:
		return wallet.NotifyCardResumed
	case OpDelete:
		return wallet.NotifyCardDeleted
	}
	return ""
}

// artChanged reports whether new metadata names card art that the old did
// not (a cardholder name alone tells the user nothing worth a push).
func artChanged(old, new []byte) bool {
	var o, n struct {
		Art []string `json:"cardArtManifest"`
	}
	_ = json.Unmarshal(old, &o)
	if json.Unmarshal(new, &n) != nil || len(n.Art) == 0 {
		return false
	}
	return !slices.Equal(o.Art, n.Art)
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
