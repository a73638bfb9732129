package storage

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zipq/zipq/zipkin"
)

// FindTraces returns whole traces, of the tenant ctx acts for, having a span that matches every
// criterion of q within [EndTs-Lookback, EndTs], the trace with the newest
// matching span first, at most q.Limit. With strict false, traces are
// grouped by the lower 64 bits of their ID.
//
// span_index rows are coarse — one per (segment, minute), with hashed
// names and terms — so they only nominate candidate traces. Rows are
// walked by their latest span start (ts_max), newest first, from the
// window's end plus a row's span (a row starting in the window may end
// after it); candidates are read whole (they are returned anyway) a few at
// a time, newest bound first (a row's ts_max, or a group row's trace's
// own), and kept only if one of their spans matches q exactly, as
// Zipkin's rule "one span matches all criteria" demands. No unread row can
// hold a span newer than the ts_max of the last row read, so the walk
// stops as soon as Limit matches are at least as new as that and as every
// unread candidate: usually after reading about Limit traces.
func (s *Store) FindTraces(ctx context.Context, q zipkin.QueryRequest, strict bool) ([][]zipkin.Span, error) {
	return s.FindTracesMatching(ctx, q, strict, func(spans []zipkin.Span, from, to int64) (int64, bool) {
		return newestMatch(spans, q, from, to)
	})
}

// FindTracesMatching is FindTraces with another matcher, which decides
// whether a trace (its spans, parts merged) is an answer of a search over
// [from, to] (epoch microseconds), and if so the time it is ordered by,
// newest first: at most the start of its newest span in the window. q
// gives the window and the limit; its service, remote service, span name,
// annotation query and duration bounds only nominate candidates through
// the index, so each must be necessary for match to accept a trace (a
// TraceQL query's conjunctive equalities; none when it has none). Traces
// are walked newest first as in FindTraces; match decides exactly.
func (s *Store) FindTracesMatching(ctx context.Context, q zipkin.QueryRequest, strict bool,
	match func(spans []zipkin.Span, from, to int64) (at int64, ok bool)) ([][]zipkin.Span, error) {
	return s.FindTracesFiltered(ctx, q, strict, nil, match)
}

// FindTracesFiltered is FindTracesMatching with a prefilter, which names
// the traces that may match from their spans' columns (span_columns).
// When q names nothing the search index could look up, and the columns
// cover the window, the walk goes down the column blocks newest first
// instead of the search index, and reads whole only the traces pre names.
// pre must name every trace match could accept.
func (s *Store) FindTracesFiltered(ctx context.Context, q zipkin.QueryRequest, strict bool, pre Prefilter,
	match func(spans []zipkin.Span, from, to int64) (at int64, ok bool)) ([][]zipkin.Span, error) {
	tenant, ok, err := s.readTenant(ctx)
	if q.Limit <= 0 || !ok || err != nil {
		return nil, err
	}
	start, end := q.EndTs.Add(-q.Lookback), q.EndTs
	var keys []int32
	if q.ServiceName != "" {
		keys = append(keys, key(keyService, q.ServiceName))
	}
	if q.RemoteServiceName != "" {
		keys = append(keys, key(keyRemote, q.RemoteServiceName))
	}
	if q.SpanName != "" {
		keys = append(keys, key(keyName, q.SpanName))
	}
	var either [][]int32
	for _, t := range q.AnnotationQuery {
		if k, old := termKey(t), legacyTermKey(t); k == old {
			keys = append(keys, k)
		} else {
			either = append(either, []int32{k, old})
		}
	}
	w := &walk{s: s, tenant: tenant, q: q, match: match, strict: strict, keys: keys, either: either,
		start: start, end: end, cursor: end.Add(indexBucket), seen: map[zipkin.TraceID]time.Time{}, colRows: columnWalkRows, rows: walkFirst}
	if pre != nil && s.cfg.Columns != nil && len(keys)+len(either) == 0 && q.MinDuration == 0 && q.MaxDuration == 0 {
		since, err := s.columnsSince(ctx)
		if err != nil {
			return nil, fmt.Errorf("find traces: %w", err)
		}
		if !start.Before(since) {
			w.pre, w.cursor = pre, end.Add(columnHour)
		}
	}
	if err := w.run(ctx); err != nil {
		return nil, fmt.Errorf("find traces: %w", err)
	}
	out := make([][]zipkin.Span, 0, min(len(w.matches), q.Limit))
	for _, m := range w.matches[:min(len(w.matches), q.Limit)] {
		out = append(out, m.spans)
	}
	return out, nil
}

