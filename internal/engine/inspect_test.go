package engine_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

func TestEngine_ListCountsAndThroughputDescribeTheQueue(t *testing.T) {
	t.Parallel()
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
		if len(buckets) != 5 || buckets[4].Completed != 4 || buckets[4].Failed != 2 ||
			buckets[4].ByKind["test"] != (engine.Finished{Completed: 4, Failed: 2}) {
			t.Errorf("throughput %+v", buckets)
		}
	})
}

func TestEngine_ListSearchesAndPagesAndUniqueKeysFindTheirJob(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEngine(t, db, func(ctx context.Context, job *engine.Job[testArgs]) error { return nil })
		ctx := context.Background()
		later := time.Now().Add(time.Hour)
		a := insert(t, e, 1, &engine.InsertOpts{RunAt: later, Subject: "smartcard:0123_45"})
		b := insert(t, e, 2, &engine.InsertOpts{RunAt: later, Subject: "smartcard:0123X45", UniqueKey: "test:b"})
		c := insert(t, e, 3, &engine.InsertOpts{RunAt: later, Subject: "se:0123_45"})
		ids := func(f engine.ListFilter) []int64 {
			t.Helper()
			jobs, err := e.List(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var out []int64
			for _, j := range jobs {
				out = append(out, j.ID)
			}
			return out
		}
		for _, tc := range []struct {
			name string
			f    engine.ListFilter
			want []int64
		}{
			// "_" is no wildcard: the "X" subject is not found.
			{"by the id after a subject's colon", engine.ListFilter{Search: "0123_45"}, []int64{c, a}},
			{"by a whole subject", engine.ListFilter{Search: "smartcard:0123X45"}, []int64{b}},
			{"by id", engine.ListFilter{Search: strconv.FormatInt(a, 10)}, []int64{a}},
			{"by unique key", engine.ListFilter{Search: "test:b"}, []int64{b}},
			{"nothing", engine.ListFilter{Search: "%"}, nil},
			{"the page after the newest", engine.ListFilter{Before: c, Limit: 1}, []int64{b}},
			{"and the next", engine.ListFilter{Before: b}, []int64{a}},
		} {
			if got := ids(tc.f); !slices.Equal(got, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
			}
		}
		j, err := e.GetByUniqueKey(ctx, "test:b")
		if err != nil || j.ID != b {
			t.Errorf("by unique key: %+v, %v", j, err)
		}
		if _, err := e.GetByUniqueKey(ctx, "test:none"); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("unknown unique key: %v", err)
		}
	})
}
