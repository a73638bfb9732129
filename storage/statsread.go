package storage

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/zipq/zipq/zipkin"
)

// StatsBy names the cell fields a stats read groups by; the others are
// summed over.
type StatsBy uint8

const (
	ByService StatsBy = 1 << iota
	ByName
	ByKind
	ByRemote
)

// StatsQuery selects service metrics (span_stats) of the tenant the
// read's context acts for.
type StatsQuery struct {
	// Service, Name and Remote select cells ("" is any); Kinds too (none
	// is any).
	Service, Name, Remote string
	Kinds                 []zipkin.Kind
	// [Start, End) cut in Step-long buckets from Start. Rows older than a
	// day are hours: such a row counts in the bucket of its hour's start.
	Start, End time.Time
	Step       time.Duration
	By         StatsBy
	// Quantiles (in [0, 1]) read from each bucket's and the range's
	// merged sketch.
	Quantiles []float64
}

// StatsSeries is one group's buckets.
type StatsSeries struct {
	// The fields grouped by; the others are zero.
	Service, Name, Remote string
	Kind                  zipkin.Kind
	// Points are the buckets that saw calls, in time order; Total is the
	// whole range.
	Points []StatsPoint
	Total  StatsPoint
}

// StatsPoint is one bucket's totals.
type StatsPoint struct {
	Time           time.Time // start of the bucket
	Calls, Errors  int64
	DurationSumMic int64     // µs
	Quantiles      []float64 // µs, one per StatsQuery.Quantiles, within SketchAccuracy
	// Slowest is the slowest span of the bucket; Failed the slowest failed
	// one, if any failed.
	Slowest, Failed *StatsExemplar
}

// StatsExemplar is one span a point refers to.
type StatsExemplar struct {
	TraceID     zipkin.TraceID
	SpanID      zipkin.SpanID
	DurationMic int64
	Time        time.Time
}

// Stats reads the service metrics of a range, grouped and bucketed.
func (s *Store) Stats(ctx context.Context, q StatsQuery) ([]StatsSeries, error) {
	if q.Step <= 0 || !q.End.After(q.Start) {
		return nil, fmt.Errorf("stats: want a positive step and start before end, got %v, [%v, %v)", q.Step, q.Start, q.End)
	}
	tenant, ok, err := s.readTenant(ctx)
	if err != nil || !ok {
		return nil, err
	}
	kinds := make([]int16, len(q.Kinds))
	for i, k := range q.Kinds {
		kinds[i] = int16(k)
	}
	// A read by service alone takes the services' totals the job wrote
	// for the rows it folded, plus the cell rows not folded yet (no total
	// counts them); any other read takes the cells.
	totals := q.Name == "" && q.Remote == "" && len(q.Kinds) == 0 && q.By&^ByService == 0
	rows, err := s.pool.Query(ctx, `SELECT `+statsColumns+` FROM span_stats
		WHERE tenant = $1 AND ts >= $2 AND ts < $3 AND ($4 = '' OR service_h = $8 AND service = $4) AND ($5 = '' OR name = $5)
		AND ($6 = '' OR remote = $6) AND (cardinality($7::smallint[]) = 0 OR kind = ANY($7))
		AND CASE WHEN $9 THEN kind = -1 OR NOT merged ELSE kind >= 0 END`,
		tenant, q.Start, q.End, q.Service, q.Name, q.Remote, kinds, nameKey(q.Service, ""), totals)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	type group struct {
		cell    statCell
		buckets map[int64]*statAgg
		total   *statAgg
	}
	groups := map[statCell]*group{}
	step := q.Step.Microseconds()
	start := q.Start.UnixMicro()
	err = scanStats(rows, nil, func(k statKey, a *statAgg) error {
		c := k.cell
		c.total = false
		if q.By&ByService == 0 {
			c.service = ""
		}
		if q.By&ByName == 0 {
			c.name = ""
		}
		if q.By&ByKind == 0 {
			c.kind = 0
		}
		if q.By&ByRemote == 0 {
			c.remote = ""
		}
		g := groups[c]
		if g == nil {
			g = &group{cell: c, buckets: map[int64]*statAgg{}, total: &statAgg{sketch: newSketch()}}
			groups[c] = g
		}
		if err := g.total.merge(a); err != nil {
			return err
		}
		b := (k.ts - start) / step
		if have := g.buckets[b]; have != nil {
			return have.merge(a)
		}
		g.buckets[b] = a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	out := make([]StatsSeries, 0, len(groups))
	for _, g := range groups {
		sr := StatsSeries{Service: g.cell.service, Name: g.cell.name, Remote: g.cell.remote, Kind: g.cell.kind,
			Total: g.total.point(q.Start, q.Quantiles)}
		at := make([]int64, 0, len(g.buckets))
		for b := range g.buckets {
			at = append(at, b)
		}
		slices.Sort(at)
		sr.Points = make([]StatsPoint, len(at))
		for i, b := range at {
			sr.Points[i] = g.buckets[b].point(time.UnixMicro(start+b*step).UTC(), q.Quantiles)
		}
		out = append(out, sr)
	}
	slices.SortFunc(out, func(a, b StatsSeries) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Remote, b.Remote))
	})
	return out, nil
}

func (a *statAgg) point(t time.Time, quantiles []float64) StatsPoint {
	p := StatsPoint{Time: t, Calls: a.calls, Errors: a.errors, DurationSumMic: a.durSum,
		Slowest: a.slow.public(), Failed: a.failed.public()}
	if len(quantiles) > 0 && !a.sketch.IsEmpty() {
		p.Quantiles, _ = a.sketch.GetValuesAtQuantiles(quantiles) // errs only on a quantile outside [0, 1] or an empty sketch
	}
	return p
}

func (e *exemplar) public() *StatsExemplar {
	if e == nil {
		return nil
	}
	return &StatsExemplar{TraceID: e.trace, SpanID: e.span, DurationMic: e.us, Time: time.UnixMicro(e.at).UTC()}
}
