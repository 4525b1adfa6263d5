package benchmark

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/provhub/provhub/internal/cliflag"
	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/loadgen"
	"github.com/provhub/provhub/internal/store"
)

// Engine measures the job engine alone with loadgen's no-op workload.
func Engine(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("bench engine", stderr)
	db := cliflag.DB(fs, "")
	jobs := fs.Int("jobs", 50000, "jobs per phase")
	workers := fs.Int("workers", 1000, "jobs run at once")
	subjects := fs.Int("subjects", 0, "0: no subjects; K: job i gets subject i mod K")
	inserters := fs.Int("inserters", 32, "goroutines inserting single jobs in the concurrent phase")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	cpuProfile := profileFlag(fs)
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	url, cleanup, err := benchDB(*db)
	if err != nil {
		return err
	}
	defer cleanup()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	s, err := store.Open(ctx, store.Config{URL: url, MaxConns: 20})
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		return err
	}
	if err := clearBenchJobs(ctx, s); err != nil {
		return err
	}
	d, err := newEngineDriver(s, *workers)
	if err != nil {
		return err
	}
	cfg := loadgen.Config{Jobs: *jobs, Subjects: *subjects, Inserters: *inserters}
	stopProfile, err := startProfile(*cpuProfile)
	if err != nil {
		return err
	}
	r, err := loadgen.Run(ctx, d, cfg)
	stopProfile()
	d.eng.Close()
	if err != nil {
		return err
	}
	loadgen.Print(stdout, "provhub", s.Dialect().String(), cfg, *workers, r)
	return clearBenchJobs(ctx, s)
}

// benchDB returns url, or a temporary SQLite database when url is empty,
// and what removes it.
func benchDB(url string) (string, func(), error) {
	if url != "" {
		return url, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "provhub-bench-")
	if err != nil {
		return "", nil, err
	}
	return "sqlite:" + filepath.Join(dir, "bench.db"), func() { os.RemoveAll(dir) }, nil
}

// clearBenchJobs removes earlier benchmark jobs and refuses to run on a
// database that holds any other job: the benchmark wants a scratch database.
func clearBenchJobs(ctx context.Context, s *store.DB) error {
	var others int
	if err := s.Reader().QueryRowContext(ctx, `SELECT count(*) FROM jobs WHERE kind <> $1`, benchArgs{}.Kind()).Scan(&others); err != nil {
		return fmt.Errorf("count jobs: %w", err)
	}
	if others > 0 {
		return errors.New("the database holds real jobs; run the benchmark on a scratch database")
	}
	if _, err := s.Writer().ExecContext(ctx, `DELETE FROM jobs WHERE kind = $1`, benchArgs{}.Kind()); err != nil {
		return fmt.Errorf("clear benchmark jobs: %w", err)
	}
	return nil
}

type benchArgs struct{ loadgen.Args }

func (benchArgs) Kind() string { return "bench_noop" }

// engineDriver runs the loadgen workload on provhub's engine.
type engineDriver struct {
	eng  *engine.Engine
	done func(loadgen.Args)
}

func newEngineDriver(s *store.DB, workers int) (*engineDriver, error) {
	d := &engineDriver{}
	reg := engine.NewRegistry()
	engine.Register(reg, func(ctx context.Context, job *engine.Job[benchArgs]) error {
		d.done(job.Args.Args)
		return nil
	}, engine.KindOptions{})
	eng, err := engine.New(engine.Config{DB: s, Registry: reg, MaxWorkers: workers, FetchCooldown: time.Millisecond})
	if err != nil {
		return nil, err
	}
	d.eng = eng
	return d, nil
}

func opts(a loadgen.Args) *engine.InsertOpts {
	if a.Subject == "" {
		return nil
	}
	return &engine.InsertOpts{Subject: a.Subject}
}

func (d *engineDriver) InsertMany(ctx context.Context, jobs []loadgen.Args) error {
	params := make([]engine.InsertParams, len(jobs))
	for i, j := range jobs {
		params[i] = engine.InsertParams{Args: benchArgs{j}, Opts: opts(j)}
	}
	_, err := d.eng.InsertMany(ctx, nil, params)
	return err
}

func (d *engineDriver) Insert(ctx context.Context, j loadgen.Args) error {
	_, err := d.eng.Insert(ctx, nil, benchArgs{j}, opts(j))
	return err
}

func (d *engineDriver) Start(ctx context.Context, done func(loadgen.Args)) error {
	d.done = done
	return d.eng.Start(ctx)
}

func (d *engineDriver) Stop(ctx context.Context) error { return d.eng.Stop(ctx) }
