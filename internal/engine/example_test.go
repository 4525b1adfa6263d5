package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/store"
)

// greetArgs are the arguments of the examples' job kind.
type greetArgs struct {
	Name string `json:"name"`
}

func (greetArgs) Kind() string { return "example.greet" }

// exampleEngine opens a fresh SQLite database and an engine running
// handler; stop releases both.
func exampleEngine(handler engine.Handler[greetArgs]) (e *engine.Engine, db *store.DB, stop func()) {
	dir, err := os.MkdirTemp("", "provhub-example-")
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	db, err = store.Open(ctx, store.Config{URL: "sqlite:" + filepath.Join(dir, "provhub.db")})
	if err != nil {
		panic(err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		panic(err)
	}
	reg := engine.NewRegistry()
	engine.Register(reg, handler, engine.KindOptions{})
	e, err = engine.New(engine.Config{DB: db, Registry: reg, FetchPollInterval: 20 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	if err := e.Start(ctx); err != nil {
		panic(err)
	}
	return e, db, func() {
		_ = e.Stop(ctx)
		e.Close()
		_ = db.Close()
		_ = os.RemoveAll(dir)
	}
}

// waitFinished polls a job until it has ended.
func waitFinished(e *engine.Engine, id int64) *engine.JobRow {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		j, err := e.Get(context.Background(), id)
		if err != nil {
			panic(err)
		}
		if j.State.Terminal() {
			return j
		}
	}
	panic(fmt.Sprintf("job %d did not finish", id))
}

// A job inserted in the caller's transaction exists only if that
// transaction commits: a domain record and the job that acts on it are
// stored together or not at all.
func ExampleEngine_Insert_inTransaction() {
	e, db, stop := exampleEngine(func(ctx context.Context, job *engine.Job[greetArgs]) error { return nil })
	defer stop()
	ctx := context.Background()

	var rolledBack engine.Inserted
	errRefused := errors.New("the domain write was refused")
	err := db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if rolledBack, err = e.Insert(ctx, tx, greetArgs{Name: "rolled back"}, nil); err != nil {
			return err
		}
		return errRefused // the caller's transaction rolls back, job included
	})
	_, getErr := e.Get(ctx, rolledBack.ID)
	fmt.Println(errors.Is(err, errRefused), errors.Is(getErr, engine.ErrNotFound))

	var committed engine.Inserted
	if err := db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		committed, err = e.Insert(ctx, tx, greetArgs{Name: "committed"}, nil)
		return err
	}); err != nil {
		panic(err)
	}
	fmt.Println(waitFinished(e, committed.ID).State)
	// Output:
	// true true
	// completed
}

// Jobs of one subject run one at a time, in the order they were inserted,
// however many workers are free.
func ExampleInsertOpts_subject() {
	var mu sync.Mutex
	var order []string
	e, _, stop := exampleEngine(func(ctx context.Context, job *engine.Job[greetArgs]) error {
		mu.Lock()
		order = append(order, job.Args.Name)
		mu.Unlock()
		return nil
	})
	defer stop()
	ctx := context.Background()
	var last engine.Inserted
	for _, name := range []string{"first", "second", "third"} {
		var err error
		if last, err = e.Insert(ctx, nil, greetArgs{Name: name}, &engine.InsertOpts{Subject: "smartcard:42"}); err != nil {
			panic(err)
		}
	}
	waitFinished(e, last.ID)
	mu.Lock()
	defer mu.Unlock()
	fmt.Println(order)
	// Output: [first second third]
}

// A handler polling a downstream task snoozes: the job runs again later
// without using an attempt, and no worker waits meanwhile.
func ExampleSnooze() {
	var mu sync.Mutex
	polls := 0
	e, _, stop := exampleEngine(func(ctx context.Context, job *engine.Job[greetArgs]) error {
		mu.Lock()
		defer mu.Unlock()
		if polls++; polls < 3 {
			return engine.Snooze(10 * time.Millisecond) // still PROCESSING downstream
		}
		return nil
	})
	defer stop()
	res, err := e.Insert(context.Background(), nil, greetArgs{Name: "poller"}, nil)
	if err != nil {
		panic(err)
	}
	j := waitFinished(e, res.ID)
	fmt.Println(j.State, "attempt", j.Attempt, "snoozes", j.Snoozes)
	// Output: completed attempt 1 snoozes 2
}

// A unique key makes an insert idempotent: a client repeating a request
// gets the job the first call stored.
func ExampleInsertOpts_unique() {
	e, _, stop := exampleEngine(func(ctx context.Context, job *engine.Job[greetArgs]) error { return nil })
	defer stop()
	ctx := context.Background()
	opts := &engine.InsertOpts{UniqueKey: "greet:request-7"}
	first, err := e.Insert(ctx, nil, greetArgs{Name: "once"}, opts)
	if err != nil {
		panic(err)
	}
	again, err := e.Insert(ctx, nil, greetArgs{Name: "once"}, opts)
	if err != nil {
		panic(err)
	}
	fmt.Println(first.Existing, again.Existing, again.ID == first.ID)
	// Output: false true true
}
