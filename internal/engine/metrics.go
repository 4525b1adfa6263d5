package engine

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/provhub/provhub/internal/store"
)

type metrics struct {
	inserted  *prometheus.CounterVec
	attempts  *prometheus.CounterVec
	queueWait *prometheus.HistogramVec
	runTime   *prometheus.HistogramVec
	retries   *prometheus.CounterVec
	rescued   prometheus.Counter
	// turnTime, lockWait and lockHeld sum the seconds of the writer's
	// turns, of waiting for PostgreSQL's claim lock, and of holding it (to
	// the turn's commit): the lock's share of each turn, across instances.
	turnTime, lockWait, lockHeld prometheus.Counter
	// lockBusy counts the turns whose claim found the lock taken, and
	// lockTurns those that took it.
	lockBusy, lockTurns prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, db *store.DB, log *slog.Logger) *metrics {
	buckets := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	m := &metrics{
		inserted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "provhub_jobs_inserted_total", Help: "Jobs inserted, by kind.",
		}, []string{"kind"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "provhub_job_attempts_total", Help: "Finished job attempts, by kind and outcome (completed, retryable, failed, cancelled, snoozed, released).",
		}, []string{"kind", "outcome"}),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "provhub_job_queue_wait_seconds", Help: "Time from a job being due to a worker starting it.", Buckets: buckets,
		}, []string{"kind"}),
		runTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "provhub_job_run_seconds", Help: "Time a handler took for one attempt.", Buckets: buckets,
		}, []string{"kind"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "provhub_job_retries_total", Help: "Attempts that ended in an error and were scheduled again, by kind.",
		}, []string{"kind"}),
		rescued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "provhub_jobs_rescued_total", Help: "Running jobs whose lease expired and were put back or failed.",
		}),
		turnTime: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "provhub_engine_turn_seconds_total", Help: "Seconds the engine's writer spent in its transactions (inserts, outcomes and claims), begin to commit.",
		}),
		lockWait: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "provhub_engine_claim_lock_wait_seconds_total", Help: "Seconds the writer spent asking for the claim lock that serializes claims across PostgreSQL instances (it does not wait: a lock another instance holds skips the claim).",
		}),
		lockHeld: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "provhub_engine_claim_lock_held_seconds_total", Help: "Seconds the writer held the claim lock (from taking it to its turn's commit).",
		}),
		lockTurns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "provhub_engine_claim_lock_turns_total", Help: "Writer turns that took the claim lock (with the held seconds, how long a turn holds it).",
		}),
		lockBusy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "provhub_engine_claim_lock_busy_total", Help: "Writer turns whose claim found the claim lock held by another instance (the turn commits without claiming, and claims again a moment later).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.inserted, m.attempts, m.queueWait, m.runTime, m.retries, m.rescued, m.turnTime, m.lockWait, m.lockHeld, m.lockBusy, m.lockTurns,
			&stateCollector{db: db, log: log})
	}
	return m
}

// stateCollector reports how many jobs each kind has in each state, read
// from the database at scrape time so every instance reports the same truth.
type stateCollector struct {
	db  *store.DB
	log *slog.Logger
}

var jobsDesc = prometheus.NewDesc("provhub_jobs", "Jobs in the database, by kind and state.", []string{"kind", "state"}, nil)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- jobsDesc }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := CountByKindAndState(ctx, c.db)
	if err != nil {
		c.log.Warn("count jobs for metrics", "err", err)
		return
	}
	for _, k := range counts {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(k.Count), k.Kind, string(k.State))
	}
}

// KindStateCount is one row of CountByKindAndState.
type KindStateCount struct {
	Kind  string
	State State
	Count int64
}

// CountByKindAndState counts the stored jobs per kind and state.
func CountByKindAndState(ctx context.Context, db *store.DB) ([]KindStateCount, error) {
	rs, err := db.Reader().QueryContext(ctx, `SELECT kind, state, count(*) FROM jobs GROUP BY kind, state ORDER BY kind, state`)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []KindStateCount
	for rs.Next() {
		var k KindStateCount
		var st string
		if err := rs.Scan(&k.Kind, &st, &k.Count); err != nil {
			return nil, err
		}
		k.State = State(st)
		out = append(out, k)
	}
	return out, rs.Err()
}
