package server

import (
	"math"
	"sync"
	"time"
)

// limiter is a token bucket per account: rate requests per second with a
// burst of twice that. A zero rate disables it.
type limiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, now func() time.Time) *limiter {
	return &limiter{rate: rate, burst: math.Max(1, 2*rate), now: now, buckets: map[string]*bucket{}}
}

// allow takes a token for account; when none is left it returns false and
// the whole seconds until the next token.
func (l *limiter) allow(account string) (bool, int) {
	if l.rate <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[account]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[account] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, int(math.Ceil((1 - b.tokens) / l.rate))
}