// walkScan is how many rows a step of the walk reads through the ts_max
// B-tree, checking keys per row. When fewer than max(Limit, 10) in
// walkScan of the rows read have the keys, the keys are rare: the rest of
// the window is searched through the GIN index instead, which the planner
// cannot be trusted to pick alone (it chose bitmap scans of whole
// partitions for keys on every row). The rule is applied after every step
// (a first step with at most one hit is rare), as a packed day's 2,000
// group rows before the switch cost a tag value's search 15 ms against 7
// unpacked at 2M spans. Its first step reads walkFirst rows, the next ones
// walkScan: a packed day's group row holds up to 64 traces, so a first
// step of 2,000 rows read a two-hour window's whole index (1,100 rows of
// 1.8 KB on OTel-like spans) and every member of it, where the answer's 20
// traces were in the first few rows.
const (
	walkScan  = 2000
	walkFirst = 128
)

type walk struct {
	s          *Store
	tenant     int16
	q          zipkin.QueryRequest
	match      func(spans []zipkin.Span, from, to int64) (int64, bool)
	strict     bool
	keys       []int32   // a row must hold every one
	either     [][]int32 // and one of each: a term's key and its key before migration 00015
	start, end time.Time
	cursor     time.Time // rows with ts_max <= cursor are unread (from end + a row's span: a row starting by end can end after it)
	rows       int       // rows the next step reads down the ts_max B-tree
	scanned    int       // rows read down it, and how many had the keys
	hits       int
	rare       bool                         // use the GIN index
	pre        Prefilter                    // walk the column blocks, not the index
	colRows    int                          // blocks the column walk's next step reads
	seen       map[zipkin.TraceID]time.Time // nominated: the newest bound; read: readMark
	matches    []match
	read       int // traces read
}

type match struct {
	at    int64 // start of the newest matching span
	spans []zipkin.Span
}

// candidate is a trace a step nominated, with an upper bound of its spans'
// starts (tsMax): an ordinary row's ts_max, a group row's trace's own.
type candidate struct {
	id    zipkin.TraceID
	tsMax time.Time
}

func (w *walk) run(ctx context.Context) error {
	step := w.step
	if w.pre != nil {
		step = w.columnStep
	}
	var pending []candidate // nominated, unread, newest bound first
	for {
		cands, exhausted, err := step(ctx)
		if err != nil {
			return err
		}
		pending = append(pending, cands...)
		slices.SortStableFunc(pending, func(a, b candidate) int { return b.tsMax.Compare(a.tsMax) })
		// Read candidates a few at a time, newest bound first, while one
		// could be newer than any unread row (a group row's traces reach
		// below the row's ts_max: the rest wait for the next step); stop
		// once Limit matches are at least as new as anything unread.
		for len(pending) > 0 && (exhausted || !pending[0].tsMax.Before(w.unread())) {
			if w.done(pending[0].tsMax) {
				return nil
			}
			j := min(w.batch(), len(pending))
			ids := make([]zipkin.TraceID, 0, j)
			for _, c := range pending[:j] {
				if !w.seen[c.id].Equal(readMark) { // else read under a newer bound
					w.seen[c.id] = readMark
					ids = append(ids, c.id)
				}
			}
			pending = pending[j:]
			if len(ids) == 0 {
				continue
			}
			traces, err := w.s.Traces(ctx, ids, w.strict)
			if err != nil {
				return err
			}
			w.read += len(ids)
			for _, spans := range traces {
				// A span reported in parts (a name in one message, its
				// service in another) is matched whole; the answer keeps
				// the parts, as Zipkin's does.
				whole := spans
				if hasParts(len(spans), func(i int) *zipkin.Span { return &spans[i] }) {
					whole = zipkin.MergeParts(spans)
				}
				if at, ok := w.match(whole, w.start.UnixMicro(), w.end.UnixMicro()); ok {
					w.matches = append(w.matches, match{at, spans})
				}
			}
			slices.SortStableFunc(w.matches, func(a, b match) int { return cmp.Compare(b.at, a.at) })
		}
		if exhausted || w.done(w.unread()) {
			return nil
		}
	}
}

