package paytv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/provhub/provhub/internal/cas"
	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/outcome"
	"github.com/provhub/provhub/internal/store"
)

// SendArgs is the job that sends one provisioning request to the CAS.
type SendArgs struct {
	RequestID string `json:"request_id"`
}

// Kind names the job kind.
func (SendArgs) Kind() string { return "paytv.send_request" }

// send is the job handler. The CAS request id is the provisioning request
// id, identical on every attempt, so a resend after a lost answer has no
// second effect. The outcome, the PIN's removal and the job's completion
// commit together.
func (s *Service) send(ctx context.Context, job *engine.Job[SendArgs]) error {
	id := job.Args.RequestID
	req, err := readToSend(ctx, s.db, id)
	if err != nil {
		return err
	}
	if req == nil {
		return engine.Terminal(fmt.Errorf("provisioning request %s does not exist", id))
	}
	if req.state != Pending {
		return nil // an earlier attempt recorded the outcome
	}
	// A job retried by an operator before its request's date waits for it.
	if wait := time.UnixMicro(req.scheduled).Sub(s.now()); wait > 0 {
		return engine.Snooze(wait)
	}
	var cmd cas.Command
	if err := json.Unmarshal([]byte(req.command), &cmd); err != nil {
		return engine.Terminal(fmt.Errorf("provisioning request %s: stored command: %w", id, err))
	}
	cmd.RequestID = id
	cmd.PIN = req.pin
	sent, _ := json.Marshal(cmd.Redacted())

	// The organisation's own CAS, when one is registered for it.
	target := s.cfg.CAS
	var reply cas.Reply
	if s.cfg.CASFor != nil {
		target, err = s.cfg.CASFor(ctx, req.organisation)
	}
	if err == nil {
		callCtx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
		reply, err = target.Send(callCtx, cmd)
		cancel()
	}
	cmd.PIN = ""

	var out sendOutcome
	var rej *cas.Rejection
	switch {
	case err == nil:
		answer, _ := json.Marshal(reply)
		out = sendOutcome{state: Completed, response: string(answer), reference: reply.ReferenceNumber}
	case errors.As(err, &rej):
		answer, _ := json.Marshal(reply)
		out = sendOutcome{state: Rejected, response: string(answer), errorCode: ErrorCodeCASRejected,
			errorDescription: "the CAS rejected the request: " + rej.Message,
			providerCode:     rej.Result, providerDescription: rej.Message}
	case ctx.Err() != nil:
		return ctx.Err() // shutting down or cancelled: the engine decides
	case job.Attempt < job.MaxAttempts && withinBudget(job.JobRow, s.now(), s.cfg.SendRetryFor):
		s.log.WarnContext(ctx, "cas unavailable, will retry", "request_id", id, "attempt", job.Attempt, "err", err)
		s.cfg.Outcomes.DownstreamError(outcome.CAS)
		s.noteRetry(ctx, id, job.Attempt, err)
		return err
	default:
		out = sendOutcome{state: Rejected, errorCode: ErrorCodeCASUnavailable,
			errorDescription: fmt.Sprintf("the CAS could not be reached after %d attempts: %v", job.Attempt, err)}
	}
	out.request = string(sent)
	won, err := s.record(ctx, job, id, out)
	if err != nil {
		return err
	}
	if won {
		s.cfg.Outcomes.CRMRequest(req.reqType, string(out.state), out.errorCode)
	}
	s.log.InfoContext(ctx, "provisioning request finished", "request_id", id, "state", out.state,
		"reference_number", out.reference, "provider_error_code", out.providerCode, "attempt", job.Attempt)
	s.notify(id)
	return nil
}

// withinBudget reports whether a job failing for a passing reason may try
// again: the time since its first failure is still inside retryFor.
func withinBudget(j *engine.JobRow, now time.Time, retryFor time.Duration) bool {
	since := j.FailingSince()
	return since.IsZero() || now.Sub(since) < retryFor
}

