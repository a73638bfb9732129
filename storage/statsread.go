package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

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
	DurationSumMic int64 // µs
	// Bytes is the stored segments' bytes the spans cost, each span's
	// share of its segment by uncompressed size.
	Bytes     int64
	Quantiles []float64 // µs, one per StatsQuery.Quantiles, within SketchAccuracy
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
	hourly := q.Step%time.Hour == 0 && q.Start.Equal(q.Start.Truncate(time.Hour))
	if totals && !s.noStrips && (q.Step == time.Minute && stripped(q.Quantiles) || hourly) && (q.By == ByService || q.Service != "") {
		return s.statsFromStrips(ctx, tenant, q)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+statsColumns+` FROM span_stats
		WHERE tenant = $1 AND ts >= $2 AND ts < $3 AND ($4 = '' OR service_h = $8 AND service = $4) AND ($5 = '' OR name = $5)
		AND ($6 = '' OR remote = $6) AND (cardinality($7::smallint[]) = 0 OR kind = ANY($7))
		AND CASE WHEN $9 THEN kind = -1 OR NOT merged ELSE kind >= 0 END`,
		tenant, q.Start, q.End, q.Service, q.Name, q.Remote, kinds, nameKey(q.Service, ""), totals)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	groups := map[statCell]*statGroup{}
	err = scanStats(rows, nil, func(k statKey, a *statAgg) error {
		return groupOf(groups, k.cell, q.By).add(q, k.ts, a, true)
	})
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	return seriesOf(groups, q), nil
}

// statGroup is one series being read: its buckets from rows, a strip's
// minutes (at one-minute steps), and the range's total.
type statGroup struct {
	cell    statCell
	buckets map[int64]*statAgg
	// stripped is a strip's minute per bucket (one-minute steps), where
	// has says so: dense, a day's 1,440 buckets per service.
	stripped []stripPoint
	has      []bool
	total    *statAgg
}

// groupOf is the group cell counts in, reading by by.
func groupOf(groups map[statCell]*statGroup, c statCell, by StatsBy) *statGroup {
	c.total = false
	if by&ByService == 0 {
		c.service = ""
	}
	if by&ByName == 0 {
		c.name = ""
	}
	if by&ByKind == 0 {
		c.kind = 0
	}
	if by&ByRemote == 0 {
		c.remote = ""
	}
	g := groups[c]
	if g == nil {
		g = &statGroup{cell: c, buckets: map[int64]*statAgg{}, total: &statAgg{sketch: newSketch()}}
		groups[c] = g
	}
	return g
}

// add counts a row of the minute or hour starting at ts (µs) in its
// bucket, and in the total unless a strip's hour counts it there already.
func (g *statGroup) add(q StatsQuery, ts int64, a *statAgg, inTotal bool) error {
	if inTotal {
		if err := g.total.merge(a); err != nil {
			return err
		}
	}
	b := (ts - q.Start.UnixMicro()) / q.Step.Microseconds()
	if have := g.buckets[b]; have != nil {
		return have.merge(a)
	}
	g.buckets[b] = a
	return nil
}

// seriesOf is the groups as a read's answer, in cell order.
func seriesOf(groups map[statCell]*statGroup, q StatsQuery) []StatsSeries {
	step := q.Step.Microseconds()
	start := q.Start.UnixMicro()
	out := make([]StatsSeries, 0, len(groups))
	for _, g := range groups {
		sr := StatsSeries{Service: g.cell.service, Name: g.cell.name, Remote: g.cell.remote, Kind: g.cell.kind,
			Total: g.total.point(q.Start, q.Quantiles)}
		at := make([]int64, 0, len(g.buckets)+len(g.stripped))
		for b := range g.buckets {
			at = append(at, b)
		}
		for b, ok := range g.has {
			if ok && g.buckets[int64(b)] == nil {
				at = append(at, int64(b))
			}
		}
		slices.Sort(at)
		sr.Points = make([]StatsPoint, len(at))
		var qs []float64 // the strip points' quantiles and exemplars, an allocation each
		var ex []StatsExemplar
		if g.has != nil {
			qs, ex = make([]float64, 0, len(at)*len(q.Quantiles)), make([]StatsExemplar, 0, 2*len(at))
		}
		for i, b := range at {
			t := time.UnixMicro(start + b*step).UTC()
			if a := g.buckets[b]; a != nil {
				sr.Points[i] = a.point(t, q.Quantiles)
			} else {
				sr.Points[i], qs, ex = g.stripped[b].point(t, q.Quantiles, qs, ex)
			}
		}
		out = append(out, sr)
	}
	slices.SortFunc(out, func(a, b StatsSeries) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Remote, b.Remote))
	})
	return out
}

