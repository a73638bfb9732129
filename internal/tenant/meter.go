package tenant

import (
	"context"
	"time"

	"golang.org/x/time/rate"
)

// Meters hold each tenant's ingest budget (Limits' spans and bytes per
// second), for HTTP and OTLP ingest (Allow: refuse with a retry delay) and
// for the tenant's queue consumers (Wait: slow down, never drop).
type Meters struct {
	byTenant map[string]*meter
}

type meter struct{ spans, bytes *rate.Limiter } // nil: unlimited

// NewMeters meters the tenants that have ingest limits.
func NewMeters(tenants []Tenant) *Meters {
	m := &Meters{byTenant: map[string]*meter{}}
	for _, t := range tenants {
		if t.SpansPerSecond > 0 || t.BytesPerSecond > 0 {
			m.byTenant[t.Name] = &meter{spans: bucket(t.SpansPerSecond), bytes: bucket(t.BytesPerSecond)}
		}
	}
	return m
}

// bucket holds a second's worth: a burst as large as the rate.
func bucket(perSecond float64) *rate.Limiter {
	if perSecond <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(perSecond), max(1, int(perSecond)))
}

// Allow spends spans and bytes of the budget of the tenant ctx acts for,
// or spends nothing and says how long until it could. A request larger
// than a second's budget passes when the budget is whole (and empties it).
func (m *Meters) Allow(ctx context.Context, spans, bytes int) (retryAfter time.Duration, ok bool) {
	t := m.byTenant[From(ctx)]
	if t == nil {
		return 0, true
	}
	now := time.Now()
	var rs []*rate.Reservation
	for _, x := range []struct {
		l *rate.Limiter
		n int
	}{{t.spans, spans}, {t.bytes, bytes}} {
		if x.l == nil {
			continue
		}
		r := x.l.ReserveN(now, min(x.n, x.l.Burst()))
		rs = append(rs, r)
		retryAfter = max(retryAfter, r.DelayFrom(now))
	}
	if retryAfter > 0 {
		for _, r := range rs {
			r.CancelAt(now)
		}
		return max(retryAfter, time.Second).Round(time.Second), false
	}
	return 0, true
}

// Wait spends spans and bytes of the tenant's budget, waiting until it
// allows them, or until ctx ends (its error).
func (m *Meters) Wait(ctx context.Context, spans, bytes int) error {
	t := m.byTenant[From(ctx)]
	if t == nil {
		return nil
	}
	for _, x := range []struct {
		l *rate.Limiter
		n int
	}{{t.spans, spans}, {t.bytes, bytes}} {
		for n := x.n; x.l != nil && n > 0; n -= x.l.Burst() { // a second's worth at a time
			if err := x.l.WaitN(ctx, min(n, x.l.Burst())); err != nil {
				return err
			}
		}
	}
	return nil
}
