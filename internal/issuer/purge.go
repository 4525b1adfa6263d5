package issuer

import (
	"context"
	"fmt"
	"time"

	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/store"
)

// PurgeArgs is the periodic job that removes old operations. Each run
// schedules the next one, one PurgeInterval later; Slot (the due time in
// whole intervals since the Unix epoch) is in its unique key, so instances
// that schedule the same run share one job.
type PurgeArgs struct {
	Slot int64 `json:"slot"`
}

// Kind names the job kind.
func (PurgeArgs) Kind() string { return "issuer.purge_operations" }

func (s *Service) purgeOpts(slot int64) *engine.InsertOpts {
	return &engine.InsertOpts{
		RunAt:     time.UnixMicro(slot * s.cfg.PurgeInterval.Microseconds()),
		UniqueKey: fmt.Sprintf("issuer.purge_operations@%d", slot),
	}
}

func (s *Service) nextSlot() int64 {
	return s.now().UnixMicro()/s.cfg.PurgeInterval.Microseconds() + 1
}

// SchedulePurge makes sure the next purge is scheduled (call it at start).
func (s *Service) SchedulePurge(ctx context.Context) error {
	slot := s.nextSlot()
	if _, err := s.engine.Insert(ctx, nil, PurgeArgs{Slot: slot}, s.purgeOpts(slot)); err != nil {
		return fmt.Errorf("schedule operation purge: %w", err)
	}
	return nil
}

// PurgeOperations removes the ended operations that started more than the
// retention ago, and returns how many.
func (s *Service) PurgeOperations(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		var err error
		n, err = s.purgeTx(ctx, tx)
		return err
	})
	return n, err
}

func (s *Service) purgeTx(ctx context.Context, tx *store.Tx) (int64, error) {
	return purgeOperationsTx(ctx, tx, s.now().Add(-s.cfg.OperationRetention).UnixMicro())
}

func (s *Service) purge(ctx context.Context, job *engine.Job[PurgeArgs]) error {
	var n int64
	err := s.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		var err error
		if n, err = s.purgeTx(ctx, tx); err != nil {
			return err
		}
		slot := max(job.Args.Slot+1, s.nextSlot())
		if _, err := s.engine.Insert(ctx, tx, PurgeArgs{Slot: slot}, s.purgeOpts(slot)); err != nil {
			return err
		}
		return s.engine.CompleteTx(ctx, tx, job.JobRow)
	})
	if err != nil {
		return err
	}
	if n > 0 {
		s.log.InfoContext(ctx, "old operations removed", "count", n)
	}
	return nil
}
