package loadgen_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/loadgen"
)

// chanDriver is an in-memory queue: enough to check that Run counts every
// job and measures both phases.
type chanDriver struct {
	mu      sync.Mutex
	queue   chan loadgen.Args
	stop    chan struct{}
	wg      sync.WaitGroup
	inserts int
}

func (d *chanDriver) InsertMany(ctx context.Context, jobs []loadgen.Args) error {
	for _, j := range jobs {
		d.queue <- j
	}
	return nil
}

func (d *chanDriver) Insert(ctx context.Context, j loadgen.Args) error {
	d.mu.Lock()
	d.inserts++
	d.mu.Unlock()
	d.queue <- j
	return nil
}

func (d *chanDriver) Start(ctx context.Context, done func(loadgen.Args)) error {
	d.stop = make(chan struct{})
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for {
			select {
			case j := <-d.queue:
				done(j)
			case <-d.stop:
				return
			}
		}
	}()
	return nil
}

func (d *chanDriver) Stop(ctx context.Context) error { close(d.stop); d.wg.Wait(); return nil }

func TestRun_CountsEveryJobInBothPhases(t *testing.T) {
	d := &chanDriver{queue: make(chan loadgen.Args, 10000)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := loadgen.Run(ctx, d, loadgen.Config{Jobs: 3000, Inserters: 8, Subjects: 3})
	if err != nil {
		t.Fatal(err)
	}
	if d.inserts != 3000 {
		t.Fatalf("single inserts = %d, want 3000", d.inserts)
	}
	if r.BulkInserted <= 0 || r.Drained <= 0 || r.SingleInserted <= 0 || r.SingleWorked <= 0 || r.P99 < r.P50 {
		t.Fatalf("result %+v", r)
	}
}

type stuckDriver struct{ chanDriver }

func (d *stuckDriver) Start(ctx context.Context, done func(loadgen.Args)) error { return nil }

func TestRun_ReportsJobsThatNeverFinish(t *testing.T) {
	d := &stuckDriver{chanDriver{queue: make(chan loadgen.Args, 100)}}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := loadgen.Run(ctx, d, loadgen.Config{Jobs: 10, Inserters: 1}); err == nil {
		t.Fatal("want an error when jobs are never worked")
	}
}
