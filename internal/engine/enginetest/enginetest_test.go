package enginetest_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/engine/enginetest"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

type sendArgs struct {
	Request string `json:"request"`
}

func (sendArgs) Kind() string { return "enginetest.send" }

type otherArgs struct{}

func (otherArgs) Kind() string { return "enginetest.other" }

func newEngine(t *testing.T, db *store.DB) *engine.Engine {
	t.Helper()
	reg := engine.NewRegistry()
	engine.Register(reg, func(context.Context, *engine.Job[sendArgs]) error { return nil }, engine.KindOptions{})
	engine.Register(reg, func(context.Context, *engine.Job[otherArgs]) error { return nil }, engine.KindOptions{})
	e, err := engine.New(engine.Config{DB: db, Registry: reg}) // never started: jobs stay as inserted
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the goroutine, as the real one does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func failure(t *testing.T, fn func(tb testing.TB)) string {
	t.Helper()
	f := &fatalRecorder{TB: t}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); fn(f) }()
	wg.Wait()
	return f.msg
}

func TestEnginetest_FindsWhatWasInsertedAndFailsOnWhatWasNot(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEngine(t, db)
		// More than one page of the engine's list.
		params := make([]engine.InsertParams, 0, 620)
		for i := range 600 {
			params = append(params, engine.InsertParams{Args: sendArgs{Request: fmt.Sprintf("r-%d", i)}})
		}
		for range 20 {
			params = append(params, engine.InsertParams{Args: otherArgs{}})
		}
		if _, err := e.InsertMany(ctx, nil, params); err != nil {
			t.Fatal(err)
		}
		keyed, err := e.Insert(ctx, nil, sendArgs{Request: "keyed"}, &engine.InsertOpts{UniqueKey: "send:keyed"})
		if err != nil {
			t.Fatal(err)
		}

		if n := len(enginetest.Jobs[sendArgs](t, e, nil)); n != 601 {
			t.Errorf("Jobs found %d send jobs, want 601 (other kinds left out, every page read)", n)
		}
		first := enginetest.RequireInserted(t, e, func(j *engine.Job[sendArgs]) bool { return j.Args.Request == "r-0" })
		if first.Args.Request != "r-0" || first.State != engine.StateAvailable {
			t.Errorf("RequireInserted = %+v", first)
		}
		if j := enginetest.RequireUnique[sendArgs](t, e, "send:keyed"); j.ID != keyed.ID || j.Args.Request != "keyed" {
			t.Errorf("RequireUnique = %+v, want job %d", j, keyed.ID)
		}

		if msg := failure(t, func(tb testing.TB) {
			enginetest.RequireInserted(tb, e, func(j *engine.Job[sendArgs]) bool { return j.Args.Request == "never" })
		}); !strings.Contains(msg, "no enginetest.send job") {
			t.Errorf("RequireInserted of a job never inserted: %q", msg)
		}
		if msg := failure(t, func(tb testing.TB) { enginetest.RequireUnique[otherArgs](tb, e, "send:keyed") }); !strings.Contains(msg, "not enginetest.other") {
			t.Errorf("RequireUnique of another kind: %q", msg)
		}
		if msg := failure(t, func(tb testing.TB) { enginetest.RequireUnique[sendArgs](tb, e, "send:missing") }); msg == "" {
			t.Error("RequireUnique of a missing key did not fail")
		}
	})
}