// batch is how many candidates to read next: the matches still missing,
// at the share of the traces read so far that matched (all, at first),
// from 4 to Limit. A service's latest on a packed day read 40 traces for
// 20 answers, the second 20 for the 3 the first 20 missed (traces whose
// service's span lies past the window's end), each a block decode.
func (w *walk) batch() int {
	need := w.q.Limit - len(w.matches)
	if w.read > 0 && need > 0 {
		need = (need*w.read + len(w.matches) - 1) / max(len(w.matches), 1)
	}
	return min(max(need, 4), max(w.q.Limit, 4))
}

// unread bounds the window's spans in unread rows: they start by the
// cursor and by the window's end.
func (w *walk) unread() time.Time { return minTime(w.cursor, w.end) }

// readMark is seen's mark of a trace read: no bound is newer.
var readMark = time.UnixMicro(math.MaxInt64)

// nominate appends trace id to cands as a candidate whose spans start at
// or before bound (in the window: by its end), unless it was read or
// nominated with a bound as new.
func (w *walk) nominate(cands []candidate, id zipkin.TraceID, bound time.Time) []candidate {
	if !w.strict {
		id.High = 0
	}
	bound = minTime(bound, w.end)
	if prev, ok := w.seen[id]; ok && !bound.After(prev) {
		return cands
	}
	w.seen[id] = bound
	return append(cands, candidate{id, bound})
}

// done reports whether Limit matches are at least as new as a row whose
// latest span starts at tsMax.
func (w *walk) done(tsMax time.Time) bool {
	return len(w.matches) >= w.q.Limit && w.matches[w.q.Limit-1].at >= tsMax.UnixMicro()
}

// query is a step's SELECT: the next rows of the window, newest first,
// and the row limit it reads.
func (w *walk) query() (string, []any, int) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	// ts bounds prune partitions: a row's spans start within a minute.
	where := []string{"tenant = " + arg(w.tenant), "ts > " + arg(w.start.Add(-indexBucket)), "ts <= " + arg(w.end),
		"ts_max >= " + arg(w.start), "ts_max <= " + arg(w.cursor)}
	// The key conditions: in the WHERE when the GIN index serves the step,
	// else computed per row read down the ts_max B-tree. Both GIN operators
	// combine in one index scan.
	var conds []string
	if len(w.keys) > 0 {
		conds = append(conds, "keys @> "+arg(w.keys))
	}
	for _, e := range w.either {
		conds = append(conds, "keys && "+arg(e))
	}
	hit := "true"
	if len(conds) > 0 {
		if w.rare {
			where = append(where, conds...)
		} else {
			hit = strings.Join(conds, " AND ")
		}
	}
	if w.q.MinDuration > 0 {
		where = append(where, "dur_max >= "+arg(w.q.MinDuration))
	}
	if w.q.MaxDuration > 0 {
		where = append(where, "dur_min <= "+arg(w.q.MaxDuration))
	}
	limit := w.rows
	if w.rare {
		limit = max(w.q.Limit*4, 100)
	}
	// A group row (indexgroup.go) the keys hit comes with its members and
	// where the walk's keys are among its keys (wanted), to nominate
	// those of its traces an ordinary row of theirs would have; not with
	// its keys, hundreds on OTel-like spans: a step read 1,000 such rows
	// in 10 ms. (An ordinary row's hit is evaluated once: AND stops at
	// members <> ''.)
	var pos []string
	for _, k := range w.wanted() {
		pos = append(pos, "coalesce(array_position(keys, "+arg(k)+"::int4), 0)")
	}
	query := `SELECT trace_id_low, trace_id_high, ts_max, ts, ` + hit + `,
		CASE WHEN members <> '' AND ` + hit + ` THEN ARRAY[cardinality(keys)` + strings.Join(append([]string{""}, pos...), ", ") + `]::int4[] END,
		CASE WHEN members <> '' AND ` + hit + ` THEN members END, bounds FROM span_index WHERE ` +
		strings.Join(where, " AND ") + ` ORDER BY ts_max DESC LIMIT ` + arg(limit)
	return query, args, limit
}

