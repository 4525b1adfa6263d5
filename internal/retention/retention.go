// Package retention removes what provhub keeps only for a while. One
// periodic job, shared by every instance (its unique key names its time
// slot, so instances that schedule the same run share one job), asks each
// registered Purger to delete what has passed its retention, in one
// transaction per purger, and schedules the next run.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/store"
)

// Purger deletes one kind of record older than its retention.
type Purger struct {
	// Name says what is removed, in logs ("transit operations").
	Name string
	// Retention is how long the records are kept; zero or less keeps them.
	Retention time.Duration
	// Purge deletes the records that ended before cutoff and says how many.
	Purge func(ctx context.Context, tx *store.Tx, cutoff time.Time) (int64, error)
}

// Config sets up a Service.
type Config struct {
	DB *store.DB
	// Engine runs the service's jobs, and Jobs is the registry that engine
	// was made with: New registers the service's job kinds in it, so the
	// engine must not have started yet (required).
	Engine  *engine.Engine
	Jobs    *engine.Registry
	Logger  *slog.Logger
	Clock   func() time.Time
	Purgers []Purger
	// Interval is how often the purgers run [1h].
	Interval time.Duration
}

// Service runs the purge job.
type Service struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	engine *engine.Engine
}

// Args is the purge job; Slot is its due time in whole intervals since the
// Unix epoch.
type Args struct {
	Slot int64 `json:"slot"`
}

// Kind names the job kind.
func (Args) Kind() string { return "retention.purge" }

// New returns a Service whose job kind it registers in cfg.Jobs.
func New(cfg Config) (*Service, error) {
	if cfg.Engine == nil || cfg.Jobs == nil {
		return nil, errors.New("retention: Config.Engine and Config.Jobs are required")
	}
	if cfg.DB == nil {
		return nil, errors.New("retention: Config.DB is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Hour
	}
	s := &Service{cfg: cfg, log: cfg.Logger.With("component", "retention"), now: cfg.Clock, engine: cfg.Engine}
	s.registerJobs(cfg.Jobs)
	return s, nil
}

// registerJobs adds the purge job's kind.
func (s *Service) registerJobs(reg *engine.Registry) {
	engine.Register(reg, s.run, engine.KindOptions{})
}

func (s *Service) opts(slot int64) *engine.InsertOpts {
	return &engine.InsertOpts{RunAt: time.UnixMicro(slot * s.cfg.Interval.Microseconds()), UniqueKey: fmt.Sprintf("retention.purge@%d", slot)}
}

func (s *Service) nextSlot() int64 { return s.now().UnixMicro()/s.cfg.Interval.Microseconds() + 1 }

// Schedule makes sure the next run is scheduled (call it at start).
func (s *Service) Schedule(ctx context.Context) error {
	slot := s.nextSlot()
	if _, err := s.engine.Insert(ctx, nil, Args{Slot: slot}, s.opts(slot)); err != nil {
		return fmt.Errorf("schedule the retention purge: %w", err)
	}
	return nil
}

// PurgeNow runs every purger once, and says how many records each removed.
func (s *Service) PurgeNow(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	now := s.now()
	for _, p := range s.cfg.Purgers {
		if p.Retention <= 0 {
			continue
		}
		var n int64
		err := s.cfg.DB.InTx(ctx, func(tx *store.Tx) error {
			var err error
			n, err = p.Purge(ctx, tx, now.Add(-p.Retention))
			return err
		})
		if err != nil {
			return out, fmt.Errorf("purge %s: %w", p.Name, err)
		}
		out[p.Name] = n
		if n > 0 {
			s.log.InfoContext(ctx, "old records removed", "what", p.Name, "count", n, "retention", p.Retention)
		}
	}
	return out, nil
}

func (s *Service) run(ctx context.Context, job *engine.Job[Args]) error {
	if _, err := s.PurgeNow(ctx); err != nil {
		return err
	}
	return s.cfg.DB.InTx(ctx, func(tx *store.Tx) error {
		slot := max(job.Args.Slot+1, s.nextSlot())
		if _, err := s.engine.Insert(ctx, tx, Args{Slot: slot}, s.opts(slot)); err != nil {
			return err
		}
		return s.engine.CompleteTx(ctx, tx, job.JobRow)
	})
}
