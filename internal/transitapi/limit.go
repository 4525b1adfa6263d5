package transitapi

import (
	"context"
	"sync"
	"time"

	"github.com/provhub/provhub/internal/partner"
)

// startLimiter is a token bucket per partner for the calls that start a
// device operation. It is per instance (each instance allows the rate);
// the per-secure-element bound in the transit domain holds across
// instances.
type startLimiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newStartLimiter(rate float64, burst int, now func() time.Time) *startLimiter {
	return &startLimiter{rate: rate, burst: float64(burst), now: now, buckets: map[string]*bucket{}}
}

// allow takes a token of the calling partner's bucket, or refuses with 321
// (retry later).
func (l *startLimiter) allow(ctx context.Context) error {
	p := partner.FromContext(ctx)
	if p == nil {
		return &failure{codeBusy, "no partner"}
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[p.ID]
	if !ok {
		if len(l.buckets) > 10_000 { // partners are few; never unbounded
			l.buckets = map[string]*bucket{}
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[p.ID] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.tokens < 1 {
		return &failure{codeBusy, "this partner starts device operations faster than allowed; try again shortly"}
	}
	b.tokens--
	return nil
}
