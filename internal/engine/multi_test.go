package engine_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

func TestEngine_ThreeInstancesShareOnePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: three engines under load")
	}
	db := storetest.Open(t, store.Postgres)
	rec := newSubjectRecorder()
	h := func(ctx context.Context, job *engine.Job[testArgs]) error {
		rec.enter(job.Subject, job.ID)
		time.Sleep(200 * time.Microsecond)
		rec.leave(job.Subject)
		return nil
	}
	var engines []*engine.Engine
	for i := range 3 {
		engines = append(engines, newEngine(t, db, h, func(c *engine.Config) {
			c.MaxWorkers = 20
			c.InstanceID = fmt.Sprintf("instance-%d", i)
		}))
	}
	const n, subjects = 1500, 25
	params := make([]engine.InsertParams, n)
	for i := range params {
		params[i] = engine.InsertParams{Args: testArgs{N: i}, Opts: &engine.InsertOpts{Subject: fmt.Sprintf("se-%d", i%subjects)}}
	}
	if _, err := engines[0].InsertMany(context.Background(), nil, params); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	waitFor(t, "every job to complete", func() bool {
		var left int
		if err := db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM jobs WHERE state <> 'completed'`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		return left == 0
	})
	rec.check(t)
	// All three took part: the work was shared, not done by one.
	var owners int
	if err := db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM jobs WHERE attempt <> 1`).Scan(&owners); err != nil {
		t.Fatal(err)
	}
	if owners != 0 {
		t.Fatalf("%d jobs ran more than once", owners)
	}
	if rec.maxPar < 2 {
		t.Fatalf("at most %d jobs ran at once across three instances", rec.maxPar)
	}
}

const crashChildEnv = "PROVHUB_ENGINE_CRASH_CHILD_DB"

// TestMain lets the test binary play the process that gets killed.
func TestMain(m *testing.M) {
	if url := os.Getenv(crashChildEnv); url != "" {
		runCrashChild(url)
		return
	}
	os.Exit(m.Run())
}

func runCrashChild(url string) {
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{URL: url})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	reg := engine.NewRegistry()
	engine.Register(reg, func(ctx context.Context, job *engine.Job[testArgs]) error {
		if job.Args.Name == "hang" {
			select {} // still running when the process is killed
		}
		time.Sleep(2 * time.Millisecond)
		return nil
	}, engine.KindOptions{})
	e, err := engine.New(engine.Config{DB: db, Registry: reg, MaxWorkers: 20, LeaseDuration: time.Second, FetchPollInterval: 20 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := e.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	select {}
}

func TestEngine_KilledProcessLosesNoJob(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts and kills engine processes")
	}
	for _, d := range storetest.Backends {
		t.Run(d.String(), func(t *testing.T) {
			url := storetest.NewURL(t, d)
			ctx := context.Background()
			db, err := store.Open(ctx, store.Config{URL: url})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() }) // after the engines below stop
			if _, err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			ins := newStoppedEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error { return nil })
			const n = 600
			params := []engine.InsertParams{{Args: testArgs{Name: "hang"}, Opts: &engine.InsertOpts{Priority: 1}}}
			for i := range n - 1 {
				params = append(params, engine.InsertParams{Args: testArgs{N: i}, Opts: &engine.InsertOpts{Subject: fmt.Sprintf("sc-%d", i%10)}})
			}
			res, err := ins.InsertMany(ctx, nil, params)
			if err != nil {
				t.Fatal(err)
			}
			hang := res[0].ID

			child := exec.Command(os.Args[0], "-test.run=^$")
			child.Env = append(os.Environ(), crashChildEnv+"="+url)
			child.Stderr = os.Stderr
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}
			completed := func() int {
				var c int
				if err := db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM jobs WHERE state = 'completed'`).Scan(&c); err != nil {
					t.Fatal(err)
				}
				return c
			}
			waitFor(t, "the child to complete some jobs", func() bool { return completed() >= 100 })
			if err := child.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = child.Wait()
			if c := completed(); c >= n-1 {
				t.Fatalf("child finished everything (%d) before it was killed; the test proves nothing", c)
			}

			// Leases of an hour: only the dead process's lost instance lock
			// (PostgreSQL) or engine lock (SQLite) can bring its running
			// jobs back within the wait below.
			e := newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error { return nil }, func(c *engine.Config) {
				c.LeaseDuration = time.Hour
				c.LivenessInterval = 100 * time.Millisecond
			})
			waitFor(t, "a fresh process to finish every job", func() bool { return completed() == n })
			var total int
			if err := db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM jobs`).Scan(&total); err != nil {
				t.Fatal(err)
			}
			if total != n {
				t.Fatalf("%d jobs stored, want %d", total, n)
			}
			j, err := e.Get(ctx, hang)
			if err != nil {
				t.Fatal(err)
			}
			if j.Attempt != 2 || len(j.Errors) != 1 {
				t.Fatalf("job running at the kill: attempt %d errors %+v, want rescued once", j.Attempt, j.Errors)
			}
		})
	}
}

