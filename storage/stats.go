package storage

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/cespare/xxhash/v2"
	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/zipkin"
)

// Service health (RED metrics) is computed as spans are written: every
// batch adds, per minute of its spans' start times and per cell (local
// service, span name, kind, remote service), the calls, the failed calls
// (zipkin.Span.Failed), the durations as a sketch (sketch.go) and two
// exemplars, to span_stats in the batch's own transaction. So a batch
// that does not commit counts nothing, and only the spans a batch newly
// stores are counted: a redelivered identical segment inserts nothing and
// counts nothing, and spans of a redelivered message that are found
// stored already (Store.WriteRedelivered) are left out. A span is counted
// in the minute it started (storedAt's date), however late it arrives.

// statCell is what span_stats counts by. A total is a service's cells
// summed (name, remote and kind empty), written by the stats job beside
// the folded cells so that a read by service decodes one row per minute
// instead of one per operation; stored with kind = -1 (totalKind).
type statCell struct {
	service, name, remote string
	kind                  zipkin.Kind
	total                 bool
}

// totalKind is span_stats.kind of a service's total row.
const totalKind = -1

func (c statCell) hash() int64 {
	h := xxhash.New()
	for _, s := range []string{c.service, c.name, c.remote} {
		_, _ = h.WriteString(s)
		_, _ = h.Write([]byte{0})
	}
	_, _ = h.Write([]byte{byte(c.kind)})
	if c.total {
		_, _ = h.Write([]byte{1})
	}
	return int64(h.Sum64())
}

// storedKind is the cell's span_stats.kind.
func (c statCell) storedKind() int16 {
	if c.total {
		return totalKind
	}
	return int16(c.kind)
}

// compareCells orders cells as span_stats lists them.
func compareCells(a, b statCell) int {
	return cmp.Or(cmp.Compare(a.service, b.service), cmp.Compare(a.name, b.name),
		cmp.Compare(a.storedKind(), b.storedKind()), cmp.Compare(a.remote, b.remote))
}

type statKey struct {
	cell statCell
	ts   int64 // start of the minute (or hour), µs
}

// exemplar is one span a cell's row points to.
type exemplar struct {
	trace zipkin.TraceID
	span  zipkin.SpanID
	us    int64 // duration
	at    int64 // start, µs
}

// statAgg is one cell's totals over a minute or an hour.
type statAgg struct {
	calls, errors, durSum int64
	// bytes is the stored segments' bytes attributed to these spans
	// (statTally.add): what they cost on disk.
	bytes        int64
	sketch       *ddsketch.DDSketch
	slow, failed *exemplar
}

func (a *statAgg) addSpan(sp *zipkin.Span, start int64) {
	a.calls++
	a.durSum += sp.Duration
	_ = a.sketch.Add(float64(sp.Duration)) // only a negative value errs
	e := &exemplar{trace: sp.TraceID, span: sp.ID, us: sp.Duration, at: start}
	a.slow = slowest(a.slow, e)
	if sp.Failed() {
		a.errors++
		a.failed = slowest(a.failed, e)
	}
}

// merge adds b into a (b's sketch is left as it was).
func (a *statAgg) merge(b *statAgg) error {
	a.addCounts(b.calls, b.errors, b.durSum, b.bytes, b.slow, b.failed)
	return a.sketch.MergeWith(b.sketch)
}

// addCounts adds everything of other totals but their sketch: merge's
// rule, for a strip's minutes too (they keep no sketch).
func (a *statAgg) addCounts(calls, errors, durSum, bytes int64, slow, failed *exemplar) {
	a.calls += calls
	a.errors += errors
	a.durSum += durSum
	a.bytes += bytes
	a.slow, a.failed = slowest(a.slow, slow), slowest(a.failed, failed)
}

// slowest is the longer of two exemplars, a when as long; nil is none.
func slowest(a, b *exemplar) *exemplar {
	if b != nil && (a == nil || b.us > a.us) {
		return b
	}
	return a
}

// statTally is the span_stats rows of some spans, keyed by cell and minute.
type statTally map[statKey]*statAgg

// add counts spans (a segment's, with the pieces of one span reported
// apart already merged: indexSpans), dated as stored for arrival (µs),
// and gives each a share of segBytes, the segment's stored size, by its
// share of the segment's uncompressed bytes (equal shares for merged
// pieces, which have none). Spans without a local service have no cell
// and are not counted.
func (t statTally) add(spans []canonicalSpan, arrival, segBytes int64) {
	minute := time.Minute.Microseconds()
	weight := func(cs canonicalSpan) int64 { return max(int64(len(cs.bytes)), 1) }
	var total int64
	for _, cs := range spans {
		total += weight(cs)
	}
	for _, cs := range spans {
		sp := cs.span
		service := pgText(sp.LocalServiceName())
		if service == "" {
			continue
		}
		k := statKey{
			cell: statCell{service: service, name: pgText(sp.Name), remote: pgText(sp.RemoteServiceName()), kind: sp.Kind},
			ts:   storedAt(cs.start, arrival) / minute * minute,
		}
		a := t[k]
		if a == nil {
			a = &statAgg{sketch: newSketch()}
			t[k] = a
		}
		a.addSpan(sp, cs.start)
		a.bytes += segBytes * weight(cs) / total
	}
}