func (a *statAgg) point(t time.Time, quantiles []float64) StatsPoint {
	p := StatsPoint{Time: t, Calls: a.calls, Errors: a.errors, DurationSumMic: a.durSum, Bytes: a.bytes,
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

// stripped reports whether strips keep every quantile of qs.
func stripped(qs []float64) bool {
	for _, q := range qs {
		if !slices.Contains(stripQuantiles[:], q) {
			return false
		}
	}
	return true
}

// point is a strip's minute as a read's point, its quantiles and
// exemplars appended to qs and ex (returned grown, never beyond their
// capacity: the points keep pointers into them).
func (p stripPoint) point(t time.Time, quantiles, qs []float64, ex []StatsExemplar) (StatsPoint, []float64, []StatsExemplar) {
	out := StatsPoint{Time: t, Calls: p.calls, Errors: p.errors, DurationSumMic: p.durSum, Bytes: p.bytes}
	for _, e := range []struct {
		from *exemplar
		to   **StatsExemplar
	}{{p.slow, &out.Slowest}, {p.failed, &out.Failed}} {
		if e.from != nil {
			ex = append(ex, *e.from.public())
			*e.to = &ex[len(ex)-1]
		}
	}
	if len(quantiles) > 0 && !math.IsNaN(float64(p.quantiles[0])) {
		n := len(qs)
		for _, q := range quantiles {
			qs = append(qs, float64(p.quantiles[slices.Index(stripQuantiles[:], q)]))
		}
		out.Quantiles = qs[n:len(qs):len(qs)]
	}
	return out, qs, ex
}

// statsFromStrips answers a read of services' totals at one-minute steps,
// or at steps of whole hours from the start of an hour: the whole hours
// of the range from strips, one row per service and hour; the rest (the
// range's partial hours, hours rolled up or not yet given strips, rows
// not folded yet) from span_stats as any read. At one-minute steps, a
// minute a strip holds that also has rows not folded yet (late spans) is
// read from span_stats whole, since a strip's quantiles cannot be merged;
// at hours, a strip is its hour's row (the hour's sketch) like any other.
//
// Its queries share one snapshot: a fold committed between them would
// otherwise be read both as the rows it took and as the strip it wrote.
func (s *Store) statsFromStrips(ctx context.Context, tenant int16, q StatsQuery) ([]StatsSeries, error) {
	var out []StatsSeries
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		out, err = statsFromStrips(ctx, tx, tenant, q)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	return out, nil
}

func statsFromStrips(ctx context.Context, tx pgx.Tx, tenant int16, q StatsQuery) ([]StatsSeries, error) {
	hour := time.Hour.Microseconds()
	from := (q.Start.UnixMicro() + hour - 1) / hour * hour // the first whole hour
	to := q.End.UnixMicro() / hour * hour
	var before *time.Time
	if err := tx.QueryRow(ctx, `SELECT before FROM span_strips_backfill`).Scan(&before); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	if before != nil {
		from = max(from, before.UnixMicro())
	}
	if from >= to {
		from, to = q.End.UnixMicro(), q.End.UnixMicro() // no strip read: every row from span_stats
	}
	sa, sb := time.UnixMicro(from).UTC(), time.UnixMicro(to).UTC()
	perMinute := q.Step == time.Minute
	service := `($4 = '' OR service_h = $5 AND service = $4)`
	groups := map[statCell]*statGroup{}
	b := &pgx.Batch{}
	// The rows not folded yet, and the totals outside the strips' hours
	// or rolled up: each through its partial index, never the range's
	// cells.
	rest := b.Queue(`SELECT `+statsColumns+` FROM span_stats WHERE tenant = $1 AND ts >= $2 AND ts < $3 AND `+service+` AND NOT merged
		UNION ALL SELECT `+statsColumns+` FROM span_stats WHERE tenant = $1 AND kind = $8 AND `+service+`
			AND res IN (60, 3600) AND (ts >= $2 AND ts < $6 OR ts >= $7 AND ts < $3)
		UNION ALL SELECT `+statsColumns+` FROM span_stats WHERE tenant = $1 AND kind = $8 AND `+service+`
			AND ts >= $6 AND ts < $7 AND res = 3600`,
		tenant, q.Start, q.End, q.Service, nameKey(q.Service, ""), sa, sb, totalKind)
	var unfolded []time.Time // minutes of the strips' hours with rows not folded yet
	rest.Query(func(rows pgx.Rows) error {
		return scanStats(rows, nil, func(k statKey, a *statAgg) error {
			if perMinute && k.ts >= from && k.ts < to && !k.cell.total {
				unfolded = append(unfolded, time.UnixMicro(k.ts).UTC())
			}
			return groupOf(groups, k.cell, q.By).add(q, k.ts, a, true)
		})
	})
	// Each strip is counted as it arrives, while PostgreSQL sends the next.
	b.Queue(`SELECT service, hour, points, sketch FROM span_strips WHERE tenant = $1 AND hour >= $2 AND hour < $3 AND `+service,
		tenant, sa, sb, q.Service, nameKey(q.Service, "")).Query(func(rows pgx.Rows) error {
		var service string
		var hour time.Time
		var points, sketch []byte
		_, err := pgx.ForEachRow(rows, []any{&service, &hour, &points, &sketch}, func() error {
			if err := addStrip(groups, q, service, hour.UnixMicro(), points, sketch); err != nil {
				return fmt.Errorf("strip of %s at %v: %w", service, hour, err)
			}
			return nil
		})
		return err
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	// Those minutes' folded totals, counted in their buckets but not in
	// the total, which their strip's hour sketch holds.
	if len(unfolded) > 0 {
		rows, err := tx.Query(ctx, `SELECT `+statsColumns+` FROM span_stats WHERE tenant = $1 AND ts = ANY($2)
			AND ($3 = '' OR service_h = $4 AND service = $3) AND kind = $5 AND merged AND res = 60`,
			tenant, unfolded, q.Service, nameKey(q.Service, ""), totalKind)
		if err != nil {
			return nil, err
		}
		err = scanStats(rows, nil, func(k statKey, a *statAgg) error {
			return groupOf(groups, k.cell, q.By).add(q, k.ts, a, false)
		})
		if err != nil {
			return nil, err
		}
	}
	return seriesOf(groups, q), nil
}

// addStrip counts a strip of the hour starting at h (µs): at one-minute
// steps its minutes as points, at hours as its hour's row; in the total
// either way.
func addStrip(groups map[statCell]*statGroup, q StatsQuery, service string, h int64, stored, sketch []byte) error {
	points, err := decodeStrip(stored, h)
	if err != nil {
		return err
	}
	g := groupOf(groups, statCell{service: service}, q.By)
	agg := &statAgg{sketch: newSketch()} // the hour
	if err := mergeSketch(agg.sketch, sketch); err != nil {
		return err
	}
	start, step := q.Start.UnixMicro(), q.Step.Microseconds()
	perMinute := q.Step == time.Minute
	if perMinute && g.stripped == nil {
		n := (q.End.UnixMicro() - start + step - 1) / step
		g.stripped, g.has = make([]stripPoint, n), make([]bool, n)
	}
	for _, p := range points {
		if perMinute {
			b := (h + int64(p.minute)*time.Minute.Microseconds() - start) / step
			g.stripped[b], g.has[b] = p, true
		}
		agg.addCounts(p.calls, p.errors, p.durSum, p.bytes, p.slow, p.failed)
	}
	if perMinute {
		return g.total.merge(agg) // its minutes are points already
	}
	return g.add(q, h, agg, true)
}

// UsageRow is what one series' spans cost on disk over a read's range.
type UsageRow struct {
	Service, Name string
	Spans, Bytes  int64
	BytesPerSpan  float64
	Share         float64 // of the rows' bytes, in [0, 1]
}

// UsageRows is a one-bucket read's series as "whose spans take the disk",
// most bytes first, with the rows' total spans and bytes: what
// /api/zipq/usage and zipq usage both show.
func UsageRows(series []StatsSeries) (rows []UsageRow, spans, bytes int64) {
	rows = make([]UsageRow, len(series))
	for i, s := range series {
		rows[i] = UsageRow{Service: s.Service, Name: s.Name, Spans: s.Total.Calls, Bytes: s.Total.Bytes}
		spans, bytes = spans+s.Total.Calls, bytes+s.Total.Bytes
	}
	for i := range rows {
		if rows[i].Spans > 0 {
			rows[i].BytesPerSpan = float64(rows[i].Bytes) / float64(rows[i].Spans)
		}
		if bytes > 0 {
			rows[i].Share = float64(rows[i].Bytes) / float64(bytes)
		}
	}
	slices.SortStableFunc(rows, func(a, b UsageRow) int { return cmp.Compare(b.Bytes, a.Bytes) })
	return rows, spans, bytes
}
