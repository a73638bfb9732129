package storage

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/internal/tenant"
	"github.com/zipq/zipq/zipkin"
)

// indexBucket is the time span of one span_index row: a row's spans all
// start within [ts, ts + indexBucket), which bounds how far before a
// search window a row can begin and still hold a match.
const indexBucket = time.Minute

var indexColumns = []string{"trace_id_low", "ts", "ts_max", "trace_id_high", "dur_min", "dur_max", "keys", "tenant"}

// No conflict target: the targetless form also works on Citus columnar and
// postgres_fdw partitions, where a targeted ON CONFLICT fails. RETURNING
// names the segments that were new, whose index rows are then written.
const insertSegments = `INSERT INTO segments (trace_id_low, ts, seg_uid, trace_id_high, span_count, dict, data, tenant)
	SELECT u.*, $8::smallint FROM unnest($1::bigint[], $2::timestamptz[], $3::bigint[], $4::bigint[], $5::int[], $6::smallint[], $7::bytea[]) AS u
	ORDER BY 1, 2, 3
	ON CONFLICT DO NOTHING
	RETURNING trace_id_low, ts, seg_uid`

// The name tables and the linker's marks are written in key order so
// concurrent collectors writing the same names cannot deadlock. Names are
// stored whole and keyed by zipq_key (namePair), so no length breaks them.
const insertNames = `INSERT INTO span_names (day, service, name, service_h, pair_h, tenant)
	SELECT u.*, $6::smallint FROM unnest($1::date[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) AS u ORDER BY 5, 1 ON CONFLICT DO NOTHING`

const insertRemotes = `INSERT INTO remote_services (day, service, remote, service_h, pair_h, tenant)
	SELECT u.*, $6::smallint FROM unnest($1::date[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) AS u ORDER BY 5, 1 ON CONFLICT DO NOTHING`

const insertAutocomplete = `INSERT INTO autocomplete_tags (day, key, value, key_h, pair_h, tenant)
	SELECT u.*, $6::smallint FROM unnest($1::date[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) AS u ORDER BY 5, 1 ON CONFLICT DO NOTHING`

// markPending marks traces for the linker with the links of the segment
// just stored; a trace already marked keeps its mark (and, having two
// segments by then, is read back whole).
const markPending = `INSERT INTO link_pending (trace_id_low, trace_id_high, hour, edges, tenant)
	SELECT u.*, $5::smallint FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::bytea[]) AS u ORDER BY 1, 2 ON CONFLICT DO NOTHING`

// withoutTenant is the writer's statements as migration 6 runs them,
// before migration 11 added the tenant columns.
var withoutTenant = strings.NewReplacer(", tenant)", ")", "u.*, $8::smallint FROM", "u.* FROM", "u.*, $6::smallint FROM", "u.* FROM",
	"u.*, $5::smallint FROM", "u.* FROM")

// WriteSpans stores a batch, for the tenant ctx acts for (tenant.From), in
// one transaction and returns nil only after it committed: one segment per trace, its search rows, the name tables and
// the linker's marks. It is idempotent: a redelivered message stores no
// span twice as far as any read can tell (an identical segment inserts
// nothing; a differently cut one is merged by span identity when read, and
// folded away by the linker's compaction). A *DataError means PostgreSQL
// refused the data.
func (s *Store) WriteSpans(ctx context.Context, spans []zipkin.Span) error {
	return s.writeSpans(ctx, spans, false)
}

// WriteRedelivered is WriteSpans for spans that may have been stored
// already: those of a message RabbitMQ redelivered, whose batch may have
// committed before its ack was lost. The spans are stored the same way,
// but counted in the service metrics only if no stored segment of their
// trace holds them yet, which costs a read of those traces.
func (s *Store) WriteRedelivered(ctx context.Context, spans []zipkin.Span) error {
	return s.writeSpans(ctx, spans, true)
}

func (s *Store) writeSpans(ctx context.Context, spans []zipkin.Span, redelivered bool) error {
	if len(spans) == 0 {
		return nil
	}
	w, err := s.prepare(spans, true)
	if err != nil {
		return &DataError{Err: err}
	}
	w.redelivered = redelivered
	return s.commit(ctx, w, len(spans))
}

