package paytv

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/provhub/provhub/internal/auth"
	"github.com/provhub/provhub/internal/cas"
	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/outcome"
	"github.com/provhub/provhub/internal/store"
)

// CAS is the port through which requests reach a conditional-access
// system. Send returns the reply when the command was carried out, a
// *cas.Rejection when it was refused for good, and any other error when the
// outcome is unknown (the command is sent again, with the same request id).
type CAS interface {
	Send(ctx context.Context, cmd cas.Command) (cas.Reply, error)
}

// Config sets up a Service.
type Config struct {
	DB *store.DB
	// Engine runs the service's jobs, and Jobs is the registry that engine
	// was made with: New registers the service's job kinds in it, so the
	// engine must not have started yet (required).
	Engine *engine.Engine
	Jobs   *engine.Registry
	// CAS is the conditional-access system of every organisation that
	// CASFor does not name one for.
	CAS CAS
	// CASFor, when set, finds the CAS registered for a CRM organisation
	// (by name); nil means CAS.
	CASFor func(ctx context.Context, organisation string) (CAS, error)
	Logger *slog.Logger
	// Outcomes counts the requests that reach a final state, and the
	// failed calls to the CAS (nil: not counted).
	Outcomes *outcome.Counters
	// Clock tells the time [time.Now]; it must be the engine's clock too.
	Clock func() time.Time

	// TokenIdle ends a session unused this long [1h].
	TokenIdle time.Duration
	// LoginFailuresPerUser and LoginFailuresPerAddress bound failed logins
	// within LoginWindow [5, 20, 15m].
	LoginFailuresPerUser    int
	LoginFailuresPerAddress int
	LoginWindow             time.Duration
	// PasswordCost is bcrypt's work factor for new password hashes
	// [auth.DefaultPasswordCost].
	PasswordCost int

	// SendAttempts and SendRetryFor are the retry budget of a request while
	// the CAS is unavailable: it is REJECTED (CAS_UNAVAILABLE) once either
	// is used up, the time counted from its first failed attempt [100,
	// 10m: an outage of 5 minutes and more is ridden out].
	SendAttempts int
	SendRetryFor time.Duration
	// SendTimeout bounds one attempt to reach the CAS [15s].
	SendTimeout time.Duration
	// RetryBackoff gives the wait before retry n [the engine's backoff,
	// at most 30s].
	RetryBackoff func(attempt int) time.Duration
	// ImmediateWait bounds how long a process_immediately call waits for
	// the outcome before answering with the request still PENDING [30s].
	ImmediateWait time.Duration
}

// Service runs the pay-TV domain.
type Service struct {
	cfg     Config
	db      *store.DB
	log     *slog.Logger
	now     func() time.Time
	engine  *engine.Engine
	users   *auth.Limiter
	addrs   *auth.Limiter
	waitMu  sync.Mutex
	waiters map[string]chan struct{}
	accepts *store.Batcher[accept, int64]
}

// New returns a Service whose job kinds it registers in cfg.Jobs.
func New(cfg Config) (*Service, error) {
	if cfg.Engine == nil || cfg.Jobs == nil {
		return nil, errors.New("paytv: Config.Engine and Config.Jobs are required")
	}
	if cfg.DB == nil {
		return nil, errors.New("paytv: Config.DB is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	setDefault(&cfg.TokenIdle, time.Hour)
	setDefault(&cfg.LoginWindow, 15*time.Minute)
	setDefault(&cfg.SendTimeout, 15*time.Second)
	setDefault(&cfg.ImmediateWait, 30*time.Second)
	if cfg.LoginFailuresPerUser <= 0 {
		cfg.LoginFailuresPerUser = 5
	}
	if cfg.LoginFailuresPerAddress <= 0 {
		cfg.LoginFailuresPerAddress = 20
	}
	if cfg.PasswordCost <= 0 {
		cfg.PasswordCost = auth.DefaultPasswordCost
	}
	if cfg.SendAttempts <= 0 {
		cfg.SendAttempts = 100
	}
	if cfg.SendRetryFor <= 0 {
		cfg.SendRetryFor = 10 * time.Minute
	}
	if cfg.RetryBackoff == nil {
		cfg.RetryBackoff = engine.CappedBackoff(30 * time.Second)
	}
	// The writes of every request are parsed once (SQLite). A schema not
	// yet migrated leaves them unprepared, which only costs speed.
	if err := cfg.DB.PrepareHot(insertRequestSQLite, recordSQLite, nextCounterSQL); err != nil {
		cfg.Logger.Warn("paytv statements stay unprepared", "err", err)
	}
	s := &Service{
		cfg: cfg, db: cfg.DB, log: cfg.Logger.With("component", "paytv"), now: cfg.Clock, engine: cfg.Engine,
		users:   auth.NewLimiter(cfg.LoginFailuresPerUser, cfg.LoginWindow, cfg.Clock),
		addrs:   auth.NewLimiter(cfg.LoginFailuresPerAddress, cfg.LoginWindow, cfg.Clock),
		waiters: map[string]chan struct{}{},
	}
	s.accepts = store.NewBatcher(cfg.DB, s.writeAccepts)
	s.registerJobs(cfg.Jobs)
	return s, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// registerJobs adds the pay-TV job kinds to reg.
func (s *Service) registerJobs(reg *engine.Registry) {
	engine.Register(reg, s.send, engine.KindOptions{
		MaxAttempts: s.cfg.SendAttempts,
		Timeout:     s.cfg.SendTimeout + 5*time.Second,
		Backoff:     s.cfg.RetryBackoff,
		OnDiscard:   s.abandon,
	})
}