// noteRetry records the failed attempt on the request, so that show and
// list tell a request that is retrying an unavailable CAS from one that
// waits its turn. It is best effort: the retry does not depend on it.
func (s *Service) noteRetry(ctx context.Context, id string, attempt int, cause error) {
	why := fmt.Sprintf("retrying: attempt %d to reach the CAS failed: %v", attempt, cause)
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		return noteRetryingTx(ctx, tx, id, why, micros(s.now()))
	})
	if err != nil {
		s.log.WarnContext(ctx, "note a retry on the provisioning request", "request_id", id, "err", err)
	}
}

type sendOutcome struct {
	state                             LifeCycleState
	request, response, reference      string
	errorCode, errorDescription       string
	providerCode, providerDescription string
}

// record writes a final outcome, drops the PIN and completes the job in one
// transaction. sequence_number is drawn here, so it orders requests by the
// moment their answer was recorded: within one smartcard, whose requests
// are sent one at a time, that is the order they were sent. It reports
// whether this call recorded it (false: an earlier attempt had).
func (s *Service) record(ctx context.Context, job *engine.Job[SendArgs], id string, o sendOutcome) (bool, error) {
	now := micros(s.now())
	won := false
	err := s.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		var err error
		if won, err = recordOutcomeTx(ctx, tx, id, o, now); err != nil || !won {
			return err // !won: already recorded; the engine completes the job when the handler returns
		}
		return s.engine.CompleteTx(ctx, tx, job.JobRow)
	})
	return won && err == nil, err
}

// abandon ends the request of a send job that was cancelled or failed for
// good, in the transaction that ended the job: REJECTED with the reason,
// and its PIN erased. A request left PENDING would keep its PIN forever.
func (s *Service) abandon(ctx context.Context, tx *store.Tx, job *engine.JobRow, state engine.State) error {
	var args SendArgs
	if err := json.Unmarshal(job.Args, &args); err != nil || args.RequestID == "" {
		return nil // not a request's job: nothing to end
	}
	code, why := ErrorCodeSendFailed, "the request could not be sent: its job failed for good"
	if state == engine.StateCancelled {
		code, why = ErrorCodeCancelled, "the request's send job was cancelled before the CAS was asked"
	}
	if n := len(job.Errors); n > 0 && state == engine.StateFailed {
		why += ": " + job.Errors[n-1].Error
	}
	reqType, err := rejectPendingTx(ctx, tx, args.RequestID, code, why, micros(s.now()))
	switch {
	case err != nil:
		return err
	case reqType != "":
		s.log.WarnContext(ctx, "provisioning request abandoned", "request_id", args.RequestID, "job_state", state, "error_code", code)
		tx.AfterCommit(func() {
			s.notify(args.RequestID)
			s.cfg.Outcomes.CRMRequest(reqType, string(Rejected), code)
		})
	}
	return nil
}

// await registers interest in request id's outcome before it is created.
func (s *Service) await(id string) chan struct{} {
	ch := make(chan struct{})
	s.waitMu.Lock()
	s.waiters[id] = ch
	s.waitMu.Unlock()
	return ch
}

func (s *Service) forget(id string) {
	s.waitMu.Lock()
	delete(s.waiters, id)
	s.waitMu.Unlock()
}

func (s *Service) notify(id string) {
	s.waitMu.Lock()
	ch, ok := s.waiters[id]
	delete(s.waiters, id)
	s.waitMu.Unlock()
	if ok {
		close(ch)
	}
}

// wait returns when request id has left PENDING, when ImmediateWait has
// passed, or when ctx ends. A job run by this instance signals done; one
// run by another instance is noticed by polling.
func (s *Service) wait(ctx context.Context, id string, done chan struct{}) error {
	deadline := time.NewTimer(s.cfg.ImmediateWait)
	defer deadline.Stop()
	poll := time.NewTicker(200 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-done:
			return nil
		case <-deadline.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-poll.C:
			state, err := requestState(ctx, s.db, id)
			if err != nil {
				return fmt.Errorf("poll: %w", err)
			}
			if state != Pending {
				return nil
			}
		}
	}
}