// PrepareWrite does the CPU-bound half of WriteSpans — encoding, compressing
// and indexing the batch — and returns the other half, which writes and
// commits it (and may be called again after a failure). The collector
// encodes one batch while the previous one commits. A *DataError means the
// spans cannot be encoded.
func (s *Store) PrepareWrite(spans []zipkin.Span) (func(context.Context) error, error) {
	w, err := s.prepare(spans, true)
	if err != nil {
		return nil, &DataError{Err: err}
	}
	return func(ctx context.Context) error { return s.commit(ctx, w, len(spans)) }, nil
}

// commit writes a prepared batch of n spans in one transaction, for the
// tenant ctx acts for.
func (s *Store) commit(ctx context.Context, w *write, n int) error {
	if n == 0 {
		return nil
	}
	id, err := s.tenantOf(ctx, true)
	if err != nil {
		return classify(fmt.Errorf("write %d spans: %w", n, err))
	}
	limit := s.traceLimits[tenant.From(ctx)]
	if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := w.checkTraceLimit(ctx, tx, id, limit); err != nil {
			return err
		}
		return w.write(ctx, tx, id)
	}); err != nil {
		return classify(fmt.Errorf("write %d spans: %w", n, err))
	}
	if s.observer != nil && len(w.counted) > 0 {
		s.observer.SpansCounted(tenant.From(ctx), w.counted)
	}
	return nil
}

// write is one batch, encoded and ready for a transaction: everything
// CPU-bound is done in prepare, so the transaction only sends it, and a
// retried commit does not redo it.
type write struct {
	segs    []*segment
	index   [][][]any // index[i]: span_index rows of segs[i]
	marks   []mark    // marks[i]: the linker's mark for segs[i]; nil: leave marks alone
	names   nameRows
	remotes nameRows
	tags    nameRows
	// stats is what all of segs count (nil: none counted).
	stats   []statBatchRow
	arrival int64 // µs
	// redelivered: the spans may have been stored (and counted) already.
	redelivered bool
	// beforeTenants: written by migration 6, before the tables had a
	// tenant column (migration 11); the rows are the default tenant's.
	beforeTenants bool
	uncounted     bool // not counted in span_stats at all
	// merged[i]: the spans of segs[i] as counted (indexSpans).
	merged [][]canonicalSpan
	// columns: the spans of segs as columns for scans.
	columns []columnBlock
	// counted is what the last transaction counted, for the observer
	// (only when observed).
	counted  []*zipkin.Span
	observed bool
}

type nameRows struct {
	days        []time.Time
	keys, value []string
	keyH, pairH []int64
}

type namePair struct {
	day      int64
	key, val string
}

func (n *nameRows) fill(set map[namePair]bool) {
	keys := make([]namePair, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b namePair) int {
		return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.val, b.val), cmp.Compare(a.day, b.day))
	})
	for _, k := range keys {
		n.days = append(n.days, time.UnixMicro(k.day).UTC())
		n.keys, n.value = append(n.keys, k.key), append(n.value, k.val)
		n.keyH, n.pairH = append(n.keyH, nameKey(k.key, "")), append(n.pairH, nameKey(k.key, k.val))
	}
}

