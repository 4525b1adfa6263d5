package auth

import (
	"sync"
	"time"
)

// Limiter counts failed attempts per key (a user name, a client address)
// in a fixed window and blocks a key once it reaches the limit, until its
// window ends. State is in memory, per process.
type Limiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	keys map[string]*failures
}

type failures struct {
	count int
	start time.Time
}

// NewLimiter allows max failures per key within window. now may be nil.
func NewLimiter(max int, window time.Duration, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{max: max, window: window, now: now, keys: map[string]*failures{}}
}

// Blocked reports whether key has used up its failures; when it has, it
// also says how long until it may try again.
func (l *Limiter) Blocked(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.keys[key]
	if !ok {
		return false, 0
	}
	left := f.start.Add(l.window).Sub(l.now())
	if left <= 0 {
		delete(l.keys, key)
		return false, 0
	}
	return f.count >= l.max, left
}

// Fail records a failed attempt for key.
func (l *Limiter) Fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f, ok := l.keys[key]
	if !ok || now.Sub(f.start) >= l.window {
		if len(l.keys) > 100_000 {
			l.sweep(now)
		}
		l.keys[key] = &failures{count: 1, start: now}
		return
	}
	f.count++
}

// Reset forgets key's failures (after a successful login).
func (l *Limiter) Reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.keys, key)
}

// sweep drops ended windows so that a flood of distinct keys cannot grow
// the map without bound.
func (l *Limiter) sweep(now time.Time) {
	for k, f := range l.keys {
		if now.Sub(f.start) >= l.window {
			delete(l.keys, k)
		}
	}
}