// holdClaimLock takes the claim lock of db's schema, as another instance's
// claim would, in a transaction of its own that holds it until it ends
// (rolled back at the test's end if still open).
func holdClaimLock(t *testing.T, db *store.DB) *sql.Tx {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Writer().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	if err := engine.TakeClaimLock(ctx, tx); err != nil {
		t.Fatal(err)
	}
	return tx
}

// An instance whose claim finds the claim lock taken by another does not
// wait for it: the turn's insert commits (the caller is answered), nothing
// is claimed, and the job runs once the lock is free. The job has a
// subject, so its insert is the writer turn's (a job without one, due now,
// starts at its insert: TestEngine_AJobWithoutSubjectStartsAtItsInsert).
func TestEngine_AnInsertDoesNotWaitForAnotherInstancesClaimLock(t *testing.T) {
	db := storetest.Open(t, store.Postgres)
	ran := make(chan int64, 1)
	e := newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
		ran <- job.ID
		return nil
	})
	ctx := context.Background()
	other := holdClaimLock(t, db)
	inserted := make(chan int64, 1)
	go func() { inserted <- insert(t, e, 1, &engine.InsertOpts{Subject: "card-1"}) }()
	var id int64
	select {
	case id = <-inserted:
	case <-time.After(20 * time.Second):
		t.Fatal("the insert waited for the claim lock another instance holds")
	}
	if j, err := e.Get(ctx, id); err != nil || j.State != engine.StateAvailable {
		t.Fatalf("while the lock is held: %+v %v", j, err)
	}
	select {
	case <-ran:
		t.Fatal("a job was claimed without the claim lock")
	default:
	}
	if err := other.Rollback(); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-ran:
		if got != id {
			t.Fatalf("ran job %d, want %d", got, id)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the job did not run once the lock was free")
	}
}

// Hubs whose tables live in different schemas of one database claim
// independently: the claim lock of one schema does not hold the other's
// claims (the lock's second key is the schema).
func TestEngine_ClaimLocksOfDifferentSchemasAreApart(t *testing.T) {
	mine, theirs := storetest.Open(t, store.Postgres), storetest.Open(t, store.Postgres)
	ran := make(chan int64, 1)
	e := newEngine(t, mine, func(ctx context.Context, job *engine.Job[testArgs]) error {
		ran <- job.ID
		return nil
	})
	// The claim lock an engine of the other schema would hold.
	holdClaimLock(t, theirs)
	// A job with a subject waits for a claim (one without would start at
	// its insert, with no claim to hold back).
	id := insert(t, e, 1, &engine.InsertOpts{Subject: "card-1"})
	select {
	case got := <-ran:
		if got != id {
			t.Fatalf("ran job %d, want %d", got, id)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("another schema's claim lock held this schema's claims")
	}
}

// Instances wake each other on a channel of their schema: a hub in another
// schema of the same database is not woken by this one's writes.
func TestEngine_WakeUpsStayWithinTheirSchema(t *testing.T) {
	mineURL := storetest.NewURL(t, store.Postgres)
	mine, err := store.Open(context.Background(), store.Config{URL: mineURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mine.Close() })
	if _, err := mine.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	theirs := storetest.Open(t, store.Postgres)
	noop := func(context.Context, *engine.Job[testArgs]) error { return nil }
	mineEngine := newStoppedEngine(t, mine, noop)
	theirEngine := newStoppedEngine(t, theirs, noop)

	// A listener in my schema, as a peer instance of mine would listen.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, mineURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var channel string
	if err := conn.QueryRow(ctx, `SELECT `+engine.NotifyChannelSQL).Scan(&channel); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	// Theirs writes first, then mine: the first notice heard must be mine.
	insert(t, theirEngine, 1, nil)
	insert(t, mineEngine, 2, nil)
	n, err := conn.WaitForNotification(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.Payload != mineEngine.InstanceID() {
		t.Fatalf("heard %q on my schema's channel, want my instance %q (their instance is %q)", n.Payload, mineEngine.InstanceID(), theirEngine.InstanceID())
	}
}