// prepare encodes a batch; with marks, it also computes each segment's
// mark for the linker (the links that segment alone gives).
func (s *Store) prepare(spans []zipkin.Span, marks bool) (*write, error) {
	arrival := time.Now().UnixMicro()
	c, err := s.segmentCodec()
	if err != nil {
		return nil, err
	}
	segs, err := buildSegments(spans, arrival, c)
	if err != nil {
		return nil, err
	}
	w := &write{segs: segs, index: make([][][]any, len(segs)), arrival: arrival, uncounted: s.cfg.NoStats,
		merged: make([][]canonicalSpan, len(segs)), observed: s.observer != nil}
	tally := statTally{}
	for i, seg := range segs {
		merged := indexSpans(seg.spans)
		w.merged[i] = merged
		w.index[i] = appendIndexRows(nil, seg.id, merged, arrival)
		if !w.uncounted {
			tally.add(merged, arrival, int64(len(seg.data)))
		}
	}
	if len(tally) > 0 {
		w.stats = tally.batchRows()
	}
	if w.columns, err = columnBlocks(s.cfg.Columns, w.merged, arrival); err != nil {
		return nil, err
	}
	if marks {
		w.marks = make([]mark, len(segs))
		for i, seg := range segs {
			w.marks[i] = segmentMark(seg)
		}
	}
	names, remotes, tags := map[namePair]bool{}, map[namePair]bool{}, map[namePair]bool{}
	for i := range spans {
		sp := &spans[i]
		d := storedDay(sp.StartTime(), arrival).UnixMicro()
		local := pgText(sp.LocalServiceName())
		if local != "" {
			names[namePair{d, local, pgText(sp.Name)}] = true
			if remote := pgText(sp.RemoteServiceName()); remote != "" {
				remotes[namePair{d, local, remote}] = true
			}
		}
		for _, k := range s.cfg.AutocompleteKeys {
			if v, ok := sp.Tags[k]; ok {
				tags[namePair{d, pgText(k), pgText(v)}] = true
			}
		}
	}
	w.names.fill(names)
	w.remotes.fill(remotes)
	w.tags.fill(tags)
	return w, nil
}