// rows is a folded tally as insertStats' arguments, in cell order.
func (t statTally) rows(res time.Duration) []any {
	keys := make([]statKey, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b statKey) int {
		return cmp.Or(compareCells(a.cell, b.cell), cmp.Compare(a.ts, b.ts))
	})
	n := len(keys)
	var (
		ts                                = make([]time.Time, n)
		ress                              = make([]int32, n)
		mergeds                           = make([]bool, n)
		cells, calls, errs, sums, bytes   = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		serviceH                          = make([]int64, n)
		services, names, remotes          = make([]string, n), make([]string, n), make([]string, n)
		kinds                             = make([]int16, n)
		sketches                          = make([][]byte, n)
		slowHigh, slowLow, slowSpan, slow = make([]*int64, n), make([]*int64, n), make([]*int64, n), make([]*int64, n)
		errHigh, errLow, errSpan, errUs   = make([]*int64, n), make([]*int64, n), make([]*int64, n), make([]*int64, n)
		slowAt, errAt                     = make([]*time.Time, n), make([]*time.Time, n)
	)
	exemplarCols := func(e *exemplar, high, low, span, us []*int64, at []*time.Time, i int) {
		if e == nil {
			return
		}
		h, l, s, u, t := int64(e.trace.High), int64(e.trace.Low), int64(e.span), e.us, time.UnixMicro(e.at).UTC()
		high[i], low[i], span[i], us[i], at[i] = &h, &l, &s, &u, &t
	}
	for i, k := range keys {
		a := t[k]
		ts[i], ress[i], mergeds[i] = time.UnixMicro(k.ts).UTC(), int32(res/time.Second), true
		cells[i], services[i], names[i], kinds[i], remotes[i] = k.cell.hash(), k.cell.service, k.cell.name, k.cell.storedKind(), k.cell.remote
		serviceH[i] = nameKey(k.cell.service, "")
		calls[i], errs[i], sums[i], bytes[i], sketches[i] = a.calls, a.errors, a.durSum, a.bytes, encodeSketch(nil, a.sketch)
		exemplarCols(a.slow, slowHigh, slowLow, slowSpan, slow, slowAt, i)
		exemplarCols(a.failed, errHigh, errLow, errSpan, errUs, errAt, i)
	}
	return []any{ts, ress, mergeds, cells, services, serviceH, names, kinds, remotes, calls, errs, sums, bytes, sketches,
		slowHigh, slowLow, slowSpan, slow, slowAt, errHigh, errLow, errSpan, errUs, errAt}
}

const insertStats = `INSERT INTO span_stats (tenant, ts, res, merged, cell_h, service, service_h, name, kind, remote,
		calls, errors, dur_sum, bytes, sketch,
		slow_trace_high, slow_trace_low, slow_span, slow_us, slow_at, err_trace_high, err_trace_low, err_span, err_us, err_at)
	SELECT $1::smallint, u.* FROM unnest($2::timestamptz[], $3::int[], $4::bool[], $5::bigint[], $6::text[], $7::bigint[], $8::text[], $9::smallint[], $10::text[],
		$11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bytea[],
		$16::bigint[], $17::bigint[], $18::bigint[], $19::bigint[], $20::timestamptz[], $21::bigint[], $22::bigint[], $23::bigint[], $24::bigint[], $25::timestamptz[]) AS u`

// statsColumns is span_stats' columns as insertStats and the readers list them.
const statsColumns = `ts, res, service, name, kind, remote, calls, errors, dur_sum, bytes, sketch,
	slow_trace_high, slow_trace_low, slow_span, slow_us, slow_at, err_trace_high, err_trace_low, err_span, err_us, err_at`

// storedSpans is the canonical bytes of the spans already stored for the
// traces of segs, in segments other than segs themselves: what a
// redelivered message's spans are checked against before being counted.
func storedSpans(ctx context.Context, tx pgx.Tx, tenant int16, segs []*segment) (map[zipkin.TraceID]map[string]bool, error) {
	type key struct{ ts, uid int64 }
	ours := map[key]bool{}
	lows := make([]int64, 0, len(segs))
	for _, seg := range segs {
		ours[key{seg.ts, seg.uid}] = true
		lows = append(lows, int64(seg.id.Low))
	}
	out := map[zipkin.TraceID]map[string]bool{}
	err := eachSegment(ctx, tx, tenant, lows, func(id zipkin.TraceID, seg segKey) func([]byte) error {
		if ours[key{seg.ts.UnixMicro(), seg.uid}] {
			return nil
		}
		set := out[id]
		if set == nil {
			set = map[string]bool{}
			out[id] = set
		}
		return func(b []byte) error {
			set[string(b)] = true
			return nil
		}
	})
	return out, err
}
