package engine_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

// Benchmarks print figures; nothing here asserts a speed. Run with
// go test -run ^$ -bench . ./internal/engine

func benchEngine(b *testing.B, db *store.DB, h handlerFunc) *engine.Engine {
	b.Helper()
	reg := engine.NewRegistry()
	engine.Register(reg, h, engine.KindOptions{})
	e, err := engine.New(engine.Config{DB: db, Registry: reg, MaxWorkers: 1000, FetchCooldown: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(e.Close)
	return e
}

func noop(context.Context, *engine.Job[testArgs]) error { return nil }

func eachBackend(b *testing.B, fn func(b *testing.B, db *store.DB)) {
	for _, d := range storetest.Backends {
		b.Run(d.String(), func(b *testing.B) { fn(b, storetest.Open(b, d)) })
	}
}

func BenchmarkInsertSingle(b *testing.B) {
	eachBackend(b, func(b *testing.B, db *store.DB) {
		e := benchEngine(b, db, noop)
		ctx := context.Background()
		for i := 0; b.Loop(); i++ {
			if _, err := e.Insert(ctx, nil, testArgs{N: i}, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
	})
}

func BenchmarkInsertMany1000(b *testing.B) {
	eachBackend(b, func(b *testing.B, db *store.DB) {
		e := benchEngine(b, db, noop)
		params := make([]engine.InsertParams, 1000)
		for i := range params {
			params[i] = engine.InsertParams{Args: testArgs{N: i}}
		}
		for b.Loop() {
			if _, err := e.InsertMany(context.Background(), nil, params); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "jobs/s")
	})
}

// BenchmarkInsertConcurrent is the shape of an API under load: many
// goroutines inserting single jobs, each waiting for its durable commit.
func BenchmarkInsertConcurrent(b *testing.B) {
	eachBackend(b, func(b *testing.B, db *store.DB) {
		e := benchEngine(b, db, noop)
		b.SetParallelism(16) // 32 goroutines on 2 cores
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := e.Insert(context.Background(), nil, testArgs{}, nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
	})
}

func BenchmarkDrainNoop(b *testing.B) {
	for _, subjects := range []int{0, 1000} {
		name := "no_subjects"
		if subjects > 0 {
			name = "1000_subjects"
		}
		b.Run(name, func(b *testing.B) {
			eachBackend(b, func(b *testing.B, db *store.DB) {
				const perRound = 10000
				var done atomic.Int64
				e := benchEngine(b, db, func(context.Context, *engine.Job[testArgs]) error { done.Add(1); return nil })
				params := make([]engine.InsertParams, perRound)
				for i := range params {
					params[i] = engine.InsertParams{Args: testArgs{N: i}}
					if subjects > 0 {
						params[i].Opts = &engine.InsertOpts{Subject: fmt.Sprintf("se-%d", i%subjects)}
					}
				}
				var worked time.Duration
				for b.Loop() {
					b.StopTimer()
					done.Store(0)
					if _, err := e.InsertMany(context.Background(), nil, params); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					start := time.Now()
					if err := e.Start(context.Background()); err != nil {
						b.Fatal(err)
					}
					for done.Load() < perRound {
						time.Sleep(200 * time.Microsecond)
					}
					worked += time.Since(start)
					b.StopTimer()
					if err := e.Stop(context.Background()); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				b.ReportMetric(float64(b.N*perRound)/worked.Seconds(), "jobs/s")
			})
		})
	}
}
