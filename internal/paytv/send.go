package paytv

import (
	"context"
	"database/sql"
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
	var (
		state      LifeCycleState
		reqType    string
		commandRaw string
		pin        sql.NullString
		scheduled  int64
		org        string
	)
	err := s.db.ReadRow(ctx, `SELECT r.life_cycle_state, r.type, r.command, r.pin, r.scheduled_at, o.name FROM paytv_requests r
		JOIN crm_organisations o ON o.id = r.organisation_id WHERE r.id = $1`, id).
		Scan(&state, &reqType, &commandRaw, &pin, &scheduled, &org)
	if errors.Is(err, sql.ErrNoRows) {
		return engine.Terminal(fmt.Errorf("provisioning request %s does not exist", id))
	}
	if err != nil {
		return fmt.Errorf("load provisioning request %s: %w", id, err)
	}
	if state != Pending {
		return nil // an earlier attempt recorded the outcome
	}
	// A job retried by an operator before its request's date waits for it.
	if wait := time.UnixMicro(scheduled).Sub(s.now()); wait > 0 {
		return engine.Snooze(wait)
	}
	var cmd cas.Command
	if err := json.Unmarshal([]byte(commandRaw), &cmd); err != nil {
		return engine.Terminal(fmt.Errorf("provisioning request %s: stored command: %w", id, err))
	}
	cmd.RequestID = id
	cmd.PIN = pin.String
	sent, _ := json.Marshal(cmd.Redacted())

	// The organisation's own CAS, when one is registered for it.
	target := s.cfg.CAS
	var reply cas.Reply
	if s.cfg.CASFor != nil {
		target, err = s.cfg.CASFor(ctx, org)
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
		s.cfg.Outcomes.CRMRequest(reqType, string(out.state), out.errorCode)
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

// retryingSQL says on a PENDING request why it is still pending. The
// error code stays empty (it names a final outcome); the outcome, when it
// comes, replaces the description.
const retryingSQL = `UPDATE paytv_requests SET error_description = $2, updated_at = $3
	WHERE id = $1 AND life_cycle_state = 'PENDING'`

// noteRetry records the failed attempt on the request, so that show and
// list tell a request that is retrying an unavailable CAS from one that
// waits its turn. It is best effort: the retry does not depend on it.
func (s *Service) noteRetry(ctx context.Context, id string, attempt int, cause error) {
	why := fmt.Sprintf("retrying: attempt %d to reach the CAS failed: %v", attempt, cause)
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, retryingSQL, id, why, micros(s.now()))
		return err
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

// recordSQL writes a request's outcome; its sequence number is drawn by
// the statement on PostgreSQL, given as $11 on SQLite (see insertRequestSQL).
const recordSQL = `UPDATE paytv_requests SET life_cycle_state = $2, sequence_number = %s, executed_at = $3,
		request = $4, response = $5, reference_number = $6, error_code = $7, error_description = $8,
		provider_error_code = $9, provider_error_description = $10, pin = NULL, updated_at = $3
	WHERE id = $1 AND life_cycle_state = 'PENDING'`

var (
	recordPG     = fmt.Sprintf(recordSQL, `nextval('paytv_sequence_number')`)
	recordSQLite = fmt.Sprintf(recordSQL, `$11`)
)

// record writes a final outcome, drops the PIN and completes the job in one
// transaction. sequence_number is drawn here, so it orders requests by the
// moment their answer was recorded: within one smartcard, whose requests
// are sent one at a time, that is the order they were sent. It reports
// whether this call recorded it (false: an earlier attempt had).
func (s *Service) record(ctx context.Context, job *engine.Job[SendArgs], id string, o sendOutcome) (bool, error) {
	now := micros(s.now())
	won := false
	err := s.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		won = false
		args := []any{id, string(o.state), now, null(o.request), null(o.response), null(o.reference),
			null(o.errorCode), null(o.errorDescription), null(o.providerCode), null(o.providerDescription)}
		q := recordPG
		if tx.Dialect() != store.Postgres {
			seq, err := nextValue(ctx, tx, "sequence_number")
			if err != nil {
				return err
			}
			q, args = recordSQLite, append(args, seq)
		}
		res, err := tx.ExecCached(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("record outcome of %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil // already recorded; the engine completes the job when the handler returns
		}
		won = true
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
	seq, err := nextValue(ctx, tx, "sequence_number")
	if err != nil {
		return err
	}
	now := micros(s.now())
	var reqType string
	err = tx.QueryRowContext(ctx, `UPDATE paytv_requests SET life_cycle_state = 'REJECTED', sequence_number = $2, executed_at = $3,
		error_code = $4, error_description = $5, pin = NULL, updated_at = $3
		WHERE id = $1 AND life_cycle_state = 'PENDING' RETURNING type`, args.RequestID, seq, now, code, why).Scan(&reqType)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("abandon provisioning request %s: %w", args.RequestID, err)
	default:
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
			var state LifeCycleState
			if err := s.db.Reader().QueryRowContext(ctx, `SELECT life_cycle_state FROM paytv_requests WHERE id = $1`, id).Scan(&state); err != nil {
				return fmt.Errorf("poll provisioning request %s: %w", id, err)
			}
			if state != Pending {
				return nil
			}
		}
	}
}
