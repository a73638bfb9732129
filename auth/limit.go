package auth

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter slows down guessing: each client address may fail burst times,
// then once per refill. Only failures spend its budget, so a client with a
// good token is never slowed; an address out of budget is refused before
// its token is checked, so guessing costs zipq no bcrypt either.
type limiter struct {
	mu     sync.Mutex
	burst  int
	every  time.Duration
	byAddr map[string]*rate.Limiter
	now    func() time.Time
}

// maxAddrs bounds the addresses remembered; past it, those that have their
// whole budget again are forgotten, and if none has, new addresses share
// one budget (an attacker with many addresses then limits only itself and
// other first-time failers, never a client whose token is good).
const maxAddrs = 10_000

const overflowAddr = "\x00overflow"

func newLimiter(burst int, every time.Duration) *limiter {
	return &limiter{burst: burst, every: every, byAddr: map[string]*rate.Limiter{}, now: time.Now}
}

// wait is how long addr must wait before its next attempt (0: now).
func (l *limiter) wait(addr string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.byAddr[addr]
	if !ok {
		if lim, ok = l.byAddr[overflowAddr]; !ok || len(l.byAddr) < maxAddrs {
			return 0
		}
	}
	now := l.now()
	if lim.TokensAt(now) >= 1 {
		return 0
	}
	r := lim.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return max(d, time.Second)
}

// fail spends one of addr's attempts.
func (l *limiter) fail(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	lim, ok := l.byAddr[addr]
	if !ok {
		if len(l.byAddr) >= maxAddrs {
			l.sweep(now)
		}
		if len(l.byAddr) >= maxAddrs {
			addr = overflowAddr
		}
		if lim, ok = l.byAddr[addr]; !ok {
			lim = rate.NewLimiter(rate.Every(l.every), l.burst)
			l.byAddr[addr] = lim
		}
	}
	lim.AllowN(now, 1)
}

// sweep forgets addresses whose budget is whole again.
func (l *limiter) sweep(now time.Time) {
	for a, lim := range l.byAddr {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.byAddr, a)
		}
	}
}