func (w *write) write(ctx context.Context, tx pgx.Tx, tenant int16) error {
	w.counted = w.counted[:0]
	n := len(w.segs)
	lows, highs, uids := make([]int64, n), make([]int64, n), make([]int64, n)
	ts, counts, dicts, data := make([]time.Time, n), make([]int32, n), make([]int16, n), make([][]byte, n)
	for i, seg := range w.segs {
		lows[i], highs[i], uids[i] = int64(seg.id.Low), int64(seg.id.High), seg.uid
		ts[i], counts[i], dicts[i], data[i] = time.UnixMicro(seg.ts).UTC(), int32(len(seg.spans)), seg.dict, seg.data
	}
	b := &pgx.Batch{}
	queue := func(sql string, args ...any) { // the tenant last
		if w.beforeTenants {
			sql, args = withoutTenant.Replace(sql), args[:len(args)-1]
		}
		b.Queue(sql, args...)
	}
	queue(insertSegments, lows, ts, uids, highs, counts, dicts, data, tenant)
	for _, n := range []struct {
		sql  string
		rows *nameRows
	}{{insertNames, &w.names}, {insertRemotes, &w.remotes}, {insertAutocomplete, &w.tags}} {
		if len(n.rows.keys) > 0 {
			queue(n.sql, n.rows.days, n.rows.keys, n.rows.value, n.rows.keyH, n.rows.pairH, tenant)
		}
	}
	br := tx.SendBatch(ctx, b)
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return fmt.Errorf("insert segments: %w", err)
	}
	type segID struct{ low, ts, uid int64 } // a segment's primary key, ts in µs
	fresh := map[segID]bool{}
	var low, uid int64
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&low, &at, &uid}, func() error {
		fresh[segID{low, at.UnixMicro(), uid}] = true
		return nil
	})
	if err != nil {
		br.Close()
		return fmt.Errorf("insert segments: %w", err)
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("insert names: %w", err)
	}
	// Only the segments that were new get index rows, marks and counts:
	// an identical redelivered one is already indexed, linked and counted.
	var idx [][]any
	var marked []int
	for i, seg := range w.segs {
		if fresh[segID{int64(seg.id.Low), seg.ts, seg.uid}] {
			for _, row := range w.index[i] {
				row[len(row)-1] = tenant
			}
			idx = append(idx, w.index[i]...)
			marked = append(marked, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	cols := indexColumns
	if w.beforeTenants {
		cols = cols[:len(cols)-1]
		for i, row := range idx {
			idx[i] = row[:len(row)-1]
		}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"span_index"}, cols, pgx.CopyFromRows(idx)); err != nil {
		return fmt.Errorf("copy span index: %w", err)
	}
	stats, err := w.freshStats(ctx, tx, tenant, marked)
	if err != nil {
		return fmt.Errorf("count spans: %w", err)
	}
	b = &pgx.Batch{}
	if w.marks != nil {
		queue(markPending, append(w.pendingMarks(marked), tenant)...)
	}
	for _, r := range stats {
		b.Queue(insertStatBatch, tenant, time.UnixMicro(r.minute).UTC(), r.cells, r.chunks)
	}
	if !w.beforeTenants {
		queueColumns(b, w.columns, tenant)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("mark traces for the linker, count spans: %w", err)
	}
	return nil
}

// checkTraceLimit refuses a batch that would make one of its traces hold
// more than limit spans (0: no limit), counting the spans stored already
// (each stored copy of a redelivered span too). The refusal is a
// *DataError: the collector writes the batch's messages, then their
// spans, one by one, stores those that fit and parks the rest with the
// reason, for a replay once the limit is raised. Two collectors writing
// one trace at the same moment may both fit: the bound is approximate by
// a batch.
func (w *write) checkTraceLimit(ctx context.Context, tx pgx.Tx, tenant int16, limit int) error {
	if limit <= 0 {
		return nil
	}
	lows := make([]int64, len(w.segs))
	for i, seg := range w.segs {
		lows[i] = int64(seg.id.Low)
	}
	stored := map[zipkin.TraceID]int64{}
	var low, high, n int64
	entries, err := rowsAndEntries(ctx, tx, tenant, lows, `SELECT trace_id_low, trace_id_high, sum(span_count)::bigint FROM segments
		WHERE trace_id_low = ANY($2) AND tenant = $1 GROUP BY 1, 2`, func(rows pgx.Rows) error {
		_, err := pgx.ForEachRow(rows, []any{&low, &high, &n}, func() error {
			stored[zipkin.TraceID{High: uint64(high), Low: uint64(low)}] = n
			return nil
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("trace sizes: %w", err)
	}
	for _, e := range entries {
		stored[e.id] += int64(e.spans)
	}
	for _, seg := range w.segs {
		if total := stored[seg.id] + int64(len(seg.spans)); total > int64(limit) {
			return &DataError{Err: fmt.Errorf("trace %s would hold %d spans: its tenant keeps at most %d a trace (max_trace_spans)", seg.id, total, limit)}
		}
	}
	return nil
}

// freshStats is what the segments at these indexes count,
// the ones this transaction stored: prepare's tally when that is all of
// them and none may have been stored before, else counted again from them
// alone, without the spans found stored already. The spans it counts are
// w.counted.
func (w *write) freshStats(ctx context.Context, tx pgx.Tx, tenant int16, fresh []int) ([]statBatchRow, error) {
	if w.uncounted {
		return nil, nil
	}
	if len(fresh) == len(w.segs) && !w.redelivered {
		for _, spans := range w.merged {
			w.count(spans)
		}
		return w.stats, nil
	}
	segs := make([]*segment, len(fresh))
	for n, i := range fresh {
		segs[n] = w.segs[i]
	}
	var stored map[zipkin.TraceID]map[string]bool
	if w.redelivered {
		var err error
		if stored, err = storedSpans(ctx, tx, tenant, segs); err != nil {
			return nil, err
		}
	}
	t := statTally{}
	for _, seg := range segs {
		spans := seg.spans
		if skip := stored[seg.id]; len(skip) > 0 {
			spans = slices.DeleteFunc(slices.Clone(spans), func(cs canonicalSpan) bool { return skip[string(cs.bytes)] })
		}
		merged := indexSpans(spans)
		t.add(merged, w.arrival, int64(len(seg.data)))
		w.count(merged)
	}
	return t.batchRows(), nil
}

// count adds spans to w.counted, leaving out those without a local
// service as statTally.add does.
func (w *write) count(spans []canonicalSpan) {
	if !w.observed {
		return
	}
	for _, cs := range spans {
		if pgText(cs.span.LocalServiceName()) != "" {
			w.counted = append(w.counted, cs.span)
		}
	}
}

// segmentMark is the linker's mark for a segment: the links it alone gives
// (the trace's links when it is the trace's only segment).
func segmentMark(seg *segment) mark {
	spans := make([]zipkin.Span, len(seg.spans))
	for j, cs := range seg.spans {
		spans[j] = *cs.span
	}
	tl := linkTrace(seg.id, spans, linkHour(seg.ts))
	return mark{hour: tl.hour, edges: encodeNamedEdges(tl.edges)}
}

// pendingMarks are markPending's arguments for the segments at these
// indexes (one per trace: buildSegments groups by trace ID), in key order.
func (w *write) pendingMarks(at []int) []any {
	slices.SortFunc(at, func(a, b int) int {
		x, y := w.segs[a].id, w.segs[b].id
		return cmp.Or(cmp.Compare(int64(x.Low), int64(y.Low)), cmp.Compare(int64(x.High), int64(y.High)))
	})
	lows, highs := make([]int64, len(at)), make([]int64, len(at))
	hours, edges := make([]time.Time, len(at)), make([][]byte, len(at))
	for n, i := range at {
		lows[n], highs[n] = int64(w.segs[i].id.Low), int64(w.segs[i].id.High)
		hours[n], edges[n] = w.marks[i].hour, w.marks[i].edges
	}
	return []any{lows, highs, hours, edges}
}

// indexSpans is what a trace's index rows are computed from: its spans,
// with the pieces of a span reported in parts merged first (one piece
// naming the service, another the span), so a search matches the span
// whole, as Zipkin does; in start order.
func indexSpans(spans []canonicalSpan) []canonicalSpan {
	if !hasParts(len(spans), func(i int) *zipkin.Span { return spans[i].span }) {
		return spans // the common case: nothing copied on the write path
	}
	plain := make([]zipkin.Span, len(spans))
	for i, cs := range spans {
		plain[i] = *cs.span
	}
	merged := zipkin.MergeParts(plain)
	out := make([]canonicalSpan, len(merged))
	for i := range merged {
		out[i] = canonicalSpan{span: &merged[i], start: merged[i].StartTime()}
	}
	slices.SortFunc(out, func(a, b canonicalSpan) int { return cmp.Compare(a.start, b.start) })
	return out
}

// appendIndexRows adds a trace's span_index rows for spans (in start
// order): one per minute of start time, so a row's spans are consecutive;
// arrival (µs) dates the undated and the far-future (storedAt).
func appendIndexRows(rows [][]any, id zipkin.TraceID, spans []canonicalSpan, arrival int64) [][]any {
	flush := func(spans []canonicalSpan) {
		var durMin, durMax int64
		keys := make([]int32, 0, 16*len(spans))
		for _, cs := range spans {
			sp := cs.span
			if sp.Duration > 0 {
				if durMin == 0 || sp.Duration < durMin {
					durMin = sp.Duration
				}
				durMax = max(durMax, sp.Duration)
			}
			keys = appendSpanKeys(keys, sp)
		}
		var dmin, dmax any
		if durMax > 0 {
			dmin, dmax = durMin, durMax
		}
		ts, tsMax := spans[0].start, spans[len(spans)-1].start
		if storedAt(ts, arrival) != ts || storedAt(tsMax, arrival) != tsMax {
			ts, tsMax = arrival, arrival // undated or far ahead: stored as it arrived
		}
		rows = append(rows, []any{
			int64(id.Low), time.UnixMicro(ts).UTC(), time.UnixMicro(tsMax).UTC(),
			int64(id.High), dmin, dmax, sortedSet(keys), defaultTenantID, // the tenant: set by write
		})
	}
	first, bucket := 0, int64(0)
	for i, cs := range spans {
		b := cs.start / indexBucket.Microseconds()
		if i > first && b != bucket {
			flush(spans[first:i])
			first = i
		}
		bucket = b
	}
	flush(spans[first:])
	return rows
}

func sortedSet(v []int32) []int32 {
	if v == nil {
		return []int32{}
	}
	slices.Sort(v)
	return slices.Compact(v)
}
