package telemetry

import (
	"sync"
	"time"
)

// LogLimiter lets one log line per key through per period and counts the
// rest, so that a flood of bad input is counted, not logged line by line.
// It is safe for concurrent use.
type LogLimiter struct {
	mu     sync.Mutex
	period time.Duration
	next   map[string]time.Time
	skip   map[string]int
}

// NewLogLimiter makes a LogLimiter with the given period.
func NewLogLimiter(period time.Duration) *LogLimiter {
	return &LogLimiter{period: period, next: map[string]time.Time{}, skip: map[string]int{}}
}

// Allow reports whether a line for key may be logged now, and how many
// were held back since the last one.
func (l *LogLimiter) Allow(key string) (suppressed int, ok bool) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.next[key]) {
		l.skip[key]++
		return 0, false
	}
	n := l.skip[key]
	l.skip[key] = 0
	l.next[key] = now.Add(l.period)
	return n, true
}
