// Command river runs provhub's engine benchmark workload (internal/loadgen)
// on River, against the same PostgreSQL, so that the figures of
// `provhub bench engine` can be read side by side with River's. It lives in
// its own module so that River never becomes a dependency of provhub.
//
// River is tuned as its own benchmarks tune it: FetchCooldown 1 ms,
// FetchPollInterval 20 ms, MaxWorkers 1000. Its tables go into a fresh
// schema that is dropped at the end.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/provhub/provhub/internal/loadgen"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "river bench:", err)
		os.Exit(1)
	}
}

type benchArgs struct{ loadgen.Args }

func (benchArgs) Kind() string { return "bench_noop" }

type worker struct {
	river.WorkerDefaults[benchArgs]
	done *func(loadgen.Args)
}

func (w *worker) Work(ctx context.Context, job *river.Job[benchArgs]) error {
	(*w.done)(job.Args.Args)
	return nil
}

type driver struct {
	client *river.Client[pgx.Tx]
	done   func(loadgen.Args)
}

func (d *driver) InsertMany(ctx context.Context, jobs []loadgen.Args) error {
	params := make([]river.InsertManyParams, len(jobs))
	for i, j := range jobs {
		params[i] = river.InsertManyParams{Args: benchArgs{j}}
	}
	_, err := d.client.InsertMany(ctx, params)
	return err
}

func (d *driver) Insert(ctx context.Context, j loadgen.Args) error {
	_, err := d.client.Insert(ctx, benchArgs{j}, nil)
	return err
}

func (d *driver) Start(ctx context.Context, done func(loadgen.Args)) error {
	d.done = done
	return d.client.Start(ctx)
}

func (d *driver) Stop(ctx context.Context) error { return d.client.Stop(ctx) }

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("river", flag.ContinueOnError)
	db := fs.String("db", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL URL")
	jobs := fs.Int("jobs", 50000, "jobs per phase")
	workers := fs.Int("workers", 1000, "River MaxWorkers")
	inserters := fs.Int("inserters", 32, "goroutines inserting single jobs in the concurrent phase")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	var b [4]byte
	_, _ = rand.Read(b[:])
	schema := "river_bench_" + hex.EncodeToString(b[:])
	admin, err := pgx.Connect(ctx, *db)
	if err != nil {
		return err
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return err
	}
	defer admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE") //nolint:errcheck

	u, err := url.Parse(*db)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	pcfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return err
	}
	pcfg.MaxConns = 20
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	drv := riverpgxv5.New(pool)
	migrator, err := rivermigrate.New(drv, &rivermigrate.Config{Schema: schema})
	if err != nil {
		return err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate river: %w", err)
	}

	d := &driver{}
	ws := river.NewWorkers()
	river.AddWorker(ws, &worker{done: &d.done})
	client, err := river.NewClient(drv, &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: *workers}},
		Workers:           ws,
		FetchCooldown:     time.Millisecond,
		FetchPollInterval: 20 * time.Millisecond,
		Schema:            schema,
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	d.client = client
	cfg := loadgen.Config{Jobs: *jobs, Inserters: *inserters}
	r, err := loadgen.Run(ctx, d, cfg)
	if err != nil {
		return err
	}
	loadgen.Print(out, "river", "postgres", cfg, *workers, r)
	return nil
}