// wanted lists the keys the walk asks a group row's traces for: its keys,
// then each either's, in the order positions are given to nominates.
func (w *walk) wanted() []int32 {
	out := slices.Clone(w.keys)
	for _, e := range w.either {
		out = append(out, e...)
	}
	return out
}

// step reads the next rows of the window, newest first, and returns the
// traces they nominate (each once per search), and whether the window is
// exhausted.
func (w *walk) step(ctx context.Context) ([]candidate, bool, error) {
	query, args, limit := w.query()
	var rows pgx.Rows
	var err error
	var br pgx.BatchResults
	if w.rare {
		rows, err = w.s.pool.Query(ctx, query, args...)
	} else {
		br = w.s.pool.SendBatch(ctx, newestFirst(query, args))
		defer br.Close()
		rows, err = batchRows(br)
	}
	if err != nil {
		return nil, false, err
	}
	var low, high int64
	var ts, tsMax time.Time
	var ok bool
	var pos []int32 // a group row's count of keys, then where the walk's are (wanted)
	var members, bounds []byte
	var cands []candidate
	n, hits, oldest := 0, 0, w.cursor
	_, err = pgx.ForEachRow(rows, []any{&low, &high, &tsMax, &ts, &ok, &pos, &members, &bounds}, func() error {
		n++
		oldest = tsMax
		if !ok {
			return nil
		}
		hits++
		if len(members) == 0 {
			cands = w.nominate(cands, zipkin.TraceID{High: uint64(high), Low: uint64(low)}, tsMax)
			return nil
		}
		if len(pos) == 0 {
			return fmt.Errorf("%w: a group row with no keys", errCorruptSegment)
		}
		bound := newBoundReader(bounds, ts, tsMax)
		err := eachMember(members, int(pos[0]), func(m *groupMember) error {
			at, err := bound.next()
			if err == nil && w.nominates(pos[1:], m) {
				cands = w.nominate(cands, m.id, at)
			}
			return err
		})
		if err != nil {
			return err
		}
		return bound.end()
	})
	if err == nil && br != nil {
		err = br.Close() // the COMMIT
	}
	if err != nil {
		return nil, false, err
	}
	if n < limit {
		return cands, true, nil
	}
	w.advance(oldest)
	if !w.rare {
		w.scanned, w.hits = w.scanned+n, w.hits+hits
		w.rows = walkScan
		w.rare = w.hits*walkScan < max(w.q.Limit, 10)*w.scanned
	}
	return cands, false, nil
}

// nominates reports whether a group row's trace m passes what the walk's
// query asks of a row: every key, one of each either, and the duration
// bounds. pos gives, for each key of wanted, its position in the row's
// keys plus one, 0 where the row has none.
func (w *walk) nominates(pos []int32, m *groupMember) bool {
	has := func(i int) bool {
		_, ok := slices.BinarySearch(m.keys, uint32(pos[i]-1))
		return pos[i] > 0 && ok
	}
	for i := range w.keys {
		if !has(i) {
			return false
		}
	}
	i := len(w.keys)
	for _, e := range w.either {
		one := false
		for range e {
			one = one || has(i)
			i++
		}
		if !one {
			return false
		}
	}
	if w.q.MinDuration > 0 && (!m.hasDur || m.durMax < w.q.MinDuration) ||
		w.q.MaxDuration > 0 && (!m.hasDur || m.durMin > w.q.MaxDuration) {
		return false
	}
	return true
}

// advance moves the cursor to the oldest row a full step read. Rows at
// exactly the cursor were read already, except those cut off by the
// limit; reading them again is harmless (seen). A whole step at one
// instant steps past it rather than loop.
func (w *walk) advance(oldest time.Time) {
	if oldest.Equal(w.cursor) {
		oldest = oldest.Add(-time.Microsecond)
	}
	w.cursor = oldest
}

