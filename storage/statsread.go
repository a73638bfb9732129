package storage

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

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
	// ExemplarSlices, when positive, lets a read leave out the exemplars
	// of points that are not the slowest, or the slowest failed, of their
	// slice when the range is cut into that many equal slices by bucket
	// (what /api/zipq/stats' exemplars=N keeps): a read may keep more, never
	// fewer. Zero or negative: every point's.
	ExemplarSlices int
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

// Stats reads the service metrics of a range, grouped and bucketed. The
// series are the caller's to keep; ReadStats lends them.
func (s *Store) Stats(ctx context.Context, q StatsQuery) ([]StatsSeries, error) {
	r, err := s.stats(ctx, q)
	return r.series, err // its slabs left to the garbage collector: the caller keeps the points
}

// ReadStats reads as Stats and calls fn with the series, which are valid
// only until fn returns: their points' arrays then go back to a pool for
// the next read (stripSlab). What an API answer needs, without leaving a
// Services page's 9 MB of points to the garbage collector each request.
func (s *Store) ReadStats(ctx context.Context, q StatsQuery, fn func([]StatsSeries) error) error {
	r, err := s.stats(ctx, q)
	if err != nil {
		return err
	}
	defer r.release()
	return fn(r.series)
}

// statsRead is a read's answer and the slabs its points are in.
type statsRead struct {
	series []StatsSeries
	slabs  []*stripSlab
}

func (r statsRead) release() {
	for _, s := range r.slabs {
		stripSlabs.Put(s)
	}
}

func (s *Store) stats(ctx context.Context, q StatsQuery) (statsRead, error) {
	if q.Step <= 0 || !q.End.After(q.Start) {
		return statsRead{}, fmt.Errorf("stats: want a positive step and start before end, got %v, [%v, %v)", q.Step, q.Start, q.End)
	}
	tenant, ok, err := s.readTenant(ctx)
	if err != nil || !ok {
		return statsRead{}, err
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
	// The rows and the batches not folded yet in one snapshot: a fold
	// committed between two reads would be read as neither or both.
	groups := map[statCell]*statGroup{}
	add := func(k statKey, a *statAgg) error { return groupOf(groups, k.cell, q.By).add(q, k.ts, a, true) }
	err = pgx.BeginTxFunc(ctx, s.pool, snapshotRead, func(tx pgx.Tx) error {
		clear(groups)
		b := &pgx.Batch{}
		b.Queue(`SELECT `+statsColumns+` FROM span_stats
			WHERE tenant = $1 AND ts >= $2 AND ts < $3 AND ($4 = '' OR service_h = $8 AND service = $4) AND ($5 = '' OR name = $5)
			AND ($6 = '' OR remote = $6) AND (cardinality($7::smallint[]) = 0 OR kind = ANY($7))
			AND CASE WHEN $9 THEN kind = -1 OR NOT merged ELSE kind >= 0 END`,
			tenant, q.Start, q.End, q.Service, q.Name, q.Remote, kinds, nameKey(q.Service, ""), totals).Query(func(rows pgx.Rows) error {
			return scanStats(rows, nil, add)
		})
		b.Queue(selectStatBatches, tenant, q.Start, q.End).Query(func(rows pgx.Rows) error {
			return scanStatBatches(rows, q.selects, add)
		})
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return statsRead{}, fmt.Errorf("stats: %w", err)
	}
	return seriesOf(groups, q), nil
}

// snapshotRead is a read of several statements that must agree.
var snapshotRead = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}

// selects reports whether q reads cell, as its SQL selects span_stats'
// cells (batches hold no service totals).
func (q StatsQuery) selects(c statCell) bool {
	return (q.Service == "" || c.service == q.Service) && (q.Name == "" || c.name == q.Name) &&
		(q.Remote == "" || c.remote == q.Remote) && (len(q.Kinds) == 0 || slices.Contains(q.Kinds, c.kind))
}

// statGroup is one series being read: its buckets from rows, a strip's
// minutes (at one-minute steps), and the range's total.
type statGroup struct {
	cell       statCell
	buckets    map[int64]*statAgg
	*stripSlab // nil but at one-minute steps from strips
	total      *statAgg
}

// stripSlab is a group's buckets from strips at one-minute steps:
// stripped is a strip's minute per bucket as the answer's point, where
// has says so; dense, a day's 1,440 buckets per service, their quantiles
// in a slab of their own (an allocation per service, not per point).
// A Services page's slabs are 9 MB, the most a request allocated, so
// they are pooled (stripSlabs) for reads whose caller lends them back
// (ReadStats).
type stripSlab struct {
	stripped []StatsPoint
	has      []bool
	qs       []float64
	// slow and failed are each stripped bucket's exemplars, made the
	// points' when the answer is put together (points), only those
	// q.ExemplarSlices keeps.
	slow, failed []*exemplar
}

var stripSlabs sync.Pool

// newStripSlab is a slab for n buckets of k quantiles, from the pool
// when it holds one. Only has must start cleared: every other array is
// read only where has is set, which writes it first; slow and failed are
// cleared too, so that a pooled slab does not keep strips the cache let go.
func newStripSlab(n, k int) *stripSlab {
	s, _ := stripSlabs.Get().(*stripSlab)
	if s == nil {
		s = &stripSlab{}
	}
	s.stripped = slices.Grow(s.stripped[:0], n)[:n]
	s.has, s.qs = slices.Grow(s.has[:0], n)[:n], slices.Grow(s.qs[:0], n*k)[:n*k]
	s.slow, s.failed = slices.Grow(s.slow[:0], n)[:n], slices.Grow(s.failed[:0], n)[:n]
	clear(s.has)
	clear(s.slow)
	clear(s.failed)
	return s
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
func seriesOf(groups map[statCell]*statGroup, q StatsQuery) statsRead {
	step := q.Step.Microseconds()
	start := q.Start.UnixMicro()
	out := make([]StatsSeries, 0, len(groups))
	var slabs []*stripSlab
	for _, g := range groups {
		sr := StatsSeries{Service: g.cell.service, Name: g.cell.name, Remote: g.cell.remote, Kind: g.cell.kind,
			Total: g.total.point(q.Start, q.Quantiles)}
		if g.stripSlab != nil {
			sr.Points = g.points(q)
			slabs = append(slabs, g.stripSlab)
			out = append(out, sr)
			continue
		}
		at := slices.Sorted(maps.Keys(g.buckets))
		sr.Points = make([]StatsPoint, len(at))
		for i, b := range at {
			sr.Points[i] = g.buckets[b].point(time.UnixMicro(start+b*step).UTC(), q.Quantiles)
		}
		out = append(out, sr)
	}
	slices.SortFunc(out, func(a, b StatsSeries) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Remote, b.Remote))
	})
	return statsRead{out, slabs}
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
	x := e.value()
	return &x
}

