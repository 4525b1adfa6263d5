package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

func TestEngine_ListCountsAndThroughputDescribeTheQueue(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error {
			if job.Args.N%3 == 0 {
				return engine.Terminal(errors.New("no multiples of three"))
			}
			return nil
		})
		ctx := context.Background()
		var ids []int64
		for n := 1; n <= 6; n++ {
			ids = append(ids, insert(t, e, n, nil))
		}
		later := insert(t, e, 7, &engine.InsertOpts{RunAt: time.Now().Add(time.Hour)})
		for i, id := range ids {
			want := engine.StateCompleted
			if (i+1)%3 == 0 {
				want = engine.StateFailed
			}
			waitState(t, e, id, want)
		}
		failed, err := e.List(ctx, engine.ListFilter{State: engine.StateFailed})
		if err != nil {
			t.Fatal(err)
		}
		if len(failed) != 2 || failed[0].ID != ids[5] || failed[1].ID != ids[2] || len(failed[0].Errors) != 1 {
			t.Errorf("failed jobs, newest first: %+v", failed)
		}
		all, _ := e.List(ctx, engine.ListFilter{Kind: "test", Limit: 3})
		if len(all) != 3 || all[0].ID != later {
			t.Errorf("the three newest: %+v", all)
		}
		if none, _ := e.List(ctx, engine.ListFilter{Kind: "nothing"}); len(none) != 0 {
			t.Errorf("another kind: %+v", none)
		}
		counts, err := e.Counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[engine.State]int{}
		for _, c := range counts {
			if c.Kind == "test" {
				got[c.State] = c.Count
			}
		}
		if got[engine.StateCompleted] != 4 || got[engine.StateFailed] != 2 || got[engine.StateScheduled] != 1 {
			t.Errorf("counts %v", got)
		}
		buckets, err := e.Throughput(ctx, 5, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(buckets) != 5 || buckets[4].Completed != 4 || buckets[4].Failed != 2 {
			t.Errorf("throughput %+v", buckets)
		}
	})
}