// newestFirst wraps a walk step's query so that PostgreSQL runs it as the
// walk is designed: down the ts_max B-trees (a Merge Append of backward
// index scans), stopping at the LIMIT. Left to its estimates the planner
// picks that plan except while a partition's statistics are stale — after
// a burst of spans, until autovacuum's next ANALYZE (a minute or more) —
// when it estimates a few hundred rows in the window and reads every row
// of it (a bitmap scan and a top-N sort: 50,000 rows instead of 2,000,
// 200–270 ms instead of 30, measured after a 500k-span load; each pool
// connection does it for its first five runs, until PostgreSQL switches
// it to the generic plan). Disabling sorts for this one transaction
// leaves the ordered scans as the only plan without one; the four
// statements go in one round trip.
func newestFirst(query string, args []any) *pgx.Batch {
	b := &pgx.Batch{}
	b.Queue("BEGIN READ ONLY")
	b.Queue("SET LOCAL enable_sort = off")
	b.Queue(query, args...)
	b.Queue("COMMIT")
	return b
}

// batchRows passes newestFirst's BEGIN and SET and returns the query's
// rows; the caller reads them, then closes br for the COMMIT.
func batchRows(br pgx.BatchResults) (pgx.Rows, error) {
	for range 2 {
		if _, err := br.Exec(); err != nil {
			return nil, err
		}
	}
	return br.Query()
}

// newestMatch reports the start of the newest span of a trace that matches
// every criterion of q and starts in [from, to] (µs).
func newestMatch(spans []zipkin.Span, q zipkin.QueryRequest, from, to int64) (int64, bool) {
	if q.MinTraceDuration > 0 || q.MaxTraceDuration > 0 {
		d := zipkin.TraceDuration(spans)
		if d < q.MinTraceDuration || q.MaxTraceDuration > 0 && d > q.MaxTraceDuration {
			return 0, false
		}
	}
	best, ok := int64(0), false
	for i := range spans {
		sp := &spans[i]
		if at := sp.StartTime(); at >= from && at <= to && (!ok || at > best) && spanMatches(sp, q) {
			best, ok = at, true
		}
	}
	return best, ok
}

// spanMatches is Zipkin's per-span search predicate, without the window.
func spanMatches(sp *zipkin.Span, q zipkin.QueryRequest) bool {
	if q.ServiceName != "" && sp.LocalServiceName() != q.ServiceName ||
		q.RemoteServiceName != "" && sp.RemoteServiceName() != q.RemoteServiceName ||
		q.SpanName != "" && sp.Name != q.SpanName {
		return false
	}
	if q.MinDuration > 0 && (sp.Duration == 0 || sp.Duration < q.MinDuration) ||
		q.MaxDuration > 0 && (sp.Duration == 0 || sp.Duration > q.MaxDuration) {
		return false
	}
	for _, t := range q.AnnotationQuery {
		if !hasTerm(sp, t) {
			return false
		}
	}
	return true
}

// hasTerm mirrors forEachTerm: t is a tag key, a tag's key=value or an
// annotation value of the span.
func hasTerm(sp *zipkin.Span, t string) bool {
	for k, v := range sp.Tags {
		if k == t || len(t) == len(k)+1+len(v) && t[len(k)] == '=' && strings.HasPrefix(t, k) && strings.HasSuffix(t, v) {
			return true
		}
	}
	for _, a := range sp.Annotations {
		if a.Value == t {
			return true
		}
	}
	return false
}

// hasParts reports whether two of n spans (span(i) is the i-th) are pieces
// of one span (same ID and shared flag), which zipkin.MergeParts would
// combine: the common case, none, costs a sort of the IDs, with no copy
// of the spans and no merge.
func hasParts(n int, span func(i int) *zipkin.Span) bool {
	if n < 2 {
		return false
	}
	type part struct {
		id     zipkin.SpanID
		shared bool
	}
	ps := make([]part, n)
	for i := range ps {
		sp := span(i)
		ps[i] = part{sp.ID, sp.Shared}
	}
	slices.SortFunc(ps, func(a, b part) int {
		if c := cmp.Compare(a.id, b.id); c != 0 {
			return c
		}
		return cmp.Compare(btoi(a.shared), btoi(b.shared))
	})
	for i := 1; i < len(ps); i++ {
		if ps[i] == ps[i-1] {
			return true
		}
	}
	return false
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