// value is e as a read's exemplar, written in place by strips' points.
func (e *exemplar) value() StatsExemplar {
	return StatsExemplar{TraceID: e.trace, SpanID: e.span, DurationMic: e.us, Time: time.UnixMicro(e.at).UTC()}
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

// points is a group read with strips as its answer's points in time
// order: the strips' minutes, where no row's bucket replaces them,
// compacted in place (a point's index is never after its bucket's).
func (g *statGroup) points(q StatsQuery) []StatsPoint {
	g.stripExemplars(q)
	rows := slices.Sorted(maps.Keys(g.buckets))
	start, step := q.Start.UnixMicro(), q.Step.Microseconds()
	n := 0
	for b := range g.has {
		if len(rows) > 0 && rows[0] == int64(b) {
			g.stripped[n] = g.buckets[rows[0]].point(time.UnixMicro(start+int64(b)*step).UTC(), q.Quantiles)
			rows = rows[1:]
			n++
		} else if g.has[b] {
			if n != b {
				g.stripped[n] = g.stripped[b]
			}
			n++
		}
	}
	for _, b := range rows { // beyond the strips' buckets: none in a read's range, kept for safety
		g.stripped = append(g.stripped[:n], g.buckets[b].point(time.UnixMicro(start+b*step).UTC(), q.Quantiles))
		n++
	}
	return g.stripped[:n:n]
}

// stripExemplars gives the stripped points their exemplars: every one,
// or with q.ExemplarSlices each slice's slowest and slowest failed among
// the strips' (points from rows keep theirs: the caller's own choice over
// all points then finds the same), in one slab.
func (g *statGroup) stripExemplars(q StatsQuery) {
	n := len(g.has)
	keepSlow, keepFailed := g.has, g.has
	if cut := min(q.ExemplarSlices, n); cut > 0 {
		keepSlow, keepFailed = make([]bool, n), make([]bool, n)
		s, f := -1, -1 // the slice's slowest so far
		for b := range n {
			if b > 0 && b*cut/n != (b-1)*cut/n { // a new slice
				s, f = -1, -1
			}
			if !g.has[b] {
				continue
			}
			if e := g.slow[b]; e != nil && (s < 0 || e.us > g.slow[s].us) {
				if s >= 0 {
					keepSlow[s] = false
				}
				s, keepSlow[b] = b, true
			}
			if e := g.failed[b]; e != nil && (f < 0 || e.us > g.failed[f].us) {
				if f >= 0 {
					keepFailed[f] = false
				}
				f, keepFailed[b] = b, true
			}
		}
	}
	count := 0
	for b := range n {
		count += btoi(keepSlow[b] && g.slow[b] != nil) + btoi(keepFailed[b] && g.failed[b] != nil)
	}
	ex := make([]StatsExemplar, 0, count) // every point below keeps a pointer into it
	for b := range n {
		if e := g.slow[b]; e != nil && keepSlow[b] {
			ex = append(ex, e.value())
			g.stripped[b].Slowest = &ex[len(ex)-1]
		}
		if e := g.failed[b]; e != nil && keepFailed[b] {
			ex = append(ex, e.value())
			g.stripped[b].Failed = &ex[len(ex)-1]
		}
	}
}

// point is a strip's minute as a read's point without its exemplars,
// its quantiles written to qs (one per quantile).
func (p *stripPoint) point(t time.Time, quantiles, qs []float64) StatsPoint {
	out := StatsPoint{Time: t, Calls: p.calls, Errors: p.errors, DurationSumMic: p.durSum, Bytes: p.bytes}
	if len(quantiles) > 0 && !math.IsNaN(float64(p.quantiles[0])) {
		for i, q := range quantiles {
			qs[i] = float64(p.quantiles[slices.Index(stripQuantiles[:], q)])
		}
		out.Quantiles = qs
	}
	return out
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
func (s *Store) statsFromStrips(ctx context.Context, tenant int16, q StatsQuery) (statsRead, error) {
	var out statsRead
	err := pgx.BeginTxFunc(ctx, s.pool, snapshotRead, func(tx pgx.Tx) error {
		var err error
		out, err = statsFromStrips(ctx, tx, s.strips, tenant, q)
		return err
	})
	if err != nil {
		return statsRead{}, fmt.Errorf("stats: %w", err)
	}
	return out, nil
}

func statsFromStrips(ctx context.Context, tx pgx.Tx, cache *stripCache, tenant int16, q StatsQuery) (statsRead, error) {
	hour := time.Hour.Microseconds()
	start := q.Start.UnixMicro()
	from := (start + hour - 1) / hour * hour // the first whole hour
	whole := from
	end := q.End.UnixMicro()
	to := end / hour * hour
	var before *time.Time
	var after bool // the range's last hour has minutes folded after its end
	if err := tx.QueryRow(ctx, `SELECT (SELECT before FROM span_strips_backfill), EXISTS (SELECT FROM span_stats
		WHERE tenant = $1 AND kind = $2 AND res = 60 AND ts >= $3 AND ts < $4 AND ($5 = '' OR service_h = $6 AND service = $5))`,
		tenant, totalKind, q.End, time.UnixMicro(to+hour).UTC(), q.Service, nameKey(q.Service, "")).Scan(&before, &after); err != nil {
		return statsRead{}, err
	}
	if before != nil {
		from = max(from, before.UnixMicro())
	}
	// The range's last, partial hour comes from its strip too when the
	// strip holds no minute after the range's end (a page up to now, its
	// last hour still going): the strip's minutes are then the range's,
	// and its hour's sketch their total. Otherwise its minutes' rows, as
	// the first partial hour's always.
	if end > to && !after {
		to += hour
	}
	if from >= to {
		from, to = end, end // no strip read: every row from span_stats
	}
	perMinute := q.Step == time.Minute
	// At one-minute steps the range's first, partial hour comes from its
	// strip as well (first), but for the minutes before the range, which
	// it leaves out, and its hour's sketch, which counts them: the range's
	// total takes those minutes' sketches from their totals' rows instead
	// (firstSketches), merged once the workers are done with the totals.
	first := from
	if perMinute && from == whole && start < from && from < to && (before == nil || from-hour >= before.UnixMicro()) {
		first = from - hour
	}
	sa, sb := time.UnixMicro(from).UTC(), time.UnixMicro(to).UTC()
	stripsFrom := max(first, start) // the first minute strips give; totals' rows before it
	service := `($4 = '' OR service_h = $5 AND service = $4)`
	groups := map[statCell]*statGroup{}
	b := &pgx.Batch{}
	// The rows not folded yet, and the totals outside the strips' hours
	// or rolled up: each through its partial index, never the range's
	// cells.
	rest := b.Queue(`SELECT `+statsColumns+` FROM span_stats WHERE tenant = $1 AND ts >= $2 AND ts < $3 AND `+service+` AND NOT merged
		UNION ALL SELECT `+statsColumns+` FROM span_stats WHERE tenant = $1 AND kind = $8 AND `+service+`
			AND res IN (60, 3600) AND (ts >= $2 AND ts < $9 OR ts >= $7 AND ts < $3)
		UNION ALL SELECT `+statsColumns+` FROM span_stats WHERE tenant = $1 AND kind = $8 AND `+service+`
			AND ts >= $6 AND ts < $7 AND res = 3600`,
		tenant, q.Start, q.End, q.Service, nameKey(q.Service, ""), sa, sb, totalKind, time.UnixMicro(stripsFrom).UTC())
	firstSketches := map[string][][]byte{}
	if first < from {
		b.Queue(`SELECT service, sketch FROM span_stats WHERE tenant = $1 AND kind = $2 AND res = 60 AND ts >= $3 AND ts < $6 AND `+service,
			tenant, totalKind, q.Start, q.Service, nameKey(q.Service, ""), sa).Query(func(rows pgx.Rows) error {
			var svc string
			var sk []byte
			_, err := pgx.ForEachRow(rows, []any{&svc, &sk}, func() error {
				firstSketches[svc] = append(firstSketches[svc], sk)
				return nil
			})
			return err
		})
	}
	var unfolded []time.Time // minutes of the strips' hours with rows not folded yet
	addRest := func(k statKey, a *statAgg) error {
		if perMinute && k.ts >= stripsFrom && k.ts < to && !k.cell.total {
			unfolded = append(unfolded, time.UnixMicro(k.ts).UTC())
		}
		return groupOf(groups, k.cell, q.By).add(q, k.ts, a, true)
	}
	rest.Query(func(rows pgx.Rows) error { return scanStats(rows, nil, addRest) })
	b.Queue(selectStatBatches, tenant, q.Start, q.End).Query(func(rows pgx.Rows) error {
		return scanStatBatches(rows, q.selects, addRest)
	})
	// Each strip is counted as it arrives, while PostgreSQL sends the
	// next. With strips of the range in the cache, the batch asks only
	// every strip's revision, and the strips written since are then read
	// by key: PostgreSQL sends (and reads from TOAST) no strip the cache
	// holds as stored. A join against the held revisions in one query
	// was measured slower than reading every strip (a nested loop).
	held := cache.held(tenant, q.Service, first, to)
	w := newStripWorkers(ctx, q, cache)
	var missing []stripKey
	recv := func(rows pgx.Rows) error {
		var r stripRow
		var hour time.Time
		_, err := pgx.ForEachRow(rows, []any{&r.key.service, &hour, &r.rev, &r.points, &r.sketch}, func() error {
			r.key.tenant, r.key.hour = tenant, hour.UnixMicro()
			r.held = nil
			if r.points == nil {
				if r.held = held[r.key]; r.held == nil || r.held.rev != r.rev {
					missing = append(missing, r.key)
					return nil
				}
			}
			r.group = groupOf(groups, statCell{service: r.key.service}, q.By)
			return w.send(r)
		})
		return err
	}
	b.Queue(`SELECT service, hour, rev, CASE WHEN $6 THEN points END, CASE WHEN $6 THEN sketch END
		FROM span_strips WHERE tenant = $1 AND hour >= $2 AND hour < $3 AND `+service,
		tenant, time.UnixMicro(first).UTC(), sb, q.Service, nameKey(q.Service, ""), len(held) == 0).Query(recv)
	err := tx.SendBatch(ctx, b).Close()
	if err == nil && len(missing) > 0 {
		hs, names, hours := make([]int64, len(missing)), make([]string, len(missing)), make([]time.Time, len(missing))
		for i, k := range missing {
			hs[i], names[i], hours[i] = nameKey(k.service, ""), k.service, time.UnixMicro(k.hour).UTC()
		}
		var rows pgx.Rows
		rows, err = tx.Query(ctx, `SELECT service, hour, rev, points, sketch FROM span_strips
			WHERE tenant = $1 AND (service_h, service, hour) IN (SELECT * FROM unnest($2::bigint[], $3::text[], $4::timestamptz[]))`,
			tenant, hs, names, hours)
		if err == nil {
			err = recv(rows)
		}
	}
	// A worker's error first: the batch's is then only its consequence.
	if werr := w.close(); werr != nil {
		return statsRead{}, werr
	}
	if err != nil {
		return statsRead{}, err
	}
	for svc, sketches := range firstSketches {
		g := groupOf(groups, statCell{service: svc}, q.By)
		for _, sk := range sketches {
			if err := mergeSketch(g.total.sketch, sk); err != nil {
				return statsRead{}, fmt.Errorf("total of %s at the range's start: %w", svc, err)
			}
		}
	}
	// Those minutes' folded totals, counted in their buckets but not in
	// the total, which their strip's hour sketch holds.
	if len(unfolded) > 0 {
		rows, err := tx.Query(ctx, `SELECT `+statsColumns+` FROM span_stats WHERE tenant = $1 AND ts = ANY($2)
			AND kind = $3 AND `+service+` AND merged AND res = 60`,
			tenant, unfolded, totalKind, q.Service, nameKey(q.Service, ""))
		if err != nil {
			return statsRead{}, err
		}
		err = scanStats(rows, nil, func(k statKey, a *statAgg) error {
			return groupOf(groups, k.cell, q.By).add(q, k.ts, a, false)
		})
		if err != nil {
			return statsRead{}, err
		}
	}
	return seriesOf(groups, q), nil
}

// stripRow is a strip as read: its bytes, or the cache's copy when
// PostgreSQL sent none; and the group it counts in.
type stripRow struct {
	key            stripKey
	rev            int64
	points, sketch []byte
	held           *cachedStrip
	group          *statGroup
}

// stripWorkers decode a read's strips on every core: decoding them and
// merging their sketches is most of a Services page read's CPU, and the
// page waits for it. Each group is counted by one worker only (the one
// it was first given to), so groups need no lock.
type stripWorkers struct {
	ctx   context.Context
	eg    *errgroup.Group
	in    []chan stripRow
	owner map[*statGroup]int
}

func newStripWorkers(ctx context.Context, q StatsQuery, cache *stripCache) *stripWorkers {
	w := &stripWorkers{in: make([]chan stripRow, runtime.GOMAXPROCS(0)), owner: map[*statGroup]int{}}
	w.eg, w.ctx = errgroup.WithContext(ctx)
	for i := range w.in {
		in := make(chan stripRow, 16)
		w.in[i] = in
		w.eg.Go(func() error {
			for r := range in {
				st := r.held
				if st == nil {
					var err error
					if st, err = decodeCachedStrip(r.key, r.rev, r.points, r.sketch); err != nil {
						return fmt.Errorf("strip of %s at %v: %w", r.key.service, time.UnixMicro(r.key.hour).UTC(), err)
					}
					cache.put(st)
				}
				if err := addStrip(r.group, q, st); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return w
}

// send hands r to its group's worker; it fails once a worker has.
func (w *stripWorkers) send(r stripRow) error {
	i, ok := w.owner[r.group]
	if !ok {
		i = len(w.owner) % len(w.in)
		w.owner[r.group] = i
	}
	select {
	case w.in[i] <- r:
		return nil
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
}

// close waits for the workers to count what they were sent and returns
// the first one's error.
func (w *stripWorkers) close() error {
	for _, in := range w.in {
		close(in)
	}
	return w.eg.Wait()
}

// addStrip counts a strip in g: at one-minute steps its minutes as
// points, at hours as its hour's row; in the total either way. The strip
// may be shared with other reads (the cache's): it is only read.
func addStrip(g *statGroup, q StatsQuery, st *cachedStrip) error {
	if q.Step != time.Minute {
		hour := &statAgg{sketch: newSketch()} // the bucket's own: later rows merge into it
		if err := hour.merge(&st.hour); err != nil {
			return err
		}
		return g.add(q, st.key.hour, hour, true)
	}
	start, step := q.Start.UnixMicro(), q.Step.Microseconds()
	k := int64(len(q.Quantiles))
	if g.stripSlab == nil {
		g.stripSlab = newStripSlab(int((q.End.UnixMicro()-start+step-1)/step), int(k))
	}
	partial := st.key.hour < start // the range's first hour: from its start
	for i := range st.points {
		p := &st.points[i]
		ts := st.key.hour + int64(p.minute)*time.Minute.Microseconds()
		if partial {
			if ts < start {
				continue
			}
			g.total.addCounts(p.calls, p.errors, p.durSum, p.bytes, p.slow, p.failed)
		}
		b := (ts - start) / step
		if b < 0 || b >= int64(len(g.has)) { // never, as the read chose its strips
			return fmt.Errorf("strip of %s at %v: minute %d outside the read", st.key.service, time.UnixMicro(st.key.hour).UTC(), p.minute)
		}
		g.stripped[b] = p.point(time.UnixMicro(start+b*step).UTC(), q.Quantiles, g.qs[b*k:(b+1)*k:(b+1)*k])
		g.slow[b], g.failed[b] = p.slow, p.failed // the cached strip's, never changed
		g.has[b] = true
	}
	if partial {
		return nil // the sketch of its minutes in the range: statsFromStrips
	}
	return g.total.merge(&st.hour) // its minutes are points already
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
