package auth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// MaxLimiterKeys bounds the keys a Limiter remembers: past it the oldest
// windows are forgotten first, so a flood of distinct names costs a bounded
// amount of memory (a key is kept as 16 bytes of its SHA-256, whatever its
// length).
const MaxLimiterKeys = 100_000

// Limiter counts failed attempts per key (a user name, a client address)
// in a fixed window and blocks a key once it reaches the limit, until its
// window ends. State is in memory, per process: with several instances,
// each allows the limit (a client spreading its attempts over n instances
// gets n times as many).
type Limiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	keys map[[16]byte]*failures
}

func limiterKey(key string) [16]byte {
	sum := sha256.Sum256([]byte(key))
	var k [16]byte
	copy(k[:], sum[:16])
	return k
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
	return &Limiter{max: max, window: window, now: now, keys: map[[16]byte]*failures{}}
}

// Blocked reports whether key has used up its failures; when it has, it
// also says how long until it may try again.
func (l *Limiter) Blocked(key string) (bool, time.Duration) {
	k := limiterKey(key)
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.keys[k]
	if !ok {
		return false, 0
	}
	left := f.start.Add(l.window).Sub(l.now())
	if left <= 0 {
		delete(l.keys, k)
		return false, 0
	}
	return f.count >= l.max, left
}

// Fail records a failed attempt for key.
func (l *Limiter) Fail(key string) {
	k := limiterKey(key)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f, ok := l.keys[k]
	if !ok || now.Sub(f.start) >= l.window {
		if !ok && len(l.keys) >= MaxLimiterKeys {
			l.sweep(now)
			if len(l.keys) >= MaxLimiterKeys {
				l.dropOldest()
			}
		}
		l.keys[k] = &failures{count: 1, start: now}
		return
	}
	f.count++
}

// dropOldest forgets the window that started first.
func (l *Limiter) dropOldest() {
	var oldest [16]byte
	var at time.Time
	for k, f := range l.keys {
		if at.IsZero() || f.start.Before(at) {
			oldest, at = k, f.start
		}
	}
	delete(l.keys, oldest)
}

// Len is how many keys the limiter remembers.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// Reset forgets key's failures (after a successful login).
func (l *Limiter) Reset(key string) {
	k := limiterKey(key)
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.keys, k)
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
